"""Settings of the operations side (section ``[ops]``).

Example::

    [ops]
    http_host = "127.0.0.1"      # health, readiness and metrics endpoints
    http_port = 8765
    token = ""                   # or environment CONVENER_OPS_TOKEN; required off loopback
    log_format = "json"          # "text" (default) or "json" (one object per line)
    transcripts_url = ""         # "" = SQLite under state_dir; or postgresql://user@host/db
    console = true               # the web console at /console
    record_calls = false         # ARI bridge recording of every room; tell your callers
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from convener.settings import ConfigError

TOKEN_ENV = "CONVENER_OPS_TOKEN"
SYSTEM_STATE_DIR = Path("/var/lib/convener")


def is_loopback_host(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class OpsSettings:
    # Address of the ops HTTP server (/live, /ready, /health, /metrics). Anything but a loopback
    # address needs a bearer token.
    http_host: str = "127.0.0.1"
    # Serve the ops endpoints at all.
    http_enabled: bool = True
    # Port of the ops HTTP server (0 = any free port, reported in the log).
    http_port: int = 8765
    # Bearer token required by every ops endpoint but /live; "" = environment CONVENER_OPS_TOKEN.
    token: str = field(default="", repr=False)
    # Log lines: "text" for people, "json" for one JSON object per line (log shippers).
    log_format: Literal["text", "json"] = "text"
    # Log level when no -v is given: DEBUG, INFO, WARNING or ERROR.
    log_level: str = "INFO"
    # Where convener keeps its state (the SQLite transcripts). "" = $STATE_DIRECTORY (set by
    # systemd), else /var/lib/convener when writable, else ~/.local/state/convener.
    state_dir: str = ""
    # Store every conversation (who said what, when, who held the floor). Tell your callers.
    transcripts: bool = True
    # Transcript store: "" = SQLite file transcripts.sqlite3 in state_dir; "sqlite:///path/file";
    # or "postgresql://user:password@host:5432/db" shared by several convener nodes.
    transcripts_url: str = field(default="", repr=False)
    # Conversations older than this many days are deleted (daily, by the running service, and by
    # `convener transcripts --purge`); 0 keeps them forever.
    transcripts_retention_days: int = 0
    # Name of this convener instance in a shared transcript store; "" = the host name.
    node_id: str = ""
    # The web console at /console on the ops server (live calls, transcripts, history).
    console: bool = True
    # Record each room's audio (ARI bridge recording, in Asterisk's recording directory), playable
    # in the console's history. Off by default: callers must be told they are recorded.
    record_calls: bool = False
    # Once the models are loaded, put everything loaded so far out of the garbage collector's
    # reach (gc.freeze): a full collection then no longer stalls every call's audio (measured
    # during 100 calls: 41-59 ms without, 4-6 ms with).
    gc_freeze: bool = True

    def validate(self) -> None:
        if not 0 <= self.http_port < 65536:
            raise ConfigError(f"http_port: out of range: {self.http_port}")
        if not self.http_host:
            raise ConfigError("http_host: must not be empty (use 127.0.0.1 for loopback only)")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"log_level: must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")
        if self.transcripts_retention_days < 0:
            raise ConfigError("transcripts_retention_days: must be >= 0 (0 keeps transcripts forever)")
        if self.transcripts_url:
            scheme = urlsplit(self.transcripts_url).scheme
            if scheme not in ("sqlite", "postgresql", "postgres"):
                raise ConfigError("transcripts_url: must be sqlite:///path or postgresql://..., "
                                  f"got scheme {scheme!r}")

    def resolved_token(self) -> str:
        return self.token or os.environ.get(TOKEN_ENV, "")

    def resolved_node_id(self) -> str:
        return self.node_id or socket.gethostname()

    def resolved_state_dir(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir).expanduser()
        systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        if systemd:
            return Path(systemd)
        if os.access(SYSTEM_STATE_DIR, os.W_OK) or (
            not SYSTEM_STATE_DIR.exists() and os.access(SYSTEM_STATE_DIR.parent, os.W_OK)
        ):
            return SYSTEM_STATE_DIR
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(xdg) / "convener"
