"""Run the sandbox Asterisk: write its configuration, mount, start, wait for ARI, stop.

The process is ``chroot ROOT /usr/sbin/asterisk -f`` started in its own session so it outlives
``convener sandbox up``; its pid and the credentials are kept in the sandbox folder.

A named instance (``convener sandbox up --instance b``) is a second Asterisk from the same root
file system: its own folders inside the root (``/etc/asterisk-b``, ``/var/run/asterisk-b``...,
chosen by ``asterisk -C``), its own ports (ARI, SIP, RTP range shifted by the instance's
offset) and its own state folder ``instances/b``. The mounts of the root are shared: the last
instance to go down unmounts.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from convener.sandbox.build import Progress, SandboxError, _stderr_progress, build, fix_ownership
from convener.sandbox.paths import INSTANCE_NAMES, SandboxPaths, default_dir, instance_offset

CONF_FILES = ("asterisk.conf", "modules.conf", "logger.conf", "http.conf", "ari.conf",
              "extensions.conf", "pjsip.conf", "rtp.conf")
# The PJSIP endpoints of pjsip.conf (one password for all): several phones can share a room.
SIP_USERS = ("phone1", "phone2", "phone3")
# Modules loaded in place when modules.conf changes on a running sandbox.
LOAD_IN_PLACE = ("chan_audiosocket.so",)
# How a running Asterisk takes a changed file without a restart (the others need one).
RELOADS = {"pjsip.conf": "module reload res_pjsip.so", "extensions.conf": "dialplan reload",
           "rtp.conf": "module reload res_rtp_asterisk.so", "ari.conf": "module reload res_ari.so",
           "logger.conf": "logger reload"}


def reload_plan(changed: list[str]) -> tuple[list[str], list[str]]:
    """(CLI commands that apply ``changed`` files to a running Asterisk, files that need a restart)."""
    commands = [RELOADS[name] for name in changed if name in RELOADS]
    return commands, [name for name in changed if name not in RELOADS]


@dataclass
class Credentials:
    ari_user: str
    ari_password: str
    sip_user: str
    sip_password: str
    app: str = "convener"
    ari_port: int = 8088
    sip_port: int = 5060
    rtp_start: int = 30000
    rtp_end: int = 30999

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.ari_port}/ari"


def instance_ports(instance: str) -> dict[str, int]:
    """The ports of an instance: the default's shifted by its offset (b: ARI 8089, SIP 5062,
    RTP 31000-31999)."""
    k = instance_offset(instance)
    return {"ari_port": 8088 + k, "sip_port": 5060 + 2 * k, "rtp_start": 30000 + 1000 * k,
            "rtp_end": 30999 + 1000 * k}


# The folders of asterisk.conf that each instance has for itself (the rest are shared: modules,
# sounds, AGI scripts).
OWN_DIRS = ("astetcdir", "astvarlibdir", "astdbdir", "astkeydir", "astspooldir", "astrundir", "astlogdir")


def instance_asterisk_conf(text: str, suffix: str) -> str:
    """asterisk.conf for an instance: its own folders get ``suffix`` (``-b``)."""
    if not suffix:
        return text
    out = []
    for line in text.splitlines():
        key, sep, value = line.partition("=>")
        if sep and key.strip() in OWN_DIRS:
            line = f"{key}=> {value.strip()}{suffix}"
        out.append(line)
    return "\n".join(out) + "\n"


class Sandbox:
    """The project's own Asterisk 22 on loopback."""

    def __init__(self, base: Path | None = None, progress: Progress = _stderr_progress,
                 instance: str = "") -> None:
        self.paths = SandboxPaths(base or default_dir(), instance)
        self.instance = instance
        self.progress = progress

    def _asterisk(self, *args: str) -> list[str]:
        """The command line of this instance's Asterisk inside the chroot."""
        conf = ["-C", self.paths.chroot_conf] if self.instance else []
        return ["chroot", str(self.paths.root), "/usr/sbin/asterisk", *conf, *args]

    def siblings(self) -> list[Sandbox]:
        """The other instances of this root file system (default included)."""
        names = ["", *INSTANCE_NAMES]
        return [Sandbox(self.paths.base, self.progress, n) for n in names if n != self.instance]

    # -- credentials and configuration ---------------------------------------------------------

    def credentials(self) -> Credentials:
        f = self.paths.credentials_file
        if f.exists():
            return Credentials(**json.loads(f.read_text()))
        creds = Credentials(ari_user="convener", ari_password=secrets.token_urlsafe(12),
                            sip_user="phone1", sip_password=secrets.token_urlsafe(9),
                            **instance_ports(self.instance))
        self.paths.state_dir.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(asdict(creds), indent=2) + "\n")
        f.chmod(0o600)
        return creds

    def write_config(self, creds: Credentials) -> list[str]:
        """Write the configuration files; returns the names of those whose text changed (all of
        them on a fresh root). Files that are not ours are removed."""
        etc = self.paths.etc_dir
        etc.mkdir(parents=True, exist_ok=True)
        for p in etc.iterdir():
            if (p.is_file() or p.is_symlink()) and p.name not in CONF_FILES:
                p.unlink()
        values = {"ari_user": creds.ari_user, "ari_password": creds.ari_password,
                  "ari_port": creds.ari_port, "sip_port": creds.sip_port,
                  "sip_password": creds.sip_password, "app": creds.app,
                  "rtp_start": creds.rtp_start, "rtp_end": creds.rtp_end}
        conf = resources.files("convener.sandbox") / "conf"
        changed = []
        for name in CONF_FILES:
            text = (conf / name).read_text()
            if name == "asterisk.conf":
                text = instance_asterisk_conf(text, self.paths.suffix)
            elif name != "extensions.conf":
                text = text.format(**values)
            else:
                # The dialplan contains ${...} variables: substitute only our placeholders.
                for key in ("app",):
                    text = text.replace("{" + key + "}", str(values[key]))
            target = etc / name
            if target.is_symlink() or not target.exists() or target.read_text() != text:
                if target.is_symlink():
                    target.unlink()
                target.write_text(text)
                changed.append(name)
        self.paths.sounds_dir.mkdir(parents=True, exist_ok=True)
        self.paths.recordings_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("var/lib", "var/log", "var/run"):
            (self.paths.root / sub / f"asterisk{self.paths.suffix}").mkdir(parents=True, exist_ok=True)
        # Asterisk looks up this host's name, then A.ROOT-SERVERS.NET, to find its own address;
        # with no DNS reachable a lookup can stall start-up until the resolver times out. The
        # sandbox lives on loopback: answer both locally, and let any other lookup fail at once.
        import socket

        etc = self.paths.root / "etc"
        (etc / "hosts").write_text(f"127.0.0.1\tlocalhost {socket.gethostname()} A.ROOT-SERVERS.NET\n"
                                   "::1\tlocalhost ip6-localhost\n")
        resolv = etc / "resolv.conf"
        if resolv.is_symlink():
            resolv.unlink()
        resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        return changed

    # -- process state --------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads(self.paths.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def pid(self) -> int | None:
        pid = self._state().get("pid")
        if not pid:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if b"asterisk" not in cmdline:
            return None
        # The pid may have been reused by another instance's Asterisk: check its -C.
        own = self.paths.chroot_conf.encode() in cmdline if self.instance else b"-C" not in cmdline.split(b"\0")
        return pid if own else None

    def ari_ready(self, creds: Credentials, timeout: float = 1.0) -> bool:
        req = urllib.request.Request(f"{creds.ari_url}/asterisk/info?only=system")
        token = base64.b64encode(f"{creds.ari_user}:{creds.ari_password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, TimeoutError):
            return False

    def _mounts(self) -> set[str]:
        try:
            lines = Path("/proc/mounts").read_text().splitlines()
        except OSError:
            return set()
        return {line.split()[1] for line in lines if len(line.split()) > 1}

    def _mount(self) -> None:
        mounted = self._mounts()
        proc_dir, dev_dir = self.paths.root / "proc", self.paths.root / "dev"
        if str(proc_dir) not in mounted:
            _run(["mount", "-t", "proc", "proc", str(proc_dir)])
        if str(dev_dir) not in mounted:
            _run(["mount", "--bind", "/dev", str(dev_dir)])

    def _unmount(self) -> None:
        if any(other.pid() for other in self.siblings()):
            return  # another instance still runs from this root: it keeps the mounts
        mounted = self._mounts()
        for d in (self.paths.root / "dev", self.paths.root / "proc"):
            if str(d) in mounted:
                r = subprocess.run(["umount", str(d)], capture_output=True, text=True)
                if r.returncode != 0:
                    subprocess.run(["umount", "-l", str(d)], capture_output=True, text=True)

    # -- lifecycle ------------------------------------------------------------------------------

    def up(self, wait: float = 90.0) -> Credentials:
        """Build if needed, start Asterisk if it is not running, and wait until ARI answers."""
        build(self.paths, self.progress)
        creds = self.credentials()
        if self.pid() and self.ari_ready(creds):
            self._apply_config(creds)
            return creds
        if self.pid():
            self.down()
        if self.ari_ready(creds, timeout=0.5) or _port_busy(creds.ari_port):
            raise SandboxError(f"127.0.0.1:{creds.ari_port} is already in use by another program: "
                               "stop it (another Asterisk?) before `convener sandbox up`")
        self.write_config(creds)
        fix_ownership(self.paths.root)
        self._mount()
        self._start_process()
        self._wait_ready(creds, wait)
        return creds

    def _apply_config(self, creds: Credentials) -> None:
        """Asterisk is running already (a cached sandbox, started before this version): bring its
        configuration up to date in place, by reloading what changed, so that everyone else's
        calls go on."""
        changed = self.write_config(creds)
        commands, need_restart = reload_plan(changed)
        for command in commands:
            self.progress(f"configuration changed: {command}")
            self.asterisk_cli(command)
        if "pjsip.conf" in changed:  # the reload is queued: wait until the endpoints are there
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                shown = self.asterisk_cli("pjsip show endpoints")
                if all(f" {user} " in shown for user in SIP_USERS):
                    break
                time.sleep(0.1)
        if "modules.conf" in changed:
            # Modules a newer modules.conf no longer keeps out (chan_audiosocket, for the
            # AudioSocket transport) are loaded in place; loading one twice is harmless.
            for module in LOAD_IN_PLACE:
                self.asterisk_cli(f"module load {module}")
        if need_restart:
            self.progress(f"{', '.join(need_restart)} changed: `convener sandbox restart` applies it")

    def _start_process(self) -> None:
        # A stale control socket from a killed Asterisk makes a new one refuse to start.
        ctl = self.paths.root / f"var/run/asterisk{self.paths.suffix}/asterisk.ctl"
        if ctl.exists():
            ctl.unlink()
        self.progress(f"starting Asterisk{' instance ' + self.instance if self.instance else ''}")
        log = open(self.paths.log_file, "ab")
        try:
            proc = subprocess.Popen(
                self._asterisk("-f", "-n", "-v"),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        self.paths.state_file.write_text(json.dumps({"pid": proc.pid, "started": time.time()}))
        self._proc = proc

    def _wait_ready(self, creds: Credentials, wait: float) -> None:
        deadline = time.monotonic() + wait
        started = time.monotonic()
        said = 0
        while time.monotonic() < deadline:
            if self.ari_ready(creds):
                self.progress(f"Asterisk ready, ARI at {creds.ari_url} ({time.monotonic() - started:.1f}s)")
                return
            # Has the process we started exited? (Popen knows for sure; /proc can be racy.)
            proc = getattr(self, "_proc", None)
            if proc is not None and proc.poll() is not None:
                break
            if proc is None and not self.pid():
                break
            if time.monotonic() - started > said + 10:
                said += 10
                self.progress(f"waiting for ARI ({said}s)")
            time.sleep(0.1)
        # Asterisk's own log file is written directly (its console output is buffered).
        messages = self.paths.messages_log
        tail = _tail(messages if messages.exists() else self.paths.log_file, 25)
        waited = time.monotonic() - started
        raise SandboxError(f"Asterisk did not answer ARI ({waited:.0f}s of {wait:.0f}s waited"
                           f"{', it exited' if waited < wait else ''}). Log {messages}:\n{tail}")

    def stop_process(self, timeout: float = 10.0) -> None:
        """Stop Asterisk (``core stop now``, then signals) but keep the mounts."""
        pid = self.pid()
        if not pid:
            return
        subprocess.run(self._asterisk("-rx", "core stop now"),
                       capture_output=True, timeout=timeout)
        deadline = time.monotonic() + timeout
        sig = signal.SIGTERM
        while self.pid() and time.monotonic() < deadline:
            time.sleep(0.05)
            if time.monotonic() > deadline - timeout / 2:
                _kill(pid, sig)
                sig = signal.SIGKILL
        if self.pid():
            _kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        _reap(pid)

    def restart(self, wait: float = 90.0) -> Credentials:
        """Stop and start Asterisk again (tests use this to restart it under live calls)."""
        creds = self.credentials()
        self.stop_process()
        self.write_config(creds)
        self._mount()
        self._start_process()
        self._wait_ready(creds, wait)
        return creds

    def down(self) -> None:
        self.stop_process()
        self._unmount()
        try:
            self.paths.state_file.unlink()
        except FileNotFoundError:
            pass

    def asterisk_cli(self, command: str, timeout: float = 10.0) -> str:
        """Run an Asterisk CLI command inside the chroot (``asterisk -rx``)."""
        r = subprocess.run(self._asterisk("-rx", command),
                           capture_output=True, text=True, timeout=timeout)
        return r.stdout

    def status(self) -> dict[str, Any]:
        creds = self.credentials() if self.paths.credentials_file.exists() else None
        pid = self.pid()
        info: dict[str, Any] = {
            "instance": self.instance or "default",
            "built": self.paths.built_marker.exists(),
            "root": str(self.paths.root),
            "running": bool(pid),
            "pid": pid,
            "log": str(self.paths.log_file),
            "sounds_dir": str(self.paths.sounds_dir),
        }
        if creds:
            info.update(ari_url=creds.ari_url, ari_user=creds.ari_user,
                        ari_password=creds.ari_password, app=creds.app,
                        ari_ready=bool(pid) and self.ari_ready(creds),
                        sip={"host": "127.0.0.1", "port": creds.sip_port, "user": creds.sip_user,
                             "password": creds.sip_password, "users": list(SIP_USERS),
                             "extension": "100", "room_extension": "room-NAME"})
        return info


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SandboxError(f"`{' '.join(cmd)}` failed: {r.stderr.strip()}")


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _port_busy(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, n: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"
