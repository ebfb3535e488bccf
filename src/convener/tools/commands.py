"""``convener doctor``, ``convener demo`` and ``convener call``: tools around the service."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from convener.app.commands import load_config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    doc = sub.add_parser("doctor", help="check ARI, the app registration, the dialplan and config")
    doc.add_argument("--config", help="TOML configuration file")
    doc.add_argument("--no-probe", action="store_true", help="skip the probe call into the dialplan")
    doc.add_argument("--asterisk-config", type=Path, metavar="DIR",
                     help="also check http.conf, ari.conf and extensions.conf in DIR (e.g. /etc/asterisk)")
    doc.add_argument("--json", action="store_true")
    doc.set_defaults(func=_doctor)

    demo = sub.add_parser("demo", help="sandbox Asterisk + example agents + convener + a spoken test call")
    demo.add_argument("--config", help="TOML configuration file (ARI settings are the sandbox's)")
    demo.add_argument("--say", action="append", metavar="TEXT", help="replace the scripted caller turns")
    demo.add_argument("--keep", action="store_true", help="leave the sandbox Asterisk running")
    demo.set_defaults(func=_demo)

    call = sub.add_parser("call", help="place a test call into the dialplan (no phone needed)")
    call.add_argument("--config", help="TOML configuration file")
    call.add_argument("--room", help="join this room (dials room-NAME)")
    call.add_argument("--say", dest="items", action="append", metavar="TEXT",
                      help="say TEXT as one caller turn (through the configured TTS); repeatable")
    call.add_argument("--audio", dest="items", action="append", type=Path, metavar="WAV",
                      help="play a WAV file as one caller turn; repeatable, mixes with --say")
    call.add_argument("--hold", type=float, default=3.0,
                      help="without --say/--audio: seconds to stay in the call")
    call.add_argument("--json", action="store_true", help="print one JSON object")
    call.set_defaults(func=_call)


def _demo(args: argparse.Namespace) -> int:
    from convener.sandbox.build import SandboxError
    from convener.tools.demo import SCRIPT, run_demo

    cfg = load_config_from_args(args)
    if cfg is None:
        return 2
    try:
        return asyncio.run(run_demo(cfg, tuple(args.say) if args.say else SCRIPT, keep=args.keep))
    except SandboxError as e:
        print(f"convener demo: {e}", file=sys.stderr)
        return 1


def _doctor(args: argparse.Namespace) -> int:
    from convener.tools.doctor import run_checks

    cfg = load_config_from_args(args)
    if cfg is None:
        if args.json:
            print(json.dumps({"ok": False, "checks": [{"name": "config", "ok": False}]}))
        return 2
    checks = asyncio.run(run_checks(cfg, probe=not args.no_probe, conf_dir=args.asterisk_config))
    ok = all(c.ok for c in checks)
    if args.json:
        print(json.dumps({"ok": ok, "checks": [c.__dict__ for c in checks]}, indent=2))
    else:
        for c in checks:
            print(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
            if not c.ok and c.fix:
                print(f"       fix: {c.fix}")
    return 0 if ok else 1


def _call(args: argparse.Namespace) -> int:
    cfg = load_config_from_args(args)
    if cfg is None:
        return 2
    if args.items:
        return asyncio.run(_spoken(cfg, args))
    report = asyncio.run(test_call(cfg, room=args.room, hold=args.hold))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for k, v in report.items():
            print(f"{k}: {v}")
    return 0 if report.get("ok") else 1


async def _spoken(cfg, args: argparse.Namespace) -> int:
    from convener.ari.errors import AriError
    from convener.tools.callcheck import print_progress, spoken_call

    try:
        report = await spoken_call(cfg, args.items, room=args.room,
                                   progress=None if args.json else print_progress)
    except (AriError, OSError, TimeoutError) as e:
        print(f"convener call: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for i, t in enumerate(report.turns, 1):
            lat = f"{t.latency_ms:.0f} ms" if t.latency_ms is not None else "no reply"
            print(f"turn {i}: said {t.said!r} -> heard {t.heard!r} ({lat})")
        if report.error:
            print(report.error, file=sys.stderr)
    return 0 if report.ok else 1


async def test_call(cfg, room: str | None, hold: float) -> dict:
    from convener.ari.errors import AriError
    from convener.tools.testcall import TestCaller

    s, c = cfg.ari, cfg.calls
    report: dict = {"ok": False}
    try:
        async with TestCaller(s.url, s.user, s.password, app=f"{s.app}-caller") as caller:
            leg = await caller.place(c.dialplan_extension, c.dialplan_context, room=room)
            report["answered_ms"] = round(await leg.wait_answered() * 1000, 1)
            try:
                bridge = await leg.wait_in_bridge(timeout=5.0)
            except TimeoutError:
                report["error"] = ("the call never reached convener's conference bridge: is "
                                   "`convener run` running with the same app name?")
                report["dialplan"] = [f"{a}({d})" for a, d in leg.dialplan]
                return report
            assert leg.in_bridge_at is not None
            report["in_bridge_ms"] = round((leg.in_bridge_at - leg.placed_at) * 1000, 1)
            report["bridge"] = bridge
            await asyncio.sleep(hold)
            report["held_s"] = hold
            await leg.hangup()
            await leg.wait_ended()
            report["outcome"] = leg.outcome()
            report["ok"] = True
    except AriError as e:
        report["error"] = str(e)
    except TimeoutError:
        report["error"] = "timed out waiting for Asterisk"
    return report
