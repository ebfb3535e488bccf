"""The Stasis call lifecycle against the real sandbox Asterisk: join, release, no leaks."""

from __future__ import annotations

import asyncio
import contextlib

from ast_helpers import assert_clean, room_callers

from convener.app.application import ConvenerApp
from convener.ari.errors import AriError
from convener.tools.testcall import TestCaller


async def test_call_joins_room_bridge_and_releases_everything(app, caller: TestCaller, ari):
    leg = await caller.place("100")
    bridge_id = await leg.wait_in_bridge()
    assert bridge_id.startswith("convener-convener-room-lobby-")
    bridge = await ari.bridge(bridge_id)
    assert leg.remote_id in bridge.channels
    assert bridge.bridge_type == "mixing"  # media mixed inside Asterisk
    call = app.calls[leg.remote_id]
    assert call.room == "lobby" and call.setup_ms is not None
    await leg.hangup()
    await assert_clean(ari, app)


async def test_room_argument_shares_one_conference(app, caller: TestCaller, ari):
    a = await caller.place(room="sales")
    b = await caller.place(room="sales")
    c = await caller.place(room="support")
    ba, bb, bc = await asyncio.gather(a.wait_in_bridge(), b.wait_in_bridge(), c.wait_in_bridge())
    assert ba == bb and ba != bc
    assert set(room_callers(await ari.bridge(ba))) == {a.remote_id, b.remote_id}
    await a.hangup()
    await a.wait_ended()
    await asyncio.sleep(0.2)
    assert room_callers(await ari.bridge(ba)) == [b.remote_id]  # the room lives on for b
    await b.hangup()
    await c.hangup()
    await assert_clean(ari, app)


async def test_ten_sequential_calls_leak_nothing(app, caller: TestCaller, ari):
    for _ in range(10):
        leg = await caller.place("100")
        await leg.wait_in_bridge()
        await leg.hangup()
        await leg.wait_ended()
    await assert_clean(ari, app)
    assert app.calls_total == 10


async def test_twenty_concurrent_calls_leak_nothing(app, caller: TestCaller, ari):
    legs = await asyncio.gather(*(caller.place("100") for _ in range(20)))
    bridges = await asyncio.gather(*(leg.wait_in_bridge(15) for leg in legs))
    assert len(set(bridges)) == 1  # all in the lobby's one conference
    assert len(app.calls) == 20
    await asyncio.gather(*(leg.hangup() for leg in legs))
    await assert_clean(ari, app, timeout=10)


async def test_continue_returns_caller_to_next_priority(app, caller: TestCaller, ari):
    leg = await caller.place("100")
    await leg.wait_in_bridge()
    await app.calls[leg.remote_id].continue_in_dialplan()
    await leg.wait_ended()  # priority 4 NoOp, then Hangup()
    after = [d for a, d in leg.dialplan if a == "NoOp"]
    assert any("back in the dialplan, STASISSTATUS=SUCCESS" in d for d in after), leg.dialplan
    await assert_clean(ari, app)


async def test_dtmf_zero_returns_caller_to_dialplan(app, caller: TestCaller, ari):
    leg = await caller.place("100")
    await leg.wait_in_bridge()
    await leg.send_dtmf("0")
    await leg.wait_ended()
    assert any("back in the dialplan" in d for a, d in leg.dialplan if a == "NoOp"), leg.dialplan
    assert leg.outcome() == {"kind": "continued", "target": None}  # what `convener call` reports
    await assert_clean(ari, app)


async def test_other_dtmf_keeps_the_call(app, caller: TestCaller, ari):
    leg = await caller.place("100")
    await leg.wait_in_bridge()
    await leg.send_dtmf("5")
    await asyncio.sleep(0.5)
    assert not leg.ended and leg.remote_id in app.calls
    await leg.hangup()
    assert leg.outcome() == {"kind": "caller_hung_up", "target": None}
    await assert_clean(ari, app)


async def test_convener_shutdown_hands_callers_back_and_releases(config, sandbox, caller, ari):
    application = ConvenerApp(config)
    task = asyncio.create_task(application.run())
    await asyncio.wait_for(application.stream.connected.wait(), 10)
    legs = [await caller.place("100") for _ in range(3)]
    await asyncio.gather(*(leg.wait_in_bridge() for leg in legs))
    await application.stop()
    await asyncio.wait_for(task, 15)
    await asyncio.gather(*(leg.wait_ended() for leg in legs))
    await assert_clean(ari)
    assert application.errors == 0



async def test_callers_hanging_up_during_setup_are_normal_ends(config, sandbox, caller: TestCaller, ari):
    """A caller who hangs up while convener is still building their listening path (snoop,
    external media, listen bridge: Asterisk then answers 400 or 404) ends the call like any
    hang-up: no error counted, nothing left in Asterisk. The hang-ups are spread over the first
    60 ms of the call, timed from convener's own StasisStart."""
    from ast_helpers import assert_clean_since, snapshot, start_app, stop_app

    app = await start_app(config)
    hangups: set[asyncio.Task[None]] = set()
    delays = iter([0.002 * i for i in range(30)])

    async def hang_up_after(call_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(AriError):
            await ari.hangup(call_id)

    def on_started(call) -> None:
        task = asyncio.create_task(hang_up_after(call.id, next(delays)))
        hangups.add(task)

    app.on_call_started.append(on_started)
    try:
        before = await snapshot(ari)
        for _ in range(30):
            leg = await caller.place("100")
            await leg.wait_ended()
        await asyncio.gather(*hangups)
        await assert_clean_since(ari, app, before, timeout=10)
        assert app.calls_total == 30
        assert app.errors == 0 and app.setup_failures == 0, (app.errors, app.setup_failures)
    finally:
        await stop_app(app)
