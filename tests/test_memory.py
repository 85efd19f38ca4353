"""Bounded memory and bounded work on every path, the rare ones too."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sip_statsd import Config, SipMetrics
from sip_statsd._core.backend import MemoryBackend
from sip_statsd._core.recorder import MAX_PENDING_SWITCHES
from sip_statsd._core.series import _MAX_QUEUED
from sip_statsd.testing import capture_metrics


def test_inc_by_n_after_close_stays_bounded_and_exact(make_metrics):
    """Item 12: inc(n >= 2) queued its n per call; now it folds them, so memory stays flat."""
    metrics = make_metrics(backend="memory", flush_interval=3600)
    family = metrics.counter("bulk_total")
    series = family.series()
    metrics.close()
    for _ in range(200_000):
        series.inc(3)
    assert len(series._extra) <= _MAX_QUEUED + 1  # what the flusher would have to take
    backend = metrics.recorder.backend
    assert isinstance(backend, MemoryBackend)
    assert metrics.flush()  # after close(): served by a thread of ours all the same
    counts, _ = backend.snapshot()
    assert counts[series] == 600_000


def test_inc_by_n_from_threads_with_folding_is_exact(make_metrics):
    metrics = make_metrics(backend="memory", flush_interval=0.01)
    series = metrics.counter("folded_total").series()

    def work() -> None:
        for _ in range(30_000):
            series.inc(2)

    with capture_metrics(metrics=metrics) as cap:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert cap.count("folded_total") == 4 * 30_000 * 2


class Unhashable(list):
    """A bad argument whose repr is expensive and counted."""

    reprs = 0

    def __repr__(self) -> str:
        type(self).reprs += 1
        return super().__repr__()


def test_a_bad_unhashable_argument_costs_its_repr_once_not_per_call(make_metrics):
    """Item 13: the drop path shows the value only for the one log line (or a strict error)."""
    metrics = make_metrics(backend="memory", flush_interval=3600)
    family = metrics.counter("shaped_total", labels={"kind": ("a", "b")})
    distribution = metrics.distribution("shaped_ms")
    bad = Unhashable(str(i) for i in range(100_000))
    Unhashable.reprs = 0
    for _ in range(300):
        metrics.stir_verify(bad)  # type: ignore[arg-type]
        metrics.invite_result(bad, 200)  # type: ignore[arg-type]
        family.inc(kind=bad)
        distribution.observe(bad)  # type: ignore[arg-type]
    assert Unhashable.reprs <= 4  # one log line per metric and reason at most
    stats = metrics.stats()
    assert stats.dropped_inputs[("sip_stir_verify_total", "unknown_value")] == 300
    assert stats.dropped_inputs[("shaped_ms", "invalid_number")] == 300


@contextmanager
def stuck_flusher(metrics: SipMetrics) -> Iterator[None]:
    """The flusher stuck in a send (as behind a hung resolver) for the block."""
    recorder = metrics.recorder
    hold, entered = threading.Event(), threading.Event()
    real_serve = recorder._serve

    def stuck_serve() -> bool:
        entered.set()
        hold.wait(30)
        return real_serve()

    recorder._serve = stuck_serve  # type: ignore[method-assign]
    try:
        metrics.flush(timeout=0)
        assert entered.wait(10)
        yield
    finally:
        hold.set()


def test_configure_in_a_loop_with_a_stuck_flusher_stays_bounded_and_loses_nothing(make_metrics):
    metrics = make_metrics(backend="memory", flush_interval=3600)
    recorder = metrics.recorder
    first = recorder.backend
    backends = [MemoryBackend() for _ in range(2000)]
    with stuck_flusher(metrics):
        for backend in backends:
            metrics.dtls_handshake("ok")
            recorder.reconfigure(Config(backend="memory", flush_interval=3600), backend=backend)
        assert len(recorder._switches) <= MAX_PENDING_SWITCHES
    assert metrics.flush(timeout=10)
    dtls = recorder._families["sip_dtls_handshake_total"].series(result="ok")
    arrived = sum(b.snapshot()[0].get(dtls, 0) for b in [first, *backends] if isinstance(b, MemoryBackend))
    assert arrived == 2000  # folded switches send to an earlier backend, never nowhere


def test_an_unreferenced_instance_lets_its_flusher_thread_end(make_metrics):
    metrics = SipMetrics(backend="off", flush_interval=3600)
    thread = metrics.recorder.flusher.schedule.thread
    assert thread is not None
    assert thread.is_alive()
    del metrics
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()


def test_gauge_moves_by_n_stay_bounded_and_exact(make_metrics):
    metrics = make_metrics(backend="memory", flush_interval=3600)
    level = metrics.gauge("queue_depth").series()
    metrics.close()
    for _ in range(100_000):
        level.inc(3)
        level.dec(2)
    assert len(level._extra) <= _MAX_QUEUED + 1
    with capture_metrics(metrics=metrics) as cap:
        level.inc(0)
        assert cap.gauge("queue_depth") == 100_000


def test_a_gauge_moved_past_the_float_range_keeps_its_level_and_counts_a_drop(receiver, make_metrics):
    metrics = make_metrics(host=receiver.host, port=receiver.port, flush_interval=3600)
    level = metrics.gauge("huge_level").series()
    level.set(5)
    level.inc(1.7e308)
    level.inc(1.7e308)  # inf: no agent parses it
    assert metrics.flush()
    totals = receiver.wait_for(lambda t: t.gauges)
    assert not totals.malformed
    assert metrics.stats().dropped_inputs[("huge_level", "invalid_number")] == 1


def test_strict_configure_with_a_stuck_flusher_never_raises_and_keeps_every_count(make_metrics):
    metrics = make_metrics(backend="memory", flush_interval=3600, strict=True)
    recorder = metrics.recorder
    capped = metrics.distribution("capped_ms")
    initial = recorder.backend
    backends = [MemoryBackend() for _ in range(12)]
    with stuck_flusher(metrics):
        for backend in backends:
            metrics.dtls_handshake("ok")  # raised InvalidInputError from a folded switch before
            for _ in range(capped.max_samples):
                capped.observe(1.0)  # a full cell each time: folded switches exceed the cap
            recorder.reconfigure(Config(backend="memory", flush_interval=3600, strict=True), backend=backend)
    assert metrics.flush(timeout=10)
    dtls = recorder._families["sip_dtls_handshake_total"].series(result="ok")
    every = [b for b in [initial, *backends] if isinstance(b, MemoryBackend)]
    assert sum(b.snapshot()[0].get(dtls, 0) for b in every) == 12
    sampled = recorder._families["sip_statsd_sampled_away_total"].series(metric="capped_ms")
    assert sum(b.snapshot()[0].get(sampled, 0) for b in every) > 0  # counted, not raised
