"""The console's HTTP side on a real ops server with a real SQLite transcript store: the page and
its assets, login with a token, the live view, the live stream (< 1 s), the history search and
its speed with 1,000 conversations stored."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import aiohttp
import pytest
from console_helpers import fill_store

from convener.ops.http import start_ops_server
from convener.ops.settings import TOKEN_ENV, OpsSettings
from convener.ops.transcripts import SqliteTranscriptStore
from convener.timings import TurnTimings


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)


@pytest.fixture
async def store(tmp_path):
    s = await SqliteTranscriptStore.connect(tmp_path / "t.sqlite3", "node-a")
    yield s
    await s.close()


@pytest.fixture
async def console(fake_app, store):
    fake_app.transcripts = SimpleNamespace(store=store)
    server = await start_ops_server(fake_app, OpsSettings(http_port=0),
                                    agents_health=lambda: {"flights": {"state": "up", "url": "http://x"}})
    yield server
    await server.stop()


async def test_page_and_assets_are_served_with_a_strict_policy(console):
    async with aiohttp.ClientSession() as s:
        async with s.get(console.url + "/console") as r:
            page = await r.text()
            assert r.status == 200 and r.content_type == "text/html"
            csp = r.headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert '<script src="/console/static/console.js"' in page and 'name="viewport"' in page
        for asset, ctype in [("console.js", "javascript"), ("console.css", "text/css")]:
            async with s.get(f"{console.url}/console/static/{asset}") as r:
                assert r.status == 200 and ctype in r.content_type, asset
        async with s.get(console.url + "/console/login", allow_redirects=False) as r:
            assert r.status == 303  # no token: nothing to log in to


async def test_with_a_token_the_console_takes_it_through_the_login_form(fake_app, store):
    token = "t0k3n-for-the-console"
    fake_app.transcripts = SimpleNamespace(store=store)
    server = await start_ops_server(fake_app, OpsSettings(http_port=0, http_host="0.0.0.0", token=token))
    url = f"http://127.0.0.1:{server.port}"
    try:
        # unsafe=True: the client's cookie jar keeps cookies of IP-address hosts
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            async with s.get(url + "/console", headers={"Accept": "text/html"}, allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Location"] == "/console/login"
            async with s.get(url + "/console/api/live") as r:
                assert r.status == 401 and "log in" in (await r.json())["error"]
            async with s.get(url + "/console/login") as r:
                assert r.status == 200 and 'type="password"' in await r.text()
            async with s.post(url + "/console/login", data={"token": "wrong"}, allow_redirects=False) as r:
                assert r.status == 401 and "not right" in await r.text()
            async with s.get(url + "/console/api/live", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
            async with s.post(url + "/console/login", data={"token": token}, allow_redirects=False) as r:
                assert r.status == 303
                cookie = r.cookies["convener_console"]
                assert token not in cookie.value and cookie["httponly"] and cookie["samesite"] == "Strict"
            async with s.get(url + "/console/api/live") as r:  # the cookie jar now carries it
                assert r.status == 200
            async with s.get(url + "/health") as r:  # the cookie opens the console only
                assert r.status == 401
    finally:
        await server.stop()


async def test_live_view_reports_calls_turns_and_agents(console, fake_app):
    t = TurnTimings("c1-1")
    t.mark("speech_end", 5.0)
    t.mark("asr_final", 5.2)
    t.mark("first_audio_out", 5.9)
    fake_app.turns = [(t, "hello there")]
    fake_app.calls = {"c1": SimpleNamespace(id="c1", room="lobby", stasis_start_at=time.monotonic() - 3,
                                            channel=SimpleNamespace(caller=SimpleNamespace(name="Ann", number="1")))}
    async with aiohttp.ClientSession() as s, s.get(console.url + "/console/api/live") as r:
        body = await r.json()
    assert body["calls"][0]["caller"] == "Ann" and body["calls"][0]["up_s"] >= 3
    assert body["agents"] == {"flights": {"state": "up", "url": "http://x"}}
    (turn,) = body["turns"]
    assert turn["text"] == "hello there" and turn["total_ms"] == 900.0
    assert [b["stage"] for b in turn["bars"]] == ["asr_final", "first_audio_out"]


async def test_a_published_line_reaches_the_event_stream_within_a_second(console, fake_app):
    lags = []
    async with aiohttp.ClientSession() as s, s.get(console.url + "/console/api/events") as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert (await r.content.readline()).startswith(b": connected")
        await r.content.readline()
        for i in range(20):
            sent = time.time()
            fake_app.feed.publish({"type": "line", "who": "caller", "text": f"line {i}", "at": sent})
            while True:
                line = await asyncio.wait_for(r.content.readline(), 2)
                if line.startswith(b"data: "):
                    break
            event = json.loads(line[6:])
            lags.append(time.time() - event["at"])
            assert event["text"] == f"line {i}"
    print(f"\nSSE line lag over 20 lines: median {statistics.median(lags) * 1000:.2f} ms, "
          f"max {max(lags) * 1000:.2f} ms")
    assert max(lags) < 1.0


async def test_history_searches_by_room_date_and_text(console, store):
    await fill_store(store, 60, turns=4)
    async with aiohttp.ClientSession() as s:
        async def get(query: str):
            async with s.get(f"{console.url}/console/api/history?{query}") as r:
                return r.status, await r.json()

        status, body = await get("")
        assert status == 200 and len(body["conversations"]) == 60
        assert body["conversations"][0]["conversation_id"] == "conv:0059"  # newest first
        assert "turns" not in body["conversations"][0] and body["conversations"][0]["turn_count"] == 4
        _, body = await get("room=sales")
        assert {c["room"] for c in body["conversations"]} == {"sales"} and len(body["conversations"]) == 20
        _, body = await get("from=2026-01-02&to=2026-01-02")  # hours 24..47 of the fill
        assert sorted(c["conversation_id"] for c in body["conversations"]) == [f"conv:{i:04d}" for i in range(24, 48)]
        _, body = await get("q=DENVER")  # case-insensitive, in any turn
        assert [c["conversation_id"] for c in body["conversations"]] == ["conv:0057", "conv:0007"]
        _, body = await get("q=100%25")  # "100%": % is literal, matches nothing
        assert body["conversations"] == []
        _, body = await get("room=sales&q=denver")
        assert [c["conversation_id"] for c in body["conversations"]] == ["conv:0007"]  # 57 is in the lobby
        status, body = await get("from=yesterday")
        assert status == 400 and "YYYY-MM-DD" in body["error"]
        async with s.get(f"{console.url}/console/api/conversations/conv:0007") as r:
            conv = await r.json()
        assert [t["speaker"] for t in conv["turns"]] == ["caller", "weather", "caller", "weather"]
        assert conv["turns"][1]["floor_holder"] == "weather" and conv["recording"] is None
        async with s.get(f"{console.url}/console/api/conversations/conv:nope") as r:
            assert r.status == 404
        async with s.get(f"{console.url}/console/api/recordings/..%2Fetc%2Fpasswd") as r:
            assert r.status in (400, 404)
        async with s.get(f"{console.url}/console/api/recordings/convener-abc") as r:
            assert r.status == 503  # the fake app has no ARI connection


async def test_history_loads_in_under_a_second_with_1000_conversations(console, store):
    t0 = time.perf_counter()
    await fill_store(store, 1000, turns=12)
    fill_s = time.perf_counter() - t0
    times: dict[str, list[float]] = {}
    async with aiohttp.ClientSession() as s:
        for name, query in [("latest 100 (the page's first load)", ""), ("latest 500", "limit=500"),
                            ("text in any of 12,000 turns", "q=denver&limit=500"),
                            ("room and dates", "room=sales&from=2026-01-10&to=2026-02-10&limit=500")]:
            for _ in range(5):
                start = time.perf_counter()
                async with s.get(f"{console.url}/console/api/history?{query}") as r:
                    body = await r.json()
                times.setdefault(name, []).append(time.perf_counter() - start)
                assert r.status == 200 and body["conversations"]
    report = "; ".join(f"{n}: median {statistics.median(v) * 1000:.1f} ms, max {max(v) * 1000:.1f} ms"
                       for n, v in times.items())
    print(f"\nhistory over 1,000 conversations x 12 turns (filled in {fill_s:.1f} s): {report}")
    assert max(max(v) for v in times.values()) < 1.0, report


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_both_stores_search_the_same_way(backend, tmp_path, request):
    import uuid

    from convener.ops.transcripts import open_store

    url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/s.sqlite3"
    store = await open_store(OpsSettings(transcripts_url=url, node_id="n"))
    room = f"r{uuid.uuid4().hex[:12]}"  # the PostgreSQL cluster is shared by the session's tests
    t0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
    try:
        for i, text in enumerate(["Book a FLIGHT to Denver", "50% off_hotels", "nothing here"]):
            cid = f"{room}-{i}"
            await store.start_conversation(cid, "c", room, t0 + timedelta(days=i))
            await store.add_turn(cid, "caller", text, t0 + timedelta(days=i, seconds=1))
        ids = lambda convs: [c.conversation_id for c in convs]  # noqa: E731
        assert ids(await store.search(room=room)) == [f"{room}-2", f"{room}-1", f"{room}-0"]
        assert ids(await store.search(room=room, text="flight")) == [f"{room}-0"]
        assert ids(await store.search(room=room, text="50% off_h")) == [f"{room}-1"]
        assert ids(await store.search(room=room, text="0%_")) == []  # % and _ are literal
        assert ids(await store.search(room=room, since=t0 + timedelta(days=1), until=t0 + timedelta(days=2))) \
            == [f"{room}-1"]
        assert ids(await store.search(room=room, limit=1)) == [f"{room}-2"]
        assert (await store.search(room=room, text="denver"))[0].turn_count == 1
    finally:
        await store.close()


async def test_an_open_live_stream_does_not_hold_up_the_server_stop(fake_app, store):
    fake_app.transcripts = SimpleNamespace(store=store)
    server = await start_ops_server(fake_app, OpsSettings(http_port=0))
    async with aiohttp.ClientSession() as s, s.get(server.url + "/console/api/events") as r:
        assert (await r.content.readline()).startswith(b": connected")
        t0 = time.perf_counter()
        await asyncio.wait_for(server.stop(), 10)
        took = time.perf_counter() - t0
        assert await asyncio.wait_for(r.content.read(), 5) == b"\n"  # the stream ended
    assert took < 2.0, f"stop took {took:.1f} s with a page listening"
    assert fake_app.feed.listeners == 0
