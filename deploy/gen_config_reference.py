#!/usr/bin/env python3
"""Regenerate docs/configuration.md, the sample configuration, the env file and the systemd unit.

    .venv/bin/python deploy/gen_config_reference.py          # write the files
    .venv/bin/python deploy/gen_config_reference.py --check  # exit 1 when any is stale

Sources: the settings dataclasses (keys, types, defaults; meanings from their comments) and
``convener.ops.unit.render_unit()``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from convener.ops.install import ENV_TEMPLATE  # noqa: E402
from convener.ops.reference import markdown, sample_toml  # noqa: E402
from convener.ops.unit import render_unit  # noqa: E402


def outputs() -> dict[Path, str]:
    sample = sample_toml()
    return {
        ROOT / "docs" / "configuration.md": markdown(),
        ROOT / "deploy" / "convener.toml": sample,
        ROOT / "src" / "convener" / "ops" / "data" / "convener.toml": sample,  # shipped for `convener install`
        ROOT / "deploy" / "systemd" / "convener.service": render_unit(),
        ROOT / "deploy" / "convener.env.example": ENV_TEMPLATE,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a generated file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if args.check and stale:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)} (run deploy/gen_config_reference.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
