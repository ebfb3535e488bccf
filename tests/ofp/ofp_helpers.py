"""Helpers of the OFP tests: where the OFP reference data is, settings for local agents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convener.ofp.settings import AgentSettings, OfpSettings

# The official schemas and samples, vendored unchanged (see data/openfloor/README.md).
SHARED = Path(__file__).resolve().parent / "data" / "openfloor"
ENVELOPE_SAMPLES = SHARED / "conversation-envelope" / "1.1.0" / "sample-json"
MANIFEST_SAMPLES = SHARED / "assistant-manifest" / "1.0.1" / "sample-json"
DIALOG_SAMPLES = SHARED / "dialog-event" / "1.0.2" / "sample-json"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def envelope_samples() -> list[Path]:
    found = sorted(ENVELOPE_SAMPLES.glob("*.json"))
    assert found, f"no OFP envelope samples in {ENVELOPE_SAMPLES}"
    return found


def settings_for(urls: dict[str, str], **kw: Any) -> OfpSettings:
    timeout = kw.pop("timeout", 2.0)
    return OfpSettings(agents={n: AgentSettings(url=u, timeout=timeout) for n, u in urls.items()}, **kw)
