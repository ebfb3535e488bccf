"""The console's HTTP side: the page, its assets and the JSON/SSE API it uses (aiohttp).

============================================  ======================================================
``GET /console``                              the page (assets under ``/console/static/``)
``GET|POST /console/login``                   the login form (only when an ops token is set)
``GET /console/api/live``                     rooms, calls, floor, agents' health, recent turns
``GET /console/api/events``                   server-sent events: transcript lines and turns, live
``GET /console/api/history``                  conversations: ``room``, ``from``, ``to``, ``q``, ``limit``
``GET /console/api/conversations/{id}``       one conversation with its transcript (and recording)
``GET /console/api/recordings/{name}``        a stored recording's audio, fetched from Asterisk
============================================  ======================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from convener.ops.console import auth
from convener.ops.console.feed import LiveFeed
from convener.ops.console.live import snapshot
from convener.ops.console.query import QueryError, parse_query
from convener.ops.console.recordings import recording_name, valid_name

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
HEARTBEAT_S = 15.0
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "media-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}


@dataclass
class ConsoleSources:
    """What the console reads: the application, its live feed, agents' health, the stores."""

    app: Any
    feed: LiveFeed
    agents_health: Callable[[], Any] | None = None
    store: Callable[[], Any] = lambda: None  # the open TranscriptStore, or None
    ari: Callable[[], Any] = lambda: None  # an AriClient for recordings, or None


def feed_of(app: Any) -> LiveFeed:
    feed = getattr(app, "feed", None)
    if not isinstance(feed, LiveFeed):
        feed = LiveFeed()
        with contextlib.suppress(AttributeError):
            app.feed = feed
    return feed


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, default=str), status=status, content_type="application/json",
                        headers=HEADERS)


def login_page(error: str = "") -> str:
    msg = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return (STATIC / "login.html").read_text().replace("<!--error-->", msg)


async def _maybe(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


def add_console(web_app: web.Application, sources: ConsoleSources, token: str) -> None:
    async def page(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={**HEADERS, "Content-Type": "text/html"})

    async def login_form(_: web.Request) -> web.Response:
        if not token:
            raise web.HTTPSeeOther("/console")
        return web.Response(text=login_page(), content_type="text/html", headers=HEADERS)

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        if not auth.token_matches(token, str(form.get("token", ""))):
            log.warning("console: failed login from %s", request.remote)
            return web.Response(text=login_page("That token is not right."), status=401,
                                content_type="text/html", headers=HEADERS)
        resp = web.HTTPSeeOther("/console")
        resp.set_cookie(auth.COOKIE, auth.session_value(token), path=auth.PATH, httponly=True, samesite="Strict")
        raise resp

    async def live(_: web.Request) -> web.Response:
        body = snapshot(sources.app)
        agents: Any = {}
        if sources.agents_health is not None:
            try:
                agents = await _maybe(sources.agents_health())
            except Exception as e:
                agents = {"error": f"{type(e).__name__}: {e}"}
        body["agents"] = agents
        body["listeners"] = sources.feed.listeners
        return _json(body)

    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={**HEADERS, "Content-Type": "text/event-stream",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        q = sources.feed.listen()
        try:
            await resp.write(b": connected\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(q.get(), HEARTBEAT_S)
                except TimeoutError:
                    await resp.write(b": heartbeat\n\n")
                    continue
                if event is None:
                    break
                await resp.write(f"id: {event['id']}\ndata: {json.dumps(event, default=str)}\n\n".encode())
        except ConnectionResetError:  # the page went away (noticed at the next write)
            pass
        finally:
            sources.feed.unlisten(q)
        return resp

    async def history(request: web.Request) -> web.Response:
        try:
            query = parse_query(request.query)
        except QueryError as e:
            return _json({"error": str(e)}, status=400)
        store = sources.store()
        if store is None:
            return _json({"conversations": [], "note": "transcripts are not kept (ops.transcripts = false)"})
        t0 = time.perf_counter()
        convs = await store.search(query.room, query.since, query.until, query.text, query.limit)
        took = (time.perf_counter() - t0) * 1000
        return _json({"conversations": [{k: v for k, v in c.to_json().items() if k != "turns"} for c in convs],
                      "took_ms": round(took, 1), "limit": query.limit})

    async def conversation(request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        store = sources.store()
        conv = await store.get(cid) if store is not None else None
        if conv is None:
            return _json({"error": f"no conversation {cid!r}"}, status=404)
        body = conv.to_json()
        body["recording"] = None
        ari = sources.ari()
        if ari is not None:
            name = recording_name(cid)
            try:
                if name in await ari.stored_recordings():
                    body["recording"] = name
            except Exception as e:  # Asterisk away: the transcript is still shown
                body["recording_error"] = f"{type(e).__name__}: {e}"
        return _json(body)

    async def recording(request: web.Request) -> web.Response:
        from convener.ari.errors import AriError, AriNotFound

        name = request.match_info["name"]
        if not valid_name(name):
            return _json({"error": "not a convener recording name"}, status=400)
        ari = sources.ari()
        if ari is None:
            return _json({"error": "no ARI connection"}, status=503)
        try:
            body, ctype = await ari.stored_recording_file(name)
        except AriNotFound:
            return _json({"error": f"no recording {name!r}"}, status=404)
        except AriError as e:
            return _json({"error": f"Asterisk: {e}"}, status=502)
        return web.Response(body=body, content_type=ctype.split(";")[0] or "audio/wav",
                            headers={**HEADERS, "Cache-Control": "private, max-age=3600"})

    r = web_app.router
    r.add_get("/console", page)
    r.add_get("/console/", page)
    r.add_get("/console/login", login_form)
    r.add_post("/console/login", login)
    r.add_get("/console/api/live", live)
    r.add_get("/console/api/events", events)
    r.add_get("/console/api/history", history)
    r.add_get("/console/api/conversations/{cid}", conversation)
    r.add_get("/console/api/recordings/{name}", recording)
    r.add_static("/console/static", STATIC, append_version=False)

    async def close_streams(_: web.Application) -> None:
        sources.feed.close()

    web_app.on_shutdown.append(close_streams)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_console_path(path: str) -> bool:
    return path == auth.PATH or path.startswith(auth.PATH + "/")


async def guard(request: web.Request, handler: Handler, token: str) -> web.StreamResponse:
    """The console's half of the ops auth middleware: cookie from the login form, or bearer."""
    if auth.allowed(token, request.path, request.cookies.get(auth.COOKIE), request.headers.get("Authorization")):
        return await handler(request)
    if auth.wants_page(request.path, request.headers.get("Accept", "")):
        raise web.HTTPSeeOther("/console/login")
    return web.json_response({"error": "log in at /console/login or send the bearer token"}, status=401)
