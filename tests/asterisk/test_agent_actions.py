"""Call actions asked by an agent through OFP (docs/actions.md), against the real sandbox: a
front-desk agent hangs up after its goodbye, transfers to a configured target, is refused an
unconfigured one (and told so), and collects digits the caller presses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ast_helpers import assert_clean_since, snapshot, wait_until
from test_actions import TARGETS, Call, _words, dominant_hz

from convener.app.actions.agent_actions import ACTION_FEATURE, ACTION_MIME, RESULT_FEATURE
from convener.app.actions.settings import TransferSettings
from convener.ofp.dialog import Feature, Token
from convener.ofp.envelope import Envelope, Event
from convener.ofp.settings import AgentSettings
from convener.settings import load_section
from convener.tools.callcheck import VoiceCaller
from convener.tools.stack import Stack
from convener_agents.base import ConversationState, Reply, SkillAgent


class Desk(SkillAgent):
    """A front desk that asks convener for call actions, and keeps what convener answers."""

    name = "Desk"
    synopsis = "The front desk: bookings by reference, putting callers through to sales, ending calls."
    keyphrases = ("front desk", "desk", "booking reference", "sales", "goodbye")
    descriptions = ("Looks up bookings by their reference, transfers callers to sales, ends calls.",)

    def __init__(self, service_url: str) -> None:
        super().__init__(service_url)
        self.heard: list[str] = []
        self.results: list[dict[str, Any]] = []
        self._action: dict[str, Any] | None = None

    def respond(self, state: ConversationState, text: str) -> Reply:
        self.heard.append(text)
        t = text.lower()
        if t.startswith("convener:"):  # the result of an action that did not happen
            return Reply("Sorry, I could not do that.") if " refused " in t or " failed " in t \
                else Reply("")
        digits = "".join(c for c in t if c.isdigit())
        if "bye" in t:
            self._action = {"action": "hangup"}
            return Reply("Goodbye, thanks for calling.")
        if "sales" in t:
            self._action = {"action": "transfer", "target": "sales"}
            return Reply("Connecting you to sales.")
        if "manager" in t:
            self._action = {"action": "transfer", "target": "manager"}
            return Reply("Let me try the manager.")
        if "reference" in t:
            self._action = {"action": "collect", "max_digits": 6, "terminator": "#", "timeout": 10}
            return Reply("Please type your booking reference, then press hash.")
        if digits:
            return Reply(f"Thank you, booking {' '.join(digits)} is confirmed.")
        return Reply("Front desk here. How can I help?")

    def _say(self, reply: Reply) -> list[Event]:
        events = super()._say(reply) if reply.text else []
        if self._action is not None and events:
            de = events[0].dialog_event
            assert de is not None
            de.features[ACTION_FEATURE] = Feature(ACTION_MIME, [Token(value=self._action)])
        self._action = None
        return events

    def handle(self, env: Envelope) -> list[Event]:
        for ev in env.events:
            de = ev.dialog_event
            if de is not None and RESULT_FEATURE in de.features:
                self.results.append(de.features[RESULT_FEATURE].tokens[0].value)
        return super().handle(env)


@pytest.fixture(scope="module")
def voice_caller():
    from convener.config import load_config

    return VoiceCaller(load_config(None, env={}))


@pytest.fixture
async def desk_stack(config, sandbox) -> AsyncIterator[tuple[Stack, Desk]]:
    from convener_agents.serve import RunningAgents, _start_all

    running = await _start_all([("desk", Desk(""), 0)], "127.0.0.1", RunningAgents())
    desk = running.agents["desk"]
    assert isinstance(desk, Desk)
    config.ofp.agents = {"desk": AgentSettings(url=running.urls["desk"])}
    config.voice.filler = ""  # "One moment" would be heard as the answer of a slow first turn
    config.transfer = load_section(TransferSettings, {
        "ring_timeout": 6, "targets": {**TARGETS, "sales": TARGETS["operator"]}})
    try:
        async with Stack(config, agents=False) as s:
            yield s, desk
        assert s.app is not None and s.app.errors == 0
    finally:
        await running.close()


async def _at_the_desk(call: Call) -> None:
    heard = await call.say("Can I speak with the front desk", reply_timeout=20.0)
    assert "desk" in heard or "help" in heard, heard


async def test_agent_hangs_up_after_its_goodbye(desk_stack, config, caller, voice_caller, ari):
    stack, _desk = desk_stack
    before = await snapshot(ari)
    async with Call(caller, config, voice_caller) as call:
        await _at_the_desk(call)
        heard = await call.say("That's all, goodbye")
        assert "thanks for calling" in heard, heard  # the goodbye was played to its end first
        await call.leg.wait_ended(10)
    assert call.leg.outcome() == {"kind": "hung_up_by_convener", "target": None}
    await assert_clean_since(ari, stack.app, before, timeout=8)


async def test_agent_transfers_to_a_configured_target(desk_stack, config, caller, voice_caller, ari):
    stack, desk = desk_stack
    before = await snapshot(ari)
    async with Call(caller, config, voice_caller) as call:
        await _at_the_desk(call)
        heard = await call.say("Sales, please")
        assert "sales" in heard, heard
        await wait_until(lambda: call.leg.outcome_var == "transferred:sales", 20)
        t = time.monotonic()
        await asyncio.sleep(1.5)
        hz = dominant_hz(call.heard_since(t))
        assert 420 <= hz <= 460, f"the caller does not hear the operator's tone ({hz:.0f} Hz)"
        await wait_until(lambda: {"action": "transfer", "status": "done"} in desk.results, 5)
    assert call.leg.outcome() == {"kind": "transferred", "target": "sales"}
    await assert_clean_since(ari, stack.app, before, timeout=8)


async def test_unconfigured_target_is_refused_and_the_agent_told(desk_stack, config, caller, voice_caller, ari):
    stack, desk = desk_stack
    async with Call(caller, config, voice_caller) as call:
        await _at_the_desk(call)
        heard = await call.say("I want the manager")
        await wait_until(lambda: desk.results, 5)
        (result,) = desk.results
        assert result["action"] == "transfer" and result["status"] == "refused"
        assert result["reason"] == "@unknownTarget", result
        media = call.leg.media
        if "not do that" not in heard:  # the desk's answer to the refusal follows its first words
            await media.wait_voice_after(time.monotonic(), 10)
            await media.wait_quiet(1.2, 15, since=time.monotonic())
        turn = call.report.turns[-1]
        everything = _words(await voice_caller.hear(media.audio_between(turn.heard_at - 0.1, time.monotonic())))
        assert "manager" in everything and "not do that" in everything, everything
        assert call.leg.outcome_var == ""
        (c,) = stack.app.calls.values()
        assert any(c.id in r.members for r in stack.app.rooms.rooms.values()), "the caller left the room"
        assert not [ch.id for ch in await ari.channels() if "-peer-" in ch.id], "something was dialled"
    assert call.leg.outcome() == {"kind": "caller_hung_up", "target": None}


async def test_digits_reach_the_agent(desk_stack, config, caller, voice_caller, ari):
    _stack, desk = desk_stack
    async with Call(caller, config, voice_caller) as call:
        await _at_the_desk(call)
        heard = await call.say("I have a booking reference")
        assert "hash" in heard or "reference" in heard, heard
        await asyncio.sleep(0.5)
        await call.leg.send_dtmf("4711#")
        await wait_until(lambda: any("4711" in h for h in desk.heard), 10)
        t = time.monotonic()
        first = await call.leg.media.wait_voice_after(t - 1.0, 10)
        assert first is not None
        await call.leg.media.wait_quiet(1.2, 15, since=first)
        said = _words(await voice_caller.hear(call.leg.media.audio_between(first - 0.1, time.monotonic())))
        assert "confirmed" in said, said
        assert call.leg.outcome_var == ""  # a 0 pressed for digits would not have continued the call
