"""Typed ARI events and a decoder that never lets bad input escape as anything but MalformedEvent.

``decode_event(text)`` returns a typed event, ``None`` for a well-formed event of a type we do not
handle (ignored), and raises ``MalformedEvent`` for anything else (logged and skipped by callers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from convener.ari.errors import MalformedEvent
from convener.ari.models import Bridge, Channel, LiveRecording, Playback


@dataclass(frozen=True, slots=True)
class Event:
    type: ClassVar[str] = ""
    application: str
    timestamp: str
    asterisk_id: str

    @property
    def channel_id(self) -> str | None:
        ch = getattr(self, "channel", None)
        return ch.id if ch is not None else None

    @property
    def bridge_id(self) -> str | None:
        br = getattr(self, "bridge", None)
        return br.id if br is not None else None


@dataclass(frozen=True, slots=True)
class StasisStart(Event):
    type: ClassVar[str] = "StasisStart"
    channel: Channel
    args: tuple[str, ...] = ()
    replace_channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class StasisEnd(Event):
    type: ClassVar[str] = "StasisEnd"
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelStateChange(Event):
    type: ClassVar[str] = "ChannelStateChange"
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelHangupRequest(Event):
    type: ClassVar[str] = "ChannelHangupRequest"
    channel: Channel
    cause: int = 0
    soft: bool = False


@dataclass(frozen=True, slots=True)
class ChannelDestroyed(Event):
    type: ClassVar[str] = "ChannelDestroyed"
    channel: Channel
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, slots=True)
class ChannelDtmfReceived(Event):
    type: ClassVar[str] = "ChannelDtmfReceived"
    channel: Channel
    digit: str = ""
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class ChannelTalkingStarted(Event):
    type: ClassVar[str] = "ChannelTalkingStarted"
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelTalkingFinished(Event):
    type: ClassVar[str] = "ChannelTalkingFinished"
    channel: Channel
    duration: int = 0


@dataclass(frozen=True, slots=True)
class ChannelDialplan(Event):
    type: ClassVar[str] = "ChannelDialplan"
    channel: Channel
    dialplan_app: str = ""
    dialplan_app_data: str = ""


@dataclass(frozen=True, slots=True)
class ChannelVarset(Event):
    type: ClassVar[str] = "ChannelVarset"
    variable: str
    value: str
    channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class Dial(Event):
    """A dial's progress. ``channel`` is the dialled channel (ARI's ``peer``)."""

    type: ClassVar[str] = "Dial"
    channel: Channel
    dialstatus: str = ""
    dialstring: str = ""


@dataclass(frozen=True, slots=True)
class BridgeCreated(Event):
    type: ClassVar[str] = "BridgeCreated"
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class BridgeDestroyed(Event):
    type: ClassVar[str] = "BridgeDestroyed"
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class ChannelEnteredBridge(Event):
    type: ClassVar[str] = "ChannelEnteredBridge"
    bridge: Bridge
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelLeftBridge(Event):
    type: ClassVar[str] = "ChannelLeftBridge"
    bridge: Bridge
    channel: Channel


@dataclass(frozen=True, slots=True)
class PlaybackStarted(Event):
    type: ClassVar[str] = "PlaybackStarted"
    playback: Playback


@dataclass(frozen=True, slots=True)
class PlaybackFinished(Event):
    type: ClassVar[str] = "PlaybackFinished"
    playback: Playback


@dataclass(frozen=True, slots=True)
class RecordingFinished(Event):
    type: ClassVar[str] = "RecordingFinished"
    recording: LiveRecording


@dataclass(frozen=True, slots=True)
class RecordingFailed(Event):
    type: ClassVar[str] = "RecordingFailed"
    recording: LiveRecording


@dataclass(frozen=True, slots=True)
class ApplicationReplaced(Event):
    type: ClassVar[str] = "ApplicationReplaced"


def _int(d: dict[str, Any], key: str) -> int:
    v = d.get(key, 0)
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise MalformedEvent(f"{key!r} must be a number")
    try:
        return int(v)
    except ValueError:
        raise MalformedEvent(f"{key!r} must be a number") from None


def _base(d: dict[str, Any]) -> dict[str, Any]:
    return {"application": str(d.get("application", "")), "timestamp": str(d.get("timestamp", "")),
            "asterisk_id": str(d.get("asterisk_id", ""))}


def _ch(d: dict[str, Any]) -> dict[str, Any]:
    return {"channel": Channel.from_json(d.get("channel"))}  # type: ignore[arg-type]


def _br(d: dict[str, Any]) -> dict[str, Any]:
    return {"bridge": Bridge.from_json(d.get("bridge"))}  # type: ignore[arg-type]


def _stasis_start(d: dict[str, Any]) -> dict[str, Any]:
    args = d.get("args", [])
    if not isinstance(args, list):
        raise MalformedEvent("StasisStart: 'args' must be a list")
    rep = d.get("replace_channel")
    return {**_ch(d), "args": tuple(str(a) for a in args),
            "replace_channel": Channel.from_json(rep) if isinstance(rep, dict) else None}


def _varset(d: dict[str, Any]) -> dict[str, Any]:
    ch = d.get("channel")
    return {"variable": str(d.get("variable", "")), "value": str(d.get("value", "")),
            "channel": Channel.from_json(ch) if ch is not None else None}


_DECODERS: dict[str, tuple[type[Event], Any]] = {
    "StasisStart": (StasisStart, _stasis_start),
    "StasisEnd": (StasisEnd, _ch),
    "ChannelStateChange": (ChannelStateChange, _ch),
    "ChannelHangupRequest": (ChannelHangupRequest, lambda d: {
        **_ch(d), "cause": _int(d, "cause"), "soft": bool(d.get("soft", False))}),
    "ChannelDestroyed": (ChannelDestroyed, lambda d: {
        **_ch(d), "cause": _int(d, "cause"), "cause_txt": str(d.get("cause_txt", ""))}),
    "ChannelDtmfReceived": (ChannelDtmfReceived, lambda d: {
        **_ch(d), "digit": str(d.get("digit", "")), "duration_ms": _int(d, "duration_ms")}),
    "ChannelTalkingStarted": (ChannelTalkingStarted, _ch),
    "ChannelTalkingFinished": (ChannelTalkingFinished, lambda d: {
        **_ch(d), "duration": _int(d, "duration")}),
    "ChannelDialplan": (ChannelDialplan, lambda d: {
        **_ch(d), "dialplan_app": str(d.get("dialplan_app", "")),
        "dialplan_app_data": str(d.get("dialplan_app_data", ""))}),
    "ChannelVarset": (ChannelVarset, _varset),
    "Dial": (Dial, lambda d: {"channel": Channel.from_json(d.get("peer")),  # type: ignore[arg-type]
                              "dialstatus": str(d.get("dialstatus", "")),
                              "dialstring": str(d.get("dialstring", ""))}),
    "BridgeCreated": (BridgeCreated, _br),
    "BridgeDestroyed": (BridgeDestroyed, _br),
    "ChannelEnteredBridge": (ChannelEnteredBridge, lambda d: {**_br(d), **_ch(d)}),
    "ChannelLeftBridge": (ChannelLeftBridge, lambda d: {**_br(d), **_ch(d)}),
    "PlaybackStarted": (PlaybackStarted, lambda d: {"playback": Playback.from_json(d.get("playback"))}),  # type: ignore[arg-type]
    "PlaybackFinished": (PlaybackFinished, lambda d: {"playback": Playback.from_json(d.get("playback"))}),  # type: ignore[arg-type]
    "RecordingFinished": (RecordingFinished, lambda d: {"recording": LiveRecording.from_json(d.get("recording"))}),  # type: ignore[arg-type]
    "RecordingFailed": (RecordingFailed, lambda d: {"recording": LiveRecording.from_json(d.get("recording"))}),  # type: ignore[arg-type]
    "ApplicationReplaced": (ApplicationReplaced, lambda d: {}),
}

HANDLED_TYPES = frozenset(_DECODERS)


def decode_event(data: str | bytes | dict[str, Any]) -> Event | None:
    """Decode one WebSocket message. None: a type we ignore. MalformedEvent: bad input."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise MalformedEvent(f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise MalformedEvent(f"event must be a JSON object, got {type(data).__name__}")
    etype = data.get("type")
    if not isinstance(etype, str) or not etype:
        raise MalformedEvent("event has no 'type'")
    entry = _DECODERS.get(etype)
    if entry is None:
        return None
    cls, fields = entry
    try:
        return cls(**_base(data), **fields(data))
    except MalformedEvent as e:
        raise MalformedEvent(f"{etype}: {e}") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise MalformedEvent(f"{etype}: {e}") from None
