"""Garbage-collector pauses: the monitor's accounting, the heap freeze, and start-up using it."""

from __future__ import annotations

import gc
import logging

import pytest

from convener.app.application import ConvenerApp
from convener.app.startup import prepare
from convener.config import Config
from convener.ops import gc_pauses, metrics
from convener.ops.gc_pauses import GcPauseMonitor, settle_heap


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite runs with the collector as it was


def test_the_monitor_times_each_collection_by_generation() -> None:
    clock, seen = Clock(), []
    mon = GcPauseMonitor(lambda g, s: seen.append((g, round(s, 6))), clock=clock)
    mon("start", {"generation": 0})
    clock.t += 0.0004
    mon("stop", {"generation": 0, "collected": 3})
    mon("start", {"generation": 2})
    clock.t += 0.049
    mon("stop", {"generation": 2, "collected": 0})
    assert seen == [(0, 0.0004), (2, 0.049)]
    assert mon.counts == {0: 1, 2: 1}
    assert mon.longest[2] == pytest.approx(0.049)
    mon("stop", {"generation": 1})  # a stop without its start (installed mid-collection): ignored
    assert mon.counts == {0: 1, 2: 1}


def test_a_long_pause_is_one_warning_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    mon = GcPauseMonitor(clock=clock)
    caplog.set_level(logging.WARNING, logger="convener.ops.gc_pauses")

    def pause(seconds: float) -> None:
        mon("start", {"generation": 2})
        clock.t += seconds
        mon("stop", {"generation": 2})

    pause(0.010)  # under 20 ms: silent
    assert not caplog.records
    pause(0.030)
    pause(0.040)  # within the minute: counted, not logged again
    assert len(caplog.records) == 1
    assert "30 ms" in caplog.records[0].getMessage()
    clock.t += 61
    pause(0.025)
    assert len(caplog.records) == 2
    assert mon.counts[2] == 4


def test_installed_it_sees_real_collections() -> None:
    seen: list[tuple[int, float]] = []
    mon = GcPauseMonitor(lambda g, s: seen.append((g, s))).install()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        mon.uninstall()
    assert [g for g, _ in seen][-2:] == [0, 2]
    assert all(s >= 0 for _, s in seen)
    assert mon not in gc.callbacks


def test_the_process_monitor_feeds_the_metric() -> None:
    mon = gc_pauses.monitor()
    assert gc_pauses.monitor() is mon and gc.callbacks.count(mon) == 1
    gc.collect(1)
    text = metrics.REGISTRY.render()
    assert 'convener_gc_pause_seconds_count{generation="1"}' in text


def test_settle_heap_freezes_what_is_alive(unfrozen: None) -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    Cycle()  # garbage the settling collection finds
    keep = [Cycle() for _ in range(10)]
    report = settle_heap()
    assert report.collected >= 1
    assert report.frozen == gc.get_freeze_count() > len(keep)
    assert report.collect_ms >= 0


@pytest.mark.parametrize("freeze", [True, False])
async def test_start_up_settles_the_heap_unless_told_not_to(
        unfrozen: None, freeze: bool, caplog: pytest.LogCaptureFixture) -> None:
    cfg = Config()
    cfg.ops.gc_freeze = freeze
    app = ConvenerApp(cfg)
    if gc_pauses._installed is not None:  # as in a fresh process: start-up installs it
        gc_pauses._installed.uninstall()
        gc_pauses._installed = None
    caplog.set_level(logging.WARNING, logger="convener.ops.gc_pauses")
    await prepare(app, voice=False)
    assert (gc.get_freeze_count() > 0) is freeze
    assert gc_pauses._installed is not None and gc_pauses._installed in gc.callbacks
    assert 2 not in gc_pauses._installed.counts, "the settling collection is not counted as a pause"
    assert not caplog.records, "the deliberate start-up collection is not reported as a stall"
