"""Any OpenAI-compatible chat-completions endpoint (Ollama, vLLM, llama.cpp, clouds).

- ``settings``   the ``[llm]`` section
- ``wire``       the wire protocol, pure: request bodies, JSON answers, SSE chunks, error bodies
- ``sentences``  cutting streamed tokens into speakable sentences, pure
- ``client``     the thin aiohttp shell: ``ChatClient.complete`` and ``ChatClient.stream``
"""

from convener.llm.settings import LlmSettings

__all__ = ["LlmSettings"]
