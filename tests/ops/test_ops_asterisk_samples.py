"""The Asterisk samples in deploy/asterisk/ run in a real Asterisk 22 (a second, throwaway
instance from the sandbox's root file system, on ports of its own): ARI answers with the sample
credentials, and when convener is not running a caller is sent to the fallback, not dropped."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from convener.ops.deploy_checks import check_ari, check_dialplan

pytestmark = pytest.mark.asterisk

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "deploy" / "asterisk"
SANDBOX_CONF = REPO / "src" / "convener" / "sandbox" / "conf"
PASSWORD = "ops-sample-test-pw"


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instance:
    def __init__(self, root: Path, rel: str, http_port: int) -> None:
        self.root, self.rel, self.http_port = root, rel, http_port
        self.dir = root / rel.lstrip("/")

    def cli(self, command: str) -> str:
        return subprocess.run(["chroot", str(self.root), "/usr/sbin/asterisk", "-C", f"{self.rel}/etc/asterisk.conf",
                               "-rx", command], capture_output=True, text=True, timeout=15).stdout

    def log(self) -> str:
        f = self.dir / "log" / "full"
        return f.read_text(errors="replace") if f.exists() else ""

    def ari_get(self, path: str, password: str = PASSWORD) -> tuple[int, str]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/ari{path}")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"convener:{password}".encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=3) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""


@pytest.fixture(scope="module")
def asterisk() -> Iterator[Instance]:
    try:
        from convener.sandbox.runtime import Sandbox

        root = Sandbox().paths.root
    except Exception as e:  # pragma: no cover - depends on the sandbox area
        pytest.skip(f"no sandbox: {e}")
    if not (root / "usr" / "sbin" / "asterisk").exists() or shutil.which("chroot") is None:
        pytest.skip("the sandbox Asterisk is not built: convener sandbox up")
    rel = f"/tmp/convener-ops-{uuid.uuid4().hex[:8]}"
    inst = Instance(root, rel, _free_port(socket.SOCK_STREAM))
    for d in ("etc", "run", "log", "spool", "lib"):
        (inst.dir / d).mkdir(parents=True)
    etc = inst.dir / "etc"
    conf = (SANDBOX_CONF / "asterisk.conf").read_text()
    for key, sub in (("astetcdir", "etc"), ("astrundir", "run"), ("astlogdir", "log"), ("astspooldir", "spool"),
                     ("astdbdir", "lib")):
        conf = "\n".join(f"{key} => {rel}/{sub}" if line.startswith(f"{key} =>") else line
                         for line in conf.splitlines())
    (etc / "asterisk.conf").write_text(conf + "\n")
    shutil.copy(SANDBOX_CONF / "modules.conf", etc / "modules.conf")
    (etc / "logger.conf").write_text("[general]\n[logfiles]\nfull => notice,warning,error,verbose(5)\n")
    (etc / "http.conf").write_text((SAMPLES / "http.conf").read_text().replace(
        "bindport = 8088", f"bindport = {inst.http_port}"))
    (etc / "ari.conf").write_text((SAMPLES / "ari.conf").read_text().replace(
        "CHANGE-ME-to-a-long-random-secret", PASSWORD))
    shutil.copy(SAMPLES / "extensions.conf", etc / "extensions.conf")
    (etc / "pjsip.conf").write_text((SAMPLES / "pjsip.conf").read_text().replace(
        "bind = 0.0.0.0:5060", f"bind = 127.0.0.1:{_free_port(socket.SOCK_DGRAM)}"))
    proc = subprocess.Popen(["chroot", str(root), "/usr/sbin/asterisk", "-C", f"{rel}/etc/asterisk.conf", "-f", "-n"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if inst.ari_get("/asterisk/info?only=system")[0] == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the sample configuration did not start Asterisk:\n{inst.log()[-3000:]}")
            time.sleep(0.2)
        yield inst
    finally:
        with contextlib.suppress(Exception):
            inst.cli("core stop now")
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(inst.dir, ignore_errors=True)


def test_ari_answers_with_the_sample_user_only(asterisk):
    status, body = asterisk.ari_get("/asterisk/info?only=system")
    assert status == 200 and json.loads(body)["system"]["version"].startswith("22")
    assert asterisk.ari_get("/asterisk/info", password="wrong")[0] == 401
    http, ari = (SAMPLES / "http.conf").read_text(), (SAMPLES / "ari.conf").read_text()
    assert all(c.ok for c in check_ari(http, ari, user="convener"))


def test_sample_files_load_without_complaints(asterisk):
    endpoints = asterisk.cli("pjsip show endpoints")
    assert "phone1" in endpoints and "operator" in endpoints
    plan = asterisk.cli("dialplan show from-internal")
    for exten in ("'100'", "'_room-.'", "'fallback'", "'operator'"):
        assert exten in plan, plan
    problems = [line for line in asterisk.log().splitlines()
                if ("ERROR" in line or "WARNING" in line)
                and any(f in line for f in ("pjsip.conf", "extensions.conf", "ari.conf", "http.conf",
                                            "pbx_config", "res_pjsip/config", "res_ari.c", "http.c"))]
    assert problems == []


def test_caller_gets_the_fallback_when_convener_is_down(asterisk):
    assert all(c.ok for c in check_dialplan((SAMPLES / "extensions.conf").read_text(), "convener"))
    asterisk.cli("channel originate Local/100@from-internal application Wait 15")
    deadline = time.monotonic() + 15
    wanted = ["Stasis app 'convener' doesn't exist",
              "convener unavailable: STASISSTATUS=FAILED",
              'Playback("Local/100@from-internal',
              "Executing [operator@from-internal:1] Dial("]
    while time.monotonic() < deadline:
        log = asterisk.log()
        if all(w in log for w in wanted):
            break
        time.sleep(0.2)
    log = asterisk.log()
    missing = [w for w in wanted if w not in log]
    assert not missing, f"missing {missing} in:\n" + "\n".join(
        line for line in log.splitlines() if "from-internal" in line)
    asterisk.cli("channel request hangup all")
