"""``convener install``: a production install on one machine.

Steps: a virtualenv under the prefix with convener installed from this source tree or a wheel;
the system user ``convener``; ``/etc/convener`` with the sample configuration and an environment
file for secrets (existing files are never overwritten); the systemd unit; and, where systemd
runs, ``daemon-reload`` and ``enable --now``. Without systemd the remaining steps are printed.
Every step says what it does; ``--dry-run`` only prints them.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TextIO

import convener
from convener.ops.unit import CONFIG_DIR, DEFAULT_PREFIX, SERVICE_USER, UNIT_NAME, render_unit

UNIT_DIR = "/etc/systemd/system"
STATE_DIR = "/var/lib/convener"

ENV_TEMPLATE = """\
# Secrets of convener, read by systemd (EnvironmentFile=): /etc/convener/convener.env, mode 0600.
# Never put them in convener.toml. Logs redact them.
# The password of the ARI user in Asterisk's ari.conf:
# CONVENER_ARI_PASSWORD=
# Only with speech.asr/tts = "deepgram...":
# DEEPGRAM_API_KEY=
# Only when [llm] talks to an endpoint that needs a key (the variable [llm] api_key_env names):
# CONVENER_LLM_API_KEY=
# Required when [ops] http_host is not a loopback address (e.g. openssl rand -hex 32):
# CONVENER_OPS_TOKEN=
# Any key can be overridden as CONVENER__SECTION__KEY, e.g. a PostgreSQL URL with its password:
# CONVENER__OPS__TRANSCRIPTS_URL=postgresql://convener:secret@db.example.org/convener
"""


@dataclass
class Step:
    description: str
    argv: list[str] | None = None  # a command to run ...
    action: Callable[[], str] | None = None  # ... or a Python action returning what it did

    def show(self) -> str:
        if self.argv:
            return f"{self.description}: $ {' '.join(self.argv)}"
        return self.description


@dataclass
class InstallOptions:
    prefix: str = DEFAULT_PREFIX
    source: str = ""  # wheel file, source directory or requirement; "" = detected
    extras: str = ""  # e.g. "speech"
    config_dir: str = CONFIG_DIR
    unit_dir: str = UNIT_DIR
    user: str = SERVICE_USER
    python: str = sys.executable
    asterisk_dir: str = "/etc/asterisk"


def sample_config() -> str:
    return resources.files("convener.ops").joinpath("data/convener.toml").read_text()


def default_source() -> str:
    """This source tree when running from one, else the same version from the package index."""
    root = Path(convener.__file__).resolve().parents[2]
    if (root / "pyproject.toml").exists() and (root / "src" / "convener").is_dir():
        return str(root)
    return f"convener=={convener.__version__}"


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def write_if_absent(path: Path, text: str, mode: int, group: str | None = None) -> str:
    """Create ``path`` with ``text``; an existing file is kept as it is."""
    if path.exists():
        return f"kept existing {path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    if group and os.geteuid() == 0 and group_exists(group):
        shutil.chown(path, "root", group)
    return f"wrote {path}"


def write_file(path: Path, text: str, mode: int = 0o644) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return f"wrote {path}"


def make_config_dir(path: Path, group: str) -> str:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o750)
    if os.geteuid() == 0 and group_exists(group):
        shutil.chown(path, "root", group)
    return f"{path} (root:{group}, 0750)"


def plan(opts: InstallOptions, has_systemd: bool | None = None, has_user: bool | None = None) -> list[Step]:
    prefix = Path(opts.prefix)
    venv = prefix / "venv"
    source = opts.source or default_source()
    target = f"{source}[{opts.extras}]" if opts.extras else source
    config_dir = Path(opts.config_dir)
    has_systemd = systemd_running() if has_systemd is None else has_systemd
    has_user = user_exists(opts.user) if has_user is None else has_user
    steps: list[Step] = []
    if not (venv / "bin" / "python").exists():
        steps.append(Step(f"create the virtualenv {venv}", [opts.python, "-m", "venv", str(venv)]))
    steps.append(Step(f"install convener from {source}",
                      [str(venv / "bin" / "pip"), "install", "--upgrade", target]))
    if not has_user:
        steps.append(Step(f"create the system user {opts.user}",
                          ["useradd", "--system", "--user-group", "--home-dir", STATE_DIR, "--no-create-home",
                           "--shell", "/usr/sbin/nologin", opts.user]))
    else:
        steps.append(Step(f"system user {opts.user} exists", action=lambda: f"user {opts.user} exists"))
    steps.append(Step(f"create {config_dir}", action=lambda: make_config_dir(config_dir, opts.user)))
    steps.append(Step(f"write {config_dir / 'convener.toml'} unless it exists (never overwritten)",
                      action=lambda: write_if_absent(config_dir / "convener.toml", sample_config(), 0o640,
                                                     opts.user)))
    steps.append(Step(f"write {config_dir / 'convener.env'} (secrets, 0600) unless it exists",
                      action=lambda: write_if_absent(config_dir / "convener.env", ENV_TEMPLATE, 0o600)))
    unit_path = Path(opts.unit_dir) / UNIT_NAME
    unit = render_unit(opts.prefix, opts.config_dir, opts.user)
    steps.append(Step(f"install the systemd unit {unit_path}", action=lambda: write_file(unit_path, unit)))
    if has_systemd:
        steps.append(Step("reload systemd", ["systemctl", "daemon-reload"]))
        steps.append(Step("enable and start convener", ["systemctl", "enable", "--now", "convener"]))
    return steps


def manual_steps(opts: InstallOptions) -> list[str]:
    return [
        f"edit {opts.config_dir}/convener.toml ([ari] url/user/app, [ofp.agents.*]) and put the secrets "
        f"in {opts.config_dir}/convener.env",
        "configure Asterisk: see deploy/asterisk/ (http.conf, ari.conf, extensions.conf, pjsip.conf)",
        "systemctl daemon-reload",
        "systemctl enable --now convener",
        "journalctl -u convener -f   # and: curl -s http://127.0.0.1:8765/health",
        f"without systemd, run it in the foreground: runuser -u {opts.user} -- "
        f"{opts.prefix}/venv/bin/convener run --config {opts.config_dir}/convener.toml",
    ]


def asterisk_report(opts: InstallOptions, app: str = "convener") -> list[str]:
    """What deploy_checks say about the Asterisk configuration on this machine (read only)."""
    from convener.ops.deploy_checks import check_ari, check_dialplan

    etc = Path(opts.asterisk_dir)
    files = {name: etc / name for name in ("extensions.conf", "http.conf", "ari.conf")}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        return [f"Asterisk configuration not found ({', '.join(missing)}): see deploy/asterisk/ for samples"]
    try:
        checks = check_dialplan(files["extensions.conf"].read_text(errors="replace"), app)
        checks += check_ari(files["http.conf"].read_text(errors="replace"),
                            files["ari.conf"].read_text(errors="replace"), user=app)
    except OSError as e:
        return [f"cannot read the Asterisk configuration: {e}"]
    lines = []
    for c in checks:
        lines.append(f"[{'ok' if c.ok else c.level.upper()}] {c.name}: {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"    fix: {c.fix}")
    return lines


def run(opts: InstallOptions, dry_run: bool, out: TextIO | None = None,
        has_systemd: bool | None = None) -> int:
    out = out or sys.stdout
    has_systemd = systemd_running() if has_systemd is None else has_systemd
    steps = plan(opts, has_systemd=has_systemd)
    if not dry_run and os.geteuid() != 0:
        print("convener install: must run as root (it creates a user and writes /etc); "
              "use --dry-run to see the steps", file=out)
        return 2
    print(("would run" if dry_run else "installing convener") + f" (prefix {opts.prefix}):", file=out)
    for n, step in enumerate(steps, 1):
        print(f"{n:2}. {step.show()}", file=out)
        if dry_run:
            continue
        if step.argv:
            result = subprocess.run(step.argv, check=False)
            if result.returncode != 0:
                print(f"    failed (exit {result.returncode}); nothing after this step was done", file=out)
                return 1
        elif step.action:
            print(f"    {step.action()}", file=out)
    print("Asterisk configuration:", file=out)
    for line in asterisk_report(opts):
        print(f"  {line}", file=out)
    if not has_systemd:
        print("systemd is not running on this machine, so convener "
              + ("would not be" if dry_run else "was not") + " enabled or started. Remaining steps:", file=out)
        for line in manual_steps(opts):
            print(f"  - {line}", file=out)
    return 0
