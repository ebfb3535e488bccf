"""Checks of an Asterisk configuration for convener, as pure functions of the files' text.

* ``check_dialplan(extensions_conf, app)``: callers reach ``Stasis(app)``, and every such step is
  followed by a test of ``STASISSTATUS`` so callers are not dropped when convener is down
  (``Stasis()`` returns at once with ``FAILED`` when no client has registered the application).
* ``check_ari(http_conf, ari_conf, user, ari_url)``: the HTTP server and ARI are enabled, the user
  exists with a password, the port matches, and ARI is not exposed in clear text off loopback.

Each returns ``Check`` items (name, ok, detail, fix, level) for ``convener doctor``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from convener.ops.settings import is_loopback_host

TRUE = {"yes", "true", "on", "1", "y"}
STATUS_TESTS = {"gotoif", "execif", "gosubif", "if", "elseif", "while"}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    level: str = "error"  # "error" or "warning"


@dataclass
class ConfSection:
    name: str
    items: list[tuple[str, str]]

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in reversed(self.items):
            if k.lower() == key.lower():
                return v
        return default


def _strip_comment(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


def parse_conf(text: str) -> list[ConfSection]:
    """Asterisk's ini dialect: ``[name](options)`` sections, ``key = value`` / ``key => value``."""
    sections: list[ConfSection] = []
    in_block_comment = False
    for raw in text.splitlines():
        line = raw
        if in_block_comment:
            if "--;" not in line:
                continue
            line, in_block_comment = line.split("--;", 1)[1], False
        if ";--" in line:
            before, after = line.split(";--", 1)
            in_block_comment = "--;" not in after
            line = before + (after.split("--;", 1)[1] if not in_block_comment else "")
        line = _strip_comment(line)
        if not line:
            continue
        m = re.match(r"^\[([^\]]+)\]", line)
        if m:
            sections.append(ConfSection(m.group(1).strip(), []))
            continue
        m = re.match(r"^([^=]+?)\s*=>?\s*(.*)$", line)
        if m and sections:
            sections[-1].items.append((m.group(1).strip(), m.group(2).strip()))
    return sections


def _section(sections: list[ConfSection], name: str) -> ConfSection | None:
    for s in sections:
        if s.name == name:
            return s
    return None


@dataclass
class DialplanStep:
    context: str
    exten: str
    priority: str
    app: str
    args: str


def parse_dialplan(text: str) -> list[DialplanStep]:
    steps: list[DialplanStep] = []
    exten = ""
    for sec in parse_conf(text):
        if sec.name.lower() in ("general", "globals"):
            continue
        for key, value in sec.items:
            key = key.lower()
            if key == "exten":
                parts = value.split(",", 2)
                if len(parts) < 3:
                    continue
                exten, prio, call = parts[0].strip(), parts[1].strip(), parts[2]
            elif key == "same" and exten:
                parts = value.split(",", 1)
                if len(parts) < 2:
                    continue
                prio, call = parts[0].strip(), parts[1]
            else:
                continue
            m = re.match(r"^\s*([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*$", call)
            if m:
                steps.append(DialplanStep(sec.name, exten, prio, m.group(1), m.group(2) or ""))
    return steps


def _globals(text: str) -> dict[str, str]:
    sec = _section(parse_conf(text), "globals")
    return {k: v for k, v in sec.items} if sec else {}


def _resolve(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: variables.get(m.group(1), m.group(0)), value)


FALLBACK_EXAMPLE = ('right after Stasis({app}): same => n,GotoIf($["${{STASISSTATUS}}" = "FAILED"]?fallback,1), '
                    'and an extension "fallback" that plays a message and dials an operator or voicemail '
                    '(see deploy/asterisk/extensions.conf)')


