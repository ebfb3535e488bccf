from __future__ import annotations

import re
import threading

import pytest

from convener.ari.stream import StreamState
from convener.ops import metrics
from convener.ops.metrics import Counter, Gauge, Histogram, Registry
from convener.timings import STAGES, TurnTimings

SAMPLE = re.compile(r'^[a-z_][a-z0-9_]*(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+]+|\+Inf|NaN)$')


def _value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not in output:\n{text}")


def test_exposition_format_is_valid_and_typed():
    text = metrics.REGISTRY.render()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram")
            assert name.startswith("convener_")
            names.add(name)
        elif not line.startswith("# HELP "):
            assert SAMPLE.match(line), line
    for required in ("convener_calls_total", "convener_calls_active", "convener_turns_total",
                     "convener_turn_stage_seconds", "convener_barge_ins_total", "convener_agent_errors_total",
                     "convener_agent_timeouts_total", "convener_ari_reconnects_total", "convener_ari_connected",
                     "convener_rtp_packets_lost_total", "convener_unhandled_errors_total"):
        assert required in names


def test_labels_and_escaping():
    reg = Registry()
    c = reg.counter("x_total", "help with \\ backslash\nand newline", ("agent",))
    c.labels(agent='fl"i\\ghts\n').inc(2)
    text = reg.render()
    assert '# HELP x_total help with \\\\ backslash\\nand newline' in text
    assert 'x_total{agent="fl\\"i\\\\ghts\\n"} 2' in text
    with pytest.raises(ValueError):
        c.inc()  # labelled metric used without labels
    with pytest.raises(ValueError):
        c.labels(other="x")
    with pytest.raises(ValueError):
        c.labels(agent="a").inc(-1)
    with pytest.raises(ValueError):
        reg.counter("x_total", "again")


def test_histogram_buckets_are_cumulative():
    h = Histogram("lat_seconds", "h", buckets=(0.1, 0.5, 1.0))
    for v in (0.05, 0.1, 0.3, 0.7, 5.0):
        h.observe(v)
    lines = dict(line.rsplit(" ", 1) for line in h.samples())
    assert lines['lat_seconds_bucket{le="0.1"}'] == "2"
    assert lines['lat_seconds_bucket{le="0.5"}'] == "3"
    assert lines['lat_seconds_bucket{le="1"}'] == "4"
    assert lines['lat_seconds_bucket{le="+Inf"}'] == "5"
    assert lines["lat_seconds_count"] == "5"
    assert float(lines["lat_seconds_sum"]) == pytest.approx(6.15)


def test_observe_turn_records_consecutive_stages():
    t = TurnTimings("t1")
    t.mark("speech_start", 10.0)
    t.mark("speech_end", 11.0)
    t.mark("end_of_turn", 11.5)
    t.mark("asr_final", 11.7)
    t.mark("first_audio_out", 12.4)
    metrics.observe_turn(t)
    metrics.observe_turn(t)
    h = metrics.TURN_STAGE_SECONDS
    assert metrics.TURNS_TOTAL.value() == 2
    assert h.count(stage="speech_end->end_of_turn") == 2
    assert h.sum(stage="speech_end->end_of_turn") == pytest.approx(1.0)
    assert h.count(stage="asr_final->first_audio_out") == 2  # missing stages are skipped over
    assert h.count(stage="asr_final->envelope_sent") == 0
    assert metrics.TURN_RESPONSE_SECONDS.count() == 2
    assert metrics.TURN_RESPONSE_SECONDS.sum() == pytest.approx(1.8)
    text = metrics.REGISTRY.render()
    assert 'convener_turn_stage_seconds_count{stage="speech_start->speech_end"} 2' in text
    # every label used is a pair of the fixed stage names, in pipeline order
    samples = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    for label in re.findall(r'stage="([^"]+)"', samples):
        a, b = label.split("->")
        assert STAGES.index(a) < STAGES.index(b)
        assert label in metrics.stage_pairs()


def test_helpers_count_by_agent():
    metrics.agent_error("flights")
    metrics.agent_error("flights")
    metrics.agent_timeout("hotels")
    metrics.barge_in()
    metrics.rtp_lost(3)
    metrics.rtp_lost(0)
    metrics.unhandled_error()
    metrics.voice_frame_lag(0.003)
    metrics.voice_frame_lag(-0.001)  # clock noise: counted as no lag
    text = metrics.REGISTRY.render()
    assert _value(text, 'convener_voice_frame_lag_seconds_bucket{le="0.001"}') == 1
    assert _value(text, 'convener_voice_frame_lag_seconds_bucket{le="0.005"}') == 2
    assert _value(text, 'convener_agent_errors_total{agent="flights"}') == 2
    assert _value(text, 'convener_agent_timeouts_total{agent="hotels"}') == 1
    assert _value(text, "convener_barge_ins_total") == 1
    assert _value(text, "convener_rtp_packets_lost_total") == 3
    assert _value(text, "convener_unhandled_errors_total") == 1


def test_bind_app_reads_the_app_at_scrape_time(fake_app):
    unbind = metrics.bind_app(fake_app)
    try:
        text = metrics.REGISTRY.render()
        assert _value(text, "convener_ari_connected") == 0
        fake_app.stream.state = StreamState.CONNECTED
        fake_app.stream.reconnects = 4
        fake_app.calls = {"c1": object(), "c2": object()}
        fake_app.calls_total = 7
        fake_app.errors = 1
        text = metrics.REGISTRY.render()
        assert _value(text, "convener_ari_connected") == 1
        assert _value(text, "convener_calls_active") == 2
        assert _value(text, "convener_calls_total") == 7
        assert _value(text, "convener_ari_reconnects_total") == 4
        assert _value(text, "convener_unhandled_errors_total") == 1
    finally:
        unbind()
    fake_app.calls = {}
    assert _value(metrics.REGISTRY.render(), "convener_calls_active") == 2  # unbound: no longer read


def test_broken_collector_does_not_break_the_scrape():
    def broken() -> None:
        raise RuntimeError("boom")

    remove = metrics.REGISTRY.add_collector(broken)
    try:
        text = metrics.REGISTRY.render()
    finally:
        remove()
    assert _value(text, "convener_metrics_collector_errors_total") == 1


def test_concurrent_updates_are_not_lost():
    c, g = Counter("c_total", "c"), Gauge("g", "g")

    def work() -> None:
        for _ in range(5000):
            c.inc()
            g.inc()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.value() == 20000
    assert g.value() == 20000
