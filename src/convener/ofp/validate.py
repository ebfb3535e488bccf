"""Strict checking of envelopes: the official schemas, applied where they really apply, plus
the checks the schemas cannot express.

The published 1.1.0 envelope schema writes its nested references as ``"ref"`` instead of
``"$ref"``, so on its own it never looks inside a dialog event or a manifest. ``validate_envelope``
therefore applies the envelope schema to the whole envelope, the dialog-event schema to every
dialog event (utterances and every ``dialogHistory`` item), the manifest schema to every manifest
in ``publishManifests``, and then checks by hand:

- every event has an ``eventType``; utterances have ``parameters.dialogEvent``;
- ``to``, when present, names a ``speakerUri`` or a ``serviceUrl``;
- ``invite`` has ``to.serviceUrl``;
- every dialog event has a ``text`` feature;
- every time is RFC 3339 with a time zone;
- ``schema.version`` is 1.1.0;
- ``assignedFloorRoles.convener`` names at most one conversant, and every role holder and every
  ``floorGranted`` entry is listed in ``conversants``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.resources import files
from typing import Any

from convener.ofp.errors import InvalidEnvelope
from convener.ofp.timefmt import is_rfc3339

SCHEMA_FILES = {
    "envelope": "conversation-envelope-schema.json",
    "dialog_event": "dialog-event-schema.json",
    "manifest": "assistant-manifest-schema.json",
}


def load_schema(name: str) -> dict[str, Any]:
    text = files("convener.ofp").joinpath("schemas", SCHEMA_FILES[name]).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _validator(name: str) -> Any:
    # Imported here so that ``convener.ofp`` loads without jsonschema (see session._encode).
    from jsonschema import Draft202012Validator

    # The dialog-event schema names a meta-schema that does not exist; all three are read as
    # draft 2020-12, which is what the envelope and manifest schemas declare.
    return Draft202012Validator(load_schema(name))


def available() -> bool:
    """Whether jsonschema is installed (it is needed for the schema part of the checks)."""
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        return False
    return True


def _schema_errors(name: str, doc: Any, where: str) -> Iterator[str]:
    for err in _validator(name).iter_errors(doc):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        yield f"{where}{path}: {err.message} ({name} schema)"


def _times(span: Any, where: str) -> Iterator[str]:
    if not isinstance(span, Mapping):
        return
    for key in ("startTime", "endTime"):
        if key in span and not is_rfc3339(span[key]):
            yield f"{where}.{key}: {span[key]!r} is not RFC 3339 with a time zone"


def check_dialog_event(de: Any, where: str) -> list[str]:
    problems = list(_schema_errors("dialog_event", de, where))
    if not isinstance(de, Mapping):
        return problems
    problems.extend(_times(de.get("span"), f"{where}.span"))
    features = de.get("features")
    if not isinstance(features, Mapping) or "text" not in features:
        problems.append(f"{where}: no 'text' feature")
    if isinstance(features, Mapping):
        for name, f in features.items():
            tokens = f.get("tokens") if isinstance(f, Mapping) else None
            for i, t in enumerate(tokens if isinstance(tokens, list) else []):
                if isinstance(t, Mapping):
                    problems.extend(_times(t.get("span"), f"{where}.features.{name}.tokens[{i}].span"))
    return problems


def validate_envelope(doc: Any) -> list[str]:
    """Every problem found in ``doc`` (a decoded JSON envelope); an empty list means valid."""
    problems = list(_schema_errors("envelope", doc, "$"))
    of = doc.get("openFloor") if isinstance(doc, Mapping) else None
    if not isinstance(of, Mapping):
        return problems or ["$: no 'openFloor' object"]
    schema = of.get("schema")
    if isinstance(schema, Mapping) and schema.get("version") != "1.1.0":
        problems.append(f"$.openFloor.schema.version: {schema.get('version')!r} is not 1.1.0")
    problems.extend(_check_conversation(of.get("conversation")))
    events = of.get("events")
    for i, ev in enumerate(events if isinstance(events, list) else []):
        problems.extend(_check_event(ev, f"$.openFloor.events[{i}]"))
    return problems


def check_envelope(doc: Any) -> None:
    """Raise InvalidEnvelope listing every problem of ``doc``."""
    problems = validate_envelope(doc)
    if problems:
        raise InvalidEnvelope(problems)


def _check_conversation(conv: Any) -> Iterator[str]:
    if not isinstance(conv, Mapping):
        return
    where = "$.openFloor.conversation"
    conversants = conv.get("conversants")
    roles = conv.get("assignedFloorRoles")
    roles = roles if isinstance(roles, Mapping) else {}
    granted = conv.get("floorGranted")
    conveners = roles.get("convener")
    if isinstance(conveners, list) and len(conveners) > 1:
        yield f"{where}.assignedFloorRoles.convener: more than one convener"
    if conversants is None:
        if roles or granted is not None:
            yield (
                f"{where}: conversants missing although assignedFloorRoles or floorGranted is"
                " present (1.1.0 section 1.6.1)"
            )
        return
    uris: set[str] = set()
    for c in conversants if isinstance(conversants, list) else []:
        ident = c.get("identification") if isinstance(c, Mapping) else None
        if isinstance(ident, Mapping) and isinstance(ident.get("speakerUri"), str):
            uris.add(ident["speakerUri"])
    for role, holders in roles.items():
        for h in holders if isinstance(holders, list) else []:
            if h not in uris:
                yield f"{where}.assignedFloorRoles.{role}: {h!r} is not a conversant"
    for g in granted if isinstance(granted, list) else []:
        if g not in uris:
            yield f"{where}.floorGranted: {g!r} is not a conversant"


def _check_event(ev: Any, where: str) -> Iterator[str]:
    if not isinstance(ev, Mapping):
        yield f"{where}: event is not an object"
        return
    et = ev.get("eventType")
    if et is None:
        yield f"{where}: no eventType"
    to = ev.get("to")
    if to is not None:
        if not isinstance(to, Mapping) or not (to.get("speakerUri") or to.get("serviceUrl")):
            yield f"{where}.to: names neither a speakerUri nor a serviceUrl"
    params = ev.get("parameters")
    params = params if isinstance(params, Mapping) else {}
    if et == "invite" and not (isinstance(to, Mapping) and to.get("serviceUrl")):
        yield f"{where}: invite without to.serviceUrl"
    if et == "utterance":
        if "dialogEvent" not in params:
            yield f"{where}: utterance without parameters.dialogEvent"
        else:
            yield from check_dialog_event(params["dialogEvent"], f"{where}.parameters.dialogEvent")
    if et == "invite" and "dialogHistory" in params:
        history = params["dialogHistory"]
        for j, de in enumerate(history if isinstance(history, list) else []):
            yield from check_dialog_event(de, f"{where}.parameters.dialogHistory[{j}]")
    if et == "publishManifests":
        for key in ("servicingManifests", "discoveryManifests"):
            if key not in params:
                continue
            lst = params[key]
            if not isinstance(lst, list):
                yield f"{where}.parameters.{key}: not a list"
                continue
            for j, m in enumerate(lst):
                yield from _schema_errors("manifest", m, f"{where}.parameters.{key}[{j}]")
                if isinstance(m, Mapping) and "score" in m:
                    s = m["score"]
                    if isinstance(s, bool) or not isinstance(s, int | float) or not 0 <= s <= 1:
                        yield f"{where}.parameters.{key}[{j}].score: not a number in [0, 1]"
