"""The console in a real browser (headless Chromium) against `convener run` in its own process,
with a real call through the sandbox Asterisk: the live view shows the call and its transcript
as it is said (< 1 s after convener logs a line), the history shows the call afterwards with its
transcript, and its recording plays. Screenshots are kept (the path is printed).

Skips where Debian's chromium is not installed (`apt-get install chromium`; .ci/run installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

import pytest
from run_helpers import Convener, write_config

from browser_helpers import Browser, BrowserError, chromium_path

pytestmark = pytest.mark.skipif(chromium_path() is None,
                                reason="chromium not installed (apt-get install chromium); .ci/run installs it")

SAID = "What is the weather in Denver"


@pytest.fixture
def artefacts(tmp_path_factory) -> Path:
    root = os.environ.get("CONVENER_TEST_ARTEFACTS")
    path = Path(root) / "console" if root else tmp_path_factory.mktemp("artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
async def agents():
    from convener_agents.serve import start_agents

    running = await start_agents("127.0.0.1", {n: 0 for n in ("flights", "hotels", "weather")})
    yield running
    await running.close()


async def test_console_shows_the_live_call_its_history_and_plays_the_recording(
        creds, tmp_path, agents, artefacts, ari):
    cfg, env, ops_port, _ = write_config(tmp_path, creds, agents.urls, ops_extra="record_calls = true")
    convener = Convener(cfg, env, ops_port, tmp_path / "convener.log")
    await convener.start()
    base = f"http://127.0.0.1:{ops_port}"
    recording = None
    print(f"\nconsole screenshots in {artefacts}")
    try:
        await convener.ready(timeout=90)  # the speech models load first
        async with await Browser.launch(tmp_path / "chromium-profile") as b:
            await b.goto(f"{base}/console")
            await b.wait_for("document.querySelector('#status').textContent.includes('Connected to Asterisk')")
            # Keyboard: the first Tab lands on the skip link.
            await b.key("Tab", "Tab", 9)
            assert await b.eval("document.activeElement.className") == "skip"

            call = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "convener", "call", "--config", str(cfg), "--say", SAID, "--json",
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                # The live view: the room with its caller, then the caller's words as they are said.
                await b.wait_for("!!document.querySelector('.room[data-room=\"lobby\"][data-conversation^=\"conv\"]')",
                                 timeout=30)
                live_room = await b.eval("document.querySelector('.room[data-room=\"lobby\"]').innerText")
                assert "recording" in live_room, live_room
                await b.wait_for("document.querySelector('#transcript').innerText.toLowerCase().includes('denver')",
                                 timeout=60)
                # ... and the weather agent's answer, with the agent shown in the room.
                await b.wait_for("document.querySelector('#transcript').innerText.includes('Weather:')", timeout=60)
                await b.wait_for("document.querySelector('.room[data-room=\"lobby\"] .agents')"
                                 ".textContent.includes('Weather')", timeout=5)
                await b.screenshot(artefacts / "1-live.png")
                live_transcript = await b.eval("document.querySelector('#transcript').innerText")
            finally:
                out, err = await asyncio.wait_for(call.communicate(), 120)
            report = json.loads(out)
            assert report["ok"], (report, err.decode()[-2000:])
            stats = await b.eval("window.consoleStats")
            print(f"live transcript lines: {stats['linesShown']}, lag from logged to shown (s): "
                  f"{[round(x, 3) for x in stats['lineLags']]}")
            assert stats["linesShown"] >= 2 and max(stats["lineLags"]) < 1.0, stats
            # The latency waterfall of the turn.
            # A turn is listed from its end of speech on; the page must follow it as it gains stages.
            stages_js = ("[...document.querySelectorAll('#waterfalls [data-turn] .wf li')]"
                         ".map(li => li.firstChild.textContent)")
            with contextlib.suppress(BrowserError):  # the assertion below says what was shown
                await b.wait_for(f"{stages_js}.includes('first audio out')", timeout=10)
            stages = await b.eval(stages_js)
            assert "asr final" in stages and "first audio out" in stages, stages

            # History: the call is there afterwards, with its transcript and its recording.
            await b.wait_for("!document.querySelector('.room[data-room=\"lobby\"]')", timeout=20)
            await b.eval("document.querySelector('#search [name=q]').value = 'denver'")
            await b.eval("document.querySelector('#search button').click()")
            await b.wait_for("!!document.querySelector('#conversations button')", timeout=10)
            assert await b.eval("document.querySelectorAll('#conversations button').length") == 1
            for _ in range(30):  # Asterisk writes the file when the room's bridge is destroyed
                # Keyboard again: focus the conversation and press Enter.
                await b.eval("document.querySelector('#conversations button').focus()")
                await b.key("Enter", "Enter", 13, text="\r")
                await b.wait_for("document.querySelector('#conversation').dataset.id", timeout=10)
                if await b.eval("!!document.querySelector('#conversation audio')"):
                    break
                await b.eval("delete document.querySelector('#conversation').dataset.id")
                await asyncio.sleep(0.5)
            transcript = await b.eval("document.querySelector('#conversation').innerText")
            assert "denver" in transcript.lower(), transcript
            recording = await b.eval("decodeURIComponent(document.querySelector('#conversation audio').src"
                                     ".split('/').pop())")
            played = await b.eval("""(async () => {
                const a = document.querySelector('#conversation audio');
                await a.play();
                await new Promise(r => setTimeout(r, 1500));
                return {time: a.currentTime, duration: a.duration, paused: a.paused,
                        error: a.error && a.error.code};
            })()""")
            print(f"recording {recording} played: {played}")
            assert played["error"] is None and played["duration"] > 1.0 and played["time"] > 0.5, played
            await b.screenshot(artefacts / "2-history.png")

            # A phone-sized screen: nothing wider than the screen, the history still usable.
            await b.viewport(390, 844, mobile=True)
            await b.goto(f"{base}/console")
            await b.wait_for("document.querySelector('#history-status').dataset.count")
            overflow = await b.eval("document.documentElement.scrollWidth - window.innerWidth")
            await b.screenshot(artefacts / "3-phone.png")
            assert overflow <= 0, f"the page is {overflow} px wider than a phone's screen"
            assert not b.errors, b.errors
        print(f"live transcript seen:\n{live_transcript}")
    finally:
        rc = await convener.stop()
        if recording:
            from convener.ari.errors import AriNotFound

            with contextlib.suppress(AriNotFound):
                await ari.delete_stored_recording(recording)
    log = convener.tail(1_000_000)
    assert rc == 0, log[-3000:]
    assert "recording as convener-" in log, log[-3000:]
