"""``convener agents``, ``convener agents serve`` and ``convener chat``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("agents", help="list the configured OFP agents, their manifests and health")
    p.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    p.add_argument("--json", action="store_true", help="print JSON")
    sub = p.add_subparsers(dest="agents_command", metavar="SUBCOMMAND")
    s = sub.add_parser("serve", help="run the example agents (flights, hotels, weather) and LLM agents on loopback")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--base-port", type=int, default=8701, help="flights; hotels and weather follow")
    s.add_argument("--llm", metavar="FILE", help="also serve the LLM agents defined in this TOML file")
    s.add_argument("--no-examples", action="store_true", help="serve only the LLM agents of --llm")
    s.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="convener's configuration: its [llm] section, unless the --llm file has one")
    p.set_defaults(func=_agents)

    c = subparsers.add_parser("chat", help="text console into an Open Floor session (reads stdin when piped)")
    c.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    c.add_argument("--name", default=None, help="your name on the floor")
    c.add_argument("--no-autostart", action="store_true", help="never start the example agents in-process")
    c.set_defaults(func=_chat)


def _load(args: argparse.Namespace) -> Any:
    from convener.config import ConfigError, load_config

    try:
        return load_config(args.config)
    except ConfigError as e:
        print(f"convener: {e}", file=sys.stderr)
        return None


def _agents(args: argparse.Namespace) -> int:
    import asyncio

    if args.agents_command == "serve":
        return _serve(args)
    config = _load(args)
    if config is None:
        return 2
    return asyncio.run(_list_agents(config, as_json=args.json))


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from convener.settings import ConfigError
    from convener_agents.serve import serve_forever

    ports = {n: args.base_port + i for i, n in enumerate(("flights", "hotels", "weather"))}
    if args.no_examples:
        if not args.llm:
            print("convener: --no-examples needs --llm FILE", file=sys.stderr)
            return 2
        ports = {}
    llm_file = llm = None
    if args.llm:
        from convener_agents.llm import load_agents_file

        try:
            llm_file = load_agents_file(args.llm)
        except ConfigError as e:
            print(f"convener: {e}", file=sys.stderr)
            return 2
        if llm_file.llm is None and args.config:
            config = _load(args)
            if config is None:
                return 2
            llm = config.llm
    try:
        asyncio.run(serve_forever(args.host, ports, llm_file, llm))
    except OSError as e:
        print(f"convener: {e}", file=sys.stderr)
        return 1
    return 0


async def _list_agents(config: Any, *, as_json: bool) -> int:
    import json

    import aiohttp

    from convener.ofp.directory import AgentDirectory
    from convener.ofp.transport import AgentClient

    directory = AgentDirectory(config.ofp)
    async with aiohttp.ClientSession() as http:
        await directory.refresh(AgentClient(http, max_bytes=config.ofp.max_response_bytes))
    status = directory.status()
    if as_json:
        print(json.dumps(status, indent=2))
    else:
        if not status:
            print("no agents configured")
        for a in status:
            h: Any = a["health"]
            name = a["conversationalName"] or "-"
            print(f"{a['name']:<12} {h['state']:<7} {a['url']}  ({name})")
            if a["synopsis"]:
                print(f"{'':<12} {a['synopsis']}")
            if a["keyphrases"]:
                print(f"{'':<12} keyphrases: {', '.join(a['keyphrases'])}")
            if h["last_error"]:
                print(f"{'':<12} error: {h['last_error']}")
    return 0 if all(a["health"]["state"] == "up" for a in status) else 1  # type: ignore[index]


def _chat(args: argparse.Namespace) -> int:
    import asyncio

    config = _load(args)
    if config is None:
        return 2
    return asyncio.run(_chat_main(config, name=args.name, autostart=not args.no_autostart))


async def _reachable(url: str, timeout: float = 0.5) -> bool:
    import asyncio
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with asyncio.timeout(timeout):
            _r, w = await asyncio.open_connection(parts.hostname, port)
    except (OSError, TimeoutError):
        return False
    w.close()
    return True


async def _chat_main(config: Any, *, name: str | None, autostart: bool) -> int:
    import asyncio

    from convener.ofp.session import FloorSession
    from convener.ofp.settings import default_agents

    running = None
    defaults = default_agents()
    examples = {n: a for n, a in config.ofp.agents.items() if n in defaults and a.url == defaults[n].url}
    if autostart and examples:
        up = await asyncio.gather(*(_reachable(a.url) for a in examples.values()))
        if not any(up):
            from urllib.parse import urlsplit

            from convener_agents.serve import start_agents

            ports = {n: urlsplit(a.url).port or 80 for n, a in examples.items()}
            running = await start_agents("127.0.0.1", ports)
            print(
                f"convener: example agents were not running; started them in-process ({', '.join(ports)})",
                file=sys.stderr,
            )
    session = FloorSession.from_config(config)
    interactive = sys.stdin.isatty()
    try:
        await session.start(caller_name=name)
        if interactive:
            print("Type what you would say on the phone; Ctrl-D or /quit to end.", file=sys.stderr)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, _read_line, interactive)
            if line is None or line.strip() in ("/quit", "/exit"):
                break
            text = line.strip()
            if not text:
                continue
            if not interactive:
                print(f"> {text}", flush=True)
            async for reply in session.user_turn(text):
                print(f"{reply.agent_name}: {reply.text}", flush=True)
    finally:
        await session.close()
        if running is not None:
            await running.close()
    return 0


def _read_line(interactive: bool) -> str | None:
    try:
        return input("you> ") if interactive else (sys.stdin.readline() or None)
    except EOFError:
        return None
