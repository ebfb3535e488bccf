"""A real SIP phone: baresip (Debian's package) registers on the sandbox's PJSIP endpoint,
dials 100 and holds the conversation — the mission's "User's SIP Phone → SIP INVITE" step.

The phone's microphone is a WAV file (aufile): a pause for the greeting, then "Book a flight to
Denver". The phone's loudspeaker is recorded (sndfile) and recognised: the caller must hear the
flight agent's answer about Denver."""

from __future__ import annotations

import asyncio
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from convener.app.callcheck import VoiceCaller
from convener.app.stack import Stack

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")
pytestmark = pytest.mark.skipif(not BARESIP or not MODULES.exists(),
                                reason="needs Debian's baresip-core (apt-get install baresip-core)")


def _wav(path: Path, pcm: bytes, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def _config(d: Path, creds, mic: Path) -> None:
    (d / "config").write_text(f"""poll_method epoll
sip_listen 127.0.0.1:5072
sip_transports udp
audio_source aufile,{mic}
audio_player aubridge,nowhere
audio_alert aubridge,nowhere
audio_srate 8000
audio_channels 1
snd_path {d}
module_path {MODULES}
module stdio.so
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_app account.so
module_app menu.so
""")
    (d / "accounts").write_text(
        f"<sip:{creds.sip_user}@127.0.0.1:{creds.sip_port}>;auth_pass={creds.sip_password};"
        "regint=60;audio_codecs=PCMU\n")


async def test_sip_phone_books_a_flight(config, sandbox, creds, tmp_path):
    voice = VoiceCaller(config)
    await voice.warm()
    speech = await voice.speak("Book a flight to Denver")
    silence = bytes(8000 * 2 * 4)  # 4 s: the greeting plays first
    mic = tmp_path / "mic.wav"
    _wav(mic, silence + speech + bytes(8000 * 2 * 8))
    _config(tmp_path, creds, mic)
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
    with wave.open(str(heard_files[0]), "rb") as w:
        rate = w.getframerate()
        pcm = w.readframes(w.getnframes())
    if rate != 8000:
        from convener.audio import resample_pcm16

        pcm = resample_pcm16(pcm, rate, 8000)
    x = np.frombuffer(pcm, dtype="<i2")
    assert np.abs(x).max() > 1000, "the phone heard silence"
    heard = (await voice.hear(pcm)).lower()
    print(f"SIP phone: convener heard {said}; the phone heard {heard!r}")
    assert "denver" in heard, heard
    assert "registered" in log.lower() or "200 ok" in log.lower(), log[-2000:]
