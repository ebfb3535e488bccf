"""A small Prometheus registry (text exposition format 0.0.4), with no third-party dependency.

Counters, gauges and histograms, each with optional labels. Updates take a lock, so they are safe
from the event loop and from worker threads alike. Values owned by other objects (active calls,
whether ARI is connected) are read at scrape time by collector callbacks::

    metrics.CALLS_ACTIVE  # set by the collector that ``bind_app(app)`` registers
    metrics.observe_turn(timings)  # one caller turn: turn counter and per-stage latencies
    metrics.AGENT_ERRORS.labels(agent="flights").inc()

``REGISTRY.render()`` gives the text served at ``/metrics``.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from convener.timings import STAGES, TurnTimings

log = logging.getLogger(__name__)

# Latency buckets in seconds: voice turns live between tens of milliseconds and a few seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0,
                   3.0, 5.0, 10.0)

LabelKey = tuple[str, ...]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels_text(names: Sequence[str], values: Sequence[str], extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(f'{extra[0]}="{_escape_label(extra[1])}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ValueError(f"bad metric name {name!r}")
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, Any]) -> LabelKey:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name}: labels must be {self.labelnames}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def _check_unlabelled(self) -> None:
        if self.labelnames:
            raise ValueError(f"{self.name}: needs labels {self.labelnames}; use .labels(...)")

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError


class _ValueChild:
    def __init__(self, metric: _ValueMetric, key: LabelKey) -> None:
        self._metric = metric
        self._key = key

    def inc(self, amount: float = 1.0) -> None:
        self._metric._add(self._key, amount)

    def set(self, value: float) -> None:
        self._metric._set(self._key, value)

    def dec(self, amount: float = 1.0) -> None:
        self._metric._add(self._key, -amount)

    @property
    def value(self) -> float:
        return self._metric._values.get(self._key, 0.0)


class _ValueMetric(_Metric):
    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[LabelKey, float] = {} if labelnames else {(): 0.0}

    def labels(self, **labels: Any) -> _ValueChild:
        return _ValueChild(self, self._key(labels))

    def _add(self, key: LabelKey, amount: float) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def _set(self, key: LabelKey, value: float) -> None:
        with self._lock:
            self._values[key] = float(value)

    def value(self, **labels: Any) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels_text(self.labelnames, k)} {_fmt(v)}" for k, v in items]

    def reset(self) -> None:
        with self._lock:
            self._values = {} if self.labelnames else {(): 0.0}


class Counter(_ValueMetric):
    """A total that only goes up. The name should end in ``_total``."""

    kind = "counter"

    def inc(self, amount: float = 1.0) -> None:
        self._check_unlabelled()
        if amount < 0:
            raise ValueError(f"{self.name}: counters only go up")
        self._add((), amount)

    def _add(self, key: LabelKey, amount: float) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: counters only go up")
        super()._add(key, amount)

    def set_total(self, value: float, **labels: Any) -> None:
        """Mirror a total kept elsewhere (read by a collector); it never goes backwards."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = max(self._values.get(key, 0.0), float(value))


class Gauge(_ValueMetric):
    """A value that goes up and down."""

    kind = "gauge"

    def set(self, value: float) -> None:
        self._check_unlabelled()
        self._set((), value)

    def inc(self, amount: float = 1.0) -> None:
        self._check_unlabelled()
        self._add((), amount)

    def dec(self, amount: float = 1.0) -> None:
        self._check_unlabelled()
        self._add((), -amount)


class _HistogramChild:
    def __init__(self, metric: Histogram, key: LabelKey) -> None:
        self._metric = metric
        self._key = key

    def observe(self, value: float) -> None:
        self._metric._observe(self._key, value)


