"""Who may post envelopes to convener's OFP endpoint: the pure decisions, no I/O.

An agent speaks into a call unasked (a streamed follow-up, news) by POSTing an envelope to
convener's endpoint. Before this guard the endpoint believed the sender the envelope names, so
anyone who knew a conversation id and an agent's speakerUri could speak into the call. The
endpoint (``convener.ofp.endpoint``) asks this guard and answers a refusal with its status:

- **Credentials, per conversation and per agent.** Every envelope convener sends to an agent
  carries, as ``sender.serviceUrl``, a URL of its own: ``<service_url>/agent/<key>`` where the
  key is ``HMAC(secret, conversation id, agent speakerUri)`` (``InboundKeys``). Posting there
  proves the poster received convener's envelopes for that conversation as that agent. It needs
  no change in an agent that already answers at the ``serviceUrl`` of the sender, and the
  envelope stays valid OFP 1.1.0 (``invite.parameters`` allows no extra members, so the key
  cannot ride there). An agent may instead hold a static bearer token from configuration
  (``[ofp.agents.NAME] inbound_token_env``) and post to ``<service_url>`` with
  ``Authorization: Bearer <token>``.
- **Refusals**, each with a status and a reason for the log (never the key): not a live
  conversation (404), no credentials (401), credentials of no agent or of another agent than
  the sender the envelope names (403), too many envelopes (429, a token bucket per peer before
  parsing and per authenticated sender after), an envelope seen before (409: same body, or a
  dialog event id already taken in this conversation), too large (413), not an envelope (400).

``getManifests`` needs no credentials: it asks for our public manifest and changes nothing.
Replies that agents put in the HTTP answer to convener's own POST never come here; they are
authentic by construction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

KEY_PATH = "agent"  # <service_url>/agent/<key>


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


class InboundKeys:
    """The per-conversation, per-agent keys: derived, not stored, so that any number of calls
    costs nothing and the same secret gives the same keys after a restart."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret else secrets.token_bytes(32)

    def key_for(self, conversation_id: str, agent_uri: str) -> str:
        mac = hmac.new(self._secret, f"{conversation_id}\n{agent_uri}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")

    def matches(self, key: str, conversation_id: str, agent_uri: str) -> bool:
        return hmac.compare_digest(key.encode(), self.key_for(conversation_id, agent_uri).encode())

    def url_for(self, service_url: str, conversation_id: str, agent_uri: str) -> str:
        return f"{service_url.rstrip('/')}/{KEY_PATH}/{self.key_for(conversation_id, agent_uri)}"


class TokenBuckets:
    """A token bucket per key: ``burst`` envelopes at once, ``rate`` per second after that.
    At most ``max_keys`` buckets are kept (the least recently used go first)."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def take(self, key: str, now: float) -> bool:
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        ok = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok


class SeenBefore:
    """What was taken already, per conversation: body digests and dialog event ids (bounded)."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def any_seen(self, conversation_id: str, marks: Iterable[str]) -> bool:
        return any((conversation_id, m) in self._seen for m in marks)

    def remember(self, conversation_id: str, marks: Iterable[str]) -> None:
        for m in marks:
            self._seen[(conversation_id, m)] = None
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)


@dataclass(frozen=True)
class Claim:
    """What an inbound envelope says about itself, and what came with it."""

    conversation_id: str
    sender_uri: str
    body_digest: str  # sha256 of the body as received
    event_ids: tuple[str, ...] = ()  # dialog event ids of its utterances
    url_key: str | None = None  # the <key> of <service_url>/agent/<key>
    bearer: str | None = None  # Authorization: Bearer <token>


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class InboundGuard:
    """Decides, for each inbound envelope, whether it is taken; remembers what was taken."""

    def __init__(
        self,
        keys: InboundKeys,
        *,
        static_tokens: Mapping[str, str] | None = None,  # agent name -> bearer token
        rate: float = 10.0,
        burst: float = 20.0,
        peer_factor: float = 5.0,
    ) -> None:
        self.keys = keys
        self.static_tokens = dict(static_tokens or {})
        self.senders = TokenBuckets(rate, burst)
        self.peers = TokenBuckets(rate * peer_factor, burst * peer_factor)
        self.seen = SeenBefore()

    def admit_peer(self, peer: str, now: float) -> Refusal | None:
        """Before the body is read: a flood from one address is cut before it costs parsing."""
        if not self.peers.take(peer, now):
            return Refusal(429, f"too many requests from {peer}")
        return None

    def check(
        self,
        claim: Claim,
        *,
        live: bool,
        agent_names: Mapping[str, str],  # speakerUri -> configured name, of this conversation's agents
        now: float,
    ) -> Refusal | None:
        """None when the envelope is taken (and then it is remembered), else why not."""
        if not live:
            return Refusal(404, "conversation not live")
        refusal = self._credentials(claim, agent_names)
        if refusal is not None:
            return refusal
        if not self.senders.take(claim.sender_uri, now):
            return Refusal(429, "too many envelopes from this sender")
        marks = (f"body:{claim.body_digest}", *(f"event:{i}" for i in claim.event_ids))
        if self.seen.any_seen(claim.conversation_id, marks):
            return Refusal(409, "replayed envelope (seen before in this conversation)")
        self.seen.remember(claim.conversation_id, marks)
        return None

    def _credentials(self, claim: Claim, agent_names: Mapping[str, str]) -> Refusal | None:
        if claim.url_key is not None:
            if self.keys.matches(claim.url_key, claim.conversation_id, claim.sender_uri):
                return None
            for uri in agent_names:
                if uri != claim.sender_uri and self.keys.matches(claim.url_key, claim.conversation_id, uri):
                    return Refusal(403, f"spoofed sender: the key belongs to {uri}")
            return Refusal(403, "the key is not one convener gave out for this conversation and sender")
        if claim.bearer is not None:
            name = agent_names.get(claim.sender_uri)
            expected = self.static_tokens.get(name) if name else None
            if expected is not None and hmac.compare_digest(claim.bearer.encode(), expected.encode()):
                return None
            for other, token in self.static_tokens.items():
                if other != name and hmac.compare_digest(claim.bearer.encode(), token.encode()):
                    return Refusal(403, f"spoofed sender: the bearer token belongs to agent {other}")
            if name is None:
                return Refusal(403, "the sender is not an agent of this conversation")
            return Refusal(403, f"bearer token does not match agent {name}")
        return Refusal(401, "no credentials (post to the sender serviceUrl convener gave, or send a bearer token)")


_SHARED: dict[str, InboundKeys] = {}


def shared_keys(secret_env: str = "", environ: Mapping[str, str] | None = None) -> InboundKeys:
    """The keys of this process: the floor sessions hand out URLs, the endpoint checks them.
    With ``secret_env`` naming a set environment variable, its value is the secret (the same
    after a restart); else one random secret per process."""
    keys = _SHARED.get(secret_env)
    if keys is None:
        import os

        value = (environ if environ is not None else os.environ).get(secret_env, "") if secret_env else ""
        keys = _SHARED[secret_env] = InboundKeys(value.encode() if value else None)
    return keys
