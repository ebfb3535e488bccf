"""Fallback TTS with no Python model: Debian ``espeak-ng`` run as a subprocess.

The whole reply goes to one ``espeak-ng --stdout`` process (SSML passed through with ``-m``);
its WAV output is read as it is produced and yielded in ~100 ms chunks. Cancelling kills the
process at once. Never blocks the event loop (asyncio subprocess).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
from collections.abc import AsyncIterator

from convener.speech.settings import EspeakSettings, FliteSettings
from convener.speech.text import is_ssml, split_sentences, strip_ssml
from convener.speech.tts import TtsCancelled, TtsChunk, TtsError, until_cancelled

ESPEAK_RATE = 22050
CHUNK_SECONDS = 0.1


def parse_wav_header(head: bytes) -> tuple[int, int]:
    """(sample rate, header length) of espeak's streamed WAV (sizes are placeholders)."""
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise TtsError("espeak-ng did not write a WAV header")
    pos = 12
    rate = ESPEAK_RATE
    while pos + 8 <= len(head):
        cid, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if cid == b"fmt ":
            channels, rate, bits = (
                struct.unpack("<H", head[pos + 10 : pos + 12])[0],
                struct.unpack("<I", head[pos + 12 : pos + 16])[0],
                struct.unpack("<H", head[pos + 22 : pos + 24])[0],
            )
            if channels != 1 or bits != 16:
                raise TtsError(f"espeak-ng wrote {channels} ch / {bits} bit audio")
        if cid == b"data":
            return rate, pos + 8
        pos += 8 + size
    raise TtsError("espeak-ng WAV header has no data chunk")


class EspeakTts:
    """TTS provider ``espeak`` (apt-get install espeak-ng)."""

    name = "espeak"
    package = "espeak-ng"
    supports_ssml = True

    def __init__(self, settings: EspeakSettings | None = None) -> None:
        self.settings: EspeakSettings | FliteSettings = settings or EspeakSettings()
        self.sample_rate = ESPEAK_RATE
        self.binary: str | None = None
        self.last_process: asyncio.subprocess.Process | None = None  # for tests / diagnostics

    async def warm(self) -> None:
        if self.binary is None:
            found = shutil.which(self.settings.binary)
            if not found:
                raise TtsError(f"{self.settings.binary} not found (apt-get install {self.package})")
            self.binary = found
            async for _ in self.synthesize("ok"):
                pass

    def command(self, text: str) -> list[str]:
        s = self.settings
        assert isinstance(s, EspeakSettings)
        cmd = [self.binary or s.binary, "--stdout", "-v", s.voice, "-s", str(s.rate)]
        cmd += ["-p", str(s.pitch)]
        if is_ssml(text):
            cmd.append("-m")
        return [*cmd, "--", text]

    async def synthesize(self, text: str, cancel: asyncio.Event | None = None) -> AsyncIterator[TtsChunk]:
        if self.binary is None:
            found = shutil.which(self.settings.binary)
            if not found:
                raise TtsError(f"{self.settings.binary} not found (apt-get install {self.package})")
            self.binary = found
        proc = await asyncio.create_subprocess_exec(
            *self.command(text),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.last_process = proc
        assert proc.stdout is not None
        try:
            head = b""
            while len(head) < 44:
                part = await until_cancelled(proc.stdout.read(44 - len(head)), cancel)
                if not part:
                    break
                head += part
            if not head:
                raise TtsError("espeak-ng produced no audio")
            rate, hlen = parse_wav_header(head)
            self.sample_rate = rate
            want = int(rate * CHUNK_SECONDS) * 2
            buf = head[hlen:]
            index = 0
            while True:
                part = await until_cancelled(proc.stdout.read(want), cancel)
                if not part:
                    break
                buf += part
                if len(buf) >= want:
                    cut = len(buf) - len(buf) % 2
                    yield TtsChunk(buf[:cut], rate, text if index == 0 else "", 0)
                    buf = buf[cut:]
                    index += 1
            if len(buf) >= 2:
                yield TtsChunk(buf[: len(buf) - len(buf) % 2], rate, "", 0)
        except TtsCancelled:
            return
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


class FliteTts(EspeakTts):
    """TTS provider ``flite`` (apt-get install flite): CMU Flite, 16 kHz; SSML tags stripped.

    Flite writes its WAV only when the whole text is done, so each sentence is its own process
    (the first chunk is ready after the first sentence, ~40-80 ms).
    """

    name = "flite"
    package = "flite"
    supports_ssml = False

    def __init__(self, settings: FliteSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or FliteSettings()
        self.sample_rate = 16000

    def command(self, text: str) -> list[str]:
        s = self.settings
        return [self.binary or s.binary, "-voice", s.voice, "-t", text, "-o", "/dev/stdout"]

    async def synthesize(self, text: str, cancel: asyncio.Event | None = None) -> AsyncIterator[TtsChunk]:
        plain = strip_ssml(text) if is_ssml(text) else text
        for i, sentence in enumerate(split_sentences(plain)):
            if cancel is not None and cancel.is_set():
                return
            first = True
            async for chunk in super().synthesize(sentence, cancel):
                yield TtsChunk(chunk.pcm, chunk.sample_rate, sentence if first else "", i)
                first = False
