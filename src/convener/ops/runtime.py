"""The ops side of ``convener run`` in two calls, for ``serve()``::

    configure_logging(cfg, verbosity)                # first: every later line is redacted
    ops = await OpsRuntime.start(cfg, app, agents_health)   # ops server + transcript writer
    try:
        state = await app.run()
    finally:
        await ops.stop()

``OpsRuntime.start`` raises ``OpsServerError`` (a ConfigError) when the ops server cannot start
(off loopback without a token, port taken): ``serve()`` should exit with code 2 and the message.
"""

from __future__ import annotations

from typing import IO, Any

from convener.ops.http import AgentsHealth, OpsServer, start_ops_server
from convener.ops.logs import Redactor, secrets_of, setup_logging
from convener.ops.transcript_writer import TranscriptWriter


def configure_logging(cfg: Any, verbosity: int = 0, stream: IO[str] | None = None) -> Redactor:
    """``setup_logging`` with the ops settings and every credential of the config."""
    return setup_logging(cfg.ops, secrets=secrets_of(cfg), verbosity=verbosity, stream=stream)


class OpsRuntime:
    def __init__(self, server: OpsServer | None, transcripts: TranscriptWriter | None) -> None:
        self.server = server
        self.transcripts = transcripts  # None when ops.transcripts = false

    @classmethod
    async def start(cls, cfg: Any, app: Any, agents_health: AgentsHealth | None = None) -> OpsRuntime:
        server = await start_ops_server(app, cfg.ops, agents_health) if cfg.ops.http_enabled else None
        try:
            transcripts = await TranscriptWriter.open(cfg.ops) if cfg.ops.transcripts else None
        except BaseException:
            if server is not None:
                await server.stop()
            raise
        return cls(server, transcripts)

    async def stop(self) -> None:
        """Flush the transcripts, then stop serving (in that order: /live answers until the end)."""
        if self.transcripts is not None:
            await self.transcripts.close()
        if self.server is not None:
            await self.server.stop()
