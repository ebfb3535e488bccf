"""Event WebSocket dropped and Asterisk restarted, idle and with calls up."""

from __future__ import annotations

import asyncio
import time

from ast_helpers import assert_clean, room_callers, wait_until

from convener.app.application import ConvenerApp
from convener.tools.testcall import TestCaller


async def _new_call_works(caller: TestCaller) -> None:
    leg = await caller.place("100")
    await leg.wait_in_bridge()
    await leg.hangup()
    await leg.wait_ended()


async def test_websocket_dropped_while_idle(app: ConvenerApp, caller: TestCaller, ari):
    await app.stream.drop()
    await wait_until(lambda: not app.stream.connected.is_set(), 2)
    await asyncio.wait_for(app.stream.connected.wait(), 2)
    assert app.stream.reconnects == 1
    await _new_call_works(caller)
    await assert_clean(ari, app)


async def test_websocket_dropped_with_calls_up(app: ConvenerApp, caller: TestCaller, ari):
    stay = await caller.place("100")
    gone = await caller.place("100")
    await asyncio.gather(stay.wait_in_bridge(), gone.wait_in_bridge())
    await app.stream.drop()
    await gone.hangup()  # this caller leaves while convener is not listening
    await gone.wait_ended()
    await asyncio.wait_for(app.stream.connected.wait(), 3)
    await wait_until(lambda: gone.remote_id not in app.calls, 3)
    assert stay.remote_id in app.calls  # the other call goes on
    bridge = await ari.bridge(stay.bridge_id)
    assert room_callers(bridge) == [stay.remote_id]
    await stay.hangup()
    await assert_clean(ari, app)


async def test_asterisk_restart_with_calls_up(app: ConvenerApp, caller: TestCaller, ari, sandbox):
    legs = [await caller.place("100") for _ in range(3)]
    await asyncio.gather(*(leg.wait_in_bridge() for leg in legs))
    assert len(app.calls) == 3
    await asyncio.to_thread(sandbox.restart)  # returns once ARI answers again
    answered = time.monotonic()
    await asyncio.wait_for(app.stream.connected.wait(), 5)
    reconnect_s = time.monotonic() - answered
    assert reconnect_s < 2.0, f"reconnected {reconnect_s:.2f}s after Asterisk answered"
    # The calls died with Asterisk: released, and nothing of theirs is left.
    await wait_until(lambda: not app.calls, 5)
    assert not app.rooms.rooms
    await asyncio.wait_for(caller.stream.connected.wait(), 5)
    await _new_call_works(caller)
    await assert_clean(ari, app)


async def test_new_instance_cleans_orphans_and_adopts_callers(config, sandbox, caller, ari):
    """A convener that died without cleaning up: the next one tears down its bridge and
    adopts the caller it left in the application, into the same room."""
    crashed = ConvenerApp(config)
    stream_task = asyncio.create_task(crashed.stream.run())  # no shutdown on exit: a crash
    await asyncio.wait_for(crashed.stream.connected.wait(), 5)
    leg = await caller.place(room="sales")
    old_bridge = await leg.wait_in_bridge()
    await crashed.stream.stop()
    await stream_task
    for call in crashed.calls.values():
        call.end_reason = "simulated crash"
        call._releasing = True

    fresh = ConvenerApp(config)
    task = asyncio.create_task(fresh.run())
    try:
        await asyncio.wait_for(fresh.stream.connected.wait(), 5)
        await wait_until(lambda: leg.remote_id in fresh.calls, 3)
        call = fresh.calls[leg.remote_id]
        assert call.room == "sales"
        await wait_until(lambda: call.joined_at is not None, 3)
        bridges = {b.id: b for b in await ari.bridges()}
        assert old_bridge not in bridges
        new = fresh.rooms.rooms["sales"].bridge_id
        assert room_callers(bridges[new]) == [leg.remote_id]
        await leg.hangup()
        await assert_clean(ari, fresh)
    finally:
        await fresh.stop()
        await asyncio.wait_for(task, 10)
        for call in crashed.calls.values():
            if call.task:
                call.task.cancel()
        await crashed.ari.close()  # a crashed process frees its sockets with it; this one lives on


async def test_wrong_credentials_retry_with_a_clear_log_never_crash(config, sandbox, caplog):
    import logging

    config.ari.password = "not-the-password"
    app = ConvenerApp(config)
    task = asyncio.create_task(app.run())
    with caplog.at_level(logging.WARNING, logger="convener.ari.stream"):
        await asyncio.sleep(1.5)
    assert not task.done(), "convener gave up (or crashed) instead of retrying"
    assert not app.ready and app.stream.backoff.attempt >= 2
    assert any("user or password is wrong" in r.getMessage() for r in caplog.records)
    assert all("not-the-password" not in r.getMessage() for r in caplog.records)
    await app.stop()
    await asyncio.wait_for(task, 5)
