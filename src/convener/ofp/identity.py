"""Who we are on the floor: the convener's own manifest, and the identities of human callers.

A caller's phone number is never put on the floor unless ``caller_uri = "tel"`` is configured;
by default each caller gets a fresh anonymous tag URI.
"""

from __future__ import annotations

import re
import uuid

from convener.ofp.manifest import Capability, Identification, Manifest, SupportedLayers
from convener.ofp.settings import OfpSettings


def convener_uri(settings: OfpSettings) -> str:
    return f"tag:{settings.tag_authority}:convener"


def convener_identification(settings: OfpSettings) -> Identification:
    return Identification(
        speaker_uri=convener_uri(settings),
        service_url=settings.service_url,
        organization=settings.organization,
        conversational_name=settings.conversational_name,
        synopsis="Voice front door that invites the right agent for each request and hands over between agents.",
        role="Convener",
        open_floor_roles={"convener": True},
    )


def convener_manifest(settings: OfpSettings) -> Manifest:
    return Manifest(
        identification=convener_identification(settings),
        capabilities=[
            Capability(
                keyphrases=["convener", "floor manager", "telephone", "voice"],
                descriptions=[
                    "Hosts telephone conversations between callers and Open Floor agents, "
                    "chooses which agent to invite and passes the floor between them."
                ],
                languages=["en"],
                supported_layers=SupportedLayers(["text"], ["text"]),
            )
        ],
    )


def human_identification(
    settings: OfpSettings, *, name: str | None = None, caller_id: str | None = None
) -> Identification:
    """A human conversant. ``caller_id`` (a phone number) is used only with ``caller_uri="tel"``."""
    if settings.caller_uri == "tel" and caller_id:
        digits = re.sub(r"[^0-9+]", "", caller_id)
        uri = f"tel:{digits}" if digits else f"tag:{settings.tag_authority}:caller/{uuid.uuid4().hex}"
    else:
        uri = f"tag:{settings.tag_authority}:caller/{uuid.uuid4().hex}"
    return Identification(
        speaker_uri=uri,
        service_url=settings.service_url,  # humans are reached through us (the user proxy)
        organization="",
        conversational_name=name or "Caller",
        synopsis="A person on the phone.",
        role="User",
    )
