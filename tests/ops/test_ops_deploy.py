"""The systemd unit, `convener install`, the Asterisk samples and their checks."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from convener.cli import main
from convener.config import load_config
from convener.ops import install
from convener.ops.deploy_checks import check_ari, check_dialplan, parse_dialplan
from convener.ops.reference import sections
from convener.ops.unit import parse_unit, render_unit

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
AST = DEPLOY / "asterisk"


def test_unit_file_is_the_rendered_unit_and_hardened():
    text = (DEPLOY / "systemd" / "convener.service").read_text()
    assert text == render_unit()
    unit = parse_unit(text)
    u, s = unit["Unit"], unit["Service"]
    assert "asterisk.service" in u["Requires"][0] and "asterisk.service" in u["After"][0]
    assert "network-online.target" in u["After"][0] and u["Wants"] == ["network-online.target"]
    expected = {
        "User": "convener", "Restart": "always", "RestartSec": "2", "RestartPreventExitStatus": "3",
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "StateDirectory": "convener", "ConfigurationDirectory": "convener",
        "ExecStart": "/opt/convener/venv/bin/convener run --config /etc/convener/convener.toml",
        "EnvironmentFile": "-/etc/convener/convener.env",
    }
    for key, value in expected.items():
        assert s.get(key) == [value], key
    assert "multi-user.target" in unit["Install"]["WantedBy"][0]
    assert "\nExecStart=/srv/conv/venv/bin/convener run --config" in render_unit("/srv/conv/")


def _analyze(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    units = tmp_path / "units"
    (tmp_path / "prefix" / "venv" / "bin").mkdir(parents=True)
    exe = tmp_path / "prefix" / "venv" / "bin" / "convener"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    units.mkdir()
    (units / "asterisk.service").write_text("[Unit]\nDescription=stub\n[Service]\nExecStart=/bin/true\n")
    (units / "convener.service").write_text(render_unit(str(tmp_path / "prefix")))
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:", "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run(["systemd-analyze", *args, str(units / "convener.service")], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent (apt-get install systemd)")
def test_unit_verifies_and_scores_as_hardened(tmp_path):
    r = _analyze(tmp_path, "verify")
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr  # unknown keys would be reported here
    r = _analyze(tmp_path / "sec", "security", "--offline=true", "--no-pager")
    m = re.search(r"Overall exposure level for convener.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.5, r.stdout


def test_install_dry_run_lists_every_step_and_changes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(install, "systemd_running", lambda: False)
    monkeypatch.setattr(install, "UNIT_DIR", str(tmp_path / "units"))
    assert main(["install", "--dry-run", "--prefix", str(tmp_path / "opt")]) == 0
    out = capsys.readouterr().out
    venv = tmp_path / "opt" / "venv"
    assert f"-m venv {venv}" in out
    assert f"{venv}/bin/pip install --upgrade {REPO}" in out  # this source tree
    assert "/etc/convener/convener.toml unless it exists" in out
    assert "systemd is not running" in out and "systemctl enable --now convener" in out
    assert not (tmp_path / "opt").exists() and not (tmp_path / "units").exists()


def test_install_plan_with_systemd_and_existing_user():
    opts = install.InstallOptions(prefix="/opt/x", source="/tmp/convener-0.1.0-py3-none-any.whl", extras="speech")
    steps = install.plan(opts, has_systemd=True, has_user=True)
    argvs = [s.argv for s in steps if s.argv]
    assert ["/opt/x/venv/bin/pip", "install", "--upgrade", "/tmp/convener-0.1.0-py3-none-any.whl[speech]"] in argvs
    assert not any(a[0] == "useradd" for a in argvs)
    assert argvs[-2:] == [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", "convener"]]
    steps = install.plan(opts, has_systemd=False, has_user=False)
    assert any(s.argv and s.argv[0] == "useradd" and s.argv[-1] == "convener" for s in steps)
    assert not any(s.argv and s.argv[0] == "systemctl" for s in steps)


def test_install_file_steps_never_overwrite_the_config(tmp_path):
    opts = install.InstallOptions(prefix="/opt/convener", config_dir=str(tmp_path / "etc"),
                                  unit_dir=str(tmp_path / "units"), user="nobody-convener-test")
    cfg = tmp_path / "etc" / "convener.toml"
    (tmp_path / "etc").mkdir()
    cfg.write_text("# mine\n")
    out = io.StringIO()
    for step in install.plan(opts, has_systemd=False, has_user=True):
        if step.action:
            out.write(step.action() + "\n")
    assert cfg.read_text() == "# mine\n"
    assert f"kept existing {cfg}" in out.getvalue()
    env = tmp_path / "etc" / "convener.env"
    assert env.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "units" / "convener.service").read_text() == render_unit(
        config_dir=str(tmp_path / "etc"), user="nobody-convener-test")
    cfg.unlink()
    again = [s for s in install.plan(opts, has_systemd=False, has_user=True) if "convener.toml" in s.description]
    assert len(again) == 1 and again[0].action is not None
    again[0].action()
    assert cfg.read_text() == install.sample_config()
    assert cfg.stat().st_mode & 0o777 == 0o640


def test_install_refuses_without_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    out = io.StringIO()
    assert install.run(install.InstallOptions(), dry_run=False, out=out, has_systemd=False) == 2
    assert "must run as root" in out.getvalue()


def test_sample_config_loads_and_matches_the_packaged_copy():
    sample = DEPLOY / "convener.toml"
    assert sample.read_text() == install.sample_config()
    cfg = load_config(sample, env={})
    assert cfg.ari.app == "convener" and set(cfg.ofp.agents) == {"flights", "hotels", "weather"}
    # every key of every section is in the sample, commented out with a valid TOML default
    text = sample.read_text()
    for section in sections():
        header = f"[{section.path}]"
        if "<name>" in section.path:
            header = f"# [{section.path.replace('<name>', 'NAME')}]"
        assert header in text, header
        body = text.split(header + "\n", 1)[1].split("\n[", 1)[0]
        for key in section.keys:
            name = key.path.rsplit(".", 1)[1]
            m = re.search(rf"^#? ?{name}(?: = (.+)|: default .+)$", body, re.M)
            assert m, f"{key.path} missing from the sample (run .venv/bin/python deploy/gen_config_reference.py)"
            if m.group(1) and m.group(1) != "(required)":
                tomllib.loads(f"{name} = {m.group(1)}")


def test_sample_dialplan_passes_and_falls_back():
    text = (AST / "extensions.conf").read_text()
    checks = check_dialplan(text, "convener")
    assert all(c.ok for c in checks), checks
    assert len(checks) == 3  # Stasis found, and both extensions guarded
    steps = parse_dialplan(text)
    fallback = [s.app for s in steps if s.exten == "fallback"]
    assert fallback == ["NoOp", "Playback", "Goto"]
    assert [s.app for s in steps if s.exten == "operator"] == ["Dial", "VoiceMail", "Hangup"]


def test_dialplan_without_status_check_or_stasis_fails():
    unguarded = """
