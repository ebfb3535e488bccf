"""A ledger of what one owner created, released in reverse order on any exit path.

Each entry is a name and an async release function. ``release_all`` never raises: a resource
that is already gone (ARI 404) is fine, Asterisk being unreachable is logged (its resources die
with it), and any other failure is logged and the rest are still released.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from convener.ari.errors import AriNotFound, AriUnreachable

log = logging.getLogger(__name__)

Release = Callable[[], Awaitable[object]]


@dataclass
class _Entry:
    kind: str
    ident: str
    release: Release


class ResourceLedger:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._entries: list[_Entry] = []
        self.released = False

    def add(self, kind: str, ident: str, release: Release) -> None:
        """Record a resource before (or right after) creating it."""
        self._entries.append(_Entry(kind, ident, release))

    def forget(self, kind: str, ident: str) -> None:
        """Drop a resource that went away by itself."""
        self._entries = [e for e in self._entries if not (e.kind == kind and e.ident == ident)]

    def held(self, kind: str | None = None) -> list[str]:
        return [e.ident for e in self._entries if kind is None or e.kind == kind]

    async def release_all(self, timeout: float = 5.0) -> None:
        self.released = True
        while self._entries:
            e = self._entries.pop()
            try:
                await asyncio.wait_for(e.release(), timeout)
            except AriNotFound:
                pass
            except AriUnreachable as err:
                log.info("%s: %s %s not released, Asterisk unreachable (%s)", self.owner, e.kind,
                         e.ident, err.message)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("%s: releasing %s %s failed: %s", self.owner, e.kind, e.ident, err)
