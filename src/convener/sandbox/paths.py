"""Where the sandbox lives: a cache folder outside the repository.

``CONVENER_SANDBOX_DIR`` overrides it; the default is ``/var/cache/convener/sandbox`` for root
(the sandbox needs root anyway) and ``~/.cache/convener/sandbox`` otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_dir() -> Path:
    env = os.environ.get("CONVENER_SANDBOX_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/convener/sandbox")
    return Path.home() / ".cache" / "convener" / "sandbox"


@dataclass(frozen=True)
class SandboxPaths:
    base: Path

    @property
    def root(self) -> Path:
        """The Debian sid root file system holding Asterisk."""
        return self.base / "root"

    @property
    def building(self) -> Path:
        return self.base / "root.building"

    @property
    def built_marker(self) -> Path:
        return self.root / ".convener-built"

    @property
    def state_file(self) -> Path:
        return self.base / "state.json"

    @property
    def credentials_file(self) -> Path:
        return self.base / "credentials.json"

    @property
    def log_file(self) -> Path:
        return self.base / "asterisk.log"

    @property
    def sounds_dir(self) -> Path:
        """Folder for sound files that tests and ``convener call`` play.

        Inside the chroot it is ``/usr/share/asterisk/sounds/convener``; play a file ``NAME.wav``
        there with the media URI ``sound:/usr/share/asterisk/sounds/convener/NAME``.
        """
        return self.root / "usr" / "share" / "asterisk" / "sounds" / "convener"

    @staticmethod
    def sound_uri(name: str) -> str:
        return f"sound:/usr/share/asterisk/sounds/convener/{name}"

    @property
    def recordings_dir(self) -> Path:
        return self.root / "var" / "spool" / "asterisk" / "recording"
