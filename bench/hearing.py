"""Hearing benchmark: spoken requests naming cities, per recogniser, with and without biasing.

    .venv/bin/python bench/hearing.py [--mode offline|sandbox] [--recognizer tiny.en,base]
                                      [--bias none,agents,vocab] [--condition clean,snr20,snr10,snr5]
                                      [--split tune,heldout] [--json FILE]

Data (made here, nothing downloaded): 48 requests, each naming one of 24 cities, in 8 wordings
(commands, questions, answers to an agent's question). Split in two halves with disjoint cities
AND wordings: ``tune`` (used while choosing the prompt wording) and ``heldout`` (never looked at
while tuning). A third part, ``fresh`` (24 more requests, 12 other cities, 4 other wordings),
was written before the vocabulary correction was tried and played once after it was set
(``--split tune,heldout,fresh``). Each request is spoken by three voices (hibari "heart" at speed 1.0 and 1.2, and
"heart" rendered 10 % lower and slower); ``--voice`` adds flite's slt and rms and espeak-ng's en-us.

Conditions: clean, and white noise at 20, 10 and 5 dB SNR, added to the caller's 8 kHz audio
before the telephone channel (G.711 μ-law), i.e. noise at the caller's end.

Modes:
  offline  the audio goes through an 8 kHz μ-law round trip straight into the recogniser.
  sandbox  the audio is played into a real call through the sandbox Asterisk (caller leg →
           bridge → convener's snoop + external media); what convener received for each turn
           (cut by its own VAD/turn detector) is recorded, then recognised by every recogniser
           configuration (bench/hearing_sandbox.py). Recording needs the lock; one condition and
           split per run keeps a lock hold under ~5 minutes, and recordings are cached:
             flock /tmp/convener-asterisk.lock python bench/hearing.py --mode sandbox --record \
                 --recognizer none --condition snr10 --split heldout
             python bench/hearing.py --mode sandbox     # recognise all cached recordings

Bias (:mod:`convener.speech.bias`):
  none    no biasing.
  agents  the example agents' names and keyphrases + the last question an agent asked (what a
          deployment gets with no configuration).
  vocab   agents + ``[speech] vocabulary`` listing the 24 cities (the documented way to add
          city names).

Printed per recogniser × bias × condition × split: entity-correct rate (the city's words appear
in the text), WER, and end of turn → text p50/p95 (the recogniser call CallerVoice makes when
the turn ends, on this machine's 2 shared cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from convener.audio import float_to_pcm16, resample_pcm16
from convener.speech.bias import AgentTerms, BiasContext, build_bias
from convener.speech.channel import add_noise, pad_silence, through_phone
from convener.speech.settings import WhisperSettings
from convener.speech.wer import corpus_wer, normalise
from convener.speech.whisper_asr import WhisperAsr

CITIES_TUNE = ("Denver", "Boston", "Seattle", "Atlanta", "Phoenix", "Chicago", "Las Vegas", "Miami",
               "Houston", "Nashville", "San Diego", "Sacramento")
CITIES_HELDOUT = ("Dallas", "Austin", "Portland", "New York", "San Francisco", "Los Angeles", "Orlando",
                  "Philadelphia", "Minneapolis", "Detroit", "London", "Paris")
# Written on 2026-12-03, before the vocabulary correction was tried on anything; played once,
# after it was set (its cities are not in the other halves' vocabulary: see bias_for).
CITIES_FRESH = ("Pittsburgh", "Baltimore", "Cleveland", "Honolulu", "Albuquerque", "Toronto", "Vancouver",
                "Montreal", "Berlin", "Madrid", "Tokyo", "Sydney")
ASK_FROM = "Where are you flying from?"
ASK_TO = "Where would you like to fly to?"
# (wording, the question an agent asked just before, "" = first turn)
WORDINGS_TUNE = (
    ("Book a flight to {c}.", ""),
    ("What's the weather in {c}?", ""),
    ("I need a hotel in {c} for tonight.", ""),
    ("I'm flying from {c}.", ASK_FROM),
)
WORDINGS_HELDOUT = (
    ("Can you get me a ticket to {c} next Friday?", ""),
    ("Is it going to rain in {c} tomorrow?", ""),
    ("Find me a place to stay in {c}, please.", ""),
    ("To {c}, please.", ASK_TO),
)
WORDINGS_FRESH = (
    ("Are there any flights to {c} on Sunday morning?", ""),
    ("How cold will it get in {c} tonight?", ""),
    ("I'd like to book a room in {c} for two nights.", ""),
    ("I'll be leaving from {c}.", ASK_FROM),
)
AGENTS = (  # the example agents' manifests (src/convener_agents)
    AgentTerms("Flights", ("flight", "fly", "plane", "airline", "airport", "book a flight", "plane ticket")),
    AgentTerms("Hotels", ("hotel", "room", "stay", "accommodation", "lodging", "place to stay")),
    AgentTerms("Weather", ("weather", "forecast", "temperature", "rain", "snow", "sunny", "cold", "warm")),
)
VOICES = ("heart", "heart-x1.2", "heart-low")  # the default: the numbers in the README
# Other engines' voices (``--voice``; needs flite / espeak-ng): tiny.en hears them worse, and the
# talking-callers bench plays flite's. Each voice keeps its own noise draws whatever is asked.
OTHER_VOICES = ("flite-slt", "flite-rms", "espeak-us")
ALL_VOICES = VOICES + OTHER_VOICES
CONDITIONS = {"clean": None, "snr20": 20.0, "snr10": 10.0, "snr5": 5.0}
RECOGNIZERS = ("tiny.en", "base")
BIASES = ("none", "agents", "vocab")


@dataclass(frozen=True)
class Request:
    split: str
    text: str
    city: str
    question: str


@dataclass
class Clip:
    request: Request
    voice: str
    condition: str
    pcm8k: bytes  # what the recogniser gets (8 kHz PCM16)


def requests() -> list[Request]:
    out = []
    for split, cities, wordings in (("tune", CITIES_TUNE, WORDINGS_TUNE),
                                    ("heldout", CITIES_HELDOUT, WORDINGS_HELDOUT),
                                    ("fresh", CITIES_FRESH, WORDINGS_FRESH)):
        for i, city in enumerate(cities):
            for k in (i % len(wordings), (i + 1) % len(wordings)):  # two wordings per city
                wording, question = wordings[k]
                out.append(Request(split, wording.format(c=city), city, question))
    return out


def bias_for(mode: str, req: Request) -> BiasContext | None:
    if mode == "none":
        return None
    return build_bias(AGENTS, question=req.question, vocabulary=vocabulary_for(mode, req))


def vocabulary_for(mode: str, req: Request) -> tuple[str, ...]:
    """24 cities in every half (no split first): the tune and held-out halves' own for those two,
    the fresh half's with the tune half's for the fresh half."""
    if mode != "vocab":
        return ()
    if req.split == "fresh":
        return tuple(sorted((*CITIES_TUNE, *CITIES_FRESH)))
    return tuple(sorted((*CITIES_TUNE, *CITIES_HELDOUT)))


def city_heard(city: str, text: str) -> bool:
    """The city's words in the text, in order ("Austin's" counts: the agents' word match finds it)."""
    want = normalise(city)
    got = [w[:-2] if w.endswith("'s") else w for w in normalise(text)]
    return any(got[i:i + len(want)] == want for i in range(len(got) - len(want) + 1))


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))] if s else float("nan")


