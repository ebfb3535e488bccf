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


# A second (third...) Asterisk next to the default one: one lowercase letter, b to j. It runs
# from the same cached root file system with its own folders inside it and its own ports.
INSTANCE_NAMES = "bcdefghij"


def check_instance(name: str) -> str:
    """``name`` if it names a sandbox instance ("" is the default one), else ValueError."""
    if name and (len(name) != 1 or name not in INSTANCE_NAMES):
        raise ValueError(f"sandbox instance {name!r}: use one letter from b to j "
                         "(the default instance has no name)")
    return name


def instance_offset(name: str) -> int:
    """0 for the default instance, 1 for b, 2 for c...: shifts its ports."""
    return INSTANCE_NAMES.index(check_instance(name)) + 1 if name else 0


@dataclass(frozen=True)
class SandboxPaths:
    base: Path
    instance: str = ""

    def __post_init__(self) -> None:
        check_instance(self.instance)

    @property
    def suffix(self) -> str:
        """Appended to the instance's folders inside the root ("" for the default one)."""
        return f"-{self.instance}" if self.instance else ""

    @property
    def state_dir(self) -> Path:
        """Where this instance keeps its pid, credentials and log (outside the root)."""
        return self.base / "instances" / self.instance if self.instance else self.base

    @property
    def etc_dir(self) -> Path:
        """The instance's configuration folder (``/etc/asterisk-b`` inside the root for b)."""
        return self.root / "etc" / f"asterisk{self.suffix}"

    @property
    def chroot_conf(self) -> str:
        """Its asterisk.conf as Asterisk sees it inside the chroot."""
        return f"/etc/asterisk{self.suffix}/asterisk.conf"

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
        return self.state_dir / "state.json"

    @property
    def credentials_file(self) -> Path:
        return self.state_dir / "credentials.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "asterisk.log"

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
        return self.root / "var" / "spool" / f"asterisk{self.suffix}" / "recording"

    @property
    def messages_log(self) -> Path:
        return self.root / "var" / "log" / f"asterisk{self.suffix}" / "messages.log"
