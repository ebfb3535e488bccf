"""Headless Chromium driven over its DevTools protocol (a websocket; aiohttp is enough).

    async with Browser.launch(tmp_path) as browser:
        await browser.goto("http://127.0.0.1:8765/console")
        text = await browser.eval("document.title")
        await browser.screenshot(path)

Debian's ``chromium`` package; ``chromium_path()`` is None where it is not installed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio",
         "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1700"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# DevTools' answers to an evaluation whose page navigated away while it ran.
_NAVIGATING = ("Inspected target navigated or closed", "Execution context was destroyed",
               "Cannot find context with specified id")


class BrowserError(AssertionError):
    pass


class Browser:
    def __init__(self, proc: asyncio.subprocess.Process, http: aiohttp.ClientSession,
                 ws: aiohttp.ClientWebSocketResponse) -> None:
        self.proc = proc
        self._http = http
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.errors: list[str] = []  # exceptions thrown and errors logged by the page
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def launch(cls, profile_dir: Path) -> Browser:
        exe = chromium_path()
        assert exe is not None
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            exe, *FLAGS, f"--user-data-dir={profile_dir}", f"--remote-debugging-port={port}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        http = aiohttp.ClientSession()
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                        pages = [t for t in await r.json() if t.get("type") == "page"]
                    if pages:
                        break
                except (aiohttp.ClientError, ValueError):
                    pass
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise BrowserError("chromium did not open its DevTools port within 30 s")
                await asyncio.sleep(0.2)
            ws = await http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=64 * 2**20)
        except BaseException:
            await http.close()
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        browser = cls(proc, http, ws)
        await browser.call("Page.enable")
        await browser.call("Runtime.enable")
        await browser.call("Log.enable")
        return browser

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(Exception):
            await self._ws.close()
        await self._http.close()
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                fut = self._pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
            elif data.get("method") == "Runtime.exceptionThrown":
                d = data["params"]["exceptionDetails"]
                self.errors.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif data.get("method") == "Log.entryAdded" and data["params"]["entry"]["level"] == "error":
                self.errors.append(f"log: {data['params']['entry']['text']}")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(BrowserError("the DevTools connection closed"))

    async def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        i = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[i] = fut
        await self._ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
        reply = await asyncio.wait_for(fut, timeout)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def eval(self, expression: str, timeout: float = 30.0) -> Any:
        """The value of a JavaScript expression (promises are awaited)."""
        r = await self.call("Runtime.evaluate", timeout=timeout, expression=expression, awaitPromise=True,
                            returnByValue=True)
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression[:80]!r}: {r['exceptionDetails'].get('exception', {}).get('description')}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30.0, every: float = 0.1) -> Any:
        """Poll until the expression is truthy; returns its value (use ``!!`` for elements: a DOM
        node comes back as ``{}``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = await self.eval(expression)
            except BrowserError as e:
                # A form submitted or a link followed: the page the poll ran in is being replaced.
                # That is "not yet", not a failure; anything else is.
                if not any(m in str(e) for m in _NAVIGATING):
                    raise
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout:.0f} s waiting for {expression!r}")
            await asyncio.sleep(every)

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def key(self, key: str, code: str, key_code: int, text: str = "") -> None:
        """Press and release a key (``text``: what it types, e.g. "\\r" for Enter to activate)."""
        extra = {"text": text, "unmodifiedText": text} if text else {}
        await self.call("Input.dispatchKeyEvent", type="keyDown", key=key, code=code,
                        windowsVirtualKeyCode=key_code, nativeVirtualKeyCode=key_code, **extra)
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code,
                        windowsVirtualKeyCode=key_code, nativeVirtualKeyCode=key_code)

    async def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1 if not mobile else 2, mobile=mobile)

    async def screenshot(self, path: Path) -> Path:
        r = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        data = base64.b64decode(r["data"])

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        await asyncio.to_thread(write)
        return path
