"""The convener configuration: one TOML file plus environment overrides for secrets.

Each area owns its section dataclass (``ari``, ``calls``, ``media``, ``speech``, ``ofp``);
this module only composes them, reads the file and applies the environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from convener.app.actions.settings import TransferSettings
from convener.app.voice_settings import VoiceSettings
from convener.llm.settings import LlmSettings
from convener.media.settings import MediaSettings
from convener.ofp.settings import OfpSettings
from convener.ops.settings import OpsSettings
from convener.settings import ConfigError, load_section, read_toml
from convener.speech.settings import SpeechSettings

__all__ = ["AriSettings", "CallSettings", "Config", "ConfigError", "load_config"]


@dataclass
class AriSettings:
    url: str = "http://127.0.0.1:8088/ari"
    user: str = "convener"
    password: str = ""
    app: str = "convener"
    ping_interval: float = 5.0
    ping_timeout: float = 5.0
    reconnect_initial: float = 0.5
    reconnect_max: float = 10.0
    request_timeout: float = 5.0
    verify_tls: bool = True
    ca_file: str = ""

    def validate(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"url: must be http(s)://host:port/ari, got {self.url!r}")
        if not self.app or any(c in self.app for c in " ,/?&"):
            raise ConfigError(f"app: must be a plain Stasis application name, got {self.app!r}")
        for name in ("ping_interval", "ping_timeout"):
            v = getattr(self, name)
            if not 0 < v <= 5:
                raise ConfigError(f"{name}: must be in (0, 5] seconds, got {v}")
        if not 0 < self.reconnect_initial <= self.reconnect_max:
            raise ConfigError("reconnect_initial: must be > 0 and <= reconnect_max")
        if self.request_timeout <= 0:
            raise ConfigError("request_timeout: must be > 0")

    @property
    def events_url(self) -> str:
        base = self.url.rstrip("/")
        scheme = "wss" if base.startswith("https") else "ws"
        return f"{scheme}{base[base.index(':'):]}/events"

    def redacted(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["password"] = "***" if self.password else ""
        return d


@dataclass
class CallSettings:
    default_room: str = "lobby"
    bridge_type: str = "mixing,dtmf_events"
    # Keep each room's bridge on one mixing technology for its whole life: a silent member
    # (an RTP channel whose audio is dropped) joins with the bridge, so the room mixes with
    # softmix from its first caller on. Without it Asterisk 22 switches simple_bridge <->
    # softmix when a second caller joins or leaves, and a caller already in the room was seen
    # to hear nothing until the next switch (docs/decisions.md, "Rooms").
    room_anchor: bool = True
    # DTMF digit that hands the caller back to the dialplan (operator fallback); "" disables it.
    dtmf_continue: str = "0"
    # Rooms callers may name with Stasis(convener,room=NAME); empty means any name is accepted.
    allowed_rooms: list[str] = field(default_factory=list)
    # Where callers enter the dialplan: `convener doctor` and `convener call` dial it.
    dialplan_context: str = "from-internal"
    dialplan_extension: str = "100"

    def validate(self) -> None:
        if self.dtmf_continue and self.dtmf_continue not in "0123456789*#ABCD":
            raise ConfigError(f"dtmf_continue: must be one DTMF digit or empty, got {self.dtmf_continue!r}")
        if not self.default_room:
            raise ConfigError("default_room: must not be empty")


@dataclass
class Config:
    ari: AriSettings = field(default_factory=AriSettings)
    calls: CallSettings = field(default_factory=CallSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    ofp: OfpSettings = field(default_factory=OfpSettings)
    ops: OpsSettings = field(default_factory=OpsSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    transfer: TransferSettings = field(default_factory=TransferSettings)


# Environment variables that override single keys (secrets stay out of the file).
ENV_KEYS: dict[str, tuple[str, str]] = {
    "CONVENER_ARI_URL": ("ari", "url"),
    "CONVENER_ARI_USER": ("ari", "user"),
    "CONVENER_ARI_PASSWORD": ("ari", "password"),
    "CONVENER_APP": ("ari", "app"),
    "DEEPGRAM_API_KEY": ("speech", "deepgram_api_key"),
}


def _apply_env(data: dict[str, Any], env: dict[str, str]) -> None:
    for var, (section, key) in ENV_KEYS.items():
        if env.get(var):
            data.setdefault(section, {})[key] = env[var]
    # Generic form: CONVENER__SECTION__KEY=value (strings; converted by the section's types).
    for var, value in env.items():
        if var.startswith("CONVENER__"):
            parts = var[len("CONVENER__"):].lower().split("__")
            if len(parts) != 2 or not all(parts):
                raise ConfigError(f"{var}: environment override must be CONVENER__SECTION__KEY")
            data.setdefault(parts[0], {})[parts[1]] = value


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read the TOML file (optional) and the environment; raise ConfigError naming the key."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_toml(path)
    _apply_env(data, dict(os.environ if env is None else env))
    return load_section(Config, data)
