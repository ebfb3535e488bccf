"""When to start a speculative decode during the caller's pause (pure logic).

The shell (``CallerVoice._speculate``) decodes the utterance so far once the caller has been
quiet for ``speculate_after_ms``: if they say nothing more, the text is ready when the turn
ends. Measured on the talking-callers benchmark's requests, most of those decodes are started in
the short gaps between words (60-150 ms of quiet) and dropped when the next word comes: ~3 per
turn, each a whole Whisper decode (its encoder costs the same for 1 s or 3 s of audio), which
with many callers at once queue in front of the decodes that matter.

So once a speculation has been dropped in an utterance (the caller went on: they pause between
words), the next one waits for ``speculate_retry_ms`` of quiet instead: a longer pause than the
gaps between this caller's words. The first one of an utterance still starts early, and the
decision's forced decode (the first look needs the words) is never held back.

And a speculation only uses decoding capacity that is idle (``busy``: every decoder of the
recogniser is taken, ``WhisperAsr.busy``). With 16 callers ending their turns together, the
talking-callers benchmark counted 36 speculative decodes for 16 turns, each queued in front of
the decodes that other callers were waiting for. A refused speculation is asked again at the
next frame, so on a quiet system nothing changes (``voice.speculate_when_busy`` restores the
old behaviour, for comparison).
"""

from __future__ import annotations


def should_speculate(speaking: bool, quiet_s: float, after_s: float, retry_s: float, dropped: int,
                     force: bool = False, busy: bool = False) -> bool:
    """Start a speculative decode now?

    ``speaking``: the detector is in an utterance; ``quiet_s``: how long the caller has been
    quiet; ``after_s`` / ``retry_s``: the quiet needed for the first speculation of the
    utterance and for one after ``dropped`` (> 0) were dropped because the caller went on;
    ``force``: the turn-completion decision needs the words now; ``busy``: every decoder is
    taken (a speculation would wait behind decodes that callers are waiting for)."""
    if not speaking:
        return False
    if force:
        return True
    if after_s <= 0 or busy:
        return False
    need = after_s if dropped == 0 else max(after_s, retry_s)
    return quiet_s >= need - 1e-9
