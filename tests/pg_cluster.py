"""A throwaway PostgreSQL cluster on a free loopback port, for tests (as user postgres when root).

The same steps as the ``pg_url`` fixture of tests/ops/conftest.py, as a context manager that any
test folder can use (tests/ is on sys.path through its conftest)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PG_BIN_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def pg_bin() -> Path | None:
    for d in PG_BIN_DIRS:
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def why_not() -> str | None:
    """Why no cluster can be started here (None: it can)."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg not installed (pip install asyncpg)"
    if pg_bin() is None:
        return "PostgreSQL server binaries not found: apt-get install postgresql"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as another user"
    return None


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Yields the URL of a fresh database ``convener``; the cluster is removed afterwards."""
    bindir = pg_bin()
    assert bindir is not None, why_not()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    tmp = Path(tempfile.mkdtemp(prefix="convener-pg-"))
    data = tmp / "data"
    if as_user:
        shutil.chown(tmp, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=60)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "convener", "--auth=trust", "-E", "UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-w", "-t", "30",
            "-o", f"-p {port} -k {tmp} -h 127.0.0.1 -F", "start")
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "convener", "convener")
        yield f"postgresql://convener@127.0.0.1:{port}/convener"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
