"""The ``convener`` command line.

Each area contributes its subcommands from a module ``convener.<area>.commands`` with a function
``register(subparsers)``; every registered handler takes the parsed arguments and returns an exit
code. Heavy imports happen inside the handlers so that ``convener --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import convener

AREAS = ("sandbox", "app", "tools", "ofp", "speech", "media", "ops")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convener",
        description="Asterisk ARI front door for Open Floor Protocol multi-agent conversations.",
    )
    parser.add_argument("--version", action="version", version=f"convener {convener.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    present = {m.name for m in pkgutil.iter_modules(convener.__path__)}
    for area in AREAS:
        if area not in present:
            continue
        try:
            mod = importlib.import_module(f"convener.{area}.commands")
        except ModuleNotFoundError as e:
            if e.name == f"convener.{area}.commands":
                continue
            raise
        mod.register(sub)
    return parser


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
