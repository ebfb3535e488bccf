"""With convener stopped, a call follows the dialplan past Stasis() and doctor says why."""

from __future__ import annotations

from convener.tools.doctor import run_checks
from convener.tools.testcall import TestCaller


async def test_call_without_convener_falls_through_to_hangup(caller: TestCaller, ari):
    leg = await caller.place("100")
    await leg.wait_ended()
    apps = [a for a, _ in leg.dialplan]
    assert "Stasis" in apps and apps[-1] == "Hangup", leg.dialplan
    assert any("STASISSTATUS=FAILED" in d for a, d in leg.dialplan if a == "NoOp"), leg.dialplan
    assert leg.bridge_id is None


async def test_doctor_reports_no_listener(config):
    checks = {c.name: c for c in await run_checks(config)}
    assert checks["ari"].ok
    assert checks["ari websocket"].ok and "handshake answered" in checks["ari websocket"].detail
    assert not checks["app"].ok and "no listener" in checks["app"].detail
    assert checks["dialplan"].ok  # the dialplan does name Stasis(convener)


async def test_doctor_all_green_with_convener_running(app, config):
    checks = await run_checks(config)
    assert all(c.ok for c in checks), [(c.name, c.detail) for c in checks]


async def test_doctor_wrong_password_and_wrong_app(config):
    config.ari.password = "wrong"
    checks = {c.name: c for c in await run_checks(config)}
    assert not checks["ari"].ok and "credentials" in checks["ari"].detail and checks["ari"].fix


async def test_doctor_dialplan_names_another_app(config):
    config.ari.app = "someother"
    checks = {c.name: c for c in await run_checks(config)}
    assert not checks["dialplan"].ok
    assert "not Stasis(someother)" in checks["dialplan"].detail
