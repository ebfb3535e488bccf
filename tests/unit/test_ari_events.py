"""ARI event decoding: typed events, unknown ignored, malformed rejected with MalformedEvent."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convener.ari import events as ev
from convener.ari.errors import MalformedEvent

CH = {"id": "1700000000.1", "name": "PJSIP/phone1-00000001", "state": "Up",
      "caller": {"name": "Alice", "number": "5551000"},
      "dialplan": {"context": "from-internal", "exten": "100", "priority": 3},
      "channelvars": {"UNICASTRTP_LOCAL_PORT": "30002"}}
BR = {"id": "b1", "technology": "softmix", "bridge_type": "mixing", "channels": ["1700000000.1"]}
BASE = {"application": "convener", "timestamp": "2026-11-26T12:00:00.000+0000", "asterisk_id": "x"}

SAMPLES = [
    ({"type": "StasisStart", "channel": CH, "args": ["room=sales"]}, ev.StasisStart),
    ({"type": "StasisEnd", "channel": CH}, ev.StasisEnd),
    ({"type": "ChannelStateChange", "channel": CH}, ev.ChannelStateChange),
    ({"type": "ChannelHangupRequest", "channel": CH, "cause": 16, "soft": True}, ev.ChannelHangupRequest),
    ({"type": "ChannelDestroyed", "channel": CH, "cause": 16, "cause_txt": "Normal"}, ev.ChannelDestroyed),
    ({"type": "ChannelDtmfReceived", "channel": CH, "digit": "0", "duration_ms": 100}, ev.ChannelDtmfReceived),
    ({"type": "ChannelTalkingStarted", "channel": CH}, ev.ChannelTalkingStarted),
    ({"type": "ChannelTalkingFinished", "channel": CH, "duration": 1200}, ev.ChannelTalkingFinished),
    ({"type": "ChannelDialplan", "channel": CH, "dialplan_app": "NoOp", "dialplan_app_data": "x"},
     ev.ChannelDialplan),
    ({"type": "ChannelVarset", "variable": "X", "value": "1", "channel": CH}, ev.ChannelVarset),
    ({"type": "ChannelVarset", "variable": "GLOBAL", "value": "1"}, ev.ChannelVarset),
    ({"type": "BridgeCreated", "bridge": BR}, ev.BridgeCreated),
    ({"type": "BridgeDestroyed", "bridge": BR}, ev.BridgeDestroyed),
    ({"type": "ChannelEnteredBridge", "bridge": BR, "channel": CH}, ev.ChannelEnteredBridge),
    ({"type": "ChannelLeftBridge", "bridge": BR, "channel": CH}, ev.ChannelLeftBridge),
    ({"type": "PlaybackStarted", "playback": {"id": "p1", "media_uri": "sound:hello-world"}},
     ev.PlaybackStarted),
    ({"type": "PlaybackFinished", "playback": {"id": "p1", "state": "done"}}, ev.PlaybackFinished),
    ({"type": "RecordingFinished", "recording": {"name": "r1", "duration": 3}}, ev.RecordingFinished),
    ({"type": "ApplicationReplaced"}, ev.ApplicationReplaced),
]


@pytest.mark.parametrize(("data", "cls"), SAMPLES, ids=[s[0]["type"] for s in SAMPLES])
def test_decodes_typed_events(data, cls):
    event = ev.decode_event(json.dumps({**BASE, **data}))
    assert isinstance(event, cls)
    assert event.application == "convener"
    if "channel" in data:
        assert event.channel_id == "1700000000.1"


def test_fields_are_typed():
    e = ev.decode_event({**BASE, "type": "StasisStart", "channel": CH, "args": ["room=sales"]})
    assert isinstance(e, ev.StasisStart)
    assert e.args == ("room=sales",)
    assert e.channel.caller.number == "5551000"
    assert e.channel.priority == 3
    assert e.channel.channelvars["UNICASTRTP_LOCAL_PORT"] == "30002"
    h = ev.decode_event({**BASE, "type": "ChannelHangupRequest", "channel": CH, "cause": "16"})
    assert isinstance(h, ev.ChannelHangupRequest) and h.cause == 16


def test_unknown_event_types_are_ignored():
    assert ev.decode_event({**BASE, "type": "DeviceStateChanged", "device_state": {}}) is None


@pytest.mark.parametrize("bad", [
    "not json", "[1, 2]", "{}", '{"type": ""}', '{"type": 5}',
    json.dumps({"type": "StasisStart"}),
    json.dumps({"type": "StasisStart", "channel": {"name": "no id"}}),
    json.dumps({"type": "StasisStart", "channel": CH, "args": "room=x"}),
    json.dumps({"type": "ChannelDtmfReceived", "channel": CH, "duration_ms": "long"}),
    json.dumps({"type": "ChannelEnteredBridge", "channel": CH, "bridge": []}),
    json.dumps({"type": "PlaybackStarted", "playback": None}),
    b"\xff\xfe",
])
def test_malformed_events_raise_malformed_event(bad):
    with pytest.raises(MalformedEvent):
        ev.decode_event(bad)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(etype=st.sampled_from([*sorted(ev.HANDLED_TYPES), "Other"]),
       fields=st.dictionaries(st.sampled_from(["channel", "bridge", "playback", "recording", "args",
                                               "cause", "digit", "duration_ms", "variable", "soft"]),
                              json_values, max_size=5))
def test_fuzz_decoder_only_raises_malformed(etype, fields):
    try:
        ev.decode_event(json.dumps({"type": etype, **fields}))
    except MalformedEvent:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_fuzz_raw_bytes(data):
    try:
        ev.decode_event(data)
    except MalformedEvent:
        pass
