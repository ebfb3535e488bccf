"""Dialog events (Interoperable Dialog Event 1.0.2): typed model, strict writer, tolerant reader.

Every dialog event we write carries an ``id``, a ``span`` with an RFC 3339 ``startTime`` and a
``text`` feature, because the 1.1.0 envelope specification (section 1.10.1) makes ``text``
mandatory. When we read, missing ids, speakers and spans are defaulted, naive times are taken as
UTC, and a ``text/plain`` feature under another name is copied to ``text``; every repair is
written to ``notes`` so the caller can log it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from convener.ofp.errors import ParseError
from convener.ofp.timefmt import format_time, now_utc, parse_time

TEXT = "text"
SSML = "ssml"
AUDIO = "audio"
TEXT_MIME = "text/plain"
SSML_MIME = "application/ssml+xml"


def new_id(prefix: str = "de") -> str:
    return f"{prefix}:{uuid.uuid4()}"


@dataclass
class Span:
    start_time: datetime | None = None
    start_offset: str | None = None
    end_time: datetime | None = None
    end_offset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.start_time is not None:
            out["startTime"] = format_time(self.start_time)
        if self.start_offset is not None:
            out["startOffset"] = self.start_offset
        if self.end_time is not None:
            out["endTime"] = format_time(self.end_time)
        if self.end_offset is not None:
            out["endOffset"] = self.end_offset
        return out


@dataclass
class Token:
    value: Any = None
    value_url: str | None = None
    confidence: float | None = None
    links: list[str] = field(default_factory=list)
    span: Span | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.value is not None:
            out["value"] = self.value
        if self.value_url is not None:
            out["valueUrl"] = self.value_url
        if self.confidence is not None:
            out["confidence"] = self.confidence
        if self.links:
            out["links"] = list(self.links)
        if self.span is not None:
            out["span"] = self.span.to_dict()
        return out


@dataclass
class Feature:
    mime_type: str
    tokens: list[Token] = field(default_factory=list)
    lang: str | None = None
    encoding: str | None = None
    token_schema: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mimeType": self.mime_type, "tokens": [t.to_dict() for t in self.tokens]}
        if self.lang is not None:
            out["lang"] = self.lang
        if self.encoding is not None:
            out["encoding"] = self.encoding
        if self.token_schema is not None:
            out["tokenSchema"] = self.token_schema
        return out

    def joined_values(self) -> str:
        parts = [str(t.value).strip() for t in self.tokens if t.value is not None]
        return " ".join(p for p in parts if p)


@dataclass
class DialogEvent:
    speaker_uri: str
    features: dict[str, Feature]
    id: str = field(default_factory=new_id)
    span: Span = field(default_factory=lambda: Span(start_time=now_utc()))
    previous_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if TEXT not in self.features:
            raise ValueError(f"dialog event {self.id} has no text feature")
        out: dict[str, Any] = {
            "id": self.id,
            "speakerUri": self.speaker_uri,
            "span": self.span.to_dict(),
            "features": {k: f.to_dict() for k, f in self.features.items()},
        }
        if self.previous_id is not None:
            out["previousId"] = self.previous_id
        return out

    @property
    def text(self) -> str:
        f = self.features.get(TEXT)
        return f.joined_values() if f else ""

    @property
    def ssml(self) -> str | None:
        f = self.features.get(SSML)
        if f is None:
            return None
        return "".join(str(t.value) for t in f.tokens if t.value is not None) or None

    @property
    def audio_urls(self) -> tuple[str, ...]:
        urls: list[str] = []
        for name, f in self.features.items():
            if name == AUDIO or f.mime_type.startswith("audio/"):
                urls.extend(t.value_url for t in f.tokens if t.value_url)
        return tuple(urls)

    def with_text(self, text: str) -> DialogEvent:
        """A copy whose text is ``text`` (other features dropped: they no longer match)."""
        return DialogEvent(
            speaker_uri=self.speaker_uri,
            features={TEXT: Feature(TEXT_MIME, [Token(value=text)])},
            id=self.id,
            span=self.span,
            previous_id=self.previous_id,
        )


def text_event(
    speaker_uri: str,
    text: str,
    *,
    ssml: str | None = None,
    audio_urls: Sequence[str] = (),
    lang: str | None = None,
    previous_id: str | None = None,
    at: datetime | None = None,
) -> DialogEvent:
    """A dialog event with a ``text`` feature and, optionally, ``ssml`` and ``audio``."""
    features = {TEXT: Feature(TEXT_MIME, [Token(value=text)], lang=lang)}
    if ssml:
        features[SSML] = Feature(SSML_MIME, [Token(value=ssml)], lang=lang)
    if audio_urls:
        features[AUDIO] = Feature("audio/wav", [Token(value_url=u) for u in audio_urls])
    return DialogEvent(
        speaker_uri=speaker_uri,
        features=features,
        span=Span(start_time=at or now_utc()),
        previous_id=previous_id,
    )


# --- tolerant reading ------------------------------------------------------------------------


def _opt_str(d: Mapping[str, Any], key: str, where: str, notes: list[str]) -> str | None:
    v = d.get(key)
    if v is None or isinstance(v, str):
        return v
    notes.append(f"{where}.{key}: not a string, dropped")
    return None


def _span_from(d: Any, where: str, notes: list[str], *, required: bool) -> Span | None:
    if not isinstance(d, Mapping):
        if d is not None:
            notes.append(f"{where}: span is not an object, dropped")
        if required:
            notes.append(f"{where}: span missing, set to now")
            return Span(start_time=now_utc())
        return None
    span = Span(
        start_offset=_opt_str(d, "startOffset", where, notes),
        end_offset=_opt_str(d, "endOffset", where, notes),
    )
    for key, attr in (("startTime", "start_time"), ("endTime", "end_time")):
        if key in d:
            try:
                t, note = parse_time(d[key])
            except (ValueError, TypeError):
                notes.append(f"{where}.{key}: unreadable time {d[key]!r}, dropped")
                continue
            if note:
                notes.append(f"{where}.{key}: {note}")
            setattr(span, attr, t)
    if span.start_time is None and span.start_offset is None and required:
        notes.append(f"{where}: span has no start, set to now")
        span.start_time = now_utc()
    return span


def _token_from(d: Any, where: str, notes: list[str]) -> Token | None:
    if not isinstance(d, Mapping):
        notes.append(f"{where}: token is not an object, dropped")
        return None
    value = d.get("value")
    url = _opt_str(d, "valueUrl", where, notes)
    if value is None and url is None:
        notes.append(f"{where}: token without value or valueUrl, dropped")
        return None
    conf = d.get("confidence")
    if conf is not None and (isinstance(conf, bool) or not isinstance(conf, int | float)):
        notes.append(f"{where}.confidence: not a number, dropped")
        conf = None
    links = d.get("links") or []
    if not isinstance(links, list) or not all(isinstance(x, str) for x in links):
        notes.append(f"{where}.links: not a list of strings, dropped")
        links = []
    return Token(
        value=value,
        value_url=url,
        confidence=float(conf) if conf is not None else None,
        links=list(links),
        span=_span_from(d.get("span"), f"{where}.span", notes, required=False),
    )


def _feature_from(name: str, d: Any, where: str, notes: list[str]) -> Feature | None:
    if not isinstance(d, Mapping):
        notes.append(f"{where}: feature {name!r} is not an object, dropped")
        return None
    mime = d.get("mimeType")
    if not isinstance(mime, str) or not mime:
        mime = TEXT_MIME if name == TEXT else "application/octet-stream"
        notes.append(f"{where}: feature {name!r} has no mimeType, set to {mime}")
    raw_tokens = d.get("tokens")
    if not isinstance(raw_tokens, list):
        notes.append(f"{where}: feature {name!r} has no token list")
        raw_tokens = []
    tokens = [
        t for i, raw in enumerate(raw_tokens) if (t := _token_from(raw, f"{where}.tokens[{i}]", notes))
    ]
    return Feature(
        mime_type=mime,
        tokens=tokens,
        lang=_opt_str(d, "lang", where, notes),
        encoding=_opt_str(d, "encoding", where, notes),
        token_schema=_opt_str(d, "tokenSchema", where, notes),
    )


def dialog_event_from_dict(
    d: Any, *, where: str, notes: list[str], default_speaker: str
) -> DialogEvent:
    """Read a dialog event leniently; raise ParseError only when no text can be found."""
    if not isinstance(d, Mapping):
        raise ParseError(f"{where}: dialog event is not an object")
    ev_id = d.get("id")
    if not isinstance(ev_id, str) or not ev_id:
        ev_id = new_id()
        notes.append(f"{where}: dialog event without id, assigned {ev_id}")
    speaker = d.get("speakerUri")
    if not isinstance(speaker, str) or not speaker:
        speaker = default_speaker
        notes.append(f"{where}: dialog event without speakerUri, set to sender {speaker}")
    raw_features = d.get("features")
    if not isinstance(raw_features, Mapping):
        raise ParseError(f"{where}: dialog event has no features")
    features: dict[str, Feature] = {}
    for name, raw in raw_features.items():
        f = _feature_from(str(name), raw, f"{where}.features", notes)
        if f is not None:
            features[str(name)] = f
    if TEXT not in features:
        alt = next(
            (n for n, f in features.items() if f.mime_type.startswith(TEXT_MIME) and f.tokens), None
        )
        if alt is None:
            raise ParseError(f"{where}: dialog event has no text feature")
        features[TEXT] = features[alt]
        notes.append(f"{where}: no 'text' feature; used text/plain feature {alt!r}")
    span = _span_from(d.get("span"), f"{where}.span", notes, required=True)
    assert span is not None
    previous = d.get("previousId")
    return DialogEvent(
        speaker_uri=speaker,
        features=features,
        id=ev_id,
        span=span,
        previous_id=previous if isinstance(previous, str) else None,
    )
