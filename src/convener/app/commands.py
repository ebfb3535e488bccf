"""``convener run``: the service. The tools around it (doctor, demo, call) are in ``convener.tools``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

log = logging.getLogger("convener")


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="connect to ARI and serve callers")
    run.add_argument("--config", help="TOML configuration file")
    run.set_defaults(func=_run)


def load_config_from_args(args: argparse.Namespace):
    """The configuration ``--config`` names (or the defaults), or None after printing why not."""
    from convener.app.settings_source import resolve_config
    from convener.config import ConfigError

    try:
        return resolve_config(args.config)
    except ConfigError as e:
        print(f"convener: configuration error: {e}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    cfg = load_config_from_args(args)
    if cfg is None:
        return 2
    from convener.ops.runtime import configure_logging

    configure_logging(cfg, verbosity=max(args.verbose, 1))  # first: every later line is redacted
    return asyncio.run(serve(cfg))


async def serve(cfg) -> int:
    from convener.app.application import ConvenerApp
    from convener.ops.runtime import OpsRuntime
    from convener.settings import ConfigError

    app = ConvenerApp(cfg)
    try:
        ops = await OpsRuntime.start(cfg, app, agents_health=app.agents_health)
    except (ConfigError, OSError) as e:
        print(f"convener: {e}", file=sys.stderr)
        return 2
    app.transcripts = ops.transcripts
    endpoint = None
    if cfg.ofp.listen_port:
        from convener.app.ofp_endpoint import OfpEndpoint

        try:
            endpoint = await OfpEndpoint.start(cfg.ofp, app.ofp_sessions)
        except OSError as e:
            await ops.stop()
            print(f"convener: OFP endpoint on {cfg.ofp.listen_host}:{cfg.ofp.listen_port}: {e} "
                  "(set ofp.listen_port, or 0 to disable)", file=sys.stderr)
            return 2
    try:
        return await _serve(cfg, app)
    finally:
        if endpoint is not None:
            await endpoint.stop()
        await ops.stop()


async def _serve(cfg, app) -> int:
    from convener.app.startup import prepare
    from convener.ari.stream import StreamState

    await prepare(app, voice=cfg.voice.enabled)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(app.stop()))
    log.info("convener: app %r, ARI %s", cfg.ari.app, cfg.ari.url)
    state = await app.run()
    if state is StreamState.REPLACED:
        log.error("another client took application %r: exiting (3)", cfg.ari.app)
        return 3
    return 0
