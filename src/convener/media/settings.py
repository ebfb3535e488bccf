"""Settings of the media path (section ``[media]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from convener.settings import ConfigError


@dataclass
class MediaSettings:
    transport: Literal["rtp", "websocket"] = "rtp"
    # Format Asterisk sends us: ulaw (8 kHz) or slin16 (16 kHz signed linear).
    format: Literal["ulaw", "slin16"] = "ulaw"
    # Address Asterisk sends RTP to (ours); ports are taken from this range, one socket per call.
    rtp_host: str = "127.0.0.1"
    rtp_port_min: int = 20000
    rtp_port_max: int = 20999

    def validate(self) -> None:
        if not 1024 <= self.rtp_port_min <= self.rtp_port_max <= 65535:
            raise ConfigError("rtp_port_min: must satisfy 1024 <= rtp_port_min <= rtp_port_max <= 65535")
