"""The systemd unit of convener, rendered for an install prefix.

``deploy/systemd/convener.service`` is this text for the default prefix (a test keeps them equal);
``convener install`` writes it to ``/etc/systemd/system``.
"""

from __future__ import annotations

DEFAULT_PREFIX = "/opt/convener"
CONFIG_DIR = "/etc/convener"
UNIT_NAME = "convener.service"
SERVICE_USER = "convener"

UNIT_TEMPLATE = """\
# convener: Asterisk ARI front door for Open Floor Protocol multi-agent conversations.
# Installed by `convener install`; secrets go to {config_dir}/convener.env (mode 0600).
[Unit]
Description=convener (Asterisk ARI front door for Open Floor conversations)
# Asterisk is the reason to exist: stop/restart with it; also start when it starts (WantedBy below).
Requires=asterisk.service
After=asterisk.service network-online.target
Wants=network-online.target
StartLimitIntervalSec=60
StartLimitBurst=20

[Service]
Type=exec
User={user}
Group={user}
ExecStart={prefix}/venv/bin/convener run --config {config_dir}/convener.toml
EnvironmentFile=-{config_dir}/convener.env
Environment=PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# Back within seconds after a crash; exit 3 means another instance took the ARI application:
# do not fight it (no flapping between two instances).
Restart=always
RestartSec=2
RestartPreventExitStatus=3
TimeoutStopSec=20
# /var/lib/convener (transcripts; $STATE_DIRECTORY) and /etc/convener
StateDirectory=convener
StateDirectoryMode=0750
ConfigurationDirectory=convener
ConfigurationDirectoryMode=0750
UMask=0027
LimitNOFILE=65536

# Hardening: convener needs the network (ARI, RTP, agents) and its state directory, nothing else.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
LockPersonality=yes
RemoveIPC=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
CapabilityBoundingSet=
AmbientCapabilities=

[Install]
WantedBy=multi-user.target asterisk.service
"""


def render_unit(prefix: str = DEFAULT_PREFIX, config_dir: str = CONFIG_DIR, user: str = SERVICE_USER) -> str:
    return UNIT_TEMPLATE.format(prefix=prefix.rstrip("/"), config_dir=config_dir.rstrip("/"), user=user)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (a key may repeat), comments and blank lines dropped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        if current is None or "=" not in line:
            raise ValueError(f"not a unit file line: {raw!r}")
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections
