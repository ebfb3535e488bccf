"""The chat-completions client against tests/fakes/openai_server.py (the documented wire protocol)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from convener.llm.client import ChatClient, LlmError
from convener.llm.settings import LlmSettings
from convener.settings import ConfigError, load_section
from fakes.openai_server import FakeOpenAI

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


async def _pieces(client: ChatClient) -> list[str]:
    return [p async for p in client.stream(MESSAGES)]


async def _complete(client: ChatClient, **kw: Any) -> str:
    return await client.complete(MESSAGES, **kw)


async def _fails(settings: LlmSettings, call: Callable[..., Awaitable[Any]],
                 **kw: Any) -> pytest.ExceptionInfo[LlmError]:
    """The LlmError that ``call(client, **kw)`` raises."""
    client = ChatClient(settings)
    try:
        with pytest.raises(LlmError) as e:
            await call(client, **kw)
    finally:
        await client.close()
    return e


async def test_complete_returns_the_answer_and_sends_the_protocol(fake_llm: FakeOpenAI, llm_settings: LlmSettings):
    fake_llm.reply = '{"action": "none"}'
    client = ChatClient(llm_settings)
    try:
        assert await client.complete(MESSAGES, json_mode=True) == '{"action": "none"}'
    finally:
        await client.close()
    body = fake_llm.requests[-1].body
    assert body["model"] == "test-model" and body["stream"] is False and body["messages"] == MESSAGES
    assert body["response_format"] == {"type": "json_object"}
    assert "Authorization" not in fake_llm.requests[-1].headers  # no key in the environment


async def test_stream_yields_tokens_as_they_arrive(fake_llm: FakeOpenAI, llm_settings: LlmSettings):
    fake_llm.reply = "One two three. Four five."
    fake_llm.first_token_delay = 0.2
    fake_llm.tokens_per_second = 20
    client = ChatClient(llm_settings)
    t0 = time.monotonic()
    arrivals: list[float] = []
    pieces: list[str] = []
    try:
        async for p in client.stream(MESSAGES):
            arrivals.append(time.monotonic() - t0)
            pieces.append(p)
    finally:
        await client.close()
    assert "".join(pieces) == "One two three. Four five."
    assert len(pieces) == 5
    assert 0.18 <= arrivals[0] < 0.6, arrivals  # after the first-token delay, not at the end
    assert arrivals[-1] - arrivals[0] >= 0.15  # 4 more tokens at 20/s
    assert fake_llm.requests[-1].body["stream"] is True
    assert fake_llm.requests[-1].headers["Accept"] == "text/event-stream"


async def test_key_comes_from_the_environment_and_is_never_logged(
        fake_llm: FakeOpenAI, llm_settings: LlmSettings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture):
    key = "sk-test-0123456789abcdef"
    monkeypatch.setenv("CONVENER_TEST_LLM_KEY", key)
    fake_llm.api_key = key
    caplog.set_level(logging.DEBUG)
    client = ChatClient(llm_settings)
    try:
        assert "".join(await _pieces(client)) == fake_llm.reply
        assert fake_llm.requests[-1].headers["Authorization"] == f"Bearer {key}"
        fake_llm.api_key = "another-key"
        with pytest.raises(LlmError) as e:
            await client.complete(MESSAGES)
    finally:
        await client.close()
    assert e.value.kind == "rejected" and "401" in str(e.value)
    assert key not in str(e.value)
    assert key not in caplog.text
    assert key not in repr(llm_settings)


@pytest.mark.parametrize(("status", "kind"), [(500, "unavailable"), (503, "unavailable"), (400, "rejected"),
                                              (404, "rejected")])
async def test_error_status_is_typed(fake_llm: FakeOpenAI, llm_settings: LlmSettings, status: int, kind: str):
    fake_llm.status = status
    e = await _fails(llm_settings, _pieces)
    assert e.value.kind == kind
    assert f"HTTP {status}" in str(e.value) and "The server had an error" in str(e.value)


async def test_429_is_retried_once_when_retry_after_fits(fake_llm: FakeOpenAI, llm_settings: LlmSettings):
    fake_llm.rate_limit = 1
    fake_llm.retry_after = "0.2"
    client = ChatClient(llm_settings)
    t0 = time.monotonic()
    try:
        assert "".join(await _pieces(client)) == fake_llm.reply
    finally:
        await client.close()
    assert time.monotonic() - t0 >= 0.2
    assert len(fake_llm.requests) == 2


async def test_429_with_a_long_retry_after_is_reported(fake_llm: FakeOpenAI, llm_settings: LlmSettings):
    fake_llm.rate_limit = 5
    fake_llm.retry_after = "20"
    e = await _fails(llm_settings, _complete)
    assert e.value.kind == "rate_limited" and e.value.retry_after == 20.0
    assert len(fake_llm.requests) == 1  # not retried: the caller would wait 20 s


async def test_429_twice_is_not_retried_again(fake_llm: FakeOpenAI, llm_settings: LlmSettings):
    fake_llm.rate_limit = 2
    fake_llm.retry_after = "0"
    e = await _fails(llm_settings, _pieces)
    assert e.value.kind == "rate_limited" and len(fake_llm.requests) == 2


async def test_slow_first_token_times_out(fake_llm: FakeOpenAI, llm_settings: LlmSettings):
    fake_llm.first_token_delay = 1.5
    llm_settings.first_token_timeout = 0.3
    t0 = time.monotonic()
    e = await _fails(llm_settings, _pieces)
    assert e.value.kind == "timeout" and time.monotonic() - t0 < 0.8


async def test_complete_within_a_budget(fake_llm: FakeOpenAI, llm_settings: LlmSettings):
    fake_llm.first_token_delay = 1.0
    t0 = time.monotonic()
    e = await _fails(llm_settings, _complete, timeout=0.25)
    assert e.value.kind == "timeout" and time.monotonic() - t0 < 0.5


async def test_stream_cut_in_the_middle_is_garbage_after_the_first_tokens(
        fake_llm: FakeOpenAI, llm_settings: LlmSettings):
    fake_llm.reply = "The first sentence. The second one never arrives."
    fake_llm.cut_after_tokens = 3
    client = ChatClient(llm_settings)
    got: list[str] = []
    try:
        with pytest.raises(LlmError) as e:
            async for p in client.stream(MESSAGES):
                got.append(p)
    finally:
        await client.close()
    assert e.value.kind == "garbage"
    assert "".join(got) == "The first sentence. "


async def test_stalled_stream_times_out(fake_llm: FakeOpenAI, llm_settings: LlmSettings):
    fake_llm.stall_after_tokens = 2
    llm_settings.idle_timeout = 0.3
    e = await _fails(llm_settings, _pieces)
    assert e.value.kind == "timeout"


async def test_garbage_chunk_and_garbage_body(fake_llm: FakeOpenAI, llm_settings: LlmSettings):
    fake_llm.garbage = True
    client = ChatClient(llm_settings)
    try:
        with pytest.raises(LlmError) as e1:
            await _pieces(client)
        with pytest.raises(LlmError) as e2:
            await client.complete(MESSAGES)
    finally:
        await client.close()
    assert e1.value.kind == "garbage" and e2.value.kind == "garbage"


async def test_server_down_is_unavailable(llm_settings: LlmSettings, fake_llm: FakeOpenAI):
    await fake_llm.stop()
    e = await _fails(llm_settings, _pieces)
    assert e.value.kind == "unavailable"


def test_settings_are_strict():
    s = load_section(LlmSettings, {"base_url": "http://127.0.0.1:11434/v1", "model": "llama3.2"}, "llm")
    assert s.convener_budget_ms == 600
    with pytest.raises(ConfigError, match=r"llm\.modle: unknown key"):
        load_section(LlmSettings, {"modle": "x"}, "llm")
    with pytest.raises(ConfigError, match=r"llm\.base_url"):
        load_section(LlmSettings, {"base_url": "localhost:11434"}, "llm")
    with pytest.raises(ConfigError, match="convener_budget_ms"):
        load_section(LlmSettings, {"convener_budget_ms": 0}, "llm")


def test_the_key_is_redacted_from_every_log_line(monkeypatch: pytest.MonkeyPatch):
    from convener.config import load_config
    from convener.ops.logs import Redactor, secrets_of

    monkeypatch.setenv("CONVENER_LLM_API_KEY", "sk-live-abcdef123456")
    config = load_config(None, env={})
    assert "sk-live-abcdef123456" in secrets_of(config)
    assert "sk-live-abcdef123456" not in Redactor(secrets_of(config))("calling with sk-live-abcdef123456")
