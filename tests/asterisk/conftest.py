"""Fixtures for tests against the real sandbox Asterisk 22 (started here if not running)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from convener.app.application import ConvenerApp
from convener.app.testcall import TestCaller
from convener.ari.rest import AriClient
from convener.config import Config, load_config
from convener.sandbox.runtime import Credentials, Sandbox


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    sb = Sandbox()
    sb.up()
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
