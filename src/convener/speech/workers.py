"""The thread pool that runs decoding and synthesis off the event loop.

One pool per process, sized to the machine (``speech.worker_threads``, 0 = cores). Model work
(Whisper decode, hibari synthesis) runs here so the asyncio loop that moves 20 ms frames never
blocks.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_size = 0


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def configure(threads: int = 0) -> None:
    """Set the pool size (0 = cores). Only effective before the pool is first used."""
    global _size
    with _lock:
        if _pool is None:
            _size = threads


def pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_size or cores(), thread_name_prefix="speech")
        return _pool


async def run(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn`` in the speech pool and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool(), functools.partial(fn, *args, **kwargs))
