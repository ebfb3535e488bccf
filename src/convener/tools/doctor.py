"""``convener doctor``: the debugging checklist in one command.

Checks, in order, each with why it failed and how to fix it:
1. the configuration is valid;
2. ARI answers at ``ari.url`` and accepts the credentials;
3. Asterisk completes an ARI WebSocket handshake (its REST API answering is not enough: see
   ``convener.ari.lockout``);
4. the application ``ari.app`` is registered with Asterisk (a convener is listening);
5. the dialplan sends ``calls.dialplan_extension@calls.dialplan_context`` into ``Stasis(<app>)``
   (found by a probe call on a Local channel whose dialplan steps are watched, then hung up).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from convener.ari.errors import AriAuthError, AriError, AriNotFound, AriUnreachable
from convener.ari.rest import AriClient
from convener.config import Config
from convener.tools.testcall import TestCaller


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def config_file_checks(cfg: Config, conf_dir: Path) -> list[Check]:
    """Check Asterisk's own configuration files (http.conf, ari.conf, extensions.conf)."""
    from convener.ops.deploy_checks import check_ari, check_dialplan

    def read(name: str) -> str | None:
        try:
            return (conf_dir / name).read_text(errors="replace")
        except OSError:
            return None

    out: list[Check] = []
    http, ari, ext = read("http.conf"), read("ari.conf"), read("extensions.conf")
    missing = [n for n, t in (("http.conf", http), ("ari.conf", ari), ("extensions.conf", ext)) if t is None]
    if missing:
        out.append(Check("asterisk config", False, f"cannot read {', '.join(missing)} in {conf_dir}",
                         "run as a user who can read Asterisk's configuration, or name the folder"))
    found = []
    if http is not None and ari is not None:
        found += check_ari(http, ari, user=cfg.ari.user, ari_url=cfg.ari.url)
    if ext is not None:
        found += check_dialplan(ext, cfg.ari.app)
    for c in found:
        ok = c.ok or c.level == "warning"
        detail = c.detail if c.ok or c.level != "warning" else f"warning: {c.detail}"
        out.append(Check(f"asterisk config: {c.name}", ok, detail, c.fix))
    return out


async def run_checks(cfg: Config, probe: bool = True, conf_dir: Path | None = None) -> list[Check]:
    checks = [Check("config", True, f"valid (app {cfg.ari.app!r}, ARI {cfg.ari.url})")]
    if conf_dir is not None:
        checks += config_file_checks(cfg, conf_dir)
    s = cfg.ari
    async with AriClient.from_settings(s) as ari:
        try:
            info = await ari.asterisk_info()
            version = (info.get("system") or {}).get("version", "?")
            checks.append(Check("ari", True, f"reachable, Asterisk {version}"))
        except AriAuthError as e:
            checks.append(Check("ari", False, f"credentials refused ({e.status})",
                                "set ari.user / ari.password (or CONVENER_ARI_PASSWORD) to a user "
                                "in Asterisk's ari.conf with type=user"))
            return checks
        except AriUnreachable as e:
            checks.append(Check("ari", False, f"not reachable at {s.url}: {e.message}",
                                "enable ARI: http.conf enabled=yes and bindaddr/bindport, ari.conf "
                                "enabled=yes; check ari.url"))
            return checks
        except AriError as e:
            checks.append(Check("ari", False, str(e), "check ari.url (it must end in /ari)"))
            return checks
        checks.append(await probe_websocket(cfg))
        try:
            app = await ari.application(s.app)
            checks.append(Check("app", True, f"application {s.app!r} is registered "
                                             f"({len(app.channel_ids)} channel(s) in it)"))
        except AriNotFound:
            checks.append(Check("app", False, f"no listener for application {s.app!r}: nothing is "
                                              "connected to /ari/events with this app name",
                                "start `convener run` (or the systemd unit) with the same ari.app "
                                "as the dialplan's Stasis() and check its log"))
    if probe:
        checks.append(await probe_dialplan(cfg))
    return checks


async def probe_websocket(cfg: Config, timeout: float = 3.0) -> Check:
    """Open (and close at once) an ARI event WebSocket under an application name of its own.
    Called after REST answered: a handshake that gets no answer then is Asterisk's lockout."""
    import time

    import aiohttp

    from convener.ari.lockout import PROBE_ADVICE
    from convener.ari.rest import basic_auth_header, ssl_context

    s = cfg.ari
    url = s.events_url
    extra = {"ssl": ssl_context(s.verify_tls, s.ca_file)} if url.startswith("wss") else {}
    headers = {"Authorization": basic_auth_header(s.user, s.password)}
    t0 = time.monotonic()
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            ws = await asyncio.wait_for(http.ws_connect(url, params={"app": f"{s.app}-doctor-ws"}, **extra),
                                        timeout)
            await ws.close()
    except TimeoutError:
        return Check("ari websocket", False, f"no answer to the handshake within {timeout:.1f} s while REST "
                                             "answers", PROBE_ADVICE)
    except aiohttp.WSServerHandshakeError as e:
        return Check("ari websocket", False, f"handshake refused: HTTP {e.status} {e.message}",
                     "check ari.user / ari.password and that ari.url ends in /ari")
    except aiohttp.ClientError as e:
        return Check("ari websocket", False, f"{type(e).__name__}: {e}", "check ari.url")
    return Check("ari websocket", True, f"handshake answered in {(time.monotonic() - t0) * 1000:.0f} ms")


async def probe_dialplan(cfg: Config, timeout: float = 4.0) -> Check:
    """Dial the configured extension on a Local channel and watch which applications it runs."""
    s, c = cfg.ari, cfg.calls
    where = f"{c.dialplan_extension}@{c.dialplan_context}"
    try:
        async with TestCaller(s.url, s.user, s.password, app=f"{s.app}-doctor") as caller:
            leg = await caller.place(c.dialplan_extension, c.dialplan_context,
                                     caller_id="convener doctor <0>")
            deadline = asyncio.get_running_loop().time() + timeout
            while asyncio.get_running_loop().time() < deadline:
                if any(app == "Stasis" for app, _ in leg.dialplan) or leg.ended:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            with contextlib.suppress(AriError):
                await leg.hangup()
            stasis = [data for app, data in leg.dialplan if app == "Stasis"]
    except AriError as e:
        return Check("dialplan", False, f"probe call to {where} failed: {e}",
                     f"check that {where} exists in extensions.conf")
    except TimeoutError:
        return Check("dialplan", False, "probe caller could not connect its event stream")
    if not stasis:
        seen = ", ".join(a for a, _ in leg.dialplan) or "nothing"
        return Check("dialplan", False, f"{where} never reached Stasis() (ran: {seen})",
                     f"add `same => n,Stasis({s.app})` to {where} in extensions.conf, then "
                     "`dialplan reload`")
    names = [d.split(",")[0].strip() for d in stasis]
    if s.app not in names:
        return Check("dialplan", False, f"{where} runs Stasis({stasis[0]}), not Stasis({s.app})",
                     "the name must match in the dialplan, the WebSocket URL and ari.app")
    return Check("dialplan", True, f"{where} runs Stasis({stasis[0]})")
