"""``convener sandbox up | down | status [--json] | restart | cli``."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sandbox", help="a real Asterisk 22 on loopback for development and tests")
    ssub = p.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    up = ssub.add_parser("up", help="build once (cached) and start Asterisk")
    up.add_argument("--rebuild", action="store_true", help="rebuild the root file system")
    up.set_defaults(func=_up)
    down = ssub.add_parser("down", help="stop Asterisk and unmount")
    down.set_defaults(func=_down)
    restart = ssub.add_parser("restart", help="restart Asterisk")
    restart.set_defaults(func=_restart)
    st = ssub.add_parser("status", help="is it running, and how to reach ARI")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=_status)
    cli = ssub.add_parser("cli", help="run an Asterisk CLI command, e.g. 'ari show apps'")
    cli.add_argument("words", nargs="+")
    cli.set_defaults(func=_cli)
    for action in (up, down, restart, st, cli):
        action.add_argument("--instance", default="", metavar="LETTER",
                            help="a second Asterisk from the same root file system, on its own "
                                 "ports (b: ARI 8089, SIP 5062, RTP 31000-31999); default: the "
                                 "usual one")


def _sandbox(args: argparse.Namespace | None = None):
    from convener.sandbox.build import SandboxError
    from convener.sandbox.runtime import Sandbox

    instance = getattr(args, "instance", "") or ""
    try:
        return Sandbox(instance=instance)
    except ValueError as e:
        raise SandboxError(str(e)) from None


def _guard(fn):
    def run(args: argparse.Namespace) -> int:
        from convener.sandbox.build import SandboxError

        try:
            return fn(args)
        except SandboxError as e:
            print(f"convener sandbox: {e}", file=sys.stderr)
            return 1

    return run


@_guard
def _up(args: argparse.Namespace) -> int:
    from convener.sandbox.build import SandboxError, build

    sb = _sandbox(args)
    if args.rebuild and sb.instance:
        raise SandboxError("--rebuild rebuilds the root file system every instance shares: "
                           "run it without --instance")
    if args.rebuild:
        sb.down()
        build(sb.paths, sb.progress, force=True)
    creds = sb.up()
    print(f"Asterisk sandbox running: ARI {creds.ari_url} user {creds.ari_user} "
          f"(password: convener sandbox status --json)")
    return 0


@_guard
def _down(args: argparse.Namespace) -> int:
    _sandbox(args).down()
    print("Asterisk sandbox stopped")
    return 0


@_guard
def _restart(args: argparse.Namespace) -> int:
    _sandbox(args).restart()
    print("Asterisk sandbox restarted")
    return 0


@_guard
def _status(args: argparse.Namespace) -> int:
    info = _sandbox(args).status()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        state = "running" if info["running"] else "stopped"
        name = "sandbox" if info["instance"] == "default" else f"sandbox {info['instance']}"
        print(f"{name}: {state} (built: {info['built']}, root {info['root']})")
        if "ari_url" in info:
            print(f"ARI: {info['ari_url']} user {info['ari_user']} ready: {info['ari_ready']}")
    return 0 if info["running"] else 3


@_guard
def _cli(args: argparse.Namespace) -> int:
    print(_sandbox(args).asterisk_cli(" ".join(args.words)), end="")
    return 0
