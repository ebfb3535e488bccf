"""Warm transfers to the sandbox operator (and every fifth to a busy one) leave nothing behind: no
channel, no bridge, no socket, no task, in Asterisk or in convener. The transfers are started
on the call's actions directly (the spoken request is tested in test_actions.py); the summary
is spoken by convener's TTS each time. Prints the time from the start of a transfer to the
caller being connected. The default run makes 10 (8 warm, 2 busy); ``pytest -m soak`` makes
25 (20 warm, 5 busy)."""

from __future__ import annotations

import statistics
import time

import pytest
from ast_helpers import assert_clean_since, process_resources, snapshot, wait_until
from test_actions import transfer_settings

from convener.tools.stack import Stack


@pytest.mark.parametrize("rounds", [10, pytest.param(25, marks=pytest.mark.soak)])
async def test_transfers_leave_nothing_behind(config, sandbox, caller, ari, rounds):
    config.transfer = transfer_settings()
    config.voice.greeting = ""
    async with Stack(config) as stack:
        app = stack.app
        assert app is not None
        before = await snapshot(ari)
        connected_ms: list[float] = []
        inside_before = None
        for i in range(rounds):
            target = "busy" if i % 5 == 4 else "operator"
            leg = await caller.place("100")
            await leg.wait_in_bridge(timeout=10)
            await wait_until(lambda leg=leg: any(c.id == leg.remote_id for c in app.calls.values())
                             and app.rooms.rooms.get("lobby") is not None
                             and app.rooms.rooms["lobby"].state.get("conversation") is not None
                             and app.rooms.rooms["lobby"].state["conversation"].actions, 10)
            conv = app.rooms.rooms["lobby"].state["conversation"]
            (actions,) = conv.actions.values()
            t0 = time.monotonic()
            task = actions.transfer_to(target, announce=False)
            if target == "operator":
                await wait_until(lambda leg=leg: leg.outcome_var == "transferred:operator", 20)
                connected_ms.append((time.monotonic() - t0) * 1000)
            else:
                await task
                assert actions.machine is not None and actions.machine.failure == "busy"
            await leg.hangup()
            await leg.wait_ended(10)
            await assert_clean_since(ari, app, before, timeout=10)
            if i == 0:
                inside_before = process_resources()
        await wait_until(lambda: not app.calls, 5)
        inside_after = process_resources()
        assert inside_before is not None
        for k in ("udp", "tcp"):
            assert inside_after[k] <= inside_before[k], (k, inside_before, inside_after)
        assert inside_after["tasks"] <= inside_before["tasks"] + 2, (inside_before, inside_after)
        assert not app.owners, app.owners
        print(f"\n{len(connected_ms)} warm transfers: start -> connected p50 {statistics.median(connected_ms):.0f} ms, "
              f"max {max(connected_ms):.0f} ms (dial, answer, summary spoken, caller moved)")
    assert app.errors == 0
