"""Which streamed follow-up sentences may still be spoken (pure)."""

from __future__ import annotations

from convener.ofp.streams import ReplyStreams

A, B = "tag:t,2026:a", "tag:t,2026:b"


def test_follow_ups_chain_on_previous_id():
    s = ReplyStreams()
    s.head(A, "1")
    assert s.follow(A, "1", "2") and s.follow(A, "2", "3")
    assert s.current(A, "3") and s.current(A, "1")
    assert not s.follow(A, "1", "x")  # skips back: not the end of the chain
    assert not s.follow(B, "3", "y")  # another agent's chain
    assert s.dropped == 2
    assert s.follow(A, "2", "3")  # the same sentence again (another caller of the room): taken


def test_cut_drops_everything_that_follows():
    s = ReplyStreams()
    s.head(A, "1")
    s.head(B, "b1")
    assert sorted(s.cut()) == [A, B]
    assert not s.accepts(A, "1") and not s.current(A, "1")
    assert not s.follow(B, "b1", "b2")
    s.head(A, "new")  # the next answer starts a stream of its own
    assert s.follow(A, "new", "n2")


def test_a_new_head_replaces_the_old_stream():
    s = ReplyStreams()
    s.head(A, "1")
    s.head(A, "9")
    assert not s.accepts(A, "1") and s.accepts(A, "9")
