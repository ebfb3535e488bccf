"""Credentials never reach the log output; call and conversation ids always do."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import warnings

import aiohttp
import pytest

from convener.config import load_config
from convener.ops.logs import RedactingFilter, Redactor, call_context, secrets_of, set_call_context, setup_logging

ARI_PASSWORD = "ari-Pa55w0rd!x"
DEEPGRAM_KEY = "dg_4f3c2b1a0e9d8c7b6a5f"
OPS_TOKEN = "opsTok3n-77aa88bb99"
PG_PASSWORD = "pgSecretZ9"
UNCONFIGURED = "never-configured-7Q"  # caught by shape only (URL userinfo, headers, params)
SECRETS = (ARI_PASSWORD, DEEPGRAM_KEY, OPS_TOKEN, PG_PASSWORD, UNCONFIGURED)


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.delenv("CONVENER_OPS_TOKEN", raising=False)
    path = tmp_path / "convener.toml"
    path.write_text(f"""
[ari]
password = "{ARI_PASSWORD}"
[ops]
token = "{OPS_TOKEN}"
transcripts_url = "postgresql://convener:{PG_PASSWORD}@db.internal:5432/convener"
""")
    return load_config(path, env={"DEEPGRAM_API_KEY": DEEPGRAM_KEY})


def _log_everything(cfg) -> None:
    log = logging.getLogger("convener.ari.stream")
    url = cfg.ari.events_url
    log.info("connecting to %s?app=convener&api_key=%s:%s", url, cfg.ari.user, cfg.ari.password)
    log.warning(f"password is {cfg.ari.password} (never do this)")
    log.info("deepgram key %s, headers %s", cfg.speech.deepgram.resolved_api_key(),
             {"Authorization": f"Token {cfg.speech.deepgram.resolved_api_key()}"})
    log.info("GET /metrics\r\nAuthorization: Bearer %s\r\nHost: x", cfg.ops.token)
    log.info("ops curl -H 'Authorization: Bearer %s'", UNCONFIGURED)
    log.info("transcripts at %s", cfg.ops.transcripts_url)
    log.info("ARI via http://convener:%s@127.0.0.1:8088/ari", UNCONFIGURED)
    log.info("websocket ws://127.0.0.1:8088/ari/events?app=c&api_key=convener:%s", UNCONFIGURED)
    log.info("auth %r", aiohttp.BasicAuth("convener", UNCONFIGURED))
    log.info("form password=%s&user=x; token=%s", UNCONFIGURED, UNCONFIGURED)
    log.info("urlencoded %s", "p%40ss".replace("p%40ss", ARI_PASSWORD.replace("!", "%21")))
    logging.LoggerAdapter(log, {"call_id": "c-1"}).error("adapter %s", cfg.ari.password)
    log.info("extra fields", extra={"ari_password": cfg.ari.password})
    try:
        try:
            raise ConnectionError(f"401 for api_key=convener:{cfg.ari.password}")
        except ConnectionError as inner:
            raise RuntimeError(f"deepgram refused key {cfg.speech.deepgram.resolved_api_key()}") from inner
    except RuntimeError:
        log.exception("handshake failed with token %s", cfg.ops.token)
    log.warning("stack with %s", cfg.ari.password, stack_info=True)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated key {DEEPGRAM_KEY}", UserWarning, stacklevel=1)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_credentials_are_never_logged(config, fmt, restore_root_logging):
    config.ops.log_format = fmt
    out = io.StringIO()
    setup_logging(config.ops, secrets=secrets_of(config), stream=out)
    assert set(secrets_of(config)) == {ARI_PASSWORD, DEEPGRAM_KEY, OPS_TOKEN, PG_PASSWORD}
    _log_everything(config)
    text = out.getvalue()
    assert text.count("\n") >= 15, text  # everything was logged ...
    assert "handshake failed" in text and "RuntimeError" in text and "ConnectionError" in text
    assert "db.internal:5432" in text and "127.0.0.1:8088" in text
    for secret in SECRETS:  # ... but no credential
        assert secret not in text, f"{secret!r} leaked:\n{text}"
    assert "%21" not in text.split("urlencoded", 1)[1].split("\n", 1)[0]
    assert "***" in text
    if fmt == "json":
        records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert len(records) >= 15
        assert any("exc" in r for r in records)


def test_context_ids_in_text_and_json(restore_root_logging):
    from convener.ops.settings import OpsSettings

    out = io.StringIO()
    setup_logging(OpsSettings(log_format="json"), stream=out)
    log = logging.getLogger("convener.app.call")

    async def call_task(cid: str) -> None:
        set_call_context(call_id=cid)
        await asyncio.sleep(0)
        with call_context(conversation_id=f"conv-{cid}"):
            log.info("turn")
        log.info("after")

    async def main() -> None:
        await asyncio.gather(call_task("a"), call_task("b"))

    asyncio.run(main())
    log.info("outside")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    turns = {(r["call_id"], r["conversation_id"]) for r in records if r["msg"] == "turn"}
    assert turns == {("a", "conv-a"), ("b", "conv-b")}
    after = [r for r in records if r["msg"] == "after"]
    assert {r["call_id"] for r in after} == {"a", "b"} and all("conversation_id" not in r for r in after)
    outside = next(r for r in records if r["msg"] == "outside")
    assert "call_id" not in outside
    assert outside["level"] == "INFO" and outside["logger"] == "convener.app.call"

    out2 = io.StringIO()
    setup_logging(OpsSettings(log_format="text"), stream=out2)
    with call_context(call_id="1700000.42", conversation_id="conv-9"):
        log.warning("hello")
    line = out2.getvalue().strip()
    assert line.endswith("WARNING convener.app.call [call=1700000.42 conv=conv-9]: hello")


def test_levels_and_verbosity(restore_root_logging):
    from convener.ops.settings import OpsSettings

    out = io.StringIO()
    setup_logging(OpsSettings(log_level="WARNING"), stream=out)
    logging.getLogger("x").info("quiet")
    setup_logging(OpsSettings(log_level="WARNING"), stream=out, verbosity=2)
    logging.getLogger("x").debug("loud")
    assert "quiet" not in out.getvalue() and "loud" in out.getvalue()
    ours = [h for h in logging.getLogger().handlers if any(isinstance(f, RedactingFilter) for f in h.filters)]
    assert len(ours) == 1  # reconfiguring replaces, never stacks


def test_redactor_keeps_ordinary_text():
    r = Redactor(["hunter22"])
    plain = "call 1700.1 joined room lobby; basic settings ok; token bucket full; 3 agents"
    assert r(plain) == plain
    assert r("pw hunter22 and hunter22") == "pw *** and ***"
    assert r("https://user:pw@host/x") == "https://user:***@host/x"
    assert r("short secrets are ignored") == "short secrets are ignored"


def test_replaces_basic_config_handler_but_keeps_others(restore_root_logging):
    from convener.ops.settings import OpsSettings

    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # what convener.cli installs
    keep = logging.FileHandler("/dev/null")
    root.addHandler(keep)
    out = io.StringIO()
    setup_logging(OpsSettings(), secrets=["topsecret-1"], stream=out)
    setup_logging(OpsSettings(), secrets=["topsecret-1"], stream=out)
    assert keep in root.handlers
    assert [type(h) for h in root.handlers].count(logging.StreamHandler) == 1
    logging.getLogger("convener").info("pw topsecret-1")
    assert out.getvalue().count("pw ***") == 1
    keep.close()
