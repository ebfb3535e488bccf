"""Fixtures for tests against the real sandbox Asterisk 22 (started here if not running)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sys
from collections.abc import AsyncIterator

import pytest

from convener.app.application import ConvenerApp
from convener.ari.rest import AriClient
from convener.config import Config, load_config
from convener.sandbox.runtime import Credentials, Sandbox
from convener.tools.testcall import TestCaller


async def _clear_leftovers(creds: Credentials) -> list[str]:
    """Hang up what an earlier process left in the shared sandbox (a benchmark killed mid-round
    leaves its callers' channels up), so the leak checks of this run see only this run's."""
    ari = AriClient(creds.ari_url, creds.ari_user, creds.ari_password)
    try:
        chans = [c.id for c in await ari.channels()]
        bridges = [b.id for b in await ari.bridges() if b.id.startswith(("convener-", "testcall-"))]
        for cid in chans:
            with contextlib.suppress(Exception):
                await ari.hangup(cid)
        for bid in bridges:
            with contextlib.suppress(Exception):
                await ari.destroy_bridge(bid)
        return chans + bridges
    finally:
        await ari.close()


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    sb = Sandbox()
    sb.up()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # no event loop of the tests' own
        left = pool.submit(asyncio.run, _clear_leftovers(sb.credentials())).result()
    if left:
        print(f"\n[sandbox] cleared {len(left)} channels/bridges an earlier process left: "
              f"{', '.join(left[:5])}{' ...' if len(left) > 5 else ''}", file=sys.stderr)
    return sb


@pytest.fixture(scope="session")
def creds(sandbox: Sandbox) -> Credentials:
    return sandbox.credentials()


@pytest.fixture
def config(creds: Credentials) -> Config:
    cfg = load_config(None, env={})
    cfg.ari.url, cfg.ari.user, cfg.ari.password = creds.ari_url, creds.ari_user, creds.ari_password
    return cfg


@pytest.fixture
async def ari(creds: Credentials) -> AsyncIterator[AriClient]:
    client = AriClient(creds.ari_url, creds.ari_user, creds.ari_password)
    yield client
    await client.close()


@pytest.fixture
async def app(config: Config, sandbox: Sandbox) -> AsyncIterator[ConvenerApp]:
    """convener's Stasis application running in this test's event loop."""
    application = ConvenerApp(config)
    task = asyncio.create_task(application.run())
    await asyncio.wait_for(application.stream.connected.wait(), 10)
    yield application
    await application.stop()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 15)
    assert application.errors == 0, "unhandled exceptions in calls"


@pytest.fixture
async def caller(creds: Credentials) -> AsyncIterator[TestCaller]:
    async with TestCaller(creds.ari_url, creds.ari_user, creds.ari_password) as c:
        yield c
