"""Settings of the operations side (section ``[ops]``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OpsSettings:
    http_host: str = "127.0.0.1"
    http_port: int = 8765