# --- audio -------------------------------------------------------------------------------------


def _speak(engine: object, text: str, voice: str) -> bytes:
    """8 kHz PCM16 of ``text`` in ``voice`` (before the telephone channel)."""
    if voice in OTHER_VOICES:
        from turn_taking import synth  # flite / espeak-ng, trimmed, 8 kHz

        return synth(voice, text)
    speed = 1.2 if voice == "heart-x1.2" else 1.0
    audio = np.asarray(engine(text, speed=speed, seed=0), dtype=np.float32)  # type: ignore[operator]
    rate = 24000 if voice != "heart-low" else 21600  # played 10 % slow: a lower, slower voice
    return resample_pcm16(float_to_pcm16(audio), rate, 8000)


def caller_audio(voices_pcm: dict[tuple[str, str], bytes], reqs: list[Request],
                 conditions: list[str], phone: bool, voices: tuple[str, ...] = VOICES) -> list[Clip]:
    """Noise at the caller's end, then (``phone``: offline mode) the 8 kHz μ-law round trip."""
    clips = []
    for cond in conditions:
        ci = list(CONDITIONS).index(cond)  # the noise of a condition does not depend on the others asked for
        snr = CONDITIONS[cond]
        for ri, req in enumerate(reqs):
            for voice in voices:
                vi = ALL_VOICES.index(voice)
                pcm = pad_silence(voices_pcm[(req.text, voice)], 8000, 0.3, 0.3)
                if snr is not None:
                    pcm = add_noise(pcm, snr, seed=1000 * ci + 10 * ri + vi)
                if phone:
                    pcm = through_phone(pcm, 8000)
                clips.append(Clip(req, voice, cond, pcm))
    return clips


