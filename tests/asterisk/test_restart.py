"""convener SIGKILLed in the middle of a spoken booking and started again, as systemd does: the
caller is adopted, hears that convener is back and the last question again, and the booking
goes on with the same agent and its context. Nothing is left behind."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid

from run_helpers import spoken_rig, words

from convener.tools.callcheck import CallReport, _turn
from convener.tools.testcall import TestCaller


async def test_sigkill_between_two_turns_the_booking_goes_on(creds, tmp_path, ari):
    before = {c.id for c in await ari.channels()}
    lines = ["Book a flight to Denver", "From Boston", "Next Friday"]
    rig = await spoken_rig(tmp_path, creds, lines)
    agents, convener, config, voice, audio = rig.agents, rig.convener, rig.config, rig.voice, rig.audio
    report = CallReport()
    say = print
    outage_s = None
    back = ""
    try:
        await convener.start()
        await convener.ready()
        async with TestCaller(creds.ari_url, creds.ari_user, creds.ari_password,
                              app=f"convener-caller-{uuid.uuid4().hex[:8]}") as caller:
            leg = await caller.place(config.calls.dialplan_extension, config.calls.dialplan_context)
            try:
                await leg.wait_answered()
                media = await leg.open_media(config.media)
                await leg.wait_in_bridge(timeout=10)
                first = await media.wait_voice_after(time.monotonic(), 6.0)
                assert first is not None, "no greeting"
                await media.wait_quiet(1.2, 15.0, since=first)
                for said in lines[:2]:
                    await _turn(leg, voice, said, audio[said], report, 10.0, 1.2, say)
                asked = words(report.turns[1].heard)
                assert "date" in asked or "when" in asked, report

                # Between two caller turns: SIGKILL, then started again at once.
                killed = time.monotonic()
                convener.kill()
                await convener.proc.wait()  # type: ignore[union-attr]
                await convener.start()
                heard_at = await media.wait_voice_after(killed, 90.0)
                assert heard_at is not None, "the caller never heard convener again:\n" + convener.tail()
                outage_s = heard_at - killed
                await media.wait_quiet(1.2, 20.0, since=heard_at)
                back = words(await voice.hear(media.audio_between(heard_at - 0.1, time.monotonic())))
                print(f"outage heard by the caller, SIGKILL -> voice: {outage_s:.2f} s; heard {back!r}")
                assert "lost you" in back or "moment" in back, back
                assert "date" in back or "when" in back, back  # the question asked again

                await _turn(leg, voice, lines[2], audio[lines[2]], report, 10.0, 1.2, say)
                answer = words(report.turns[2].heard)
                assert "book" in answer or "shall" in answer, answer  # the booking goes on
                assert "sorry" not in answer and "none of our agents" not in answer, answer
            finally:
                await leg.hangup()
        assert report.turns[2].latency_ms is not None
    finally:
        code = await convener.stop()
        await agents.close()
    log = convener.tail(200000)
    assert code == 0, log[-3000:]
    assert "resync: adopting caller" in log and "resumed (floor: tag:" in log, log[-3000:]
    assert creds.ari_password not in log and convener.env["CONVENER_TEST_INBOUND_SECRET"] not in log
    # One conversation in the transcripts, across the restart; no floor state left.
    db = sqlite3.connect(tmp_path / "transcripts.sqlite3")
    try:
        convs = db.execute("SELECT conversation_id, ended_at FROM conversations").fetchall()
        assert len(convs) == 1 and convs[0][1] is not None, convs
        turns = db.execute("SELECT speaker, text FROM turns ORDER BY at, id").fetchall()
        said = [words(t).split()[0] for s, t in turns if s == "caller"]
        assert said == ["book", "from", "next"], turns  # every recognised turn, in one conversation
        assert ("convener", "Sorry, I lost you for a moment.") in turns, turns
        assert db.execute("SELECT COUNT(*) FROM floor_states").fetchone() == (0,)
    finally:
        db.close()
    # Nothing left in Asterisk.
    deadline = time.monotonic() + 10
    while True:
        bridges = [b.id for b in await ari.bridges() if b.id.startswith("convener-")]
        channels = [c.id for c in await ari.channels() if c.id not in before]
        if not bridges and not channels:
            break
        assert time.monotonic() < deadline, (bridges, channels)
        await asyncio.sleep(0.1)
