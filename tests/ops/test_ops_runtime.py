from __future__ import annotations

import io
import logging

import aiohttp
import pytest

from convener.config import load_config
from convener.ops.http import OpsServerError
from convener.ops.runtime import OpsRuntime, configure_logging


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVENER_OPS_TOKEN", raising=False)
    c = load_config(None, env={"CONVENER_ARI_PASSWORD": "runtime-secret-pw"})
    c.ops.http_port = 0
    c.ops.state_dir = str(tmp_path)
    return c


async def test_start_serves_and_writes_then_stops(cfg, fake_app, tmp_path):
    ops = await OpsRuntime.start(cfg, fake_app)
    assert ops.server is not None and ops.transcripts is not None
    async with aiohttp.ClientSession() as s, s.get(ops.server.url + "/live") as r:
        assert r.status == 200
    ops.transcripts.start_conversation("c", "1", "lobby")
    ops.transcripts.add_turn("c", "caller", "hi")
    await ops.stop()
    assert (tmp_path / "transcripts.sqlite3").exists()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as s, s.get(ops.server.url + "/live"):
            pass


async def test_disabled_parts_are_not_started(cfg, fake_app, tmp_path):
    cfg.ops.http_enabled = False
    cfg.ops.transcripts = False
    ops = await OpsRuntime.start(cfg, fake_app)
    assert ops.server is None and ops.transcripts is None
    await ops.stop()
    assert list(tmp_path.iterdir()) == []


async def test_exposed_without_token_refuses_to_start(cfg, fake_app, tmp_path):
    cfg.ops.http_host = "0.0.0.0"
    with pytest.raises(OpsServerError, match="token"):
        await OpsRuntime.start(cfg, fake_app)


def test_configure_logging_redacts_the_config_secrets():
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        out = io.StringIO()
        c = load_config(None, env={"CONVENER_ARI_PASSWORD": "runtime-secret-pw"})
        configure_logging(c, stream=out)
        logging.getLogger("convener").warning("ARI password runtime-secret-pw")
        assert out.getvalue().rstrip().endswith("ARI password ***")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved:
            root.addHandler(h)
        root.setLevel(level)
        logging.captureWarnings(False)