def synthesise(reqs: list[Request], cache: Path,
               voices: tuple[str, ...] = VOICES) -> dict[tuple[str, str], bytes]:
    cache.mkdir(parents=True, exist_ok=True)
    f = cache / "voices.npz"
    got: dict[tuple[str, str], bytes] = {}
    if f.exists():
        data = np.load(f, allow_pickle=False)
        got = {tuple(k.split("\x1f")): data[k].tobytes() for k in data.files}  # type: ignore[misc]
    todo = [(r.text, v) for r in reqs for v in voices if (r.text, v) not in got]
    if not todo:
        return got
    engine: object = None
    if any(v not in OTHER_VOICES for _, v in todo):
        from convener.speech.hibari_tts import load_engine
        from convener.speech.settings import HibariSettings

        engine = load_engine(HibariSettings())
    got.update({(t, v): _speak(engine, t, v) for t, v in todo})
    np.savez(f, **{"\x1f".join(k): np.frombuffer(v, dtype="<i2") for k, v in got.items()})
    return got


def spectral_subtraction(pcm: bytes, lead_s: float = 0.25, alpha: float = 2.0, floor: float = 0.05) -> bytes:
    """The noise suppression tried (``--denoise``): power spectral subtraction, the noise
    spectrum taken from the clip's first ``lead_s`` (silence before the words), 32 ms frames."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    n, hop = 256, 128
    win = np.hanning(n).astype(np.float32)
    starts = range(0, max(len(x) - n, 0), hop)
    spec = np.fft.rfft(np.array([x[i:i + n] * win for i in starts]), axis=1)
    power = np.abs(spec) ** 2
    noise = power[: max(1, int(lead_s * 8000 / hop))].mean(axis=0)
    gain = np.sqrt(np.maximum(power - alpha * noise, floor * power) / np.maximum(power, 1e-9))
    frames_out = np.fft.irfft(spec * gain, n=n, axis=1)
    y = np.zeros(len(x), np.float32)
    norm = np.zeros(len(x), np.float32)
    for j, i in enumerate(starts):
        y[i:i + n] += frames_out[j] * win
        norm[i:i + n] += win**2
    return np.clip(y / np.maximum(norm, 1e-3), -32768, 32767).astype("<i2").tobytes()


# --- the sandbox path ---------------------------------------------------------------------------


async def through_sandbox(clips: list[Clip], cache: Path, record: bool) -> list[Clip]:
    """Each (condition, split, voice) group: its recording from ``cache``, or recorded now (``record``)."""
    groups: dict[tuple[str, str, str], list[Clip]] = {}
    for c in clips:
        groups.setdefault((c.condition, c.request.split, c.voice), []).append(c)
    heard: dict[tuple[str, str, str], list[bytes]] = {}
    missing: list[tuple[str, str, str]] = []
    for g, group in groups.items():
        f = cache / "sandbox-{}-{}-{}.npz".format(*g)
        keys = [f"{c.request.text}\x1f{c.voice}" for c in group]
        if f.exists():
            data = np.load(f, allow_pickle=False)
            if all(k in data.files for k in keys):
                heard[g] = [data[k].tobytes() for k in keys]
                continue
        missing.append(g)
    if missing and not record:
        raise SystemExit(f"no sandbox recording of {missing} in {cache}: run with --record "
                         "under flock /tmp/convener-asterisk.lock")
    if missing:
        from hearing_sandbox import record_turns

        todo = [c for g in missing for c in groups[g]]
        print(f"playing {len(todo)} clips through the sandbox Asterisk ...", file=sys.stderr)
        got = iter(await record_turns([c.pcm8k for c in todo]))
        for g in missing:
            heard[g] = [next(got) for _ in groups[g]]
            keys = [f"{c.request.text}\x1f{c.voice}" for c in groups[g]]
            np.savez(cache / "sandbox-{}-{}-{}.npz".format(*g),
                     **{k: np.frombuffer(h, dtype="<i2") for k, h in zip(keys, heard[g], strict=True)})
    return [Clip(c.request, c.voice, c.condition, h)
            for g, group in groups.items() for c, h in zip(group, heard[g], strict=True)]


# --- recognition --------------------------------------------------------------------------------


def moonshine_cpp_recogniser() -> Callable[[bytes], str]:
    """``--recognizer moonshine-cpp``: Moonshine base-en as shipped inside the ``moonshine-cpp``
    wheel (``pip install moonshine-cpp``; x86_64 Linux only). Measured, not adopted
    (docs/decisions.md). Called through ctypes: the wrapper's own ``transcribe`` is broken."""
    import ctypes

    import moonshine_cpp as ms  # type: ignore[import-not-found]

    model = ms.MoonshineModel(suppress_copyright_notice=True)

    def transcribe(pcm8k: bytes) -> str:
        audio = np.frombuffer(resample_pcm16(pcm8k, 8000, 16000), dtype="<i2").astype(np.float32) / 32768.0
        out = ctypes.c_char_p(0)
        err = ms.moonshine_lib.moonshine_transcribe(
            model.model_handle, audio.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), len(audio), ctypes.byref(out))
        if err:
            raise RuntimeError(f"moonshine_transcribe failed: {err}")
        text = (out.value or b"").decode("utf-8")
        ms.moonshine_lib.moonshine_free_text(out)
        return text

    return transcribe


