"""Fixtures of the ops tests: a fake app, a clean metrics registry, a throwaway PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from convener.ari.stream import StreamState
from convener.ops import metrics

PG_BIN_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")
PG_APT_PACKAGE = "postgresql"


@dataclass
class FakeStream:
    state: StreamState = StreamState.DISCONNECTED
    reconnects: int = 0


@dataclass
class FakeApp:
    """What the ops side reads from ConvenerApp: ready, calls, stream, calls_total, errors."""

    stream: FakeStream = field(default_factory=FakeStream)
    calls: dict[str, Any] = field(default_factory=dict)
    calls_total: int = 0
    errors: int = 0

    @property
    def ready(self) -> bool:
        return self.stream.state is StreamState.CONNECTED


@pytest.fixture
def fake_app() -> FakeApp:
    return FakeApp()


@pytest.fixture(autouse=True)
def clean_metrics() -> Iterator[None]:
    metrics.REGISTRY.reset()
    yield
    metrics.REGISTRY.reset()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    for d in PG_BIN_DIRS:
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@dataclass
class PgCluster:
    """A throwaway PostgreSQL cluster that a test may stop and start again."""

    url: str
    run: Any  # run(*cmd): a command as the cluster's owner
    bindir: Path
    data: Path
    log: Path
    options: str

    def stop(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def start(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30",
                 "-o", self.options, "start")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster | None]:
    """A throwaway PostgreSQL cluster on a free loopback port (as user postgres when root);
    None when CONVENER_TEST_PG_URL names an outside server (which tests must not stop)."""
    if os.environ.get("CONVENER_TEST_PG_URL"):
        yield None
        return
    pytest.importorskip("asyncpg", reason="asyncpg not installed (pip install asyncpg)")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(f"PostgreSQL server binaries not found: apt-get install {PG_APT_PACKAGE}")
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
    tmp = Path(tempfile.mkdtemp(prefix="convener-pg-"))
    data = tmp / "data"
    if as_user:
        shutil.chown(tmp, "postgres", "postgres")
    port = _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=60)

    cluster = PgCluster(f"postgresql://convener@127.0.0.1:{port}/convener", run, bindir, data, tmp / "log",
                        f"-p {port} -k {tmp} -h 127.0.0.1 -F")
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "convener", "--auth=trust", "-E", "UTF8")
        cluster.start()
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "convener", "convener")
        yield cluster
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_cluster: PgCluster | None) -> str:
    return pg_cluster.url if pg_cluster is not None else os.environ["CONVENER_TEST_PG_URL"]
