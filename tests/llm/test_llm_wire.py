"""The wire protocol and the sentence cutter, pure."""

from __future__ import annotations

import pytest

from convener.llm import wire
from convener.llm.sentences import Sentences


def test_sse_lines():
    assert wire.parse_sse_line('data: {"choices":[{"delta":{"content":"Hi"}}]}\n') == wire.Chunk("Hi")
    assert wire.parse_sse_line("data: [DONE]") == wire.Chunk(done=True)
    assert wire.parse_sse_line(": keep-alive") is None
    assert wire.parse_sse_line("") is None
    assert wire.parse_sse_line("event: message") is None
    assert wire.parse_sse_line('data: {"choices":[]}') is None  # usage chunk
    end = wire.parse_sse_line('data: {"choices":[{"delta":{},"finish_reason":"stop"}]}')
    assert end == wire.Chunk("", finish_reason="stop")
    err = wire.parse_sse_line('data: {"error":{"message":"overloaded"}}')
    assert err is not None and err.error == "overloaded"
    for bad in ("data: {nope", 'data: [1]', 'data: {"x":1}', 'data: {"choices":[{"delta":{"content":3}}]}'):
        with pytest.raises(wire.WireError):
            wire.parse_sse_line(bad)


def test_completion_and_errors():
    assert wire.completion_text({"choices": [{"message": {"content": "ok"}}]}) == "ok"
    with pytest.raises(wire.WireError):
        wire.completion_text({"choices": []})
    assert wire.error_text(b'{"error":{"message":"bad model","type":"invalid_request_error"}}') == "bad model"
    assert wire.error_text(b'{"error":"model not found"}') == "model not found"
    assert wire.error_text(b"upstream down") == "upstream down"


def test_retry_after():
    assert wire.retry_after("2") == 2.0
    assert wire.retry_after("0.5") == 0.5
    assert wire.retry_after(None) is None and wire.retry_after("soon") is None
    assert wire.retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_sentences_from_tokens():
    s = Sentences()
    got: list[str] = []
    for tok in "Sure. Dr. Smith flies at 3.5 p.m. daily! Is that OK? Then".split(" "):
        got += s.feed(tok + " ")
    got += s.flush()
    assert got == ["Sure.", "Dr. Smith flies at 3.5 p.m. daily!", "Is that OK?", "Then"]


def test_a_long_first_sentence_is_cut_at_a_comma():
    s = Sentences(soft_limit=40)
    out = s.feed("Well, there are several flights from Boston to Denver tomorrow, the first at six")
    assert out == ["Well, there are several flights from Boston to Denver tomorrow,"]
    assert s.feed(" and the last at ten.\n") == ["the first at six and the last at ten."]
    assert s.flush() == []
