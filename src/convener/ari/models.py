"""Typed views of the ARI resources we use (a subset of the Swagger models).

Parsing is tolerant of extra fields (Asterisk adds them between versions) and strict about the
few we rely on: a missing ``id`` raises ``MalformedEvent``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from convener.ari.errors import MalformedEvent


def _req(d: dict[str, Any], key: str, kind: str) -> Any:
    if not isinstance(d, dict):
        raise MalformedEvent(f"{kind}: expected an object, got {type(d).__name__}")
    v = d.get(key)
    if not isinstance(v, str) or not v:
        raise MalformedEvent(f"{kind}: missing or invalid {key!r}")
    return v


@dataclass(frozen=True, slots=True)
class CallerId:
    name: str = ""
    number: str = ""


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str = ""
    state: str = ""
    caller: CallerId = field(default_factory=CallerId)
    context: str = ""
    exten: str = ""
    priority: int = 0
    channelvars: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Channel:
        cid = _req(d, "id", "channel")
        caller = d.get("caller") if isinstance(d.get("caller"), dict) else {}
        dialplan = d.get("dialplan") if isinstance(d.get("dialplan"), dict) else {}
        cvars = d.get("channelvars") if isinstance(d.get("channelvars"), dict) else {}
        try:
            prio = int(dialplan.get("priority") or 0)
        except (TypeError, ValueError):
            prio = 0
        return cls(
            id=cid,
            name=str(d.get("name", "")),
            state=str(d.get("state", "")),
            caller=CallerId(str(caller.get("name", "")), str(caller.get("number", ""))),
            context=str(dialplan.get("context", "")),
            exten=str(dialplan.get("exten", "")),
            priority=prio,
            channelvars={str(k): str(v) for k, v in cvars.items()},
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class Bridge:
    id: str
    technology: str = ""
    bridge_type: str = ""
    name: str = ""
    channels: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Bridge:
        bid = _req(d, "id", "bridge")
        chans = d.get("channels") if isinstance(d.get("channels"), list) else []
        return cls(
            id=bid,
            technology=str(d.get("technology", "")),
            bridge_type=str(d.get("bridge_type", "")),
            name=str(d.get("name", "")),
            channels=tuple(str(c) for c in chans),
        )


@dataclass(frozen=True, slots=True)
class Playback:
    id: str
    media_uri: str = ""
    target_uri: str = ""
    state: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Playback:
        return cls(id=_req(d, "id", "playback"), media_uri=str(d.get("media_uri", "")),
                   target_uri=str(d.get("target_uri", "")), state=str(d.get("state", "")))


@dataclass(frozen=True, slots=True)
class LiveRecording:
    name: str
    format: str = ""
    state: str = ""
    target_uri: str = ""
    duration: int | None = None
    cause: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LiveRecording:
        dur = d.get("duration")
        return cls(name=_req(d, "name", "recording"), format=str(d.get("format", "")),
                   state=str(d.get("state", "")), target_uri=str(d.get("target_uri", "")),
                   duration=dur if isinstance(dur, int) else None, cause=str(d.get("cause", "")))


@dataclass(frozen=True, slots=True)
class Application:
    name: str
    channel_ids: tuple[str, ...] = ()
    bridge_ids: tuple[str, ...] = ()
    endpoint_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Application:
        def ids(key: str) -> tuple[str, ...]:
            v = d.get(key)
            return tuple(str(x) for x in v) if isinstance(v, list) else ()

        return cls(name=_req(d, "name", "application"), channel_ids=ids("channel_ids"),
                   bridge_ids=ids("bridge_ids"), endpoint_ids=ids("endpoint_ids"))
