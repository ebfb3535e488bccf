"""``convener speech test``: synthesise, pass through the phone channel, recognise back."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_SENTENCE = "Book a flight to Denver"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("speech", help="speech providers (ASR, TTS, VAD)")
    sub = p.add_subparsers(dest="speech_command", metavar="SUBCOMMAND")
    t = sub.add_parser(
        "test",
        help="TTS a sentence, pass it through 8 kHz μ-law, recognise it back, print timings",
    )
    t.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    t.add_argument("--asr", help="ASR provider (whisper, deepgram, deepgram-flux)")
    t.add_argument("--tts", help="TTS provider (hibari, espeak, deepgram)")
    t.add_argument("--say", default=DEFAULT_SENTENCE, help="the sentence to speak")
    t.add_argument("--snr", type=float, default=None, help="add white noise at this SNR (dB)")
    t.set_defaults(func=_test)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _test(args: argparse.Namespace) -> int:
    import asyncio

    from convener.settings import ConfigError

    try:
        if args.config:
            from convener.config import load_config

            speech = load_config(args.config).speech
        else:
            from convener.settings import load_section
            from convener.speech.settings import SpeechSettings

            speech = load_section(SpeechSettings, {}, "speech")
            import os

            if os.environ.get("DEEPGRAM_API_KEY"):
                speech.deepgram.api_key = os.environ["DEEPGRAM_API_KEY"]
        if args.asr:
            speech.asr = args.asr
        if args.tts:
            speech.tts = args.tts
        speech.validate()
    except ConfigError as e:
        print(f"convener: {e}", file=sys.stderr)
        return 2
    return asyncio.run(_run_test(speech, args.say, args.snr))


async def _run_test(speech: Any, sentence: str, snr: float | None) -> int:
    import time

    from convener.speech.asr import AsrError, transcribe_frames
    from convener.speech.channel import add_noise, frames, pad_silence, through_phone
    from convener.speech.registry import build_asr, build_tts, stderr_progress
    from convener.speech.tts import TtsError, synthesize_all
    from convener.speech.wer import wer

    asr = build_asr(speech)
    tts = build_tts(speech)
    try:
        for label, provider in (("TTS", tts), ("ASR", asr)):
            stderr_progress(f"loading {label} {provider.name} ...")
            t0 = time.perf_counter()
            await provider.warm()
            stderr_progress(f"{label} {provider.name} ready ({time.perf_counter() - t0:.2f} s)")
        stderr_progress(f"speaking: {sentence!r}")
        synth = await synthesize_all(tts, sentence)
        phone = through_phone(synth.pcm, synth.sample_rate)
        if snr is not None:
            phone = add_noise(phone, snr)
        phone = pad_silence(phone, 8000, 0.2, 0.3)
        stderr_progress("recognising ...")
        eot, _events, latency = await transcribe_frames(asr, frames(phone, 8000), 8000)
    except (AsrError, TtsError) as e:
        print(f"convener: speech test failed: {e}", file=sys.stderr)
        return 1
    finally:
        for p in (asr, tts):
            close = getattr(p, "aclose", None)
            if close is not None:
                await close()
    audio_s = len(synth.pcm) / 2 / synth.sample_rate
    error_rate = wer(sentence, eot.text)
    print(f"said:       {sentence}")
    print(f"heard:      {eot.text}")
    print(
        f"tts:        {tts.name}, first chunk {synth.first_chunk_s * 1000:.0f} ms, "
        f"total {synth.total_s * 1000:.0f} ms for {audio_s:.2f} s of audio "
        f"({synth.sample_rate} Hz, {synth.chunks} chunks)"
    )
    print(f"channel:    8 kHz G.711 μ-law{'' if snr is None else f', noise at {snr:g} dB SNR'}")
    print(f"asr:        {asr.name}, final {latency * 1000:.0f} ms after end of turn")
    print(f"wer:        {error_rate:.2f}")
    return 0
