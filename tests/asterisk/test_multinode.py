"""Many nodes behind Kamailio: two sandbox Asterisks (instances ``b`` and ``c``, next to the
default one, which other tests use and leave alone), one convener on each, Debian's Kamailio
in front with the sample configuration of ``deploy/kamailio``. SIP phones (baresip) call
Kamailio's address only.

- The calls are spread over both nodes (round robin of the dispatcher).
- Node c's Asterisk is stopped with calls on it: those calls end at the phones (BYE), the
  dispatcher's OPTIONS probe takes c out, and every new call goes to node b.
- When every phone has hung up, node b holds exactly the channels and bridges it held before,
  and its convener no call.

Names in the code: ``a`` is the node that survives (sandbox instance b), ``b`` the node that is
stopped (sandbox instance c).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from baresip_helpers import HAVE_BARESIP, WHY_NOT, Phone, free_port

from convener.app.application import ConvenerApp
from convener.ari.rest import AriClient
from convener.config import Config
from convener.sandbox.runtime import Credentials, Sandbox

KAMAILIO = shutil.which("kamailio") or ("/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)
KAMCMD = shutil.which("kamcmd") or ("/usr/sbin/kamcmd" if Path("/usr/sbin/kamcmd").exists() else None)
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kamailio"

pytestmark = [
    pytest.mark.skipif(not HAVE_BARESIP, reason=WHY_NOT),
    pytest.mark.skipif(KAMAILIO is None or KAMCMD is None,
                       reason="needs Debian's kamailio (apt-get install kamailio)"),
]


@dataclass
class Kamailio:
    port: int
    ctl: str
    proc: subprocess.Popen[bytes]
    log: Path

    def nodes(self) -> dict[str, str]:
        """sip URI -> dispatcher flags (AP: active, IP: inactive and probing)."""
        assert KAMCMD is not None
        out = subprocess.run([KAMCMD, "-s", self.ctl, "dispatcher.list"], capture_output=True,
                             text=True, timeout=5).stdout
        found, uri = {}, None
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("URI:"):
                uri = line.split(None, 1)[1]
            elif line.startswith("FLAGS:") and uri:
                found[uri] = line.split(None, 1)[1]
        return found

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        return ""


def start_node(sb: Sandbox) -> None:
    sb.up()
    # A node started before pjsip.conf's [global] looked at the proxy's header first has kept
    # its old order of endpoint identifiers: a reload does not change it, a restart does.
    if "ip,header," not in sb.asterisk_cli("pjsip show settings"):
        sb.restart()


@pytest.fixture(scope="module")
def node_a() -> Iterator[Sandbox]:
    sb = Sandbox(instance="b")
    start_node(sb)
    yield sb
    sb.down()  # a running default instance keeps the shared mounts


@pytest.fixture
def node_b(node_a: Sandbox) -> Iterator[Sandbox]:
    sb = Sandbox(instance="c")
    start_node(sb)  # started again by every test: the test stops it
    yield sb
    sb.down()


@pytest.fixture
def creds(node_a: Sandbox) -> Credentials:
    # conftest's ``config`` and ``ari`` fixtures take these: this module's calls go to node a.
    return node_a.credentials()


@pytest.fixture
def kamailio(creds: Credentials, node_b: Sandbox) -> Iterator[Kamailio]:
    assert KAMAILIO is not None
    d = Path(tempfile.mkdtemp(prefix="convener-kamailio-"))
    b = node_b.credentials()
    (d / "dispatcher.list").write_text(f"1 sip:127.0.0.1:{creds.sip_port} 0 0 name=a\n"
                                       f"1 sip:127.0.0.1:{b.sip_port} 0 0 name=b\n")
    port = free_port(socket.SOCK_DGRAM)
    ctl = f"unix:{d}/ctl"
    log = d / "kamailio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [KAMAILIO, "-DD", "-E", "-f", str(DEPLOY / "kamailio.cfg"), "-Y", str(d), "-w", str(d),
             "-A", f"LISTEN=udp:127.0.0.1:{port}", "-A", f'DISPATCHER_LIST="{d}/dispatcher.list"',
             "-A", f'CTL_SOCKET="{ctl}"', "-A", "PING_INTERVAL=1"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    k = Kamailio(port, ctl, proc, log)
    try:
        deadline = time.monotonic() + 10
        while len(k.nodes()) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"kamailio did not start:\n{k.tail()}")
            time.sleep(0.1)
        yield k
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


@contextlib.asynccontextmanager
async def running(config: Config) -> AsyncIterator[ConvenerApp]:
    app = ConvenerApp(config)
    task = asyncio.create_task(app.run())
    await asyncio.wait_for(app.stream.connected.wait(), 10)
    try:
        yield app
    finally:
        await app.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)


async def resources(ari: AriClient) -> tuple[set[str], set[str]]:
    channels = {c["id"] for c in await ari.request("GET", "/channels")}
    bridges = {b["id"] for b in await ari.request("GET", "/bridges")}
    return channels, bridges


async def wait_until(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_forty_calls_spread_over_two_nodes_and_fail_over(config: Config, creds: Credentials,
                                                               node_b: Sandbox, kamailio: Kamailio,
                                                               tmp_path: Path) -> None:
    """40 calls (about 10 s here): 24 spread over both nodes, node b stopped under 12 of them,
    16 more all on node a."""
    await run_multinode(config, creds, node_b, kamailio, tmp_path, before=24, after=16)


async def run_multinode(config: Config, creds: Credentials, node_b: Sandbox, kamailio: Kamailio,
                        tmp_path: Path, before: int, after: int) -> None:
    b = node_b.credentials()
    config_b = copy.deepcopy(config)
    config_b.ari.url, config_b.ari.user, config_b.ari.password = b.ari_url, b.ari_user, b.ari_password
    uri = f"sip:100@127.0.0.1:{kamailio.port}"
    ari_a = AriClient(creds.ari_url, creds.ari_user, creds.ari_password)
    phones: list[Phone] = []
    try:
        start_a = await resources(ari_a)
        async with running(config) as app_a, running(config_b) as app_b:
            async def call(n: int) -> tuple[Phone, int]:
                phone = Phone(creds.sip_user, creds.sip_password, kamailio.port, tmp_path / f"p{n}", regint=0,
                              mic_seconds=120)
                phones.append(phone)
                await phone.start()
                mark = await phone.dial(uri)
                await phone.wait_event("CALL_ESTABLISHED", 15, since=mark)
                return phone, mark

            first = [await call(n) for n in range(before)]
            await wait_until(lambda: len(app_a.calls) + len(app_b.calls) == before, 10,
                             f"{before} calls in the two conveners")
            on_a, on_b = len(app_a.calls), len(app_b.calls)
            print(f"first {before} calls: node a {on_a}, node b {on_b}")
            assert on_a == on_b == before // 2, f"round robin spreads evenly: a {on_a}, b {on_b}"
            total_a_before = app_a.calls_total

            # Node b goes away with its calls up.
            t0 = time.monotonic()
            await asyncio.to_thread(node_b.stop_process)
            closed = []
            for phone, mark in first:
                with contextlib.suppress(TimeoutError):
                    await phone.wait_event("CALL_CLOSED", 0.1 if closed else 10, since=mark)
                    closed.append(phone)
            # Those whose calls were on b hear the end of the call; those on a stay.
            deadline = time.monotonic() + 10
            while len(closed) < on_b and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                closed = [p for p, m in first if any(e.get("type") == "CALL_CLOSED" for e in p.events[m:])]
            print(f"node b stopped: {len(closed)} calls closed at the phones in {time.monotonic() - t0:.1f}s")
            assert len(closed) == on_b, f"{len(closed)} phones saw their call end, {on_b} were on node b"
            assert len(app_a.calls) == on_a, "node a's calls go on"
            await wait_until(lambda: kamailio.nodes().get(f"sip:127.0.0.1:{b.sip_port}", "")[:1] == "I",
                             10, f"the dispatcher marks node b inactive: {kamailio.nodes()}")

            # New calls all go to node a.
            for n in range(before, before + after):
                await call(n)
            await wait_until(lambda: len(app_a.calls) == on_a + after, 10, "the new calls on node a")
            assert app_a.calls_total - total_a_before == after

            # Everyone hangs up: node a is back where it started.
            for phone in phones:
                await phone.hangup()
            await wait_until(lambda: not app_a.calls, 15, f"node a's convener to release its calls: {app_a.calls}")
            await asyncio.sleep(1.0)
            leaked = [s - s0 for s, s0 in zip(await resources(ari_a), start_a, strict=True)]
            assert leaked == [set(), set()], f"node a kept channels/bridges {leaked}"
            assert app_a.errors == 0
    finally:
        for phone in phones:
            await phone.close()
        await ari_a.close()
        if os.environ.get("CONVENER_TEST_SHOW_KAMAILIO"):
            print(kamailio.tail())


async def test_transcripts_of_both_nodes_in_one_postgres(config: Config, creds: Credentials, node_b: Sandbox,
                                                         kamailio: Kamailio, tmp_path: Path) -> None:
    """One PostgreSQL holds the transcripts of both nodes, the agents are shared, and
    ``convener transcripts`` on either node lists the conversations of both."""
    from convener.ops.transcript_writer import TranscriptWriter
    from convener.tools.stack import Stack
    from pg_cluster import throwaway_postgres, why_not

    if why_not():
        pytest.skip(why_not())
    b = node_b.credentials()
    config.speech.tts = "espeak"  # the cheapest voice: two nodes' speech share two cores
    config_b = copy.deepcopy(config)
    config_b.ari.url, config_b.ari.user, config_b.ari.password = b.ari_url, b.ari_user, b.ari_password
    uri = f"sip:100@127.0.0.1:{kamailio.port}"
    phones: list[Phone] = []
    with throwaway_postgres() as pg_url:
        for cfg, node in ((config, "node-a"), (config_b, "node-b")):
            cfg.ops.transcripts_url, cfg.ops.node_id = pg_url, node
        writers = [await TranscriptWriter.open(config.ops), await TranscriptWriter.open(config_b.ops)]
        try:
            async with Stack(config) as stack_a:
                config_b.ofp.agents = dict(config.ofp.agents)  # node b talks to the same agents
                async with Stack(config_b, agents=False) as stack_b:
                    apps = [stack_a.app, stack_b.app]
                    for app, writer in zip(apps, writers, strict=True):
                        assert app is not None
                        app.transcripts = writer
                    for n in range(2):
                        phone = Phone(creds.sip_user, creds.sip_password, kamailio.port, tmp_path / f"p{n}",
                                      regint=0, mic_seconds=60)
                        phones.append(phone)
                        await phone.start()
                        mark = await phone.dial(uri)
                        await phone.wait_event("CALL_ESTABLISHED", 15, since=mark)
                    await wait_until(lambda: all(len(a.calls) == 1 for a in apps), 10,  # type: ignore[union-attr]
                                     "one call on each node")
                    await asyncio.sleep(4.0)  # the conversation opens and greets
                    for phone in phones:
                        await phone.hangup()
                    await wait_until(lambda: not any(a.calls for a in apps), 15,  # type: ignore[union-attr]
                                     "both conveners to release their calls")
        finally:
            for phone in phones:
                await phone.close()
            for writer in writers:
                await writer.close()
        listings = {}
        for node in ("node-a", "node-b"):
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).parents[2] / "src"),
                                                                          os.environ.get("PYTHONPATH", "")) if p),
                   "CONVENER__OPS__TRANSCRIPTS_URL": pg_url, "CONVENER__OPS__NODE_ID": node}
            r = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "convener", "transcripts"],
                                        env=env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            listings[node] = r.stdout
        print(listings["node-a"])
        for node, out in listings.items():
            assert " node-a " in out and " node-b " in out, f"`convener transcripts` on {node}:\n{out}"
        assert listings["node-a"] == listings["node-b"]
