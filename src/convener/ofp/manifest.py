"""Assistant manifests (Assistant Manifest 1.0.1) and conversant identification."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from convener.ofp.errors import ParseError


@dataclass
class Identification:
    speaker_uri: str
    service_url: str
    organization: str = ""
    conversational_name: str = ""
    synopsis: str = ""
    department: str | None = None
    role: str | None = None
    open_floor_roles: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "speakerUri": self.speaker_uri,
            "serviceUrl": self.service_url,
            "organization": self.organization,
            "conversationalName": self.conversational_name,
            "synopsis": self.synopsis,
        }
        if self.department is not None:
            out["department"] = self.department
        if self.role is not None:
            out["role"] = self.role
        if self.open_floor_roles:
            out["openFloorRoles"] = dict(self.open_floor_roles)
        return out

    @property
    def is_convener(self) -> bool:
        return bool(self.open_floor_roles.get("convener"))

    def with_service_url(self, url: str) -> Identification:
        return replace(self, service_url=url)


@dataclass
class SupportedLayers:
    input: list[str] = field(default_factory=lambda: ["text"])
    output: list[str] = field(default_factory=lambda: ["text"])

    def to_dict(self) -> dict[str, Any]:
        return {"input": list(self.input), "output": list(self.output)}


@dataclass
class Capability:
    keyphrases: list[str]
    descriptions: list[str]
    languages: list[str] = field(default_factory=list)
    supported_layers: SupportedLayers | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"keyphrases": list(self.keyphrases), "descriptions": list(self.descriptions)}
        if self.languages:
            out["languages"] = list(self.languages)
        if self.supported_layers is not None:
            out["supportedLayers"] = self.supported_layers.to_dict()
        return out


@dataclass
class Manifest:
    identification: Identification
    capabilities: list[Capability] = field(default_factory=list)
    # Only inside publishManifests (1.1.0 section 1.18): a recommendation score in [0, 1].
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "identification": self.identification.to_dict(),
            "capabilities": [c.to_dict() for c in self.capabilities],
        }
        if self.score is not None:
            out["score"] = self.score
        return out

    @property
    def keyphrases(self) -> list[str]:
        return [k for c in self.capabilities for k in c.keyphrases]

    @property
    def descriptions(self) -> list[str]:
        return [k for c in self.capabilities for k in c.descriptions]


# --- tolerant reading ------------------------------------------------------------------------


def _str_list(v: Any, where: str, notes: list[str]) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    notes.append(f"{where}: not a list of strings, dropped")
    return []


def identification_from_dict(d: Any, *, where: str, notes: list[str]) -> Identification:
    if not isinstance(d, Mapping):
        raise ParseError(f"{where}: identification is not an object")
    speaker, url = d.get("speakerUri"), d.get("serviceUrl")
    if not isinstance(speaker, str) or not speaker:
        raise ParseError(f"{where}: identification has no speakerUri")
    if not isinstance(url, str) or not url:
        raise ParseError(f"{where}: identification has no serviceUrl")
    text: dict[str, str] = {}
    for key in ("organization", "conversationalName", "synopsis"):
        v = d.get(key)
        if not isinstance(v, str):
            notes.append(f"{where}: {key} missing, set to ''")
            v = ""
        text[key] = v
    roles_raw = d.get("openFloorRoles") or {}
    roles: dict[str, bool] = {}
    if isinstance(roles_raw, Mapping):
        roles = {str(k): v for k, v in roles_raw.items() if isinstance(v, bool)}
    else:
        notes.append(f"{where}: openFloorRoles is not an object, dropped")
    dept, role = d.get("department"), d.get("role")
    return Identification(
        speaker_uri=speaker,
        service_url=url,
        organization=text["organization"],
        conversational_name=text["conversationalName"],
        synopsis=text["synopsis"],
        department=dept if isinstance(dept, str) else None,
        role=role if isinstance(role, str) else None,
        open_floor_roles=roles,
    )


def manifest_from_dict(d: Any, *, where: str, notes: list[str]) -> Manifest:
    if not isinstance(d, Mapping):
        raise ParseError(f"{where}: manifest is not an object")
    ident = identification_from_dict(d.get("identification"), where=f"{where}.identification", notes=notes)
    caps: list[Capability] = []
    raw_caps = d.get("capabilities")
    if isinstance(raw_caps, Mapping):
        raw_caps = [raw_caps]
    if not isinstance(raw_caps, list):
        notes.append(f"{where}: capabilities missing")
        raw_caps = []
    for i, c in enumerate(raw_caps):
        cw = f"{where}.capabilities[{i}]"
        if not isinstance(c, Mapping):
            notes.append(f"{cw}: not an object, dropped")
            continue
        layers_raw = c.get("supportedLayers")
        layers: SupportedLayers | None = None
        if isinstance(layers_raw, Mapping):
            layers = SupportedLayers(
                _str_list(layers_raw.get("input"), f"{cw}.supportedLayers.input", notes),
                _str_list(layers_raw.get("output"), f"{cw}.supportedLayers.output", notes),
            )
        elif isinstance(layers_raw, list):
            ls = _str_list(layers_raw, f"{cw}.supportedLayers", notes)
            layers = SupportedLayers(list(ls), list(ls))
            notes.append(f"{cw}: supportedLayers is a list; used for input and output")
        caps.append(
            Capability(
                keyphrases=_str_list(c.get("keyphrases"), f"{cw}.keyphrases", notes),
                descriptions=_str_list(c.get("descriptions"), f"{cw}.descriptions", notes),
                languages=_str_list(c.get("languages"), f"{cw}.languages", notes),
                supported_layers=layers,
            )
        )
    score = d.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        notes.append(f"{where}.score: not a number, dropped")
        score = None
    return Manifest(ident, caps, float(score) if score is not None else None)
