"""Build the sandbox's root file system once: Debian sid with Asterisk 22, made by debootstrap.

Debian 12 has no Asterisk package and sid's would drag a newer libc into the host, so Asterisk
runs from its own sid root file system under ``chroot`` (files chowned to root, proc and /dev mounted: see ``runtime``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from convener.sandbox.paths import SandboxPaths

PACKAGES = ("asterisk", "asterisk-modules", "asterisk-config", "asterisk-core-sounds-en-gsm")
SUITE = "sid"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
# Folders of the sid tree that must belong to root (root lacks CAP_DAC_OVERRIDE here).
OWNED_DIRS = ("etc/asterisk", "var/lib/asterisk", "var/log/asterisk", "var/spool/asterisk",
              "var/run/asterisk", "usr/share/asterisk")


class SandboxError(RuntimeError):
    """The sandbox cannot be built or run; the message says what is missing and how to fix it."""


Progress = Callable[[str], None]


def _stderr_progress(msg: str) -> None:
    print(f"[sandbox] {msg}", file=sys.stderr, flush=True)


def debian_mirror(sources: Path = Path("/etc/apt/sources.list.d/debian.sources")) -> str:
    """The Debian URI the machine's own apt sources name (the only registry reachable here)."""
    candidates = [sources, Path("/etc/apt/sources.list")]
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for m in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.M):
            uri = m.group(1)
            if "security" not in uri and uri.startswith(("http://", "https://")):
                return uri.rstrip("/")
    return FALLBACK_MIRROR


def check_prerequisites() -> list[str]:
    """What is missing for building and running the sandbox, each with how to fix it."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root: the sandbox mounts /proc and runs chroot; run as root (sudo convener sandbox up)")
    if not shutil.which("chroot"):
        missing.append("chroot (coreutils) not found on PATH")
    if not shutil.which("mount"):
        missing.append("mount (util-linux) not found on PATH")
    return missing


def ensure_debootstrap(progress: Progress) -> str:
    path = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if path:
        return path
    if not shutil.which("apt-get"):
        raise SandboxError("debootstrap is missing and apt-get is not available to install it: "
                           "install Debian's debootstrap package")
    progress("installing debootstrap from the Debian package registry (apt-get)")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "debootstrap"]):
        r = subprocess.run(cmd, capture_output=True, text=True,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if r.returncode != 0:
            raise SandboxError(
                f"`{' '.join(cmd)}` failed (exit {r.returncode}): the Debian package registry must be "
                f"reachable.\n{r.stderr.strip()[-2000:]}")
    return shutil.which("debootstrap") or "/usr/sbin/debootstrap"


def fix_ownership(root: Path) -> None:
    """chown the Asterisk folders of the sid tree to root and create the run folder."""
    (root / "var/run/asterisk").mkdir(parents=True, exist_ok=True)
    for rel in OWNED_DIRS:
        top = root / rel
        if not top.exists():
            continue
        os.chown(top, 0, 0, follow_symlinks=False)
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), 0, 0, follow_symlinks=False)


def build(paths: SandboxPaths, progress: Progress = _stderr_progress, force: bool = False) -> None:
    """Build the root file system unless a complete one is cached (``force`` rebuilds it)."""
    if paths.built_marker.exists() and not force:
        return
    problems = check_prerequisites()
    if problems:
        raise SandboxError("cannot build the sandbox:\n  - " + "\n  - ".join(problems))
    debootstrap = ensure_debootstrap(progress)
    paths.base.mkdir(parents=True, exist_ok=True)
    if paths.building.exists():
        shutil.rmtree(paths.building)
    mirror = debian_mirror()
    progress(f"building Asterisk 22 root file system (Debian {SUITE}) in {paths.root} from {mirror}; "
             "this takes about a minute once and is cached")
    cmd = [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
           str(paths.building), mirror]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    last = 0.0
    for line in proc.stdout:
        line = line.rstrip()
        tail = ([*tail, line])[-30:]
        # debootstrap prints "I: Retrieving ...", "I: Unpacking ...", "I: Configuring ...".
        if line.startswith(("I: Retrieving", "I: Validating", "I: Resolving", "I: Installing",
                            "I: Unpacking the base", "I: Configuring the base", "I: Base system")):
            progress(f"{time.monotonic() - started:5.0f}s {line[3:]}")
        elif line.startswith(("I: Unpacking", "I: Configuring")) and time.monotonic() - last > 5:
            last = time.monotonic()
            progress(f"{time.monotonic() - started:5.0f}s {line[3:]}")
    rc = proc.wait()
    if rc != 0:
        shutil.rmtree(paths.building, ignore_errors=True)
        raise SandboxError(f"debootstrap failed (exit {rc}); the Debian package registry at {mirror} "
                           "must be reachable. Last lines:\n" + "\n".join(tail))
    fix_ownership(paths.building)
    if paths.root.exists():
        shutil.rmtree(paths.root)
    paths.building.rename(paths.root)
    paths.built_marker.write_text(f"built {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
    progress(f"root file system ready in {time.monotonic() - started:.0f}s")