class Histogram(_Metric):
    """Observations counted into cumulative buckets (upper bounds, ``le``), plus sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help, labelnames)
        if "le" in self.labelnames:
            raise ValueError("'le' is reserved for histogram buckets")
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.buckets = tuple(bounds)
        # per label key: [bucket counts (not cumulative)..., sum, count]
        self._data: dict[LabelKey, list[float]] = {}
        self.reset()

    def labels(self, **labels: Any) -> _HistogramChild:
        return _HistogramChild(self, self._key(labels))

    def observe(self, value: float) -> None:
        self._check_unlabelled()
        self._observe((), value)

    def _observe(self, key: LabelKey, value: float) -> None:
        with self._lock:
            data = self._data.get(key)
            if data is None:
                data = self._data[key] = [0.0] * (len(self.buckets) + 2)
            data[bisect.bisect_left(self.buckets, value)] += 1  # the first bound >= value
            data[-2] += value
            data[-1] += 1

    def count(self, **labels: Any) -> int:
        data = self._data.get(self._key(labels))
        return int(data[-1]) if data else 0

    def sum(self, **labels: Any) -> float:
        data = self._data.get(self._key(labels))
        return data[-2] if data else 0.0

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._data.items())
        out: list[str] = []
        for key, data in items:
            for bound, cumulative in zip(self.buckets, itertools.accumulate(data[: len(self.buckets)]), strict=True):
                le = _labels_text(self.labelnames, key, ("le", _fmt(bound)))
                out.append(f"{self.name}_bucket{le} {_fmt(cumulative)}")
            lbl = _labels_text(self.labelnames, key)
            out.append(f"{self.name}_sum{lbl} {_fmt(data[-2])}")
            out.append(f"{self.name}_count{lbl} {_fmt(data[-1])}")
        return out

    def reset(self) -> None:
        with self._lock:
            # An unlabelled histogram shows zero buckets before its first observation.
            self._data = {} if self.labelnames else {(): [0.0] * (len(self.buckets) + 2)}


Collector = Callable[[], None]


class Registry:
    """Named metrics plus collectors that refresh values just before each scrape."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Collector] = []
        self._lock = threading.Lock()

    def register(self, metric: _Metric) -> Any:
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name} is already registered")
            self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self.register(Counter(name, help, labelnames))

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self.register(Gauge(name, help, labelnames))

    def histogram(self, name: str, help: str, labelnames: Sequence[str] = (),
                  buckets: Iterable[float] = LATENCY_BUCKETS) -> Histogram:
        return self.register(Histogram(name, help, labelnames, buckets))

    def get(self, name: str) -> _Metric:
        return self._metrics[name]

    def all(self) -> list[_Metric]:
        with self._lock:
            return list(self._metrics.values())

    def add_collector(self, fn: Collector) -> Callable[[], None]:
        """Call ``fn`` before every scrape; returns a function that removes it again."""
        with self._lock:
            self._collectors.append(fn)

        def remove() -> None:
            with self._lock:
                if fn in self._collectors:
                    self._collectors.remove(fn)

        return remove

    def collect(self) -> None:
        with self._lock:
            collectors = list(self._collectors)
        for fn in collectors:
            try:
                fn()
            except Exception:
                # A broken collector must not take /metrics down; the failure is counted.
                log.exception("metrics collector %r failed", fn)
                if COLLECTOR_ERRORS in self._metrics.values():
                    COLLECTOR_ERRORS.inc()

    def render(self) -> str:
        self.collect()
        with self._lock:
            metrics = list(self._metrics.values())
        lines: list[str] = []
        for m in metrics:
            lines += m.header()
            lines += m.samples()
        return "\n".join(lines) + "\n"

    def reset(self) -> None:
        """Zero every value (tests)."""
        for m in self._metrics.values():
            m.reset()  # type: ignore[attr-defined]


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = Registry()

# --- the metrics of convener -----------------------------------------------------------------

CALLS_TOTAL = REGISTRY.counter("convener_calls_total", "Calls that entered the Stasis application.")
CALLS_ACTIVE = REGISTRY.gauge("convener_calls_active", "Calls in progress.")
CALL_SETUP_SECONDS = REGISTRY.histogram(
    "convener_call_setup_seconds", "From StasisStart to the caller joining the room bridge.")
TURNS_TOTAL = REGISTRY.counter("convener_turns_total", "Caller turns (utterances) handled.")
TURN_STAGE_SECONDS = REGISTRY.histogram(
    "convener_turn_stage_seconds",
    "Latency between consecutive recorded stages of a caller turn (stage=\"a->b\", names as in "
    "convener.timings.STAGES).", ("stage",))
TURN_RESPONSE_SECONDS = REGISTRY.histogram(
    "convener_turn_response_seconds",
    "What the caller waits: from end of turn to the first reply audio sent to Asterisk.")
VOICE_FRAME_LAG_SECONDS = REGISTRY.histogram(
    "convener_voice_frame_lag_seconds",
    "How long a caller's audio frame waited in convener's queue before the turn detector read it "
    "(the event loop's backlog on the inbound path).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0))
GC_PAUSE_SECONDS = REGISTRY.histogram(
    "convener_gc_pause_seconds",
    "How long each garbage collection stopped the process (event loop and audio included), by "
    "collector generation (2 = full).", ("generation",),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25))
BARGE_INS_TOTAL = REGISTRY.counter("convener_barge_ins_total", "Replies interrupted by the caller.")
SPECULATIVE_DECODES_TOTAL = REGISTRY.counter(
    "convener_speculative_decodes_total",
    "Decodes started before the end of a turn (used or dropped because the caller went on).")
SPECULATIVE_HITS_TOTAL = REGISTRY.counter(
    "convener_speculative_hits_total", "Turns whose text came from a decode started before the turn ended.")
AGENT_ERRORS_TOTAL = REGISTRY.counter(
    "convener_agent_errors_total", "Failed exchanges with an agent (HTTP errors, bad envelopes).", ("agent",))
