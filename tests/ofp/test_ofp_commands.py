"""``convener chat`` and ``convener agents`` as a user runs them (subprocesses)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import pytest

from convener_agents.serve import RunningAgents

SCRIPT = """Book a flight to Denver
From Boston
Next Friday
Yes
I need a hotel in Denver
What's the weather in Denver?
"""


def write_config(tmp_path: Path, urls: dict[str, str]) -> Path:
    lines = []
    for name, url in urls.items():
        lines += [f"[ofp.agents.{name}]", f'url = "{url}"', "timeout = 3.0", ""]
    path = tmp_path / "convener.toml"
    path.write_text("\n".join(lines))
    return path


async def run(*args: str, stdin: str = "", timeout: float = 30) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "convener", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_scripted_chat_books_denver_and_reaches_hotel_and_weather(
    tmp_path: Path, example_agents: RunningAgents
) -> None:
    config = write_config(tmp_path, example_agents.urls)
    rc, out, err = await run("chat", "--config", str(config), stdin=SCRIPT)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:3] == ["> Book a flight to Denver", "Convener: Connecting you to Flights.",
                         "Flights: A flight to Denver. Where are you flying from?"]
    assert "Flights: What date would you like to travel?" in lines
    assert "Flights: Boston to Denver, next Friday. Shall I book it?" in lines
    assert any(line.startswith("Flights: Booked: Boston to Denver, next Friday. Confirmation FL") for line in lines)
    assert any(line.startswith("Hotels: The Crawford in Denver") for line in lines)
    assert lines[-1] == "Weather: In Denver today: sunny, 12 degrees Celsius."
    assert "started them in-process" not in err


async def test_agents_lists_manifests_and_health(tmp_path: Path, example_agents: RunningAgents) -> None:
    urls = dict(example_agents.urls)
    urls["ghost"] = "http://127.0.0.1:9/ofp"
    rc, out, _err = await run("agents", "--json", "--config", str(write_config(tmp_path, urls)))
    status = {a["name"]: a for a in json.loads(out)}
    assert rc == 1  # one agent is down
    assert status["flights"]["health"]["state"] == "up"
    assert status["flights"]["conversationalName"] == "Flights" and "flight" in status["flights"]["keyphrases"]
    assert status["ghost"]["health"]["state"] == "down" and status["ghost"]["health"]["last_error"]
    rc, out, _err = await run("agents", "--config", str(write_config(tmp_path, example_agents.urls)))
    assert rc == 0 and "Books airline flights between cities." in out


async def test_bad_config_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[ofp]\nconvener_agent = "nobody"\n')
    rc, _out, err = await run("chat", "--config", str(path))
    assert rc == 2 and "convener_agent" in err


def _ports_free(*ports: int) -> bool:
    for p in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


async def test_chat_starts_the_example_agents_when_they_are_not_running() -> None:
    if not _ports_free(8701, 8702, 8703):
        pytest.skip("ports 8701-8703 are in use")
    rc, out, err = await run("chat", stdin="What's the weather in Boston?\n")
    assert rc == 0, err
    assert "started them in-process" in err
    assert out.splitlines()[-1] == "Weather: In Boston today: cloudy with light rain, 8 degrees Celsius."


async def test_agents_serve_runs_the_example_agents(tmp_path: Path) -> None:
    import random

    base = next(p for p in (random.randint(20000, 60000) for _ in range(50)) if _ports_free(p, p + 1, p + 2))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "convener", "agents", "serve", "--base-port", str(base),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip() for _ in range(3)]
        assert lines == [f"flights: http://127.0.0.1:{base}/ofp", f"hotels: http://127.0.0.1:{base + 1}/ofp",
                         f"weather: http://127.0.0.1:{base + 2}/ofp"]
        urls = {n: f"http://127.0.0.1:{base + i}/ofp" for i, n in enumerate(("flights", "hotels", "weather"))}
        rc, out, _err = await run("agents", "--json", "--config", str(write_config(tmp_path, urls)))
        assert rc == 0 and [a["conversationalName"] for a in json.loads(out)] == ["Flights", "Hotels", "Weather"]
    finally:
        proc.terminate()
        await proc.wait()
