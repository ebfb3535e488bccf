"""The console page in headless Chromium against an ops server with a generated transcript store
(no Asterisk): the history of 1,000 conversations loads and renders in under a second in the
page, and with a token the login form lets the browser in. Skips without chromium."""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import pytest
from console_helpers import fill_store

from browser_helpers import Browser, chromium_path
from convener.ops.http import start_ops_server
from convener.ops.settings import TOKEN_ENV, OpsSettings
from convener.ops.transcripts import SqliteTranscriptStore

pytestmark = pytest.mark.skipif(chromium_path() is None,
                                reason="chromium not installed (apt-get install chromium); .ci/run installs it")


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)


@pytest.fixture
async def store(tmp_path):
    s = await SqliteTranscriptStore.connect(tmp_path / "t.sqlite3", "node-a")
    await fill_store(s, 1000, turns=12)
    yield s
    await s.close()


async def _history_ms(b: Browser, query: str = "") -> tuple[float, int]:
    await b.eval(f"document.querySelector('#search [name=q]').value = {query!r}")
    await b.eval("delete document.querySelector('#history-status').dataset.count; window.consoleStats.historyMs = null")
    await b.eval("document.querySelector('#search button').click()")
    await b.wait_for("document.querySelector('#history-status').dataset.count !== undefined", timeout=10)
    ms = await b.eval("window.consoleStats.historyMs")
    return ms, int(await b.eval("document.querySelectorAll('#conversations button').length"))


async def test_history_of_1000_conversations_renders_in_under_a_second(fake_app, store, tmp_path):
    fake_app.transcripts = SimpleNamespace(store=store)
    server = await start_ops_server(fake_app, OpsSettings(http_port=0))
    try:
        async with await Browser.launch(tmp_path / "profile") as b:
            await b.goto(server.url + "/console")
            await b.wait_for("document.querySelector('#history-status').dataset.count !== undefined", timeout=20)
            first = await b.eval("window.consoleStats.historyMs")
            assert await b.eval("document.querySelectorAll('#conversations button').length") == 100
            latest = [(await _history_ms(b))[0] for _ in range(5)]
            text = [await _history_ms(b, "denver") for _ in range(5)]
            assert {n for _, n in text} == {20}  # 1 in 50 conversations mention Denver
            print(f"\nin Chromium, fetch + render: first load {first:.0f} ms; latest 100 median "
                  f"{statistics.median(latest):.0f} ms, max {max(latest):.0f} ms; text search over 12,000 turns "
                  f"median {statistics.median(ms for ms, _ in text):.0f} ms")
            assert max([first, *latest, *(ms for ms, _ in text)]) < 1000
            assert not b.errors, b.errors
    finally:
        await server.stop()


async def test_with_a_token_the_browser_logs_in_through_the_form(fake_app, store, tmp_path):
    token = "browser-login-token"
    fake_app.transcripts = SimpleNamespace(store=store)
    server = await start_ops_server(fake_app, OpsSettings(http_port=0, token=token))
    try:
        async with await Browser.launch(tmp_path / "profile") as b:
            await b.goto(server.url + "/console")
            assert (await b.eval("location.pathname")) == "/console/login"
            await b.eval("document.querySelector('#token').value = 'wrong'; document.querySelector('form').submit()")
            await b.wait_for("!!document.querySelector('.error')", timeout=10)
            assert "not right" in await b.eval("document.querySelector('.error').textContent")
            await b.eval(f"document.querySelector('#token').value = {token!r}; document.querySelector('form').submit()")
            await b.wait_for("location.pathname === '/console' && document.readyState === 'complete'", timeout=10)
            await b.wait_for("document.querySelector('#history-status').dataset.count === '100'", timeout=10)
            assert await b.eval("document.cookie") == ""  # HttpOnly: scripts cannot read it
    finally:
        await server.stop()
