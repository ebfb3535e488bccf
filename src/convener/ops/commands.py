"""``convener transcripts`` and ``convener install``."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser("transcripts", help="list stored conversations, or print one")
    tr.add_argument("id", nargs="?", help="conversation id (default: list the latest)")
    tr.add_argument("--config", help="TOML configuration file")
    tr.add_argument("--limit", type=int, default=20, help="conversations to list (default 20)")
    tr.add_argument("--json", action="store_true", help="machine-readable output")
    tr.add_argument("--purge", action="store_true",
                    help="delete conversations older than ops.transcripts_retention_days (or --older-than)")
    tr.add_argument("--older-than", type=float, metavar="DAYS", help="with --purge: age limit in days")
    tr.set_defaults(func=_transcripts)

    ins = sub.add_parser("install", help="install convener as a systemd service (venv, user, config, unit)")
    ins.add_argument("--prefix", default="/opt/convener", help="install prefix (default /opt/convener)")
    ins.add_argument("--source", default="", help="wheel, source directory or requirement to install "
                                                  "(default: this source tree, else the same version)")
    ins.add_argument("--extras", default="", help="extras to install, e.g. speech")
    ins.add_argument("--dry-run", action="store_true", help="print the steps, change nothing")
    ins.set_defaults(func=_install)


def _transcripts(args: argparse.Namespace) -> int:
    import asyncio

    from convener.app.settings_source import config_path
    from convener.config import ConfigError, load_config
    from convener.ops.transcripts_cli import purge, show

    try:
        cfg = load_config(config_path(args.config))
    except ConfigError as e:
        print(f"convener: configuration error: {e}", file=sys.stderr)
        return 2
    if args.purge:
        days = args.older_than if args.older_than is not None else cfg.ops.transcripts_retention_days
        if not days or days <= 0:
            print("convener transcripts --purge: give --older-than DAYS or set ops.transcripts_retention_days",
                  file=sys.stderr)
            return 2
        return asyncio.run(purge(cfg.ops, days, sys.stdout))
    return asyncio.run(show(cfg.ops, args.id, args.limit, args.json, sys.stdout))


def _install(args: argparse.Namespace) -> int:
    from convener.ops.install import InstallOptions, run

    opts = InstallOptions(prefix=args.prefix, source=args.source, extras=args.extras)
    return run(opts, dry_run=args.dry_run)