[from-internal]
exten => 100,1,Answer()
 same => n,Stasis(convener)
 same => n,NoOp(STASISSTATUS=${STASISSTATUS})  ; logging it is not handling it
 same => n,Hangup()
 same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?fallback,1)
"""
    checks = check_dialplan(unguarded, "convener")
    assert checks[0].ok and not checks[1].ok and "GotoIf" in checks[1].fix
    assert not check_dialplan(unguarded, "other-app")[0].ok
    commented = "[c]\nexten => 1,1,NoOp()\n; same => n,Stasis(convener)\n"
    assert not check_dialplan(commented, "convener")[0].ok
    via_global = ('[globals]\nAPP=convener\n[c]\nexten => 1,1,Stasis(${APP},room=a)\n'
                  ' same => n,ExecIf($["${STASISSTATUS}"="FAILED"]?Playback(x))\n')
    assert all(c.ok for c in check_dialplan(via_global, "convener"))


def test_sample_http_and_ari_config_enable_ari():
    http, ari = (AST / "http.conf").read_text(), (AST / "ari.conf").read_text()
    checks = check_ari(http, ari, user="convener", ari_url="http://127.0.0.1:8088/ari")
    assert all(c.ok for c in checks), checks
    assert {c.name for c in checks} == {"http.conf enabled", "ari.conf enabled", "ari.conf user"}


@pytest.mark.parametrize(("http", "ari", "user", "url", "failing"), [
    ("[general]\nenabled=no\nbindaddr=127.0.0.1\n", "[convener]\ntype=user\npassword=x\n", "convener", None,
     "http.conf enabled"),
    ("[general]\nenabled=yes\n", "[convener]\ntype=user\npassword=x\n", "convener", None, "http.conf enabled"),
    ("[general]\nenabled=yes\nbindaddr=0.0.0.0\n", "[convener]\ntype=user\npassword=x\n", "convener", None,
     "http.conf exposure"),
    ("[general]\nenabled=yes\nbindaddr=127.0.0.1\nbindport=8088\n", "[convener]\ntype=user\npassword=x\n",
     "convener", "http://127.0.0.1:8089/ari", "ari.url port"),
    ("[general]\nenabled=yes\nbindaddr=127.0.0.1\n", "[general]\nenabled=no\n[convener]\ntype=user\npassword=x\n",
     "convener", None, "ari.conf enabled"),
    ("[general]\nenabled=yes\nbindaddr=127.0.0.1\n", "[someone]\ntype=user\npassword=x\n", "convener", None,
     "ari.conf user"),
    ("[general]\nenabled=yes\nbindaddr=127.0.0.1\n", "[convener]\ntype=user\n", "convener", None, "ari.conf user"),
    ("[general]\nenabled=yes\nbindaddr=127.0.0.1\n", "[convener]\ntype=user\npassword=x\nread_only=yes\n",
     "convener", None, "ari.conf user"),
])
def test_ari_config_problems_are_named(http, ari, user, url, failing):
    checks = check_ari(http, ari, user=user, ari_url=url)
    bad = [c.name for c in checks if not c.ok]
    assert bad == [failing], checks
    assert all(c.fix for c in checks if not c.ok)


def test_install_reports_on_the_asterisk_configuration(tmp_path):
    opts = install.InstallOptions(asterisk_dir=str(tmp_path))
    assert "not found" in install.asterisk_report(opts)[0]
    for name in ("extensions.conf", "http.conf", "ari.conf"):
        shutil.copy(AST / name, tmp_path / name)
    report = install.asterisk_report(opts)
    assert report and all(line.startswith("[ok]") for line in report), report
    (tmp_path / "extensions.conf").write_text("[from-internal]\nexten => 100,1,Stasis(convener)\n same => n,Hangup()\n")
    report = install.asterisk_report(opts)
    assert any(line.startswith("[ERROR] dialplan 100@from-internal") for line in report)
    assert any("fix:" in line and "STASISSTATUS" in line for line in report)
    out = io.StringIO()
    assert install.run(opts, dry_run=True, out=out, has_systemd=False) == 0
    assert "Asterisk configuration:" in out.getvalue() and "would not be enabled" in out.getvalue()
