"""Open Floor conversation envelopes (Inter-Agent Message 1.1.0): typed model and strict writer.

``Envelope.to_dict()`` produces exactly the JSON the specification asks for: the ``openFloor``
wrapper, ``schema.version`` 1.1.0, parameters only where the event type defines them, and
RFC 3339 times with a time zone. Reading is in ``convener.ofp.parse`` (tolerant);
checking is in ``convener.ofp.validate`` (strict).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from convener.ofp.dialog import DialogEvent
from convener.ofp.manifest import Identification, Manifest

SCHEMA_VERSION = "1.1.0"
SCHEMA_URL = (
    "https://github.com/open-voice-interoperability/docs/tree/main/schemas/"
    "conversation-envelope/1.1.0/conversation-envelope-schema.json"
)

EventType = Literal[
    "invite",
    "uninvite",
    "acceptInvite",
    "declineInvite",
    "utterance",
    "bye",
    "getManifests",
    "publishManifests",
    "requestFloor",
    "grantFloor",
    "revokeFloor",
    "yieldFloor",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
# Events that carry no parameters (1.1.0): explanations travel in ``reason``.
BARE_EVENTS = frozenset(
    {"uninvite", "acceptInvite", "declineInvite", "bye", "requestFloor", "grantFloor",
     "revokeFloor", "yieldFloor"}
)
REASON_TOKEN = re.compile(r"@[a-zA-Z0-9_]+")


def reason_tokens(reason: str | None) -> list[str]:
    """The special ``@tokens`` of a reason text (1.1.0 section 1.8)."""
    return REASON_TOKEN.findall(reason or "")


@dataclass
class To:
    speaker_uri: str | None = None
    service_url: str | None = None
    private: bool = False

    def to_dict(self) -> dict[str, Any]:
        if not self.speaker_uri and not self.service_url:
            raise ValueError("'to' must name a speakerUri or a serviceUrl")
        out: dict[str, Any] = {}
        if self.speaker_uri:
            out["speakerUri"] = self.speaker_uri
        if self.service_url:
            out["serviceUrl"] = self.service_url
        if self.private:
            out["private"] = True
        return out

    @classmethod
    def of(cls, ident: Identification, *, private: bool = False) -> To:
        return cls(ident.speaker_uri, ident.service_url, private)


@dataclass
class Event:
    event_type: EventType
    to: To | None = None
    reason: str | None = None
    dialog_event: DialogEvent | None = None  # utterance
    dialog_history: list[DialogEvent] | None = None  # invite
    recommend_scope: Literal["internal", "external", "all"] | None = None  # getManifests
    servicing_manifests: list[Manifest] | None = None  # publishManifests
    discovery_manifests: list[Manifest] | None = None  # publishManifests

    @property
    def private(self) -> bool:
        return self.to is not None and self.to.private

    def to_dict(self) -> dict[str, Any]:
        et = self.event_type
        if et not in EVENT_TYPES:
            raise ValueError(f"unknown event type {et!r}")
        out: dict[str, Any] = {"eventType": et}
        if self.to is not None:
            out["to"] = self.to.to_dict()
        if self.reason is not None:
            out["reason"] = self.reason
        params: dict[str, Any] = {}
        if et == "utterance":
            if self.dialog_event is None:
                raise ValueError("utterance without dialogEvent")
            params["dialogEvent"] = self.dialog_event.to_dict()
        elif et == "invite":
            if self.to is None or not self.to.service_url:
                raise ValueError("invite needs to.serviceUrl")
            if self.dialog_history:
                params["dialogHistory"] = [d.to_dict() for d in self.dialog_history]
        elif et == "getManifests":
            if self.recommend_scope is not None:
                params["recommendScope"] = self.recommend_scope
        elif et == "publishManifests":
            if self.servicing_manifests is not None:
                params["servicingManifests"] = [m.to_dict() for m in self.servicing_manifests]
            if self.discovery_manifests is not None:
                params["discoveryManifests"] = [m.to_dict() for m in self.discovery_manifests]
        if params:
            out["parameters"] = params
        return out


@dataclass
class Conversation:
    id: str
    conversants: list[Identification] = field(default_factory=list)
    assigned_floor_roles: dict[str, list[str]] = field(default_factory=dict)
    floor_granted: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.conversants:
            out["conversants"] = [{"identification": c.to_dict()} for c in self.conversants]
        if self.assigned_floor_roles:
            out["assignedFloorRoles"] = {k: list(v) for k, v in self.assigned_floor_roles.items()}
        if self.floor_granted is not None:
            out["floorGranted"] = list(self.floor_granted)
        return out


@dataclass
class Envelope:
    conversation: Conversation
    sender_uri: str
    events: list[Event] = field(default_factory=list)
    sender_url: str | None = None
    schema_version: str = SCHEMA_VERSION
    # Inbound 1.0.0 only: dialog history of a ``context`` event that had no invite to go with.
    context_history: list[DialogEvent] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"we only write schema {SCHEMA_VERSION}, not {self.schema_version}")
        sender: dict[str, Any] = {"speakerUri": self.sender_uri}
        if self.sender_url:
            sender["serviceUrl"] = self.sender_url
        return {
            "openFloor": {
                "schema": {"version": SCHEMA_VERSION, "url": SCHEMA_URL},
                "conversation": self.conversation.to_dict(),
                "sender": sender,
                "events": [e.to_dict() for e in self.events],
            }
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()


# --- builders for every event type -----------------------------------------------------------


def utterance(dialog_event: DialogEvent, *, to: To | None = None) -> Event:
    return Event("utterance", to=to, dialog_event=dialog_event)


def invite(to: To, *, dialog_history: list[DialogEvent] | None = None, reason: str | None = None) -> Event:
    return Event("invite", to=to, reason=reason, dialog_history=dialog_history or None)


def uninvite(to: To, reason: str | None = None) -> Event:
    return Event("uninvite", to=to, reason=reason)


def accept_invite(to: To | None = None, reason: str | None = None) -> Event:
    return Event("acceptInvite", to=to, reason=reason)


def decline_invite(to: To | None = None, reason: str | None = None) -> Event:
    return Event("declineInvite", to=to, reason=reason)


def bye(to: To | None = None, reason: str | None = None) -> Event:
    return Event("bye", to=to, reason=reason)


def get_manifests(to: To | None = None, scope: Literal["internal", "external", "all"] | None = None) -> Event:
    return Event("getManifests", to=to, recommend_scope=scope)


def publish_manifests(
    servicing: list[Manifest] | None = None,
    discovery: list[Manifest] | None = None,
    *,
    to: To | None = None,
) -> Event:
    return Event(
        "publishManifests",
        to=to,
        servicing_manifests=list(servicing or []),
        discovery_manifests=list(discovery or []),
    )


def request_floor(to: To | None = None, reason: str | None = None) -> Event:
    return Event("requestFloor", to=to, reason=reason)


def grant_floor(to: To, reason: str | None = None) -> Event:
    return Event("grantFloor", to=to, reason=reason)


def revoke_floor(to: To, reason: str | None = None) -> Event:
    return Event("revokeFloor", to=to, reason=reason)


def yield_floor(reason: str | None = None, to: To | None = None) -> Event:
    return Event("yieldFloor", to=to, reason=reason)
