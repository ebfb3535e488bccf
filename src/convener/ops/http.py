"""The ops HTTP server: liveness, readiness, health and Prometheus metrics.

==========  =================================================================================
``/live``   200 while the process runs (never needs the token: for the supervisor's probe)
``/ready``  200 while the ARI event stream is connected, 503 otherwise
``/health`` JSON: ARI state, active calls, agents' health
``/metrics``  Prometheus text format
``/console``  the web console (``convener.ops.console``): open when no token is set; with a token,
            a login form sets a cookie (or send the bearer token)
==========  =================================================================================

Bound to loopback by default. Bound anywhere else it refuses to start without a bearer token
(``ops.token`` or ``$CONVENER_OPS_TOKEN``); with a token set, every endpoint but ``/live``
requires ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from convener.ops import metrics
from convener.ops.console.routes import ConsoleSources, add_console, feed_of, is_console_path
from convener.ops.console.routes import guard as console_guard
from convener.ops.settings import TOKEN_ENV, OpsSettings, is_loopback_host
from convener.settings import ConfigError

log = logging.getLogger(__name__)

AgentsHealth = Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]]
OPEN_PATHS = frozenset({"/live"})


class OpsServerError(ConfigError):
    """The ops server cannot start as configured (the message says how to fix it)."""


def _state_name(app: Any) -> str:
    state = getattr(getattr(app, "stream", None), "state", None)
    return str(getattr(state, "value", state) or "unknown")


class OpsServer:
    def __init__(self, runner: web.AppRunner, site: web.TCPSite, host: str, port: int,
                 unbind: Callable[[], None] = lambda: None) -> None:
        self._runner = runner
        self._unbind = unbind
        self._site = site
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        self._unbind()
        await self._runner.cleanup()


def console_sources(app: Any, agents_health: AgentsHealth | None = None) -> ConsoleSources:
    """What the console reads from a running ConvenerApp (its transcript writer's store, its ARI)."""
    return ConsoleSources(app, feed_of(app), agents_health,
                          store=lambda: getattr(getattr(app, "transcripts", None), "store", None),
                          ari=lambda: getattr(app, "ari", None))


def build_web_app(app: Any, token: str, agents_health: AgentsHealth | None = None,
                  registry: metrics.Registry = metrics.REGISTRY,
                  console: ConsoleSources | None = None) -> web.Application:
    """The aiohttp application (separate from binding, for tests and embedding)."""
    started = time.monotonic()
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        if console is not None and is_console_path(request.path):
            return await console_guard(request, handler, token)
        if token and request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.json_response({"error": "bearer token required"}, status=401,
                                         headers={"WWW-Authenticate": 'Bearer realm="convener"'})
        return await handler(request)

    async def live(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "uptime_s": round(time.monotonic() - started, 1)})

    async def ready(_: web.Request) -> web.Response:
        ok = bool(getattr(app, "ready", False))
        return web.json_response({"ready": ok, "ari": _state_name(app)}, status=200 if ok else 503)

    async def health(_: web.Request) -> web.Response:
        agents: dict[str, Any] = {}
        agents_ok = True
        if agents_health is not None:
            try:
                result = agents_health()
                agents = await result if inspect.isawaitable(result) else result
            except Exception as e:
                log.warning("agents health check failed: %s", e)
                agents, agents_ok = {"error": f"{type(e).__name__}: {e}"}, False
        ready = bool(getattr(app, "ready", False))
        ari: dict[str, Any] = {"state": _state_name(app), "connected": ready,
                               "reconnects": getattr(getattr(app, "stream", None), "reconnects", None)}
        timeouts = getattr(getattr(app, "stream", None), "handshake_timeouts", 0) or 0
        if not ready and timeouts:
            ari["websocket"] = await _websocket_verdict(app, timeouts)
        body = {
            "status": "ok" if ready and agents_ok else "degraded",
            "ari": ari,
            "calls": {"active": len(getattr(app, "calls", {}) or {}),
                      "total": getattr(app, "calls_total", None)},
            "errors": getattr(app, "errors", None),
            "agents": agents,
            "uptime_s": round(time.monotonic() - started, 1),
        }
        # Always 200 when answered: /ready is the gate; this is for people and dashboards.
        return web.Response(text=json.dumps(body, default=str), content_type="application/json")

    async def metrics_endpoint(_: web.Request) -> web.Response:
        return web.Response(body=registry.render().encode(), headers={"Content-Type": metrics.CONTENT_TYPE})

    web_app = web.Application(middlewares=[auth])
    web_app.router.add_get("/live", live)
    web_app.router.add_get("/ready", ready)
    web_app.router.add_get("/health", health)
    web_app.router.add_get("/metrics", metrics_endpoint)
    if console is not None:
        add_console(web_app, console, token)
    return web_app


async def _websocket_verdict(app: Any, handshake_timeouts: int) -> dict[str, Any]:
    """The event WebSocket's handshakes go unanswered: is it Asterisk's lockout? (REST asked.)"""
    from convener.ari.lockout import judge

    rest: bool | None = None
    client = getattr(app, "ari", None)
    if client is not None:
        try:
            await asyncio.wait_for(client.asterisk_info(), 2.0)
            rest = True
        except Exception:
            rest = False
    v = judge(handshake_timeouts, rest)
    out: dict[str, Any] = {"handshake_timeouts": handshake_timeouts, "rest_answers": rest,
                           "locked_out": v.locked_out, "detail": v.detail}
    if v.fix:
        out["fix"] = v.fix
    return out


def check_exposure(settings: OpsSettings) -> str:
    """The token to require; raises OpsServerError when bound off loopback without one."""
    token = settings.resolved_token()
    if not token and not is_loopback_host(settings.http_host):
        raise OpsServerError(
            f"ops.http_host is {settings.http_host!r}, which is reachable from other machines, and no "
            f"bearer token is set: set ops.token or the environment variable {TOKEN_ENV} (for example "
            f"`{TOKEN_ENV}=$(openssl rand -hex 32)` in /etc/convener/convener.env), or bind ops.http_host "
            "to 127.0.0.1")
    return token


async def start_ops_server(app: Any, settings: OpsSettings, agents_health: AgentsHealth | None = None,
                           registry: metrics.Registry = metrics.REGISTRY) -> OpsServer:
    """Start serving; ``app`` needs ``ready``, ``calls`` and ``stream`` (``.state``).

    Also binds the app's books to the metrics registry for the lifetime of the server.
    ``settings.http_port = 0`` picks a free port (see ``OpsServer.port``).
    """
    token = check_exposure(settings)
    console = console_sources(app, agents_health) if settings.console else None
    runner = web.AppRunner(build_web_app(app, token, agents_health, registry, console), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise OpsServerError(f"ops server cannot listen on {settings.http_host}:{settings.http_port}: "
                             f"{e.strerror or e}") from None
    port = settings.http_port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    ops = OpsServer(runner, site, settings.http_host, port, metrics.bind_app(app, registry))
    log.info("ops endpoints on %s (/live /ready /health /metrics%s)%s", ops.url,
             " /console" if console is not None else "",
             "; bearer token required" if token else "")
    return ops
