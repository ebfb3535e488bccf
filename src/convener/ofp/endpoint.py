"""Our OFP endpoint: where external agents POST envelopes to convener.

``build_app(settings, sessions)`` returns an aiohttp ``web.Application`` (the process wiring,
host and port, belong to the caller):

- ``POST /ofp`` with an envelope: ``getManifests`` is answered with our manifest
  (``openFloorRoles.convener: true``); anything else is handed to the ``FloorSession`` of its
  conversation, where the floor rules apply (events from non-conversants are ignored). The HTTP
  answer is an envelope without events; what the floor does in response is delivered to the
  conversants as usual, and replies for callers come out of ``FloorSession.unsolicited()``.
- ``GET /ofp/manifest``: our manifest.

Every other envelope must come with credentials and pass ``convener.ofp.inbound_guard``:
posted to ``<path>/agent/<key>`` (the ``sender.serviceUrl`` convener gave that agent in that
conversation) or with ``Authorization: Bearer <token>`` of a configured agent. Refusals: 400
not an envelope, 401 no credentials, 403 spoofed or wrong credentials, 404 conversation not
live, 409 replayed, 413 body over ``max_response_bytes``, 429 flood. Each is logged with its
reason (never the key or token).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from convener.ofp.envelope import Conversation, Envelope, Event, To, publish_manifests
from convener.ofp.errors import ParseError
from convener.ofp.identity import convener_identification, convener_manifest
from convener.ofp.inbound_guard import KEY_PATH, Claim, InboundGuard, Refusal, body_digest, shared_keys
from convener.ofp.parse import parse_envelope
from convener.ofp.session import FloorSession
from convener.ofp.settings import OfpSettings

log = logging.getLogger(__name__)


class SessionRegistry:
    """The live floor sessions by conversation id."""

    def __init__(self) -> None:
        self._by_id: dict[str, FloorSession] = {}

    def add(self, session: FloorSession) -> None:
        self._by_id[session.conversation_id] = session

    def remove(self, session: FloorSession) -> None:
        self._by_id.pop(session.conversation_id, None)

    def get(self, conversation_id: str) -> FloorSession | None:
        return self._by_id.get(conversation_id)

    def __len__(self) -> int:
        return len(self._by_id)


def static_tokens(settings: OfpSettings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The bearer tokens of the agents that have ``inbound_token_env`` set (name -> token)."""
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for name, agent in settings.agents.items():
        if not agent.inbound_token_env:
            continue
        token = env.get(agent.inbound_token_env, "")
        if token:
            out[name] = token
        else:
            log.warning("agent %s: inbound_token_env %s is not set; it can post only to the URL convener "
                        "hands it", name, agent.inbound_token_env)
    return out


def make_guard(settings: OfpSettings, environ: Mapping[str, str] | None = None) -> InboundGuard:
    env = os.environ if environ is None else environ
    if settings.inbound_secret_env and not env.get(settings.inbound_secret_env):
        log.warning("inbound_secret_env %s is not set: agent URLs are random per process and stop "
                    "working after a restart", settings.inbound_secret_env)
    return InboundGuard(shared_keys(settings.inbound_secret_env, env),
                        static_tokens=static_tokens(settings, env),
                        rate=settings.inbound_rate, burst=settings.inbound_burst)


def _bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def build_app(settings: OfpSettings, sessions: SessionRegistry, *, path: str = "/ofp",
              guard: InboundGuard | None = None, clock: Callable[[], float] = time.monotonic) -> web.Application:
    me = convener_identification(settings)
    tasks: set[asyncio.Task[Any]] = set()
    the_guard = guard or make_guard(settings)

    def answer(env: Envelope, events: list[Event]) -> web.Response:
        out = Envelope(Conversation(id=env.conversation.id), me.speaker_uri, events, me.service_url)
        return web.json_response(out.to_dict())

    def refuse(r: Refusal, peer: str, env: Envelope | None = None) -> web.Response:
        if env is None:
            log.warning("inbound OFP request refused: %d %s (peer %s)", r.status, r.reason, peer)
        else:
            log.warning("inbound OFP envelope refused: %d %s (sender %s, conversation %s, peer %s)",
                        r.status, r.reason, env.sender_uri, env.conversation.id, peer)
        headers = {"Retry-After": "1"} if r.status == 429 else None
        return web.json_response({"error": r.reason}, status=r.status, headers=headers)

    async def post(request: web.Request) -> web.Response:
        peer = request.remote or "?"
        refusal = the_guard.admit_peer(peer, clock())
        if refusal is not None:
            return refuse(refusal, peer)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return refuse(Refusal(413, f"body over {settings.max_response_bytes} bytes"), peer)
        try:
            env = parse_envelope(body)
        except ParseError as e:
            return refuse(Refusal(400, f"not an envelope: {e}"), peer)
        ours: list[Event] = []
        rest: list[Event] = []
        for ev in env.events:
            for_us = ev.to is None or ev.to.speaker_uri == me.speaker_uri or (
                not ev.to.speaker_uri and ev.to.service_url == me.service_url
            )
            if ev.event_type == "getManifests" and for_us:
                if ev.recommend_scope in (None, "internal", "all"):
                    ours.append(publish_manifests([convener_manifest(settings)], [], to=To(env.sender_uri)))
            else:
                rest.append(ev)
        if rest:
            session = sessions.get(env.conversation.id)
            agents = {} if session is None else {
                e.speaker_uri: e.name for e in session.directory.entries if e.speaker_uri}
            claim = Claim(
                conversation_id=env.conversation.id,
                sender_uri=env.sender_uri,
                body_digest=body_digest(body),
                event_ids=tuple(ev.dialog_event.id for ev in rest if ev.dialog_event is not None),
                url_key=request.match_info.get("key"),
                bearer=_bearer(request),
            )
            refusal = the_guard.check(claim, live=session is not None, agent_names=agents, now=clock())
            if refusal is not None:
                return refuse(refusal, peer, env)
            assert session is not None
            env.events = rest
            task = asyncio.create_task(session.receive(env))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return answer(env, ours)

    async def manifest(_request: web.Request) -> web.Response:
        return web.json_response(convener_manifest(settings).to_dict())

    async def on_cleanup(_app: web.Application) -> None:
        for t in list(tasks):
            t.cancel()

    app = web.Application(client_max_size=settings.max_response_bytes)
    app.router.add_post(path, post)
    app.router.add_post(f"{path}/{KEY_PATH}/{{key}}", post)
    app.router.add_get(f"{path}/manifest", manifest)
    app.on_cleanup.append(on_cleanup)
    return app
