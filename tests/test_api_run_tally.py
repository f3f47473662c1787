"""api/run_tally.py against prometheus-client's own histogram: the same exposition for
the same observations, read back with prometheus_client's parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.run_tally import RunTally
from engine.model import Execution, Status

BOUNDS = (0.001, 0.01, 0.1, 1.0)
T = datetime(2026, 1, 1, tzinfo=UTC)


def run(status: Status, late: float | None, took: float | None, **fields: str) -> Execution:
    started = None if late is None else T + timedelta(seconds=late)
    return Execution(
        id="e",
        job_id="j",
        status=status,
        created_at=T,
        scheduled_for=T,
        started_at=started,
        completed_at=None if started is None or took is None else started + timedelta(seconds=took),
        job_kind=fields.get("kind", "class"),
        job_target=fields.get("target", "jobs.echo.EchoJob"),
    )


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_buckets_sum_and_count_match_prometheus_clients_histogram() -> None:
    values = [0.0, 0.0005, 0.001, 0.002, 0.05, 0.1, 0.5, 3.0, 3.0]
    tally = RunTally(BOUNDS, BOUNDS)
    ours = CollectorRegistry()
    ours.register(tally)
    reference = CollectorRegistry()
    histogram = Histogram("cronwell_fire_lateness_seconds", "x", buckets=BOUNDS, registry=reference)
    for value in values:
        tally.record(run(Status.COMPLETED, value, 0.01))
        histogram.observe(value)
    mine = {k: v for k, v in samples(ours).items() if k[0].startswith("cronwell_fire_lateness")}
    theirs = {
        k: v
        for k, v in samples(reference).items()
        if k[0].startswith("cronwell_fire_lateness") and not k[0].endswith("_created")
    }
    assert mine == theirs
    assert mine[("cronwell_fire_lateness_seconds_bucket", (("le", "0.001"),))] == 3
    assert mine[("cronwell_fire_lateness_seconds_bucket", (("le", "+Inf"),))] == len(values)


def test_outcomes_by_kind_and_class_and_what_is_left_out() -> None:
    tally = RunTally(BOUNDS, BOUNDS)
    registry = CollectorRegistry()
    registry.register(tally)
    tally.record(run(Status.COMPLETED, 0.0, 0.5))
    tally.record(run(Status.FAILED, 0.0, 2.0, kind="bash", target="/srv/a.sh"))
    tally.record(run(Status.FAILED, 0.0, 2.0, kind="bash", target="/srv/b.sh"))
    tally.record(run(Status.MISSED, None, None))  # never started: no lateness, no duration
    got = samples(registry)
    fires = "cronwell_fires_total"
    assert got[(fires, (("job_class", "bash"), ("kind", "bash"), ("outcome", "failed")))] == 2
    echo = (("job_class", "jobs.echo.EchoJob"), ("kind", "class"))
    assert got[(fires, (*echo, ("outcome", "completed")))] == 1
    assert got[(fires, (*echo, ("outcome", "missed")))] == 1
    assert got[("cronwell_fire_lateness_seconds_count", ())] == 3
    duration = "cronwell_execution_duration_seconds"
    assert got[(f"{duration}_count", (("kind", "bash"),))] == 2
    assert got[(f"{duration}_bucket", (("kind", "bash"), ("le", "1.0")))] == 0
    assert got[(f"{duration}_sum", (("kind", "class"),))] == 0.5
