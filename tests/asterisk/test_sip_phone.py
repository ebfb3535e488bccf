"""A real SIP phone: baresip (Debian's package) registers on the sandbox's PJSIP endpoint,
dials 100 and holds the conversation — the mission's "User's SIP Phone → SIP INVITE" step.

The phone's microphone is a WAV file (aufile): a pause for the greeting, then "Book a flight to
Denver". The phone's loudspeaker is recorded (sndfile) and recognised: the caller must hear the
flight agent's answer about Denver."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from baresip_helpers import BARESIP, HAVE_BARESIP, WHY_NOT, read_heard, write_config, write_wav

from convener.tools.callcheck import VoiceCaller
from convener.tools.stack import Stack

pytestmark = pytest.mark.skipif(not HAVE_BARESIP, reason=WHY_NOT)


async def test_sip_phone_books_a_flight(config, sandbox, creds, tmp_path):
    voice = VoiceCaller(config)
    await voice.warm()
    speech = await voice.speak("Book a flight to Denver")
    silence = bytes(8000 * 2 * 4)  # 4 s: the greeting plays first
    mic = tmp_path / "mic.wav"
    write_wav(mic, silence + speech + bytes(8000 * 2 * 8))
    write_config(tmp_path, creds.sip_user, creds.sip_password, creds.sip_port, mic)
    async with Stack(config) as stack:
        proc = await asyncio.create_subprocess_exec(
            BARESIP, "-f", str(tmp_path), "-e", f"/dial sip:100@127.0.0.1:{creds.sip_port}", "-t", "16",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=tmp_path)
        out, _ = await asyncio.wait_for(proc.communicate(), 40)
        log = out.decode(errors="replace")
        assert stack.app is not None
        said = [text for _, text in stack.app.turns]
    assert any("denver" in t.lower() for t in said), f"convener did not hear the phone: {said}\n{log[-2000:]}"
    heard_files = sorted(tmp_path.glob("*-dec.wav"))
    assert heard_files, f"baresip recorded nothing:\n{log[-2000:]}"
    x = read_heard(heard_files[0])
    pcm = x.tobytes()
    assert np.abs(x).max() > 1000, "the phone heard silence"
    heard = (await voice.hear(pcm)).lower()
    print(f"SIP phone: convener heard {said}; the phone heard {heard!r}")
    assert "denver" in heard, heard
    assert "registered" in log.lower() or "200 ok" in log.lower(), log[-2000:]
