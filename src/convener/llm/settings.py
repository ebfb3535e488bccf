"""Settings of the LLM endpoint (section ``[llm]``): any OpenAI-compatible chat-completions API.

Used by the LLM convener (``[ofp] convener = "llm"``) and by the LLM agents that
``convener agents serve --llm FILE`` runs. Example (Ollama on the same machine)::

    [llm]
    base_url = "http://127.0.0.1:11434/v1"
    model = "llama3.2"
    api_key_env = "CONVENER_LLM_API_KEY"   # the environment variable that holds the key

The key itself is never written in the file and never logged: it is read from the environment
variable named by ``api_key_env`` when a request is made (a local server needs none).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from convener.settings import ConfigError


@dataclass
class LlmSettings:
    # The API root that ends before /chat/completions: Ollama http://127.0.0.1:11434/v1, vLLM and
    # llama.cpp's server http://HOST:8000/v1, OpenAI https://api.openai.com/v1.
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = "llama3.2"
    # Name of the environment variable holding the API key ("" or unset: no Authorization header).
    api_key_env: str = "CONVENER_LLM_API_KEY"
    # Seconds to connect to the endpoint.
    connect_timeout: float = 2.0
    # Seconds from the request to the first token (a loaded local model answers in well under 1 s).
    first_token_timeout: float = 8.0
    # Seconds of silence allowed between two chunks of a streamed answer.
    idle_timeout: float = 5.0
    # Seconds for a whole answer.
    total_timeout: float = 30.0
    # A 429 is retried once when its Retry-After is at most this many seconds (0: never retried).
    max_retry_after: float = 1.0
    max_tokens: int = 200
    temperature: float = 0.3
    # TLS (https URLs): certificates are verified; ca_file adds a private CA bundle.
    verify_tls: bool = True
    ca_file: str = ""
    # The LLM convener ([ofp] convener = "llm"): its time budget per decision (milliseconds); when
    # it runs out, or the answer is not valid, the embedded router decides.
    convener_budget_ms: int = 600
    # The model the LLM convener asks ("" = model).
    convener_model: str = ""
    # Dialog events of the recent conversation shown to the LLM convener.
    convener_history: int = 6

    def validate(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"base_url: must be an http(s) URL, got {self.base_url!r}")
        if not self.model:
            raise ConfigError("model: must not be empty")
        for name in ("connect_timeout", "first_token_timeout", "idle_timeout", "total_timeout"):
            v = getattr(self, name)
            if not 0 < v <= 300:
                raise ConfigError(f"{name}: must be in (0, 300] seconds, got {v}")
        if not 0 <= self.max_retry_after <= 30:
            raise ConfigError(f"max_retry_after: must be in [0, 30] seconds, got {self.max_retry_after}")
        if not 1 <= self.max_tokens <= 8192:
            raise ConfigError(f"max_tokens: must be in [1, 8192], got {self.max_tokens}")
        if not 0 <= self.temperature <= 2:
            raise ConfigError(f"temperature: must be in [0, 2], got {self.temperature}")
        if not 50 <= self.convener_budget_ms <= 10000:
            raise ConfigError(f"convener_budget_ms: must be in [50, 10000], got {self.convener_budget_ms}")
        if not 0 <= self.convener_history <= 50:
            raise ConfigError(f"convener_history: must be in [0, 50], got {self.convener_history}")

    def api_key(self) -> str:
        """The key from the environment ("" when none is set). Never log it."""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""
