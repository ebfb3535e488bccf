"""The console's pure pieces: access, search parameters, waterfalls, recording names, the live
feed, the live view read from an application, and the shipped assets (no CDN, contrast)."""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from convener.ofp.floor import FloorManager
from convener.ofp.manifest import Identification
from convener.ops.console import auth
from convener.ops.console.feed import LiveFeed
from convener.ops.console.live import room_view, snapshot
from convener.ops.console.query import QueryError, parse_query
from convener.ops.console.recordings import recording_name, valid_name
from convener.ops.console.routes import STATIC
from convener.ops.console.waterfall import waterfall
from convener.timings import TurnTimings

ROOT = Path(__file__).resolve().parents[2]


# -- access ---------------------------------------------------------------------------------------

def test_no_token_means_open_and_a_token_needs_the_cookie_or_bearer():
    assert auth.allowed("", "/console/api/live", None, None)
    t = "s3cret-token"
    assert not auth.allowed(t, "/console/api/live", None, None)
    assert not auth.allowed(t, "/console/api/live", "forged", None)
    assert not auth.allowed(t, "/console/api/live", None, "Bearer wrong")
    assert auth.allowed(t, "/console/api/live", auth.session_value(t), None)
    assert auth.allowed(t, "/console/api/live", None, f"Bearer {t}")
    assert auth.allowed(t, "/console/login", None, None)  # the form itself is reachable
    assert t not in auth.session_value(t) and auth.session_value(t) != auth.session_value(t + "x")
    assert auth.token_matches(t, f" {t}\n") and not auth.token_matches(t, "nope") and not auth.token_matches("", "")


def test_pages_go_to_the_login_form_and_the_api_answers_401():
    assert auth.wants_page("/console", "text/html,application/xhtml+xml")
    assert not auth.wants_page("/console/api/live", "text/html")
    assert not auth.wants_page("/console", "application/json")


# -- history search parameters --------------------------------------------------------------------

def test_query_parsed_with_whole_days_included():
    q = parse_query({"room": "sales", "from": "2026-03-01", "to": "2026-03-02", "q": " Denver ", "limit": "20"})
    assert q.room == "sales" and q.text == "Denver" and q.limit == 20
    assert q.since == datetime(2026, 3, 1, tzinfo=UTC)
    assert q.until == datetime(2026, 3, 3, tzinfo=UTC)  # "to" is included: up to the next midnight
    assert parse_query({}).limit == 100 and parse_query({}).since is None


@pytest.mark.parametrize(("params", "message"), [
    ({"from": "01/03/2026"}, "from: expected a date as YYYY-MM-DD"),
    ({"from": "2026-03-05", "to": "2026-03-04"}, "to: must be the same day as 'from' or later"),
    ({"room": "no spaces"}, "room: letters, digits"),
    ({"limit": "ten"}, "limit: expected a whole number"),
    ({"limit": "100000"}, "limit: between 1 and 500"),
    ({"q": "x" * 201}, "q: at most 200 characters"),
])
def test_bad_query_parameters_say_what_fits(params, message):
    with pytest.raises(QueryError, match=re.escape(message)):
        parse_query(params)


# -- waterfall ------------------------------------------------------------------------------------

def test_waterfall_bars_start_at_the_end_of_speech():
    t = TurnTimings("c1-1")
    for stage, at in [("speech_start", 9.0), ("speech_end", 10.0), ("end_of_turn", 10.3), ("asr_final", 10.45),
                      ("envelope_sent", 10.46), ("reply_received", 10.7), ("first_audio_out", 11.0)]:
        t.mark(stage, at)
    w = waterfall(t)
    assert w["origin"] == "speech_end" and w["total_ms"] == 1000.0
    assert w["origin_monotonic"] == 10.0  # where the origin is on the host's clock
    assert [b["stage"] for b in w["bars"]] == ["end_of_turn", "asr_final", "envelope_sent", "reply_received",
                                               "first_audio_out"]
    assert w["bars"][0] == {"stage": "end_of_turn", "from": "speech_end", "start_ms": 0.0, "duration_ms": 300.0}
    assert w["bars"][-1] == {"stage": "first_audio_out", "from": "reply_received", "start_ms": 700.0,
                             "duration_ms": 300.0}
    # bars tile the span: each starts where the previous ended
    assert all(abs(a["start_ms"] + a["duration_ms"] - b["start_ms"]) < 0.2 for a, b in itertools.pairwise(w["bars"]))


def test_waterfall_of_a_turn_without_marks_or_without_speech_end():
    assert waterfall(TurnTimings("x"))["bars"] == []
    t = TurnTimings("y")
    t.mark("asr_final", 1.0)
    t.mark("reply_received", 1.25)
    w = waterfall(t)
    assert w["origin"] == "asr_final" and w["total_ms"] == 250.0 and len(w["bars"]) == 1


