"""GET /metrics: scraped over HTTP and read back with prometheus_client's own parser,
after real fires of every outcome (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import Metrics
from engine.model import Job, JobKind
from engine.triggers import DateTrigger, IntervalTrigger
from tests.api_support import ThreadServer, make_settings, running_server, wait_for, write_script

TERMINAL = ("completed", "failed", "timeout", "cancelled", "missed", "skipped", "abandoned")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("metrics_api")
    with running_server(make_settings(tmp)) as live:
        root: Path = live.app.ctx.settings.script_roots[0]
        write_script(root, "ok.sh", "#!/bin/bash\necho fine\n")
        write_script(root, "fail.sh", "#!/bin/bash\necho broken >&2\nexit 3\n")
        write_script(root, "slow.sh", "#!/bin/bash\nsleep 0.6\n")
        write_script(root, "sleepy.sh", "#!/bin/bash\nsleep 30\n")
        yield live


def scrape(server: ThreadServer, **headers: str) -> dict[str, list[Any]]:
    """name -> samples, from the parser prometheus_client ships."""
    response = requests.get(f"{server.url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


def fires(samples: dict[str, list[Any]], outcome: str) -> float:
    return value(samples, "cronwell_fires_total", outcome=outcome)


def job(server: ThreadServer, name: str, script: str, trigger: Any, **fields: Any) -> Job:
    root: Path = server.app.ctx.settings.script_roots[0]
    added: Job = server.app.ctx.scheduler.add_job(
        Job(
            id=f"{name}-{datetime.now(UTC).timestamp():.6f}",
            name=name,
            kind=JobKind.BASH,
            target=str(root / script),
            trigger=trigger,
            **fields,
        )
    ).result(10)
    return added


def soon(seconds: float = 0.2) -> DateTrigger:
    return DateTrigger(datetime.now(UTC) + timedelta(seconds=seconds))


def executions(server: ThreadServer, job_id: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{server.url}/api/scheduler/executions", params={"job_id": job_id}, timeout=5
    )
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def ended(server: ThreadServer, job_id: str, count: int = 1) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        found = [e for e in executions(server, job_id) if e["status"] in TERMINAL]
        return found if len(found) >= count else None

    return wait_for(done, 15, f"{count} execution(s) of {job_id} to end")


def counted(server: ThreadServer, outcome: str, at_least: float) -> dict[str, list[Any]]:
    """Scrape until the outcome's count reaches `at_least` (the listener runs on the
    event thread, a moment after the store write the executions endpoint reads)."""
    return wait_for(
        lambda: (s := scrape(server)) and fires(s, outcome) >= at_least and s,
        5,
        f"cronwell_fires_total{{outcome={outcome!r}}} to reach {at_least}",
    )


def test_every_outcome_moves_its_counter_and_the_histograms(server: ThreadServer) -> None:
    before = scrape(server)
    lateness_before = value(before, "cronwell_fire_lateness_seconds_count")
    bash_before = value(before, "cronwell_execution_duration_seconds_count", kind="bash")
    slow_before = value(before, "cronwell_execution_duration_seconds_bucket", kind="bash", le="0.5")

    completed = job(server, "ok", "ok.sh", soon())
    failed = job(server, "fail", "fail.sh", soon())
    timed_out = job(server, "slow", "sleepy.sh", soon(), timeout=0.3)
    slow = job(server, "slow-ok", "slow.sh", soon())
    missed = job(
        server,
        "late",
        "ok.sh",
        DateTrigger(datetime.now(UTC) - timedelta(seconds=30)),
        misfire_grace_time=1.0,
    )
    for job_id in (completed.id, failed.id, timed_out.id, slow.id, missed.id):
        ended(server, job_id)
    statuses = {
        job_id: executions(server, job_id)[0]["status"]
        for job_id in (completed.id, failed.id, timed_out.id, missed.id)
    }
    assert statuses == {
        completed.id: "completed",
        failed.id: "failed",
        timed_out.id: "timeout",
        missed.id: "missed",
    }

    # cancelled: a manual run of a long script, stopped over HTTP
    sleepy = job(server, "sleepy", "sleepy.sh", DateTrigger(datetime(2099, 1, 1, tzinfo=UTC)))
    run = requests.post(f"{server.url}/api/scheduler/jobs/{sleepy.id}/run", timeout=5).json()
    wait_for(lambda: executions(server, sleepy.id)[0]["status"] == "running", 10, "sleepy to start")
    stop = requests.post(
        f"{server.url}/api/scheduler/executions/{run['execution_id']}/cancel", timeout=10
    )
    assert stop.status_code == 200, stop.text
    ended(server, sleepy.id)

    # skipped: fires every 0.2 s of a 0.6 s script with max_instances=1
    crowded = job(server, "crowded", "slow.sh", IntervalTrigger(seconds=0.2), max_instances=1)
    wait_for(
        lambda: any(e["status"] == "skipped" for e in executions(server, crowded.id)),
        10,
        "a skipped fire",
    )
    server.app.ctx.scheduler.remove_job(crowded.id).result(10)

    after = counted(server, "cancelled", fires(before, "cancelled") + 1)
    for outcome, at_least in (
        ("completed", 2),
        ("failed", 1),
        ("timeout", 1),
        ("cancelled", 1),
        ("missed", 1),
        ("skipped", 1),
    ):
        moved = fires(after, outcome) - fires(before, outcome)
        assert moved >= at_least, (outcome, moved)
    # one series per job class: scripts are labelled by their kind
    assert value(after, "cronwell_fires_total", outcome="failed", job_class="bash") >= 1
    # four scheduled fires started (ok, fail, slow, slow-ok): lateness counted for each
    assert value(after, "cronwell_fire_lateness_seconds_count") - lateness_before >= 4
    assert value(after, "cronwell_fire_lateness_seconds_bucket", le="+Inf") == value(
        after, "cronwell_fire_lateness_seconds_count"
    )
    # durations by kind; the 0.6 s script lands above the 0.5 s bucket, the quick one in it
    assert value(after, "cronwell_execution_duration_seconds_count", kind="bash") - bash_before >= 5
    in_half_second = value(
        after, "cronwell_execution_duration_seconds_bucket", kind="bash", le="0.5"
    )
    in_all = value(after, "cronwell_execution_duration_seconds_count", kind="bash")
    assert in_half_second - slow_before >= 2  # ok.sh, fail.sh
    assert in_all - in_half_second >= 1  # slow.sh (0.6 s)


def test_state_gauges_store_and_http_metrics(server: ThreadServer) -> None:
    paused = job(server, "to-pause", "ok.sh", DateTrigger(datetime(2099, 1, 1, tzinfo=UTC)))
    server.app.ctx.scheduler.pause_job(paused.id).result(10)
    requests.get(f"{server.url}/api/scheduler/jobs/{paused.id}", timeout=5)
    requests.get(f"{server.url}/no/such/route", timeout=5)
    samples = scrape(server)
    counts = server.app.ctx.store.count_jobs()
    assert value(samples, "cronwell_jobs", state="paused") >= 1
    total = sum(value(samples, "cronwell_jobs", state=s) for s in ("active", "paused", "disabled"))
    assert total == counts.total
    assert value(samples, "cronwell_executions_running") >= 0
    assert "cronwell_worker_backlog" in samples
    assert value(samples, "cronwell_store_operation_seconds_count", operation="add_job") >= 1
    assert value(samples, "cronwell_store_operation_seconds_count", operation="claim_fires") >= 0
    # routes by template, never by the concrete id
    template = "/api/scheduler/jobs/<job_id>"
    assert value(samples, "cronwell_http_requests_total", route=template, method="GET") >= 1
    assert not any(
        paused.id in s.labels.get("route", "") for s in samples["cronwell_http_requests_total"]
    )
    assert value(samples, "cronwell_http_requests_total", route="unmatched", status="404") >= 1
    assert (
        value(samples, "cronwell_http_request_duration_seconds_count", route=template, method="GET")
        >= 1
    )


def test_every_sample_is_labelled_with_the_node(server: ThreadServer) -> None:
    node_id = server.app.ctx.scheduler.node_id
    assert node_id  # the service's engine is always a node (hostname:pid by default)
    requests.get(f"{server.url}/api/scheduler/jobs", timeout=5)
    samples = scrape(server)
    names = {name for name, found in samples.items() if found}
    for name in ("cronwell_jobs", "cronwell_executions_running", "cronwell_http_requests_total"):
        assert name in names
    unlabelled = [
        (s.name, s.labels)
        for found in samples.values()
        for s in found
        if s.labels.get("node") != node_id
    ]
    assert unlabelled == []
    # the label is added, not swapped in: the series keep their own labels
    assert value(samples, "cronwell_jobs", state="active", node=node_id) >= 0
    assert any("state" in s.labels for s in samples["cronwell_jobs"])


def test_two_apps_have_their_own_registries() -> None:
    first = Metrics(lambda: None, lambda: None)
    second = Metrics(lambda: None, lambda: None)  # the default registry would refuse this
    first.http_requests.labels("/x", "GET", "200").inc()
    parsed = {
        s.name: s.value
        for f in text_string_to_metric_families(second.render().decode())
        for s in f.samples
    }
    assert "cronwell_http_requests_total" not in parsed  # no series yet in the second


def test_metrics_need_a_key_unless_opened(tmp_path: Path) -> None:
    with running_server(make_settings(tmp_path / "closed", api_keys=("k1",))) as closed:
        assert requests.get(f"{closed.url}/metrics", timeout=5).status_code == 401
        samples = scrape(closed, **{"X-API-Key": "k1"})
        # the refused request was counted too: the metrics middleware runs first
        assert value(samples, "cronwell_http_requests_total", route="/metrics", status="401") == 1
    opened = make_settings(
        tmp_path / "open", api_keys=("k1",), metrics_open=True, node_id="metrics-node-b"
    )
    with running_server(opened) as live:
        samples = scrape(live)  # no key needed for /metrics ...
        assert samples
        # a configured node id is the label (CRONWELL_NODE_ID), on every sample
        assert {s.labels["node"] for found in samples.values() for s in found} == {"metrics-node-b"}
        assert requests.get(f"{live.url}/api/scheduler/jobs", timeout=5).status_code == 401
