"""Smart Turn v3.2 (audio turn-completion model) run with onnxruntime, without pipecat.

The model (int8 ONNX, 8.7 MB, BSD-2-Clause, by Daily) ships inside the ``pipecat-ai`` wheel at
``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx``. The file is found through the
installed distribution's file list (``importlib.metadata``), so pipecat itself is never
imported (its import pulls loguru, pydantic, numba ... and takes ~0.5 s). The file is pinned by
sha256; a different file is an error, not a silent change of behaviour.

Input: the utterance so far, resampled to 16 kHz, last 8 s, Whisper log-mel (``features``).
Output: P(turn complete). One decision costs ~tens of ms of one CPU core; ``probability`` is
blocking, so the shell runs it in a worker thread. One session serves all calls
(``InferenceSession.run`` is thread-safe); one intra-op thread per run keeps concurrent
callers from fighting over the cores.
"""

from __future__ import annotations

import hashlib
import logging
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from convener.audio import resample_pcm16
from convener.speech.turns.features import RATE, log_mel

log = logging.getLogger(__name__)

DISTRIBUTION = "pipecat-ai"
VERSION = "1.14.0"
MODEL_PATH = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"


class ModelMissing(Exception):
    """The package holding the model is not installed (a fallback is used)."""


def model_file() -> Path:
    """Path of the installed Smart Turn file; ModelMissing when pipecat-ai is absent."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as e:
        raise ModelMissing(f"{DISTRIBUTION} is not installed") from e
    for f in dist.files or ():
        if str(f).replace("\\", "/") == MODEL_PATH:
            p = Path(str(dist.locate_file(f)))
            if p.is_file():
                return p
    raise ModelMissing(f"{DISTRIBUTION} {dist.version} has no {MODEL_PATH}")


def check_sha256(path: Path, expected: str = MODEL_SHA256) -> None:
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != expected:
        raise ValueError(f"{path}: sha256 {got} is not the pinned Smart Turn v3.2 file {expected} "
                         f"(from {DISTRIBUTION}=={VERSION}); install that version or set "
                         "[media] turn_completion = \"text\"")


class SmartTurnModel:
    name = "smart-turn"

    def __init__(self, path: Path | None = None, expected_sha256: str = MODEL_SHA256) -> None:
        import onnxruntime as ort

        p = path or model_file()
        check_sha256(p, expected_sha256)
        so = ort.SessionOptions()
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        so.intra_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = p
        self._session: Any = ort.InferenceSession(str(p), sess_options=so, providers=["CPUExecutionProvider"])

    def probability(self, pcm16: bytes, sample_rate: int) -> float:
        """P(the caller has finished) for PCM16 mono audio of the utterance so far (blocking)."""
        if sample_rate != RATE:
            pcm16 = resample_pcm16(pcm16, sample_rate, RATE)
        x = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        feats = log_mel(x)[None, :, :]
        out = self._session.run(None, {"input_features": feats})
        return float(np.asarray(out[0]).reshape(-1)[0])
