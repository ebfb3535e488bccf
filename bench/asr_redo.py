"""Is decoding again on the 30 s path worth it when a short-window decode is heard badly?

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/asr_redo.py [--cache DIR] [--turns DIR]

Whisper's own fallback test redoes a decode whose average log-probability is under -1
(confidence under exp(-1) = 0.37). convener did that on the standard 30 s path until
2026-12-03 (``speech.whisper.redo_below_confidence``, now 0 = off). This decodes every clip of
bench/hearing.py (every split, 10 and 5 dB, with the city vocabulary as the bias) and of
bench/turn_taking.py (complete requests, and hesitations' first phrases + 200 ms, what the
first look hears) with the short window, and for each one under the threshold and not
repetitive, the 30 s redo too. It prints, per group: how many were redone, WER and cities of
both, and what the redo cost. The audio comes from those benches' caches (made on their first
run; bench/turn_taking.py builds its items with ``--looks``); by default in the system's
temporary folder, where those benches keep them.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hearing
import turn_taking

from convener.audio import pcm16_to_ulaw, resample_pcm16, ulaw_to_pcm16
from convener.speech import whisper_asr
from convener.speech.settings import WhisperSettings
from convener.speech.wer import corpus_wer


def clips(cache: Path, turns: Path) -> list[tuple[str, str, bytes, str | None, str]]:
    """(group, what was said, 8 kHz PCM16, city or None, bias prompt)."""
    s = WhisperSettings()
    out = []
    voices = hearing.synthesise(hearing.requests(), cache)
    for c in hearing.caller_audio(voices, hearing.requests(), ["snr10", "snr5"], phone=True):
        prompt = whisper_asr.prompt_text(s, hearing.bias_for("vocab", c.request))
        out.append((f"hearing {c.condition}", c.request.text, c.pcm8k, c.request.city, prompt))
    turns.mkdir(parents=True, exist_ok=True)
    for it in turn_taking.items():
        if it.kind == "pause":
            continue
        pcm, first_end, _ = turn_taking.build(it, turns)
        said = it.text
        if it.kind == "hesitation":
            pcm, said = pcm[: int((first_end + 0.2) * turn_taking.RATE) * 2], it.parts[0]
        out.append((f"turn-taking {it.kind}", said, ulaw_to_pcm16(pcm16_to_ulaw(pcm)), None, ""))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    tmp = Path(tempfile.gettempdir())
    ap.add_argument("--cache", type=Path, default=tmp / "convener-hearing", help="bench/hearing.py's voices")
    ap.add_argument("--turns", type=Path, default=tmp / "turn_taking" / "audio",
                    help="bench/turn_taking.py's item audio (its --out folder + /audio)")
    a = ap.parse_args()
    settings = WhisperSettings()
    asyncio.run(whisper_asr.WhisperAsr(settings).warm())
    model = next(iter(whisper_asr._models.values()))
    rows = []
    for group, said, pcm8k, city, prompt in clips(a.cache, a.turns):
        audio = np.frombuffer(resample_pcm16(pcm8k, 8000, 16000), dtype="<i2").astype(np.float32) / 32768
        st = whisper_asr.settings_for_line(audio, settings)
        window = whisper_asr.window_seconds(len(audio) / 16000, st)
        if window is None:
            continue
        short = whisper_asr.decode_short_window(model, audio, st, window, prompt)
        raw = short.text.encode()
        if not raw or len(raw) / len(zlib.compress(raw)) > 2.4 or short.confidence >= math.exp(-1):
            rows.append((group, said, city, short, None, 0.0))
            continue
        t0 = time.perf_counter()
        redo = whisper_asr.decode_standard(model, audio, st, prompt)
        rows.append((group, said, city, short, redo, time.perf_counter() - t0))
    redone = [r for r in rows if r[4] is not None]
    print(f"{len(rows)} clips decoded on the short window, {len(redone)} under confidence {math.exp(-1):.2f}"
          " (not repetitive): redone on 30 s")
    for group in sorted({r[0] for r in rows}):
        rs = [r for r in redone if r[0] == group]
        n = sum(1 for r in rows if r[0] == group)
        if not rs:
            print(f"  {group:<24} {n:4d} clips, none redone")
            continue
        wer = [corpus_wer([(r[1], (r[3] if i == 0 else r[4]).text) for r in rs]) for i in (0, 1)]
        cities = [sum(hearing.city_heard(r[2], (r[3] if i == 0 else r[4]).text) for r in rs if r[2]) for i in (0, 1)]
        conf = [statistics.median((r[3] if i == 0 else r[4]).confidence for r in rs) for i in (0, 1)]
        print(f"  {group:<24} {n:4d} clips, {len(rs):2d} redone: WER {wer[0]:.3f} -> {wer[1]:.3f}, "
              f"cities {cities[0]} -> {cities[1]}, confidence p50 {conf[0]:.2f} -> {conf[1]:.2f}, "
              f"redo p50 {statistics.median(r[5] for r in rs) * 1000:.0f} ms, "
              f"max {max(r[5] for r in rs) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