async def recognise_moonshine(clips: list[Clip]) -> list[dict[str, object]]:
    transcribe = moonshine_cpp_recogniser()
    rows = []
    for c in clips:
        t0 = time.perf_counter()
        text = await asyncio.to_thread(transcribe, c.pcm8k) if c.pcm8k else ""
        rows.append({"split": c.request.split, "condition": c.condition, "voice": c.voice,
                     "said": c.request.text, "city": c.request.city, "heard": text,
                     "city_ok": city_heard(c.request.city, text),
                     "latency_ms": (time.perf_counter() - t0) * 1000})
    return rows


async def recognise(clips: list[Clip], recognizer: str, bias_mode: str, order: str,
                    beam: int = 1, noisy_beam: int | None = None, window: int = 0,
                    doubt_below: float | None = None) -> list[dict[str, object]]:
    if recognizer == "moonshine-cpp":  # takes no prompt: every bias mode is "none"
        return await recognise_moonshine(clips)
    settings = WhisperSettings(model=recognizer, beam_size=beam)
    if doubt_below is not None:
        settings.doubt_beam_below = doubt_below
    if window:  # not validated: the bench may try windows the settings refuse
        settings.window_s = window
    if noisy_beam is not None:  # 0: off, every turn decoded with ``beam``
        settings.noisy_beam_size = noisy_beam or beam
    asr = WhisperAsr(settings)
    await asr.warm()
    rows = []
    for c in clips:
        bias = bias_for(bias_mode, c.request)
        if order == "question-terms" and bias is not None and bias.question:
            # the alternative wording measured on the tune split: question first, then the terms
            asr.settings.initial_prompt = bias.question
            bias = BiasContext(bias.terms, "", bias.vocabulary_count)
        else:
            asr.settings.initial_prompt = ""
        t0 = time.perf_counter()
        final = await asr.transcribe_pcm(c.pcm8k, 8000, bias=bias) if c.pcm8k else None
        latency = time.perf_counter() - t0
        text = final.text if final else ""
        rows.append({"split": c.request.split, "condition": c.condition, "voice": c.voice,
                     "said": c.request.text, "city": c.request.city, "heard": text,
                     "city_ok": city_heard(c.request.city, text), "latency_ms": latency * 1000})
    return rows


