"""A local server speaking Deepgram's wire protocol, for testing our client without the service.

Real aiohttp server on 127.0.0.1 (random port). It follows Deepgram's documented messages:

* ``GET /v1/listen`` (WebSocket, Nova live): ``Authorization: Token <key>`` or HTTP 401 with a
  ``dg-error`` header and JSON body; audio frames (mulaw / linear16); client messages
  ``KeepAlive``, ``Finalize``, ``CloseStream``; server messages ``SpeechStarted``, ``Results``
  (``is_final``, ``speech_final``, ``from_finalize``, ``channel.alternatives``), ``UtteranceEnd``,
  ``Metadata`` (answer to CloseStream, then close).
* ``GET /v2/listen`` (WebSocket, Flux): ``Connected``, ``TurnInfo`` with ``StartOfTurn``,
  ``Update``, ``EndOfTurn``; with ``eager_eot_threshold`` in the query also ``EagerEndOfTurn``
  (after ``flux_eager_silence_s`` of silence) and ``TurnResumed`` (voice again after an eager
  end); client ``ForceEndTurn``, ``CloseStream``. ``flux_eot_silence_s`` ends a turn.
* ``keyterm`` (Nova-3, Flux) and ``keywords`` (older models) query parameters: on another
  model, HTTP 400 as the service answers; every value is kept in ``Connection.query``.
* ``POST /v1/speak`` (Aura REST): JSON ``{"text": ...}`` → streamed raw linear16 audio.

It cannot recognise speech: it detects speech by energy and "recognises" the next entry of
``transcripts``. Faults on demand: drop the TCP connection mid-stream (``drop_after_s``), send an
``Error`` message and close with 1011 (``error_after_s``), refuse further connections
(``refuse_after_drop``), wrong key → 401.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from convener.audio import ulaw_to_pcm16

FRAME_S = 0.02


@dataclass
class Connection:
    path: str
    params: dict[str, str]  # the first value of each query parameter
    query: list[tuple[str, str]] = field(default_factory=list)  # all of them, decoded, in order
    raw_query: str = ""  # as sent (percent-encoded)
    audio_bytes: int = 0
    messages: list[str] = field(default_factory=list)  # client JSON message types, in order
    sent: list[dict[str, Any]] = field(default_factory=list)  # server messages sent
    closed_by: str = ""


class _Recogniser:
    """Energy-based speech detection on the received audio; reveals a scripted transcript."""

    def __init__(self, server: FakeDeepgram, params: dict[str, str]) -> None:
        self.server = server
        self.rate = int(params.get("sample_rate", "8000"))
        self.encoding = params.get("encoding", "linear16")
        self.t = 0.0  # seconds of audio received
        self.pending = b""
        self.in_speech = False
        self.speech_start = 0.0
        self.last_voice = 0.0
        self.words: list[str] = []
        self.finalised = True  # nothing to finalise yet
        self.utterance_end_due = False
        self.next_interim = 0.0

    def frames(self, data: bytes) -> list[tuple[float, bool]]:
        pcm = ulaw_to_pcm16(data) if self.encoding == "mulaw" else data
        self.pending += pcm
        n = int(self.rate * FRAME_S) * 2
        out = []
        while len(self.pending) >= n:
            frame, self.pending = self.pending[:n], self.pending[n:]
            x = np.frombuffer(frame, dtype="<i2").astype(np.float64)
            rms = math.sqrt(float(np.mean(x * x))) / 32768.0
            db = 20 * math.log10(rms) if rms > 1e-9 else -120.0
            self.t += FRAME_S
            out.append((self.t, db > self.server.speech_db))
        return out

    def start_utterance(self, t: float) -> None:
        self.in_speech = True
        self.speech_start = t - FRAME_S
        self.finalised = False
        text = self.server.next_transcript()
        self.words = text.split()

    def revealed(self, t: float) -> str:
        """Words heard so far: proportional to the speech duration (whole after 1.5 s)."""
        frac = min(1.0, (t - self.speech_start) / 1.5)
        n = max(1, int(len(self.words) * frac))
        return " ".join(self.words[:n])


class FakeDeepgram:
    def __init__(
        self,
        api_key: str = "test-key",
        transcripts: list[str] | None = None,
        speech_db: float = -40.0,
    ) -> None:
        self.api_key = api_key
        self.transcripts = list(transcripts or ["book a flight to denver"])
        self.speech_db = speech_db
        self.connections: list[Connection] = []
        self.refused = 0
        self.drop_after_s: float | None = None  # drop the TCP connection after this much audio
        self.drops_left = 1  # how many connections get dropped
        self.error_after_s: float | None = None  # send Error + close 1011 after this much audio
        self.refuse_after_drop = False  # once dropped, refuse every reconnect (HTTP 503)
        self.answer_finalize = True
        self.dropped = 0
        self.speak_requests: list[dict[str, Any]] = []
        self.speak_aborted = 0
        self.speak_seconds_per_char = 0.05
        self.speak_delay_s = 0.01  # between streamed chunks
        self.flux_eager_silence_s = 0.2  # silence before EagerEndOfTurn (eager_eot_threshold set)
        self.flux_eot_silence_s = 0.5  # silence before EndOfTurn
        self._utterances = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def next_transcript(self) -> str:
        text = self.transcripts[min(self._utterances, len(self.transcripts) - 1)]
        self._utterances += 1
        return text

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/v1/listen", self._listen)
        app.router.add_get("/v2/listen", self._flux)
        app.router.add_post("/v1/speak", self._speak)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"ws://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- helpers ------------------------------------------------------------------------------

    def _auth_failure(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            body = {
                "err_code": "INVALID_AUTH",
                "err_msg": "Invalid credentials.",
                "request_id": str(uuid.uuid4()),
            }
            return web.Response(
                status=401,
                text=json.dumps(body),
                content_type="application/json",
                headers={"dg-error": "Invalid credentials.", "dg-request-id": body["request_id"]},
            )
        if self.refuse_after_drop and self.dropped:
            self.refused += 1
            return web.Response(status=503, headers={"dg-error": "Service unavailable"})
        return None

    @staticmethod
    def _bad_params(params: dict[str, str]) -> web.Response | None:
        if params.get("encoding") not in ("mulaw", "linear16"):
            return web.Response(status=400, headers={"dg-error": "unsupported encoding"})
        if params.get("sample_rate") not in ("8000", "16000"):
            return web.Response(status=400, headers={"dg-error": "unsupported sample_rate"})
        # Deepgram documents keyterm for Nova-3 and Flux only, keywords for the older models only.
        model = params.get("model", "")
        if "keyterm" in params and not model.startswith(("nova-3", "flux")):
            return web.Response(status=400, headers={"dg-error": "keyterm needs Nova-3 or Flux"})
        if "keywords" in params and model.startswith(("nova-3", "flux")):
            return web.Response(status=400, headers={"dg-error": "keywords not supported on this model; use keyterm"})
        return None

    async def _send(self, ws: web.WebSocketResponse, conn: Connection, msg: dict[str, Any]) -> None:
        conn.sent.append(msg)
        await ws.send_str(json.dumps(msg))

    async def _fault(self, request: web.Request, ws: web.WebSocketResponse, conn: Connection) -> bool:
        """Inject a configured fault; True when the connection is gone."""
        audio_s = conn.audio_bytes / (
            int(conn.params["sample_rate"]) * (1 if conn.params["encoding"] == "mulaw" else 2)
        )
        if self.drop_after_s is not None and self.drops_left > 0 and audio_s >= self.drop_after_s:
            self.drops_left -= 1
            self.dropped += 1
            conn.closed_by = "drop"
            assert request.transport is not None
            request.transport.abort()  # TCP gone, no close frame: a network failure
            return True
        if self.error_after_s is not None and audio_s >= self.error_after_s:
            self.error_after_s = None
            self.dropped += 1
            await self._send(
                ws,
                conn,
                {
                    "type": "Error",
                    "description": "Deepgram did not receive audio data or a text message within the timeout window.",
                    "message": "NET-0001",
                    "variant": "NET-0001",
                },
            )
            conn.closed_by = "error"
            await ws.close(code=1011, message=b"NET-0001")
            return True
        return False

    # --- /v1/listen ---------------------------------------------------------------------------

    async def _listen(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_failure(request) or self._bad_params(dict(request.query))
        if refused is not None:
            return refused
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Connection("/v1/listen",
                          dict(request.query), list(request.query.items()), request.rel_url.raw_query_string)
        self.connections.append(conn)
        p = conn.params
        rec = _Recogniser(self, p)
        endpointing = float(p.get("endpointing", "10")) / 1000 if p.get("endpointing") != "false" else None
        utterance_end = float(p.get("utterance_end_ms", "0")) / 1000 or None
        interim = p.get("interim_results") == "true"
        vad_events = p.get("vad_events") == "true"
        request_id = str(uuid.uuid4())

        def results(text: str, start: float, end: float, **flags: bool) -> dict[str, Any]:
            words = text.split()
            return {
                "type": "Results",
                "channel_index": [0, 1],
                "duration": round(end - start, 3),
                "start": round(start, 3),
                "is_final": flags.get("is_final", False),
                "speech_final": flags.get("speech_final", False),
                "from_finalize": flags.get("from_finalize", False),
                "channel": {
                    "alternatives": [
                        {
                            "transcript": text,
                            "confidence": 0.97 if text else 0.0,
                            "words": [{"word": w, "start": start, "end": end, "confidence": 0.97} for w in words],
                        },
                        {"transcript": text.replace("a ", "the ", 1), "confidence": 0.61},
                    ]
                },
                "metadata": {"request_id": request_id, "model_info": {"name": "fake-nova-3"}},
            }

        async def finalise(**flags: bool) -> None:
            text = rec.revealed(rec.last_voice + 10) if not rec.finalised else ""
            rec.finalised = True
            rec.utterance_end_due = bool(text)
            await self._send(ws, conn, results(text, rec.speech_start, max(rec.t, rec.speech_start), **flags))

        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                conn.audio_bytes += len(msg.data)
                if await self._fault(request, ws, conn):
                    return ws
                for t, voiced in rec.frames(msg.data):
                    if voiced:
                        if not rec.in_speech:
                            if not rec.finalised:
                                pass  # still the same utterance
                            else:
                                rec.start_utterance(t)
                                rec.next_interim = t + 0.5
                                if vad_events:
                                    await self._send(
                                        ws,
                                        conn,
                                        {
                                            "type": "SpeechStarted",
                                            "channel": [0, 1],
                                            "timestamp": round(rec.speech_start, 3),
                                        },
                                    )
                            rec.in_speech = True
                        rec.last_voice = t
                        if interim and t >= rec.next_interim and not rec.finalised:
                            rec.next_interim = t + 0.5
                            await self._send(ws, conn, results(rec.revealed(t), rec.speech_start, t))
                        continue
                    # silence
                    if rec.in_speech and endpointing is not None:
                        if t - rec.last_voice >= endpointing:
                            rec.in_speech = False
                            if not rec.finalised:
                                await finalise(is_final=True, speech_final=True)
                    elif rec.in_speech and t - rec.last_voice >= 0.5:
                        # no endpointing: the segment is still finalised (is_final) but it is
                        # not marked speech_final; UtteranceEnd marks the end
                        rec.in_speech = False
                        if not rec.finalised:
                            await finalise(is_final=True)
                    if (
                        rec.utterance_end_due
                        and utterance_end
                        and not rec.in_speech
                        and t - rec.last_voice >= utterance_end
                    ):
                        rec.utterance_end_due = False
                        await self._send(
                            ws,
                            conn,
                            {
                                "type": "UtteranceEnd",
                                "channel": [0, 1],
                                "last_word_end": round(rec.last_voice, 3),
                            },
                        )
            elif msg.type == WSMsgType.TEXT:
                kind = json.loads(msg.data).get("type", "")
                conn.messages.append(kind)
                if kind == "Finalize" and self.answer_finalize:
                    rec.in_speech = False
                    await finalise(is_final=True, from_finalize=True)
                elif kind == "CloseStream":
                    if not rec.finalised:
                        await finalise(is_final=True, speech_final=True)
                    await self._send(
                        ws,
                        conn,
                        {
                            "type": "Metadata",
                            "transaction_key": "deprecated",
                            "request_id": request_id,
                            "sha256": "0" * 64,
                            "created": "2026-01-01T00:00:00.000Z",
                            "duration": round(rec.t, 3),
                            "channels": 1,
                        },
                    )
                    conn.closed_by = "CloseStream"
                    await ws.close()
                    break
        return ws

    # --- /v2/listen (Flux) --------------------------------------------------------------------

    async def _flux(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_failure(request) or self._bad_params(dict(request.query))
        if refused is not None:
            return refused
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Connection("/v2/listen",
                          dict(request.query), list(request.query.items()), request.rel_url.raw_query_string)
        self.connections.append(conn)
        rec = _Recogniser(self, conn.params)
        eot_silence = self.flux_eot_silence_s
        eager = "eager_eot_threshold" in conn.params
        eager_sent = False
        request_id = str(uuid.uuid4())
        seq = 0
        turn_index = 0

        async def turn_info(event: str, text: str) -> None:
            nonlocal seq
            words = [{"word": w, "confidence": 0.95} for w in text.split()]
            await self._send(
                ws,
                conn,
                {
                    "type": "TurnInfo",
                    "request_id": request_id,
                    "sequence_id": seq,
                    "event": event,
                    "turn_index": turn_index,
                    "audio_window_start": round(rec.speech_start, 3),
                    "audio_window_end": round(rec.t, 3),
                    "transcript": text,
                    "words": words,
                    "end_of_turn_confidence": 0.9 if event == "EndOfTurn" else 0.1,
                },
            )
            seq += 1

        async def end_turn() -> None:
            nonlocal turn_index, eager_sent
            eager_sent = False
            rec.in_speech = False
            rec.finalised = True
            await turn_info("EndOfTurn", rec.revealed(rec.last_voice + 10))
            turn_index += 1

        await self._send(ws, conn, {"type": "Connected", "request_id": request_id, "sequence_id": seq})
        seq += 1
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                conn.audio_bytes += len(msg.data)
                if await self._fault(request, ws, conn):
                    return ws
                for t, voiced in rec.frames(msg.data):
                    if voiced:
                        if rec.finalised:
                            rec.start_utterance(t)
                            rec.next_interim = t + 0.25
                            await turn_info("StartOfTurn", "")
                        elif eager_sent:
                            eager_sent = False
                            await turn_info("TurnResumed", rec.revealed(t))
                        rec.last_voice = t
                    if not rec.finalised and t >= rec.next_interim:
                        rec.next_interim = t + 0.25
                        await turn_info("Update", rec.revealed(t))
                    if (eager and not eager_sent and not rec.finalised
                            and t - rec.last_voice >= self.flux_eager_silence_s):
                        eager_sent = True
                        await turn_info("EagerEndOfTurn", rec.revealed(rec.last_voice))
                    if not rec.finalised and t - rec.last_voice >= eot_silence:
                        await end_turn()
            elif msg.type == WSMsgType.TEXT:
                kind = json.loads(msg.data).get("type", "")
                conn.messages.append(kind)
                if kind == "ForceEndTurn" and not rec.finalised:
                    await end_turn()
                elif kind == "CloseStream":
                    if not rec.finalised:
                        await end_turn()
                    conn.closed_by = "CloseStream"
                    await ws.close()
                    break
        return ws

    # --- /v1/speak (Aura REST) ----------------------------------------------------------------

    async def _speak(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_failure(request)
        if refused is not None:
            return refused
        body = await request.json()
        params = dict(request.query)
        self.speak_requests.append({"params": params, "text": body.get("text", "")})
        if params.get("encoding", "linear16") != "linear16" or params.get("container") != "none":
            return web.Response(status=400, headers={"dg-error": "fake supports linear16/none"})
        rate = int(params.get("sample_rate", "24000"))
        seconds = max(0.2, len(body.get("text", "")) * self.speak_seconds_per_char)
        n = int(rate * seconds)
        tone = (np.sin(2 * np.pi * 220 * np.arange(n) / rate) * 8000).astype("<i2").tobytes()
        resp = web.StreamResponse(headers={"Content-Type": "audio/l16"})
        await resp.prepare(request)
        step = int(rate * 0.04) * 2 + 1  # odd sizes: the client must re-align samples
        try:
            for i in range(0, len(tone), step):
                await resp.write(tone[i : i + step])
                await asyncio.sleep(self.speak_delay_s)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.speak_aborted += 1
            raise
        return resp
