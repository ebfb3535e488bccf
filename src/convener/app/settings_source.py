"""Find the configuration a command should use.

Order: ``--config FILE``; else ``$CONVENER_CONFIG``; else ``/etc/convener/convener.toml`` when it
exists; else the built-in defaults. Environment overrides apply in every case. When no ARI
password is configured and the project's sandbox Asterisk is running, its credentials are used,
so ``convener sandbox up`` followed by ``convener run`` works with no file at all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from convener.config import Config, load_config

log = logging.getLogger(__name__)

SYSTEM_CONFIG = Path("/etc/convener/convener.toml")


def config_path(cli_path: str | None) -> Path | None:
    if cli_path:
        return Path(cli_path)
    if os.environ.get("CONVENER_CONFIG"):
        return Path(os.environ["CONVENER_CONFIG"])
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return None


def resolve_config(cli_path: str | None) -> Config:
    """Load the configuration (raises ConfigError naming the bad key)."""
    cfg = load_config(config_path(cli_path))
    if not cfg.ari.password:
        sandbox_credentials(cfg)
    return cfg


def sandbox_credentials(cfg: Config) -> bool:
    try:
        from convener.sandbox.runtime import Sandbox

        sb = Sandbox()
        if not sb.paths.credentials_file.exists():
            return False
        creds = sb.credentials()
    except (OSError, ValueError):
        return False
    cfg.ari.url = creds.ari_url
    cfg.ari.user = creds.ari_user
    cfg.ari.password = creds.ari_password
    log.info("no ARI password configured: using the sandbox Asterisk at %s", creds.ari_url)
    return True