def corrected(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The "vocab+fix" rows: the "vocab" transcripts through convener's vocabulary correction
    (convener.speech.correction, default similarity), with the same vocabulary."""
    from convener.speech.correction import correct_text
    from convener.speech.settings import SpeechSettings

    min_sim = SpeechSettings().vocabulary_min_similarity
    out = []
    for r in rows:
        req = Request(str(r["split"]), str(r["said"]), str(r["city"]), "")
        t0 = time.perf_counter()
        text, _ = correct_text(str(r["heard"]), vocabulary_for("vocab", req), min_sim)
        spent = (time.perf_counter() - t0) * 1000
        out.append({**r, "heard": text, "city_ok": city_heard(str(r["city"]), text),
                    "latency_ms": float(r["latency_ms"]) + spent, "bias": "vocab+fix"})  # type: ignore[arg-type]
    return out


def summarise(rows: list[dict[str, object]]) -> dict[str, object]:
    lat = [float(r["latency_ms"]) for r in rows]  # type: ignore[arg-type]
    return {
        "n": len(rows),
        "entity": sum(bool(r["city_ok"]) for r in rows) / len(rows) if rows else float("nan"),
        "wer": corpus_wer([(str(r["said"]), str(r["heard"])) for r in rows]),
        "p50": pct(lat, 50),
        "p95": pct(lat, 95),
    }


def print_table(rows: list[dict[str, object]]) -> None:
    print(f"{'mode':8} {'recogniser':9} {'bias':7} {'condition':9} {'split':8} {'n':>4} {'entity':>7} {'WER':>6} "
          f"{'p50 ms':>7} {'p95 ms':>7}")
    keys: dict[tuple[object, ...], list[dict[str, object]]] = {}
    for r in rows:
        keys.setdefault((r["mode"], r["recognizer"], r["bias"], r["condition"], r["split"]), []).append(r)
    for (mode, rec, bias_mode, cond, split), group in keys.items():
        s = summarise(group)
        print(f"{mode!s:8} {rec!s:9} {bias_mode!s:7} {cond!s:9} {split!s:8} {s['n']:>4} {s['entity']:>7.1%} "
              f"{s['wer']:>6.3f} {s['p50']:>7.0f} {s['p95']:>7.0f}")


def from_json(paths: list[Path]) -> int:
    """Reprint earlier runs' tables (``--json`` files), the city check applied again."""
    rows: list[dict[str, object]] = []
    for path in paths:
        for r in json.loads(path.read_text()):
            r["city_ok"] = city_heard(str(r["city"]), str(r["heard"]))
            rows.append(r)
    print_table(rows)
    return 0


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("offline", "sandbox"), default="offline")
    ap.add_argument("--recognizer", default=",".join(RECOGNIZERS),
                    help="tiny.en, base; moonshine-cpp (needs pip install moonshine-cpp; measured, not adopted)")
    ap.add_argument("--bias", default=",".join(BIASES))
    ap.add_argument("--condition", default=",".join(CONDITIONS))
    ap.add_argument("--split", default="tune,heldout")
    ap.add_argument("--voice", default=",".join(VOICES))
    ap.add_argument("--order", choices=("terms-question", "question-terms"), default="terms-question",
                    help="prompt wording (chosen on the tune split; see docs/decisions.md)")
    ap.add_argument("--denoise", action="store_true", help="spectral subtraction before recognition (measured, "
                    "not adopted: docs/decisions.md)")
    ap.add_argument("--beam", type=int, default=1, help="Whisper beam size (the default is 1)")
    ap.add_argument("--noisy-beam", type=int, default=None,
                    help="beam size on noisy lines (default: speech.whisper.noisy_beam_size; 0 = off)")
    ap.add_argument("--doubt-below", help="comma-separated speech.whisper.doubt_beam_below values, side by side "
                    "(default: the setting's); shown as recogniser<value")
    ap.add_argument("--window", default="0", help="comma-separated Whisper encoder windows in s, side by side "
                    "(0 = speech.whisper.window_s); shown as recogniser@window")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/convener-hearing"),
                    help="synthesised voices (and sandbox recordings) are kept here between runs")
    ap.add_argument("--json", type=Path, help="also write every row as JSON")
    ap.add_argument("--record", action="store_true",
                    help="sandbox mode: record what is not in the cache yet (needs the Asterisk lock); "
                         "with --recognizer none, only record")
    ap.add_argument("--from-json", type=Path, nargs="+", help="only reprint the tables of earlier --json runs")
    args = ap.parse_args()
    if args.from_json:
        return from_json(args.from_json)
    splits = args.split.split(",")
    conditions = args.condition.split(",")
    reqs = [r for r in requests() if r.split in splits]
    t0 = time.perf_counter()
    wanted = tuple(args.voice.split(","))
    if unknown := [v for v in wanted if v not in ALL_VOICES]:
        ap.error(f"--voice: unknown {unknown} (known: {', '.join(ALL_VOICES)})")
    print(f"making audio for {len(reqs)} requests x {len(wanted)} voices ...", file=sys.stderr)
    voices = synthesise(requests(), args.cache, wanted)
    clips = caller_audio(voices, reqs, conditions, phone=args.mode == "offline", voices=wanted)
    if args.mode == "sandbox":
        clips = await through_sandbox(clips, args.cache, args.record)
        if args.record and args.recognizer == "none":
            return 0
    if args.denoise:
        clips = [Clip(c.request, c.voice, c.condition, spectral_subtraction(c.pcm8k)) for c in clips]
    print(f"{len(clips)} clips ({time.perf_counter() - t0:.0f} s); recognising ...", file=sys.stderr)
    all_rows: list[dict[str, object]] = []
    noisy = WhisperSettings().noisy_beam_size if args.noisy_beam is None else (args.noisy_beam or args.beam)
    print(f"\nhearing ({args.mode} mode; {args.order}; beam {args.beam}, {noisy} on noisy lines"
          f"{'; denoised' if args.denoise else ''}); "
          "entity = city recognised; "
          "latency = end of turn → text")
    print(f"{'recogniser':9} {'bias':9} {'condition':9} {'split':8} {'n':>4} {'entity':>7} {'WER':>6} "
          f"{'p50 ms':>7} {'p95 ms':>7}")
    doubts: list[float | None] = [None] if args.doubt_below is None else [float(x) for x in args.doubt_below.split(",")]
    for model, window, doubt in [(r, int(w), d) for r in args.recognizer.split(",") for w in args.window.split(",")
                                 for d in doubts]:
        rec = (f"{model}@{window}s" if window else model) + (f"<{doubt:g}" if doubt is not None else "")
        for bias_mode in args.bias.split(","):
            rows = await recognise(clips, model, bias_mode, args.order, args.beam, args.noisy_beam, window, doubt)
            for r in rows:
                r.update(recognizer=rec, bias=bias_mode, mode=args.mode, order=args.order)
            variants = [(bias_mode, rows)] + ([("vocab+fix", corrected(rows))] if bias_mode == "vocab" else [])
            for name, vrows in variants:
                all_rows.extend(vrows)
                for cond in conditions:
                    for split in splits:
                        s = summarise([r for r in vrows if r["condition"] == cond and r["split"] == split])
                        print(f"{rec:9} {name:9} {cond:9} {split:8} {s['n']:>4} {s['entity']:>7.1%} "
                              f"{s['wer']:>6.3f} {s['p50']:>7.0f} {s['p95']:>7.0f}", flush=True)
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        await asyncio.to_thread(args.json.write_text, json.dumps(all_rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