AGENT_TIMEOUTS_TOTAL = REGISTRY.counter(
    "convener_agent_timeouts_total", "Agent requests that timed out.", ("agent",))
ARI_RECONNECTS_TOTAL = REGISTRY.counter("convener_ari_reconnects_total", "Reconnects of the ARI event stream.")
ARI_CONNECTED = REGISTRY.gauge("convener_ari_connected", "1 while the ARI event stream is connected, else 0.")
RTP_PACKETS_LOST_TOTAL = REGISTRY.counter(
    "convener_rtp_packets_lost_total", "Inbound RTP packets declared lost by the jitter buffer.")
UNHANDLED_ERRORS_TOTAL = REGISTRY.counter(
    "convener_unhandled_errors_total", "Unexpected exceptions caught at a task boundary.")
TRANSCRIPT_ERRORS_TOTAL = REGISTRY.counter(
    "convener_transcript_errors_total", "Transcript writes that failed (the call went on).")
TRANSCRIPT_DROPPED_TOTAL = REGISTRY.counter(
    "convener_transcript_dropped_total", "Transcript writes dropped because the write queue was full.")
COLLECTOR_ERRORS = REGISTRY.counter(
    "convener_metrics_collector_errors_total", "Scrape-time collectors that raised.")
PROCESS_START_TIME = REGISTRY.gauge(
    "convener_process_start_time_seconds", "Unix time the process started.")
PROCESS_START_TIME.set(time.time())

# Aliases with the short names used in the brief.
AGENT_ERRORS = AGENT_ERRORS_TOTAL
AGENT_TIMEOUTS = AGENT_TIMEOUTS_TOTAL


def stage_pairs() -> list[str]:
    """Every ``a->b`` label the per-stage histogram can carry."""
    return [f"{a}->{b}" for a, b in itertools.combinations(STAGES, 2)]


# --- helpers the rest of convener calls ------------------------------------------------------

def observe_turn(timings: TurnTimings) -> None:
    """Count one caller turn and record the latency of each consecutive pair of its stages."""
    TURNS_TOTAL.inc()
    present = [s for s in STAGES if s in timings.marks]
    for a, b in itertools.pairwise(present):
        TURN_STAGE_SECONDS.labels(stage=f"{a}->{b}").observe(max(0.0, timings.marks[b] - timings.marks[a]))
    response = timings.between("end_of_turn", "first_audio_out")
    if response is not None:
        TURN_RESPONSE_SECONDS.observe(max(0.0, response))


def voice_frame_lag(seconds: float) -> None:
    VOICE_FRAME_LAG_SECONDS.observe(max(0.0, seconds))


def gc_pause(generation: int, seconds: float) -> None:
    GC_PAUSE_SECONDS.labels(generation=str(generation)).observe(max(0.0, seconds))


def observe_call_setup(seconds: float) -> None:
    CALL_SETUP_SECONDS.observe(seconds)


def agent_error(agent: str) -> None:
    AGENT_ERRORS_TOTAL.labels(agent=agent).inc()


def agent_timeout(agent: str) -> None:
    AGENT_TIMEOUTS_TOTAL.labels(agent=agent).inc()


def barge_in() -> None:
    BARGE_INS_TOTAL.inc()


def speculative_decode(hit: bool = False) -> None:
    (SPECULATIVE_HITS_TOTAL if hit else SPECULATIVE_DECODES_TOTAL).inc()


def rtp_lost(packets: int) -> None:
    if packets > 0:
        RTP_PACKETS_LOST_TOTAL.inc(packets)


def unhandled_error() -> None:
    UNHANDLED_ERRORS_TOTAL.inc()


def bind_app(app: Any, registry: Registry = REGISTRY) -> Callable[[], None]:
    """Read the app's own books at every scrape; returns a function that unbinds it.

    ``app`` is duck-typed: ``calls`` (dict), ``stream.state`` (``"connected"`` when up),
    optional ``stream.reconnects``, ``calls_total`` and ``errors``. Those totals are owned by
    the app, so nothing else should ``inc()`` CALLS_TOTAL or UNHANDLED_ERRORS_TOTAL once bound.
    """

    def collect() -> None:
        CALLS_ACTIVE.set(len(app.calls))
        state = getattr(app.stream, "state", None)
        ARI_CONNECTED.set(1 if str(getattr(state, "value", state)) == "connected" else 0)
        if hasattr(app.stream, "reconnects"):
            ARI_RECONNECTS_TOTAL.set_total(app.stream.reconnects)
        if hasattr(app, "calls_total"):
            CALLS_TOTAL.set_total(app.calls_total)
        if hasattr(app, "errors"):
            UNHANDLED_ERRORS_TOTAL.set_total(app.errors)

    return registry.add_collector(collect)
