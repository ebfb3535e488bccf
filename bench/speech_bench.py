"""Speech benchmark: offline ASR and TTS on spoken sentences made here, through the phone channel.

    .venv/bin/python bench/speech_bench.py [--quick] [--json FILE]

Test audio: every sentence below is spoken by several voices (hibari "heart" at two speeds;
espeak-ng en-us, en-gb, en-us+f3; flite slt), passed through 8 kHz G.711 μ-law, and for some
voices with white noise added at 20 dB and 10 dB SNR.

ASR (per provider configuration): WER, latency from end of turn to final text (p50/p95), and
real-time factor (decode time / audio time). End of turn is signalled directly after the
audio, as our VAD does after its hang-over; add the hang-over (e.g. 500 ms) for end of speech.

TTS (per provider): time to first chunk (p50/p95), RTF (synthesis time / audio time), and
round-trip intelligibility: WER of the offline ASR on the TTS output after μ-law.

Deepgram cannot be reached from here, so it is not in the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from convener.speech.asr import transcribe_frames
from convener.speech.channel import add_noise, frames, pad_silence, through_phone
from convener.speech.espeak_tts import EspeakTts, FliteTts
from convener.speech.hibari_tts import HibariTts
from convener.speech.settings import (
    EspeakSettings,
    FliteSettings,
    HibariSettings,
    WhisperSettings,
)
from convener.speech.tts import TtsProvider, synthesize_all
from convener.speech.wer import corpus_wer
from convener.speech.whisper_asr import WhisperAsr

SENTENCES = [
    "Book a flight to Denver.",
    "I need a hotel in Chicago for two nights.",
    "What is the weather like in Seattle tomorrow?",
    "Can you change my reservation to Friday morning?",
    "I would like a window seat, please.",
    "Cancel my booking and send me a receipt.",
    "Is there a direct flight from Boston to Miami?",
    "Please connect me to a human agent.",
    "How much does a rental car cost per day?",
    "My confirmation number is four seven two nine.",
]


@dataclass
class Clip:
    voice: str
    text: str
    noise: str
    pcm8k: bytes  # after the phone channel, with silence around


def voices(quick: bool) -> dict[str, TtsProvider]:
    v: dict[str, TtsProvider] = {
        "hibari-heart": HibariTts(HibariSettings()),
        "hibari-heart-x1.15": HibariTts(HibariSettings(speed=1.15)),
        "espeak-en-us": EspeakTts(EspeakSettings(voice="en-us")),
        "espeak-en-gb": EspeakTts(EspeakSettings(voice="en-gb")),
        "espeak-en-us+f3": EspeakTts(EspeakSettings(voice="en-us+f3")),
        "flite-slt": FliteTts(FliteSettings(voice="slt")),
    }
    if quick:
        v = {k: v[k] for k in ("hibari-heart", "espeak-en-us", "flite-slt")}
    return v


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1]


async def make_clips(quick: bool) -> tuple[list[Clip], dict[str, dict[str, object]]]:
    clips: list[Clip] = []
    tts_stats: dict[str, dict[str, object]] = {}
    sentences = SENTENCES[:4] if quick else SENTENCES
    for name, tts in voices(quick).items():
        await tts.warm()
        firsts, rtfs = [], []
        for text in sentences:
            r = await synthesize_all(tts, text)
            audio_s = len(r.pcm) / 2 / r.sample_rate
            firsts.append(r.first_chunk_s * 1000)
            rtfs.append(r.total_s / audio_s)
            phone = through_phone(r.pcm, r.sample_rate)
            clips.append(Clip(name, text, "clean", pad_silence(phone, 8000, 0.2, 0.2)))
            if name in ("hibari-heart", "espeak-en-us"):
                for snr in (20, 10):
                    noisy = add_noise(pad_silence(phone, 8000, 0.2, 0.2), snr, seed=len(text))
                    clips.append(Clip(name, text, f"snr{snr}", noisy))
        tts_stats[name] = {
            "first_chunk_ms_p50": round(pct(firsts, 50), 1),
            "first_chunk_ms_p95": round(pct(firsts, 95), 1),
            "rtf": round(statistics.mean(rtfs), 4),
        }
    return clips, tts_stats


async def run_asr(name: str, asr: WhisperAsr, clips: list[Clip]) -> dict[str, object]:
    await asr.warm()
    lat, rtf = [], []
    by_cond: dict[str, list[tuple[str, str]]] = {}
    by_voice_clean: dict[str, list[tuple[str, str]]] = {}
    by_voice_cond: dict[str, list[tuple[str, str]]] = {}
    for c in clips:
        eot, _, latency = await transcribe_frames(asr, frames(c.pcm8k, 8000), 8000)
        lat.append(latency * 1000)
        rtf.append(latency / (len(c.pcm8k) / 2 / 8000))
        by_cond.setdefault(c.noise, []).append((c.text, eot.text))
        by_voice_cond.setdefault(f"{c.voice} {c.noise}", []).append((c.text, eot.text))
        if c.noise == "clean":
            by_voice_clean.setdefault(c.voice, []).append((c.text, eot.text))
    return {
        "asr": name,
        "utterances": len(clips),
        "wer_by_condition": {k: round(corpus_wer(v), 3) for k, v in by_cond.items()},
        "wer_clean_by_voice": {k: round(corpus_wer(v), 3) for k, v in by_voice_clean.items()},
        "wer_by_voice_and_condition": {k: round(corpus_wer(v), 3) for k, v in by_voice_cond.items()},
        "latency_ms_p50": round(pct(lat, 50)),
        "latency_ms_p95": round(pct(lat, 95)),
        "rtf": round(statistics.mean(rtf), 3),
    }


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer voices and sentences")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print("making test audio ...", file=sys.stderr)
    clips, tts_stats = await make_clips(args.quick)
    print(f"{len(clips)} clips; running ASR ...", file=sys.stderr)
    configs = {"whisper tiny.en beam1 win10": WhisperSettings(beam_size=1, window_s=10)}
    if not args.quick:
        configs["whisper tiny.en beam1 win30"] = WhisperSettings(beam_size=1, window_s=30)
        configs["whisper tiny.en beam5 win10"] = WhisperSettings(beam_size=5, window_s=10)
        configs["whisper tiny.en beam5 win30"] = WhisperSettings(beam_size=5, window_s=30)
    asr_results = []
    for name, ws in configs.items():
        asr_results.append(await run_asr(name, WhisperAsr(ws), clips))
        print(f"  {name} done", file=sys.stderr)
    for voice, stats in tts_stats.items():
        stats["roundtrip_wer"] = asr_results[0]["wer_clean_by_voice"][voice]  # type: ignore[index]

    print("\nASR (8 kHz μ-law; latency = end of turn → final text)")
    print(f"{'provider':30} {'n':>4} {'WER clean':>9} {'snr20':>6} {'snr10':>6} {'p50 ms':>7} {'p95 ms':>7} {'RTF':>6}")
    for r in asr_results:
        w = r["wer_by_condition"]
        print(
            f"{r['asr']:30} {r['utterances']:>4} {w.get('clean', 0):>9.3f} "  # type: ignore[union-attr]
            f"{w.get('snr20', 0):>6.3f} {w.get('snr10', 0):>6.3f} "  # type: ignore[union-attr]
            f"{r['latency_ms_p50']:>7} {r['latency_ms_p95']:>7} {r['rtf']:>6}"
        )
    print("\nASR WER by voice and noise")
    names = list(asr_results[0]["wer_by_voice_and_condition"])  # type: ignore[call-overload]
    print(f"{'voice / condition':28} " + " ".join(f"{r['asr'][16:]:>11}" for r in asr_results))
    for k in names:
        print(f"{k:28} " + " ".join(f"{r['wer_by_voice_and_condition'][k]:>11.3f}" for r in asr_results))  # type: ignore[index]
    print("\nTTS (round-trip WER = offline ASR on the TTS output after 8 kHz μ-law)")
    print(f"{'voice':22} {'first p50 ms':>12} {'first p95 ms':>12} {'RTF':>7} {'rt WER':>7}")
    for voice, s in tts_stats.items():
        print(
            f"{voice:22} {s['first_chunk_ms_p50']:>12} {s['first_chunk_ms_p95']:>12} "
            f"{s['rtf']:>7} {s['roundtrip_wer']:>7}"
        )
    print(f"\n({time.perf_counter() - t0:.0f} s; {len(SENTENCES if not args.quick else SENTENCES[:4])} sentences)")
    if args.json:
        await asyncio.to_thread(
            Path(args.json).write_text,
            json.dumps({"asr": asr_results, "tts": tts_stats}, indent=2),
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
