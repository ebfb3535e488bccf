"""What the console's live view shows, read from the running application (no I/O, no waiting).

``snapshot(app)`` reads the rooms, calls, floor and recent turns the application keeps in memory;
every attribute is read defensively (``getattr``): the console never breaks a call.
"""

from __future__ import annotations

import time
from typing import Any

from convener.ops.console.recordings import recording_name
from convener.ops.console.waterfall import waterfall


def _name(ident: Any) -> str:
    return getattr(ident, "conversational_name", "") or getattr(ident, "speaker_uri", "")


def room_view(room: Any, calls: dict[str, Any], recording: bool = False) -> dict[str, Any]:
    conv = room.state.get("conversation") if isinstance(getattr(room, "state", None), dict) else None
    session = getattr(conv, "session", None)
    callers = []
    for cid in sorted(getattr(room, "members", ())):
        call = calls.get(cid)
        if call is None:
            continue
        caller = getattr(getattr(call, "channel", None), "caller", None)
        callers.append({"id": cid, "name": getattr(caller, "name", "") or "",
                        "number": getattr(caller, "number", "") or ""})
    view: dict[str, Any] = {"name": room.name, "bridge_id": getattr(room, "bridge_id", ""),
                            "callers": callers, "conversation_id": None, "agents": [], "floor": [],
                            "speaking": None, "recording": None}
    if session is None:
        return view
    cid = getattr(session, "conversation_id", None)
    view["conversation_id"] = cid
    floor = getattr(session, "floor", None)
    policy = getattr(session, "policy", None)
    me = getattr(getattr(session, "me", None), "speaker_uri", None)
    humans = set(getattr(policy, "humans", ()) or ())
    if floor is not None:
        agents = [c for c in floor.conversants if c.speaker_uri not in humans and c.speaker_uri != me]
        view["agents"] = [_name(a) for a in agents]
        granted = set(floor.floor_granted)
        view["floor"] = [_name(a) for a in agents if a.speaker_uri in granted]
    speaker = getattr(conv, "speaker", None)
    current = getattr(speaker, "current", None) if getattr(speaker, "speaking", False) else None
    view["speaking"] = getattr(current, "label", None) or None
    if recording and cid:
        view["recording"] = recording_name(cid)
    return view


def turn_view(timings: Any, text: str) -> dict[str, Any]:
    return {"text": text, **waterfall(timings)}


def snapshot(app: Any, turns: int = 20) -> dict[str, Any]:
    calls: dict[str, Any] = dict(getattr(app, "calls", {}) or {})
    rooms = getattr(getattr(app, "rooms", None), "rooms", {}) or {}
    record = bool(getattr(getattr(getattr(app, "config", None), "ops", None), "record_calls", False))
    recent = list(getattr(app, "turns", ()) or ())[-turns:]
    return {
        "at": time.time(),
        "ready": bool(getattr(app, "ready", False)),
        "rooms": [room_view(r, calls, record) for r in rooms.values()],
        "calls": [{"id": c.id, "room": getattr(c, "room", ""),
                   "caller": getattr(getattr(getattr(c, "channel", None), "caller", None), "name", "") or "",
                   "number": getattr(getattr(getattr(c, "channel", None), "caller", None), "number", "") or "",
                   "up_s": round(time.monotonic() - getattr(c, "stasis_start_at", time.monotonic()), 1)}
                  for c in calls.values()],
        "turns": [turn_view(t, text) for t, text in reversed(recent)],
    }
