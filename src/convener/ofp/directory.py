"""The agents we may talk to: configured ones (in config order) and those a configured discovery
agent recommends. Manifests are fetched once with ``getManifests`` and cached; health is tracked
per agent. Nothing outside this directory is ever contacted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

from convener.ofp.envelope import Conversation, Envelope, Event, To, get_manifests
from convener.ofp.identity import convener_uri
from convener.ofp.manifest import Identification, Manifest
from convener.ofp.settings import OfpSettings
from convener.ofp.transport import AgentClient, PostResult

log = logging.getLogger(__name__)


@dataclass
class AgentHealth:
    state: Literal["unknown", "up", "down"] = "unknown"
    consecutive_faults: int = 0
    last_error: str = ""
    last_ok: float | None = None  # time.monotonic()
    last_fault: float | None = None  # time.monotonic()
    last_latency_ms: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "consecutive_faults": self.consecutive_faults,
            "last_error": self.last_error,
            "last_latency_ms": self.last_latency_ms,
        }


@dataclass
class AgentEntry:
    name: str
    url: str
    timeout: float
    order: int
    source: Literal["config", "discovery"] = "config"
    manifest: Manifest | None = None
    health: AgentHealth = field(default_factory=AgentHealth)

    @property
    def speaker_uri(self) -> str | None:
        return self.manifest.identification.speaker_uri if self.manifest else None

    @property
    def identification(self) -> Identification | None:
        return self.manifest.identification if self.manifest else None

    def record(self, res: PostResult) -> None:
        h = self.health
        if res.fault is None:
            h.state, h.consecutive_faults, h.last_error = "up", 0, ""
            h.last_ok = res.received_at
            h.last_latency_ms = round(res.elapsed * 1000, 1)
        else:
            h.state = "down"
            h.consecutive_faults += 1
            h.last_error = str(res.fault)
            h.last_fault = res.received_at


class AgentDirectory:
    def __init__(self, settings: OfpSettings) -> None:
        self.settings = settings
        self.entries: list[AgentEntry] = [
            AgentEntry(name, a.url, a.timeout, i)
            for i, (name, a) in enumerate(settings.agents.items())
            if a.enabled
        ]
        self.loaded = False
        self.refreshed_at: float | None = None  # time.monotonic() of the last refresh
        self._lock = asyncio.Lock()

    # --- lookups -----------------------------------------------------------------------------

    def by_name(self, name: str) -> AgentEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def by_uri(self, uri: str) -> AgentEntry | None:
        return next((e for e in self.entries if e.speaker_uri == uri), None)

    def resolve(self, to: To) -> Identification | None:
        """The identification of a known agent named by ``to`` (speakerUri first, then URL)."""
        for e in self.entries:
            if e.manifest is None:
                continue
            if to.speaker_uri and e.speaker_uri == to.speaker_uri:
                return e.identification
        if to.service_url and not to.speaker_uri:
            for e in self.entries:
                if e.manifest is not None and e.url == to.service_url:
                    return e.identification
        return None

    def manifests(self, now: float | None = None) -> list[Manifest]:
        """Manifests of the agents the convener may invite for a caller (in config order).

        An agent whose last exchange failed is left out for ``fault_cooldown`` seconds, so a
        dead agent does not cost the caller a timeout on every turn.
        """
        special = {self.settings.convener_agent, self.settings.discovery_agent} - {""}
        now = time.monotonic() if now is None else now
        cooldown = self.settings.fault_cooldown
        return [
            e.manifest
            for e in self.entries
            if e.manifest is not None
            and e.name not in special
            and not (e.health.consecutive_faults and e.health.last_fault is not None
                     and now - e.health.last_fault < cooldown)
        ]

    def order(self, uri: str) -> int:
        e = self.by_uri(uri)
        return e.order if e else len(self.entries)

    # --- fetching manifests ------------------------------------------------------------------

    async def refresh(self, client: AgentClient) -> None:
        """getManifests from every configured agent in parallel; then ask the discovery agent."""
        async with self._lock:
            configured = [e for e in self.entries if e.source == "config"]
            await asyncio.gather(*(self._fetch(client, e) for e in configured))
            disc = self.by_name(self.settings.discovery_agent) if self.settings.discovery_agent else None
            if disc is not None and disc.manifest is not None:
                await self._discover(client, disc)
            self.loaded = True
            self.refreshed_at = time.monotonic()

    def stale(self, retry_after: float = 30.0) -> bool:
        """Some configured agent has no manifest yet and the last attempt is old enough."""
        missing = any(e.manifest is None for e in self.entries if e.source == "config")
        return missing and (self.refreshed_at is None or time.monotonic() - self.refreshed_at > retry_after)

    def _request(self, to: To, scope: Literal["internal", "external", "all"]) -> bytes:
        env = Envelope(
            conversation=Conversation(id=f"conv:manifests:{uuid.uuid4()}"),
            sender_uri=convener_uri(self.settings),
            sender_url=self.settings.service_url,
            events=[get_manifests(to, scope)],
        )
        return env.to_json()

    async def _ask(
        self, client: AgentClient, entry: AgentEntry, scope: Literal["internal", "external", "all"]
    ) -> list[Event]:
        payload = self._request(To(service_url=entry.url), scope)
        res = await client.post(
            entry.url, payload, timeout=min(entry.timeout, self.settings.manifest_timeout), conversation_id=None
        )
        entry.record(res)
        if res.envelope is None:
            return []
        return [e for e in res.envelope.events if e.event_type == "publishManifests"]

    async def _fetch(self, client: AgentClient, entry: AgentEntry) -> None:
        events = await self._ask(client, entry, "internal")
        manifests = [m for e in events for m in e.servicing_manifests or []]
        if not manifests:
            if entry.health.state == "up":
                entry.health.state = "down"
                entry.health.last_error = "getManifests answered without a manifest"
            log.warning("agent %s at %s: no manifest (%s)", entry.name, entry.url, entry.health.last_error)
            return
        m = manifests[0]
        if m.identification.service_url != entry.url:
            log.info(
                "agent %s publishes serviceUrl %s; using the configured %s",
                entry.name, m.identification.service_url, entry.url,
            )
            m.identification = m.identification.with_service_url(entry.url)
        m.score = None
        entry.manifest = m

    async def _discover(self, client: AgentClient, disc: AgentEntry) -> None:
        events = await self._ask(client, disc, "external")
        known = {e.speaker_uri for e in self.entries}
        for ev in events:
            for m in ev.servicing_manifests or []:
                uri = m.identification.speaker_uri
                if uri in known:
                    continue
                m.score = None
                name = m.identification.conversational_name or uri
                self.entries.append(
                    AgentEntry(name, m.identification.service_url, 4.0, len(self.entries), "discovery", m)
                )
                known.add(uri)
                log.info("discovery agent %s recommends %s at %s", disc.name, name, m.identification.service_url)

    def status(self) -> list[dict[str, object]]:
        now = time.monotonic()
        out: list[dict[str, object]] = []
        for e in self.entries:
            ident = e.identification
            out.append(
                {
                    "name": e.name,
                    "url": e.url,
                    "timeout": e.timeout,
                    "source": e.source,
                    "speakerUri": ident.speaker_uri if ident else None,
                    "conversationalName": ident.conversational_name if ident else None,
                    "synopsis": ident.synopsis if ident else None,
                    "keyphrases": e.manifest.keyphrases if e.manifest else [],
                    "health": e.health.to_dict()
                    | {"seconds_since_ok": round(now - e.health.last_ok, 1) if e.health.last_ok else None},
                }
            )
        return out
