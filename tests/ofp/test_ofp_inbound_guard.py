"""The inbound guard's decisions alone (no sockets): keys, buckets, replays, credentials."""

from __future__ import annotations

from convener.ofp.inbound_guard import (
    Claim,
    InboundGuard,
    InboundKeys,
    SeenBefore,
    TokenBuckets,
    body_digest,
    shared_keys,
)

CONV = "conv:1"
FLIGHTS = "tag:agents,2026:flights"
HOTELS = "tag:agents,2026:hotels"
AGENTS = {FLIGHTS: "flights", HOTELS: "hotels"}


def claim(sender: str = FLIGHTS, *, key: str | None = None, bearer: str | None = None,
          body: bytes = b"x", ids: tuple[str, ...] = (), conv: str = CONV) -> Claim:
    return Claim(conv, sender, body_digest(body), ids, key, bearer)


def test_keys_are_per_conversation_and_agent_and_follow_the_secret() -> None:
    keys = InboundKeys(b"secret")
    k = keys.key_for(CONV, FLIGHTS)
    assert len(k) == 32 and "=" not in k
    assert keys.matches(k, CONV, FLIGHTS)
    assert not keys.matches(k, CONV, HOTELS)
    assert not keys.matches(k, "conv:2", FLIGHTS)
    assert InboundKeys(b"secret").key_for(CONV, FLIGHTS) == k  # same secret after a restart
    assert InboundKeys(b"other").key_for(CONV, FLIGHTS) != k
    assert InboundKeys().key_for(CONV, FLIGHTS) != InboundKeys().key_for(CONV, FLIGHTS)  # random
    assert keys.url_for("http://h:8700/ofp/", CONV, FLIGHTS) == f"http://h:8700/ofp/agent/{k}"


def test_shared_keys_read_the_secret_from_the_named_variable() -> None:
    a = shared_keys("TEST_GUARD_SECRET_A", {"TEST_GUARD_SECRET_A": "s3"})
    assert a is shared_keys("TEST_GUARD_SECRET_A", {})  # one per process
    assert a.key_for(CONV, FLIGHTS) == InboundKeys(b"s3").key_for(CONV, FLIGHTS)


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    b = TokenBuckets(rate=2.0, burst=3)
    assert [b.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take("b", 0.0)  # per key
    assert not b.take("a", 0.4)  # 0.8 token back: not yet
    assert b.take("a", 0.6)
    assert [b.take("a", 100.0) for _ in range(4)] == [True, True, True, False]  # capped at burst


def test_token_buckets_are_bounded() -> None:
    b = TokenBuckets(rate=1.0, burst=1, max_keys=2)
    for k in "abc":
        b.take(k, 0.0)
    assert b.take("a", 0.0)  # "a" was dropped, so it starts full again


def test_seen_before_is_per_conversation_and_bounded() -> None:
    s = SeenBefore(max_entries=2)
    s.remember("c1", ["m1"])
    assert s.any_seen("c1", ["m0", "m1"]) and not s.any_seen("c2", ["m1"])
    s.remember("c1", ["m2", "m3"])
    assert not s.any_seen("c1", ["m1"])


def test_the_right_key_is_taken_once() -> None:
    g = InboundGuard(InboundKeys(b"k"))
    key = g.keys.key_for(CONV, FLIGHTS)
    assert g.check(claim(key=key, body=b"a", ids=("e1",)), live=True, agent_names=AGENTS, now=0) is None
    r = g.check(claim(key=key, body=b"a", ids=("e1",)), live=True, agent_names=AGENTS, now=0)
    assert r is not None and r.status == 409 and "replayed" in r.reason
    r = g.check(claim(key=key, body=b"b", ids=("e1",)), live=True, agent_names=AGENTS, now=0)
    assert r is not None and r.status == 409  # another body, the same dialog event id
    assert g.check(claim(key=key, body=b"c", ids=("e2",)), live=True, agent_names=AGENTS, now=0) is None


def test_refusals_and_their_statuses() -> None:
    g = InboundGuard(InboundKeys(b"k"), static_tokens={"flights": "tok-f", "hotels": "tok-h"})
    key_f = g.keys.key_for(CONV, FLIGHTS)

    def status(c: Claim, live: bool = True) -> tuple[int, str] | None:
        r = g.check(c, live=live, agent_names=AGENTS, now=0)
        return None if r is None else (r.status, r.reason)

    assert status(claim(key=key_f), live=False) == (404, "conversation not live")
    assert status(claim())[0] == 401  # type: ignore[index]
    spoof = status(claim(HOTELS, key=key_f, body=b"s1"))
    assert spoof is not None and spoof[0] == 403 and "spoofed" in spoof[1] and FLIGHTS in spoof[1]
    assert status(claim(key="A" * 32, body=b"s2"))[0] == 403  # type: ignore[index]
    assert status(claim(key=g.keys.key_for("conv:other", FLIGHTS), body=b"s3"))[0] == 403  # type: ignore[index]
    assert status(claim(bearer="tok-f", body=b"b1")) is None
    spoof = status(claim(HOTELS, bearer="tok-f", body=b"b2"))
    assert spoof is not None and spoof[0] == 403 and "agent flights" in spoof[1]
    assert status(claim(bearer="nope", body=b"b3")) == (403, "bearer token does not match agent flights")
    assert status(claim("tag:evil,2026:x", bearer="nope", body=b"b4"))[0] == 403  # type: ignore[index]
    for r in (spoof, status(claim(bearer="nope", body=b"b5"))):
        assert r is not None and "tok-" not in r[1]  # never the secret


def test_a_flood_is_cut_per_sender_and_per_peer() -> None:
    g = InboundGuard(InboundKeys(b"k"), rate=1.0, burst=2, peer_factor=2.0)
    key = g.keys.key_for(CONV, FLIGHTS)
    got = [g.check(claim(key=key, body=bytes([i])), live=True, agent_names=AGENTS, now=0) for i in range(3)]
    assert got[:2] == [None, None] and got[2] is not None and got[2].status == 429
    key_h = g.keys.key_for(CONV, HOTELS)
    assert g.check(claim(HOTELS, key=key_h, body=b"h"), live=True, agent_names=AGENTS, now=0) is None
    assert g.check(claim(key=key, body=b"later"), live=True, agent_names=AGENTS, now=1.0) is None
    peers = [g.admit_peer("10.0.0.1", 0) for _ in range(5)]
    assert peers[:4] == [None] * 4 and peers[4] is not None and peers[4].status == 429
    assert g.admit_peer("10.0.0.2", 0) is None


def test_a_refused_envelope_is_not_remembered() -> None:
    """A spoofed copy posted first must not make the genuine envelope look like a replay."""
    g = InboundGuard(InboundKeys(b"k"))
    key = g.keys.key_for(CONV, FLIGHTS)
    assert g.check(claim(key="bad", ids=("e1",)), live=True, agent_names=AGENTS, now=0) is not None
    assert g.check(claim(key=key, ids=("e1",)), live=True, agent_names=AGENTS, now=0) is None
