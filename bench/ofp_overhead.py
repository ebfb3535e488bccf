"""The floor's own overhead per caller turn, agent time excluded.

Runs the real FloorSession (floor manager, built-in convener, validation of every outgoing
envelope, parsing of every answer) against the example agents called in-process instead of over
HTTP, so that neither the network nor the agents count. For each turn it prints:

- in:  caller text handed to ``user_turn`` -> first envelope encoded and ready to POST
- out: agent answer bytes received -> ``AgentReply`` ready to speak (parse, floor, convener)

Usage: .venv/bin/python bench/ofp_overhead.py [--conversations N] [--no-validate]
Numbers are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from convener.ofp.parse import parse_envelope
from convener.ofp.session import FloorSession
from convener.ofp.settings import AgentSettings, OfpSettings
from convener.ofp.transport import AgentClient, PostResult
from convener_agents.base import SkillAgent
from convener_agents.serve import AGENTS

SCRIPT = [
    "Book a flight to Denver",
    "From Boston",
    "Next Friday",
    "Yes",
    "I need a hotel in Denver",
    "What's the weather in Denver?",
]


class InProcessClient(AgentClient):
    """AgentClient whose HTTP exchange is a direct call into an example agent."""

    def __init__(self, agents: dict[str, SkillAgent]) -> None:
        super().__init__(http=None, clock=time.perf_counter)  # type: ignore[arg-type]
        self.agents = agents
        self.first_send: float | None = None
        self.agent_time = 0.0

    async def _exchange(self, url: str, payload: bytes, res: PostResult) -> bytes | None:
        if self.first_send is None:
            self.first_send = time.perf_counter()
        t = time.perf_counter()
        agent = self.agents[url]
        answer = agent.answer(parse_envelope(payload, notes=[])).to_json()
        self.agent_time += time.perf_counter() - t
        return answer


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def run(conversations: int, validate: bool) -> dict[str, list[float]]:
    agents = {f"inproc://{n}": cls(f"inproc://{n}") for n, cls in AGENTS.items()}
    settings = OfpSettings(
        agents={n: AgentSettings(url=f"http://{n}.invalid/ofp") for n in AGENTS},
        validate_outbound=validate,
    )
    # Route the configured URLs to the in-process agents.
    by_url = {f"http://{n}.invalid/ofp": agents[f"inproc://{n}"] for n in AGENTS}
    for n, a in by_url.items():
        a.service_url = n
    results: dict[str, list[float]] = {"in": [], "out": []}
    for _ in range(conversations):
        client = InProcessClient(by_url)  # type: ignore[arg-type]
        session = FloorSession(settings, client=client, clock=time.perf_counter)
        await session.start()
        for text in SCRIPT:
            client.first_send = None
            t0 = time.perf_counter()
            first_agent_reply: tuple[float, Any] | None = None
            async for reply in session.user_turn(text):
                if not reply.from_convener and first_agent_reply is None:
                    first_agent_reply = (time.perf_counter(), reply)
            if client.first_send is not None:
                results["in"].append(client.first_send - t0)
            if first_agent_reply is not None:
                t_ready, reply = first_agent_reply
                results["out"].append(t_ready - reply.reply_received)
        await session.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--no-validate", action="store_true", help="skip validation of outgoing envelopes")
    args = parser.parse_args()
    for validate in ([False] if args.no_validate else [True, False]):
        res = asyncio.run(run(args.conversations, validate))
        label = "validate_outbound=on " if validate else "validate_outbound=off"
        for key, desc in (("in", "utterance in -> envelopes ready"), ("out", "reply in -> utterance ready")):
            v = [x * 1000 for x in res[key]]
            print(
                f"{label}  {desc:<34} n={len(v):<5} p50={statistics.median(v):6.2f} ms"
                f"  p99={pct(v, 99):6.2f} ms  max={max(v):6.2f} ms"
            )


if __name__ == "__main__":
    main()
