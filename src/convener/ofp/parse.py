"""Tolerant reading of inbound envelopes (1.1.0 and 1.0.0).

``parse_envelope`` turns bytes, text or a decoded dict into an ``Envelope``. It never raises
anything but ``ParseError``. What can be repaired is repaired and written to ``notes`` (or logged
when no list is given): missing dialog-event ids, naive times, a text feature under another name,
events with unknown types (dropped), parameters on bare events (dropped), a missing
conversation id or sender when the caller knows them.

1.0.0 differences handled: the ``context`` event is gone in 1.1.0; its ``dialogHistory`` is
moved into the ``invite`` of the same envelope (where 1.1.0 carries it), or kept in
``Envelope.context_history`` when there is no invite. ``persistentState`` is ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from convener.ofp.dialog import DialogEvent, dialog_event_from_dict
from convener.ofp.envelope import BARE_EVENTS, EVENT_TYPES, Conversation, Envelope, Event, To
from convener.ofp.errors import ParseError
from convener.ofp.manifest import Identification, Manifest, identification_from_dict, manifest_from_dict

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("1.1.0", "1.0.0")
KNOWN_PARAMS: dict[str, set[str]] = {
    "utterance": {"dialogEvent"},
    "invite": {"dialogHistory"},
    "getManifests": {"recommendScope"},
    "publishManifests": {"servicingManifests", "discoveryManifests"},
}


def decode_json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ParseError(f"not JSON: {e}") from None


def parse_envelope(
    data: bytes | str | Mapping[str, Any],
    *,
    default_conversation_id: str | None = None,
    default_sender: str | None = None,
    notes: list[str] | None = None,
) -> Envelope:
    """Read one envelope leniently. Raises ParseError when it cannot be an envelope at all."""
    own_notes = notes if notes is not None else []
    try:
        env = _parse(data, default_conversation_id, default_sender, own_notes)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("envelope nested too deeply") from None
    if notes is None and own_notes:
        log.info("repaired inbound envelope from %s: %s", env.sender_uri, "; ".join(own_notes))
    return env


def _parse(
    data: bytes | str | Mapping[str, Any],
    default_conversation_id: str | None,
    default_sender: str | None,
    notes: list[str],
) -> Envelope:
    doc = decode_json(data) if isinstance(data, bytes | str) else data
    if not isinstance(doc, Mapping):
        raise ParseError("envelope is not a JSON object")
    of = doc.get("openFloor")
    if of is None and "events" in doc and ("conversation" in doc or "sender" in doc):
        notes.append("envelope not wrapped in 'openFloor'; read as is")
        of = doc
    if not isinstance(of, Mapping):
        raise ParseError("no 'openFloor' object")

    version = "1.1.0"
    schema = of.get("schema")
    if isinstance(schema, Mapping) and isinstance(schema.get("version"), str):
        version = schema["version"]
    else:
        notes.append("schema.version missing; assumed 1.1.0")
    if version not in SUPPORTED_VERSIONS:
        notes.append(f"schema.version {version!r} not supported; read as 1.1.0")

    sender = of.get("sender")
    sender_uri = sender.get("speakerUri") if isinstance(sender, Mapping) else None
    sender_url = sender.get("serviceUrl") if isinstance(sender, Mapping) else None
    if not isinstance(sender_uri, str) or not sender_uri:
        if default_sender is None:
            raise ParseError("no sender.speakerUri")
        notes.append(f"sender.speakerUri missing; set to {default_sender}")
        sender_uri = default_sender
    if not isinstance(sender_url, str):
        sender_url = None

    conversation = _conversation(of.get("conversation"), default_conversation_id, notes)

    raw_events = of.get("events")
    if raw_events is None:
        notes.append("events missing; taken as []")
        raw_events = []
    if not isinstance(raw_events, list):
        raise ParseError("'events' is not a list")

    events: list[Event] = []
    context_history: list[DialogEvent] = []
    for i, raw in enumerate(raw_events):
        where = f"events[{i}]"
        if isinstance(raw, Mapping) and raw.get("eventType") == "context":
            context_history.extend(_history(_params(raw), where, notes, sender_uri))
            notes.append(f"{where}: 1.0.0 context event mapped to dialogHistory")
            continue
        try:
            ev = _event(raw, where, notes, sender_uri)
        except ParseError as e:
            notes.append(f"{e}; event dropped")
            continue
        events.append(ev)

    if context_history:
        target = next((e for e in events if e.event_type == "invite"), None)
        if target is not None:
            target.dialog_history = [*context_history, *(target.dialog_history or [])]
            context_history = []
    return Envelope(
        conversation=conversation,
        sender_uri=sender_uri,
        sender_url=sender_url,
        events=events,
        schema_version=version if version in SUPPORTED_VERSIONS else "1.1.0",
        context_history=context_history,
    )


def _conversation(raw: Any, default_id: str | None, notes: list[str]) -> Conversation:
    if not isinstance(raw, Mapping):
        raw = {}
    cid = raw.get("id")
    if not isinstance(cid, str) or not cid:
        if default_id is None:
            raise ParseError("no conversation.id")
        notes.append(f"conversation.id missing; set to {default_id}")
        cid = default_id
    conversants: list[Identification] = []
    raw_c = raw.get("conversants") or []
    if isinstance(raw_c, list):
        for i, c in enumerate(raw_c):
            where = f"conversation.conversants[{i}]"
            if isinstance(c, Mapping) and "persistentState" in c:
                notes.append(f"{where}: persistentState ignored (removed in 1.1.0)")
            try:
                ident = c.get("identification") if isinstance(c, Mapping) else None
                conversants.append(identification_from_dict(ident, where=where, notes=notes))
            except ParseError as e:
                notes.append(f"{e}; conversant dropped")
    if "currentRoles" in raw:
        notes.append("conversation.currentRoles is not defined by 1.1.0; ignored")
    roles: dict[str, list[str]] = {}
    raw_roles = raw.get("assignedFloorRoles")
    if isinstance(raw_roles, Mapping):
        for k, v in raw_roles.items():
            if isinstance(v, list) and all(isinstance(x, str) for x in v):
                roles[str(k)] = list(v)
    granted = raw.get("floorGranted")
    floor_granted = list(granted) if isinstance(granted, list) and all(isinstance(x, str) for x in granted) else None
    return Conversation(cid, conversants, roles, floor_granted)


def _params(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    p = raw.get("parameters")
    return p if isinstance(p, Mapping) else {}


def _history(params: Mapping[str, Any], where: str, notes: list[str], sender: str) -> list[DialogEvent]:
    raw = params.get("dialogHistory")
    if raw is None:
        return []
    if not isinstance(raw, list):
        notes.append(f"{where}: dialogHistory is not a list, dropped")
        return []
    out: list[DialogEvent] = []
    for j, item in enumerate(raw):
        try:
            out.append(
                dialog_event_from_dict(item, where=f"{where}.dialogHistory[{j}]", notes=notes, default_speaker=sender)
            )
        except ParseError as e:
            notes.append(f"{e}; history item dropped")
    return out


def _manifests(raw: Any, where: str, notes: list[str]) -> list[Manifest]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        notes.append(f"{where}: not a list, dropped")
        return []
    out: list[Manifest] = []
    for j, m in enumerate(raw):
        try:
            out.append(manifest_from_dict(m, where=f"{where}[{j}]", notes=notes))
        except ParseError as e:
            notes.append(f"{e}; manifest dropped")
    return out


def _event(raw: Any, where: str, notes: list[str], sender: str) -> Event:
    if not isinstance(raw, Mapping):
        raise ParseError(f"{where}: not an object")
    et = raw.get("eventType")
    if et not in EVENT_TYPES:
        raise ParseError(f"{where}: unknown or missing eventType {et!r}")
    to: To | None = None
    raw_to = raw.get("to")
    if isinstance(raw_to, Mapping):
        su, url, priv = raw_to.get("speakerUri"), raw_to.get("serviceUrl"), raw_to.get("private")
        su = su if isinstance(su, str) and su else None
        url = url if isinstance(url, str) and url else None
        if su or url:
            to = To(su, url, priv is True)
        else:
            notes.append(f"{where}: 'to' names nobody; taken as addressed to everyone")
    elif raw_to is not None:
        notes.append(f"{where}: 'to' is not an object, dropped")
    reason = raw.get("reason")
    if reason is not None and not isinstance(reason, str):
        notes.append(f"{where}: reason is not a string, dropped")
        reason = None
    params = _params(raw)
    unknown = set(params) - KNOWN_PARAMS.get(et, set())
    if unknown:
        notes.append(f"{where}: parameters {sorted(unknown)} not defined for {et}; dropped")
    ev = Event(et, to=to, reason=reason)
    if et == "utterance":
        ev.dialog_event = dialog_event_from_dict(
            params.get("dialogEvent"), where=f"{where}.dialogEvent", notes=notes, default_speaker=sender
        )
    elif et == "invite":
        ev.dialog_history = _history(params, where, notes, sender) or None
        if to is None or not to.service_url:
            notes.append(f"{where}: invite without to.serviceUrl")
    elif et == "getManifests":
        scope = params.get("recommendScope")
        if scope in ("internal", "external", "all"):
            ev.recommend_scope = scope
        elif scope is not None:
            notes.append(f"{where}: recommendScope {scope!r} unknown; default used")
    elif et == "publishManifests":
        ev.servicing_manifests = _manifests(params.get("servicingManifests"), f"{where}.servicingManifests", notes)
        ev.discovery_manifests = _manifests(params.get("discoveryManifests"), f"{where}.discoveryManifests", notes)
    elif et in BARE_EVENTS and params:
        pass  # already noted as unknown parameters
    return ev