# -- recordings -----------------------------------------------------------------------------------

def test_recording_names_come_from_the_conversation_and_are_checked():
    name = recording_name("conv:3f2a-11ee/../x y")
    assert name == "convener-3f2a-11ee----x-y" and valid_name(name)
    assert not valid_name("../etc/passwd") and not valid_name("other-recording") and not valid_name("convener-a/b")


# -- live feed ------------------------------------------------------------------------------------

async def test_feed_replays_recent_events_and_never_blocks_on_a_slow_page():
    feed = LiveFeed(keep=3, queue_size=4)
    for i in range(5):
        feed.publish({"type": "line", "n": i})
    q = feed.listen()
    assert [q.get_nowait()["n"] for _ in range(3)] == [2, 3, 4]  # the last `keep`, in order
    for i in range(5, 12):  # nobody reads: the oldest are dropped, publish returns at once
        feed.publish({"type": "line", "n": i})
    assert q.qsize() == 4 and feed.dropped == 3
    assert [q.get_nowait()["n"] for _ in range(4)] == [8, 9, 10, 11]
    feed.close()
    assert await asyncio.wait_for(q.get(), 1) is None and feed.listeners == 0


# -- the live view ----------------------------------------------------------------------------------

def _ident(uri: str, name: str) -> Identification:
    return Identification(speaker_uri=uri, service_url="http://x/ofp", conversational_name=name)


def test_room_view_shows_callers_agents_and_who_holds_the_floor():
    me, human = _ident("tag:convener", "convener"), _ident("tag:caller", "caller")
    flights, hotels = _ident("tag:flights", "Flights"), _ident("tag:hotels", "Hotels")
    floor = FloorManager("conv:abc", me)
    floor.join(me)
    floor.join(human)
    floor.join(flights)
    floor.join(hotels, floor=False)
    session = SimpleNamespace(conversation_id="conv:abc", floor=floor, me=me,
                              policy=SimpleNamespace(humans={"tag:caller"}))
    speaker = SimpleNamespace(speaking=True, current=SimpleNamespace(label="Flights"))
    room = SimpleNamespace(name="sales", bridge_id="b1", members={"ch1", "ch-gone"},
                           state={"conversation": SimpleNamespace(session=session, speaker=speaker)})
    calls = {"ch1": SimpleNamespace(channel=SimpleNamespace(caller=SimpleNamespace(name="Ann", number="100")))}
    v = room_view(room, calls, recording=True)
    assert v["callers"] == [{"id": "ch1", "name": "Ann", "number": "100"}]
    assert v["agents"] == ["Flights", "Hotels"] and v["floor"] == ["Flights"]
    assert v["speaking"] == "Flights" and v["recording"] == "convener-abc"
    assert room_view(room, calls)["recording"] is None


def test_snapshot_of_an_app_without_rooms_and_of_one_with_turns():
    empty = snapshot(SimpleNamespace())
    assert empty["rooms"] == [] and empty["calls"] == [] and empty["turns"] == [] and empty["ready"] is False
    t = TurnTimings("c-1")
    t.mark("speech_end", 1.0)
    t.mark("first_audio_out", 1.5)
    app = SimpleNamespace(turns=[(t, "hello")], calls={}, ready=True)
    (turn,) = snapshot(app)["turns"]
    assert turn["text"] == "hello" and turn["total_ms"] == 500.0


# -- shipped assets -------------------------------------------------------------------------------

def test_assets_load_nothing_from_elsewhere_and_are_package_data():
    files = sorted(p for p in STATIC.iterdir() if p.is_file())
    assert {p.name for p in files} >= {"index.html", "login.html", "console.js", "console.css"}
    for p in files:
        text = p.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), f"{p.name} names another host"
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["convener"]
    for p in files:
        rel = p.relative_to(ROOT / "src" / "convener").as_posix()
        assert any(fnmatch.fnmatch(rel, pat) for pat in patterns), f"{rel} is not package data"


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_text_colours_meet_wcag_aa_contrast_on_their_backgrounds():
    css = (STATIC / "console.css").read_text()
    var = dict(re.findall(r"--([a-z0-9]+):\s*(#[0-9a-fA-F]{6})", css))
    pairs = [("fg", "bg"), ("fg", "panel"), ("muted", "bg"), ("muted", "panel"), ("accent", "bg"),
             ("accent", "panel"), ("bad", "bg"), ("ok", "bg"), ("bad", "panel")]
    low = {f"{a}/{b}": round(_contrast(var[a], var[b]), 2) for a, b in pairs if _contrast(var[a], var[b]) < 4.5}
    assert not low, f"below 4.5:1: {low}"
    assert _contrast("#ffffff", var["accent"]) >= 4.5  # button text
