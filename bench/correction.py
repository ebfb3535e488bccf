"""Vocabulary correction (convener.speech.correction): what it fixes and what it breaks.

    PYTHONPATH=src .venv/bin/python bench/correction.py [--hearing FILE.json ...] [--show 0.8]

Two sides, per ``min_similarity``:

- **changes it should not make**: typed requests that no recogniser touched (the routing set's
  340 requests and the turn-taking fresh part's phrases), corrected with a 40-term vocabulary
  (the hearing benchmark's 36 cities and the README's example words). Every change there is a
  false one: the text was right.
- **cities it brings back**: transcripts written by ``bench/hearing.py --json`` (pass the
  files; tune them on the ``tune`` split only): cities right before and after, transcripts whose
  city was right and that the correction changed anyway.

Nothing is asserted; it prints counts, and with ``--show T`` every change at threshold T.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hearing import CITIES_FRESH, CITIES_HELDOUT, CITIES_TUNE, city_heard

from convener.speech.correction import VocabularyCorrector

HERE = Path(__file__).resolve().parent
VOCABULARY = (*CITIES_TUNE, *CITIES_HELDOUT, *CITIES_FRESH, "Albuquerque", "Sacramento", "Oak Street",
              "Nimbus Pro")
THRESHOLDS = (0.7, 0.75, 0.8, 0.85, 0.9)


def typed_texts() -> list[str]:
    out = [json.loads(line)["text"] for line in (HERE / "data/routing/requests.jsonl").read_text().splitlines()
           if line.strip()]

    def walk(x: object) -> None:
        if isinstance(x, str):
            if " " in x:
                out.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(json.loads((HERE / "data/turn_taking/fresh.json").read_text()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hearing", type=Path, nargs="*", default=[])
    ap.add_argument("--show", type=float, default=None)
    args = ap.parse_args()
    typed = typed_texts()
    rows = [r for f in args.hearing for r in json.loads(f.read_text())
            if r.get("bias", "vocab") == "vocab"]  # the recogniser's own text, not hearing's vocab+fix rows
    groups = sorted({(str(r["split"]), str(r["condition"])) for r in rows})
    print(f"vocabulary {len(VOCABULARY)} terms; {len(typed)} typed texts; {len(rows)} transcripts")
    head = "  ".join(f"{s}/{c} right before→after, broke" for s, c in groups)
    print(f"{'min sim':>7}  {'typed texts changed':>20}  {head}")
    for t in THRESHOLDS:
        fix = VocabularyCorrector(VOCABULARY, t)
        changed = [(x, fix.correct(x)) for x in typed]
        false = [(x, y) for x, (y, ch) in changed if ch]
        cells = []
        for split, cond in groups:
            g = [r for r in rows if r["split"] == split and r["condition"] == cond]
            before = sum(city_heard(str(r["city"]), str(r["heard"])) for r in g)
            after, broke = 0, 0
            for r in g:
                y, ch = fix.correct(str(r["heard"]))
                ok = city_heard(str(r["city"]), y)
                after += ok
                broke += bool(ch) and city_heard(str(r["city"]), str(r["heard"]))
                if args.show == t and ch:
                    print(f"    [{split}/{cond}] {r['heard']!r} -> {y!r} ({'right' if ok else 'wrong'})")
            cells.append(f"{before:>3}→{after:<3} of {len(g):<3} {broke:>2}")
        print(f"{t:>7.2f}  {len(false):>20}  " + "  ".join(f"{c:>28}" for c in cells))
        if args.show == t:
            for x, y in false:
                print(f"    [typed] {x!r} -> {y!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
