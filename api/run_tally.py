"""Fire outcomes, lateness and durations kept as plain numbers, exposed at scrape time.

Recording an ended run is the only metrics work that happens per run on an engine
thread (the recorder's), so it is kept to one lock, a dict update and two `bisect`s
(about a microsecond), instead of prometheus-client's counter and two histograms (a
lock per bucket, sum and count: several microseconds). `collect` turns the numbers
into the same families prometheus-client would (cumulative `le` buckets, `_sum`,
`_count`, `_total`), on the scraping thread.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from api.views import job_class_string
from engine.model import Execution, JobKind


def fire_job_class(kind: str, target: str) -> str:
    """The `job_class` label: the class string of a class job, else its kind ("bash",
    "python"): script paths would make one series per script."""
    return job_class_string(kind, target) if kind == JobKind.CLASS else kind


class _Histogram:
    """Bucket counts (not cumulative; the last is +Inf) and a sum."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.total = 0.0


class RunTally(Collector):
    def __init__(
        self, lateness_buckets: Sequence[float], duration_buckets: Sequence[float]
    ) -> None:
        self._lateness_bounds = tuple(float(b) for b in lateness_buckets)
        self._duration_bounds = tuple(float(b) for b in duration_buckets)
        self._lock = threading.Lock()
        #: (status, kind, target) -> count; the job_class label is worked out at scrape
        self._fires: dict[tuple[str, str, str], int] = {}
        self._lateness = _Histogram(len(self._lateness_bounds))
        self._durations: dict[str, _Histogram] = {}

    def record(self, execution: Execution) -> None:
        """Count one execution that ended (or never ran: missed, skipped)."""
        key = (execution.status.value, execution.job_kind, execution.job_target)
        started = execution.started_at
        late = done = -1.0
        if started is not None:
            if execution.scheduled_for is not None:
                late = max(0.0, (started - execution.scheduled_for).total_seconds())
            if execution.completed_at is not None:
                done = max(0.0, (execution.completed_at - started).total_seconds())
        with self._lock:
            self._fires[key] = self._fires.get(key, 0) + 1
            if late >= 0.0:
                lateness = self._lateness
                lateness.counts[bisect_left(self._lateness_bounds, late)] += 1
                lateness.total += late
            if done >= 0.0:
                duration = self._durations.get(key[1])
                if duration is None:
                    duration = self._durations[key[1]] = _Histogram(len(self._duration_bounds))
                duration.counts[bisect_left(self._duration_bounds, done)] += 1
                duration.total += done

    def describe(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        return iter(())  # families are built at scrape time only

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        with self._lock:
            fires = dict(self._fires)
            lateness = (list(self._lateness.counts), self._lateness.total)
            durations = {k: (list(h.counts), h.total) for k, h in self._durations.items()}
        counter = CounterMetricFamily(
            "cronwell_fires",
            "Executions that ended, by outcome (completed, failed, timeout, cancelled, "
            "missed, skipped), job kind and job class",
            labels=["outcome", "kind", "job_class"],
        )
        by_labels: dict[tuple[str, str, str], int] = {}
        for (status, kind, target), count in fires.items():
            labels = (status, kind, fire_job_class(kind, target))
            by_labels[labels] = by_labels.get(labels, 0) + count
        for labels, count in sorted(by_labels.items()):
            counter.add_metric(list(labels), count)
        yield counter
        late = HistogramMetricFamily(
            "cronwell_fire_lateness_seconds",
            "Seconds from a scheduled fire's due time to its start",
        )
        late.add_metric([], _cumulative(self._lateness_bounds, lateness[0]), lateness[1])
        yield late
        took = HistogramMetricFamily(
            "cronwell_execution_duration_seconds",
            "Seconds from an execution's start to its end, by job kind",
            labels=["kind"],
        )
        for kind, (counts, total) in sorted(durations.items()):
            took.add_metric([kind], _cumulative(self._duration_bounds, counts), total)
        yield took


def _cumulative(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    running = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        running += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
    return buckets
