"""Deepgram Aura TTS over REST streaming (``POST /v1/speak``), our own thin aiohttp client.

Each sentence is one request (``model``, ``encoding=linear16``, ``sample_rate`` = 8000 by
default, ``container=none``, JSON body ``{"text": ...}``); the audio body is yielded as it
arrives. Aura takes no SSML, so tags are stripped. Cancelling closes the HTTP response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from convener.speech.deepgram_common import api_key, auth_headers, url
from convener.speech.settings import DeepgramSettings
from convener.speech.text import is_ssml, split_sentences, strip_ssml
from convener.speech.tts import TtsCancelled, TtsChunk, TtsError, until_cancelled


class DeepgramTts:
    """TTS provider ``deepgram`` (Aura)."""

    name = "deepgram"
    supports_ssml = False

    def __init__(self, settings: DeepgramSettings | None = None) -> None:
        self.settings = settings or DeepgramSettings()
        self.sample_rate = self.settings.tts_sample_rate
        self._http: aiohttp.ClientSession | None = None

    async def warm(self) -> None:
        try:
            api_key(self.settings)
        except Exception as e:
            raise TtsError(str(e)) from None
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()

    def request_url(self) -> str:
        s = self.settings
        params = {
            "model": s.tts_model,
            "encoding": "linear16",
            "sample_rate": s.tts_sample_rate,
            "container": "none",
        }
        return url(s, "/v1/speak", params, websocket=False)

    async def synthesize(self, text: str, cancel: asyncio.Event | None = None) -> AsyncIterator[TtsChunk]:
        await self.warm()
        assert self._http is not None
        plain = strip_ssml(text) if is_ssml(text) else text
        headers = auth_headers(api_key(self.settings))
        try:
            for i, sentence in enumerate(split_sentences(plain)):
                request = self._http.post(self.request_url(), json={"text": sentence}, headers=headers)
                try:
                    resp = await until_cancelled(request, cancel)
                except aiohttp.ClientError as e:
                    raise TtsError(f"Deepgram TTS request failed: {type(e).__name__}") from None
                async with resp:
                    if resp.status != 200:
                        detail = resp.headers.get("dg-error", "")
                        raise TtsError(f"Deepgram TTS refused: HTTP {resp.status} {detail}".strip())
                    carry = b""
                    first = True
                    while True:
                        data = await until_cancelled(resp.content.readany(), cancel)
                        if not data:
                            break
                        data = carry + data
                        cut = len(data) - len(data) % 2
                        carry = data[cut:]
                        if cut:
                            yield TtsChunk(data[:cut], self.sample_rate, sentence if first else "", i)
                            first = False
        except TtsCancelled:
            return

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