def check_dialplan(extensions_conf: str, app: str) -> list[Check]:
    steps = parse_dialplan(extensions_conf)
    variables = _globals(extensions_conf)
    checks: list[Check] = []
    found = False
    for i, step in enumerate(steps):
        if step.app.lower() != "stasis":
            continue
        target = _resolve(step.args.split(",", 1)[0].strip(), variables)
        if target != app:
            continue
        found = True
        where = f"{step.exten}@{step.context}"
        rest = [s for s in steps[i + 1:] if (s.context, s.exten) == (step.context, step.exten)]
        guarded = False
        for s in rest:
            if s.app.lower() in STATUS_TESTS and "STASISSTATUS" in s.args:
                guarded = True
                break
            if s.app.lower() in ("hangup", "goto", "return", "macroexit"):
                break
        checks.append(Check(
            f"dialplan {where}", guarded,
            f"Stasis({app}) is followed by a STASISSTATUS check" if guarded else
            f"Stasis({app}) is not followed by a STASISSTATUS check: when convener is down callers "
            "are hung up (or fall through) with no message",
            "" if guarded else "add " + FALLBACK_EXAMPLE.format(app=app)))
    if not found:
        apps = sorted({_resolve(s.args.split(",", 1)[0], variables) for s in steps if s.app.lower() == "stasis"})
        checks.insert(0, Check(
            "dialplan Stasis", False,
            f"no extension sends callers to Stasis({app})"
            + (f" (found Stasis for: {', '.join(apps)})" if apps else ""),
            f"add to the context your phones or trunk use: exten => 100,1,Answer() then same => n,Stasis({app})"))
    else:
        checks.insert(0, Check("dialplan Stasis", True, f"callers are sent to Stasis({app})"))
    return checks


def check_ari(http_conf: str, ari_conf: str, user: str | None = None, ari_url: str | None = None) -> list[Check]:
    checks: list[Check] = []
    http = _section(parse_conf(http_conf), "general")
    enabled = (http.get("enabled", "no") if http else "no") or "no"
    bindaddr = (http.get("bindaddr", "") if http else "") or ""
    bindport = (http.get("bindport", "8088") if http else "8088") or "8088"
    if enabled.lower() not in TRUE:
        checks.append(Check("http.conf enabled", False, "Asterisk's HTTP server is disabled: ARI is unreachable",
                            "http.conf: [general] enabled = yes, bindaddr = 127.0.0.1, bindport = 8088"))
    elif not bindaddr:
        checks.append(Check("http.conf enabled", False, "http.conf has no bindaddr: the HTTP server does not listen",
                            "http.conf: [general] bindaddr = 127.0.0.1 (convener on the same host)"))
    else:
        checks.append(Check("http.conf enabled", True, f"HTTP server on {bindaddr}:{bindport}"))
        tls = (http.get("tlsenable", "no") if http else "no") or "no"
        if not is_loopback_host(bindaddr) and tls.lower() not in TRUE:
            checks.append(Check(
                "http.conf exposure", False,
                f"ARI listens on {bindaddr} without TLS: the ARI password crosses the network in clear text",
                "bind to 127.0.0.1 when convener runs on the Asterisk host, else enable tlsenable and use "
                "https:// in ari.url", level="warning"))
    if ari_url and http is not None:
        port = urlsplit(ari_url).port or (443 if ari_url.startswith("https") else 80)
        tls_port = (http.get("tlsbindaddr", "") or "").rsplit(":", 1)[-1]
        if str(port) not in (bindport, tls_port):
            checks.append(Check("ari.url port", False, f"ari.url uses port {port}, Asterisk's HTTP server {bindport}",
                                f"set ari.url to http://{bindaddr or '127.0.0.1'}:{bindport}/ari"))
    ari = parse_conf(ari_conf)
    general = _section(ari, "general")
    ari_enabled = (general.get("enabled", "yes") if general else "yes") or "yes"
    if ari_enabled.lower() not in TRUE:
        checks.append(Check("ari.conf enabled", False, "ARI is disabled in ari.conf",
                            "ari.conf: [general] enabled = yes"))
    else:
        checks.append(Check("ari.conf enabled", True, "ARI is enabled"))
    users = [s for s in ari if (s.get("type") or "").lower() == "user"]
    if user is not None:
        match = next((s for s in users if s.name == user), None)
        if match is None:
            names = ", ".join(s.name for s in users) or "none"
            checks.append(Check("ari.conf user", False, f"no ARI user {user!r} (users: {names})",
                                f"ari.conf: [{user}] type = user, read_only = no, password = <secret>"))
        elif not match.get("password"):
            checks.append(Check("ari.conf user", False, f"ARI user {user!r} has no password",
                                "ari.conf: set password = <secret> (and CONVENER_ARI_PASSWORD for convener)"))
        elif (match.get("read_only", "no") or "no").lower() in TRUE:
            checks.append(Check("ari.conf user", False, f"ARI user {user!r} is read_only: convener cannot "
                                "answer, bridge or hang up", "ari.conf: read_only = no"))
        else:
            checks.append(Check("ari.conf user", True, f"ARI user {user!r} with a password"))
    elif not users:
        checks.append(Check("ari.conf user", False, "ari.conf defines no user (type = user)",
                            "ari.conf: [convener] type = user, read_only = no, password = <secret>"))
    return checks
