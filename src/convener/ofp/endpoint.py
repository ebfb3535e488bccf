"""Our OFP endpoint: where external agents POST envelopes to convener.

``build_app(settings, sessions)`` returns an aiohttp ``web.Application`` (the process wiring,
host and port, belong to the caller):

- ``POST /ofp`` with an envelope: ``getManifests`` is answered with our manifest
  (``openFloorRoles.convener: true``); anything else is handed to the ``FloorSession`` of its
  conversation, where the floor rules apply (events from non-conversants are ignored). The HTTP
  answer is an envelope without events; what the floor does in response is delivered to the
  conversants as usual, and replies for callers come out of ``FloorSession.unsolicited()``.
- ``GET /ofp/manifest``: our manifest.

Bodies over ``max_response_bytes`` are refused (413), garbage gets 400.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from convener.ofp.envelope import Conversation, Envelope, Event, To, publish_manifests
from convener.ofp.errors import ParseError
from convener.ofp.identity import convener_identification, convener_manifest
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


def build_app(settings: OfpSettings, sessions: SessionRegistry, *, path: str = "/ofp") -> web.Application:
    me = convener_identification(settings)
    tasks: set[asyncio.Task[Any]] = set()

    def answer(env: Envelope, events: list[Event]) -> web.Response:
        out = Envelope(Conversation(id=env.conversation.id), me.speaker_uri, events, me.service_url)
        return web.json_response(out.to_dict())

    async def post(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise
        try:
            env = parse_envelope(body)
        except ParseError as e:
            return web.json_response({"error": str(e)}, status=400)
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
        session = sessions.get(env.conversation.id)
        if rest:
            if session is None:
                log.info("envelope from %s for unknown conversation %s ignored", env.sender_uri, env.conversation.id)
            else:
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
    app.router.add_get(f"{path}/manifest", manifest)
    app.on_cleanup.append(on_cleanup)
    return app
