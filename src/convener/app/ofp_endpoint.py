"""Serve convener's OFP endpoint from ``convener run``: external agents POST envelopes here.

The live conversations (one per room) are registered in a ``SessionRegistry``; an envelope for
one of them goes through that room's floor, and the replies it causes for the callers are spoken
into the room like any other reply.
"""

from __future__ import annotations

import logging

from aiohttp import web

from convener.ofp.endpoint import SessionRegistry, build_app
from convener.ofp.settings import OfpSettings

log = logging.getLogger(__name__)


class OfpEndpoint:
    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.port = port

    @classmethod
    async def start(cls, settings: OfpSettings, sessions: SessionRegistry,
                    port: int | None = None) -> OfpEndpoint:
        runner = web.AppRunner(build_app(settings, sessions), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.listen_host, settings.listen_port if port is None else port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("OFP endpoint on http://%s:%d/ofp", settings.listen_host, bound)
        return cls(runner, bound)

    async def stop(self) -> None:
        await self.runner.cleanup()
