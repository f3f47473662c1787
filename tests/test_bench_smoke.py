"""The benchmark harness pieces that need no APScheduler: percentile math, result rows,
the JSON last line, target verdicts, the start recorder and the floor's wait loop.

The benchmarks themselves are never part of the suite's pass/fail; these checks only
make sure the numbers they print are computed right.
"""

from __future__ import annotations

import argparse
import http.server
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import api as api_bench
from bench import dispatch, open_ab, open_loop
from bench.api_servers import Server
from bench.common import (
    ChildFailed,
    LatencySummary,
    free_port,
    json_line,
    median_or_none,
    percentile,
    render_table,
    rss_bytes,
    run_child_json,
    spread,
)
from bench.dispatch_workloads import far_cron_specs, row
from bench.http_load import PhaseResult
from bench.systems.base import StartRecorder
from bench.systems.floor import FloorSystem

DISPATCH_KEYS = {"system", "workload", "p50_ms", "p99_ms", "max_ms", "jobs_per_s", "bytes_per_job"}
API_KEYS = {"system", "endpoint", "requests_per_s", "p50_ms", "p99_ms", "errors"}


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 0) == 1
    assert percentile([1, 2, 3, 4], 100) == 4
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 100.5)])
def test_percentile_refuses_what_has_no_answer(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


def test_latency_summary_is_in_milliseconds() -> None:
    summary = LatencySummary.of_seconds([0.001 * i for i in range(1, 101)])
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.max_ms == pytest.approx(100.0)


def test_median_and_spread_skip_missing_figures() -> None:
    assert median_or_none([3.0, None, 1.0, 2.0]) == 2.0
    assert median_or_none([None]) is None
    assert spread([5.0, None, 2.0]) == (2.0, 5.0)


def test_dispatch_row_has_every_json_key_and_keeps_diagnostics() -> None:
    r = row("cronwell", "date-1000", p99_ms=0.4, min_ms=0.1)
    assert set(r) >= DISPATCH_KEYS
    assert r["p99_ms"] == 0.4 and r["bytes_per_job"] is None and r["min_ms"] == 0.1


def test_dispatch_json_line_is_one_object_with_medians_over_runs() -> None:
    cell = dispatch.Cell(
        "apscheduler",
        "burst-10000",
        [row("apscheduler", "burst-10000", jobs_per_s=v) for v in (3.0, 1.0, 2.0)],
        [],
    )
    line = json_line("dispatch", [cell.result()])
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["bench"] == "dispatch"
    (result,) = parsed["results"]
    assert set(result) == DISPATCH_KEYS
    assert result["jobs_per_s"] == 2.0 and result["p99_ms"] is None


def _result(system: str, workload: str, **figures: float) -> dict[str, object]:
    return {key: figures.get(key) for key in dispatch.RESULT_KEYS} | {
        "system": system,
        "workload": workload,
    }


def test_dispatch_targets_compare_this_runs_figures() -> None:
    results = [
        _result("floor", "date-1000", p99_ms=0.2),
        _result("cronwell", "date-1000", p99_ms=0.6),
        _result("apscheduler", "date-1000", p99_ms=2.4),
        _result("cronwell", "burst-10000", jobs_per_s=40_000),
        _result("apscheduler", "burst-10000", jobs_per_s=8_000),
        _result("cronwell", "memory-cron-100000", bytes_per_job=1000),
        _result("apscheduler", "memory-cron-100000", bytes_per_job=3300),
    ]
    lines = dispatch.targets(results)
    by_start = {line.split(":")[0]: line for line in lines}
    assert by_start["date-1000 p99 within 0.5 ms of the floor"].endswith("PASS")
    assert by_start["date-1000 p99 >= 3x lower than APScheduler's"].endswith("PASS")
    assert by_start["date-10000 p99 >= 3x lower than APScheduler's"].endswith("n/a")
    assert by_start["burst-10000 throughput >= 4x APScheduler's"].endswith("PASS")
    assert by_start["add-cron-10000 throughput >= 4x APScheduler's"].endswith("n/a")
    assert by_start["memory-cron-100000 bytes per job <= 1/4 of APScheduler's"].endswith("MISS")
    assert by_start["date-1000 p99 below APScheduler's"].endswith("PASS")
    assert not any("control" in line for line in lines)  # no control row ran


def test_the_switch_interval_control_is_shown_beside_the_target_never_as_one() -> None:
    results = [
        _result("floor", "date-10000", p99_ms=0.2),
        _result("cronwell", "date-10000", p99_ms=0.6),
        _result("apscheduler", "date-10000", p99_ms=0.5),
        _result("apscheduler-tuned", "date-10000", p99_ms=0.45),
    ]
    lines = dispatch.targets(results)
    below = lines.index(next(x for x in lines if x.startswith("date-10000 p99 below")))
    assert lines[below].endswith("MISS")  # against the peer as its users run it
    assert "set up as cronwell's" in lines[below + 1] and "p99 0.450 ms" in lines[below + 1]
    planned = dict(dispatch.plan(quick=True))
    assert "apscheduler-tuned" in planned["date-10000"]


def test_the_bench_times_cronwell_with_the_services_switch_interval() -> None:
    import sys

    from bench.systems import load_system
    from bench.systems.base import StartRecorder
    from engine.gil import SWITCH_INTERVAL

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        load_system("cronwell", StartRecorder(1))
        assert sys.getswitchinterval() == SWITCH_INTERVAL
    finally:
        sys.setswitchinterval(before)


def test_dispatch_plan_names_the_issue_workloads_and_measures_apscheduler_everywhere() -> None:
    planned = dispatch.plan(quick=True)
    assert [w for w, _ in planned if w in dispatch.HEADLINE] == list(dispatch.HEADLINE)
    assert all("apscheduler" in systems for w, systems in planned if w in dispatch.HEADLINE)
    assert all("floor" in systems for w, systems in planned if w in dispatch.LATENCY_WORKLOADS)


def test_api_rows_have_the_json_keys() -> None:
    phase = PhaseResult(latencies=[0.001, 0.002, 0.003], errors=1, started=10.0, finished=11.5)
    run = api_bench.SystemRun("cronwell", {"schedule-job": phase}, [])
    (result,) = json.loads(json_line("api", run.results()))["results"]
    assert set(result) == API_KEYS
    assert result["requests_per_s"] == pytest.approx(2.0)
    assert result["errors"] == 1


def test_api_targets_need_both_systems_and_on_time_canaries() -> None:
    fast = PhaseResult(latencies=[0.005] * 100, started=0.0, finished=0.1)
    slow = PhaseResult(latencies=[0.05] * 100, started=0.0, finished=1.0)
    late = api_bench.Canary("c", due=100.0, phase="p", fired=100.011)
    runs = [
        api_bench.SystemRun("cronwell", {"schedule-job": fast}, [late]),
        api_bench.SystemRun("flask-apscheduler", {"schedule-job": slow}, []),
    ]
    throughput, errors, canaries = api_bench.target_lines(runs)
    assert "10.00x" in throughput and throughput.endswith("PASS")
    assert errors.endswith("PASS")
    assert "11.0 ms" in canaries and canaries.endswith("MISS")  # 10 ms is the bound


def test_api_list_ratios_are_taken_round_by_round() -> None:
    def lists(rate: float) -> dict[str, PhaseResult]:
        return {"list-jobs": PhaseResult(latencies=[0.01] * int(rate), started=0.0, finished=1.0)}

    runs = [
        api_bench.SystemRun("cronwell", lists(300), [], round=1),
        api_bench.SystemRun("flask-apscheduler", lists(20), [], round=1),
        api_bench.SystemRun("cronwell", lists(100), [], round=2),
        api_bench.SystemRun("flask-apscheduler", lists(10), [], round=2),
    ]
    assert api_bench.round_ratios(runs, "cronwell", "list-jobs") == [15.0, 10.0]
    line = api_bench.list_lines(runs)[0]
    assert "median 12.5x" in line and line.endswith("MISS")


def test_api_key_cost_is_the_median_over_block_pairs() -> None:
    keyed = api_bench.SystemRun("cronwell-key", {}, [], round=1)
    keyed.key_extras["get-job-1-client"] = [0.01, 0.5, 0.03]
    (endpoint, extras), _ = api_bench.key_cost_rows([keyed])
    assert endpoint == "get-job-1-client" and extras == [0.01, 0.5, 0.03]
    line = api_bench.key_cost_lines([keyed], None)[0]
    assert "median 3.0% over 3 pairs" in line and line.endswith("PASS")


class _Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    #: the generator opens its warm connections at once: a backlog of 5 drops SYNs
    request_queue_size = 64


def test_the_open_loop_generator_sends_at_its_rate_and_times_every_answer() -> None:
    server = _Server(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        plan = {
            "host": "127.0.0.1",
            "port": server.server_address[1],
            "rate": 200,
            "requests": [["GET", "/ok", None, []]] * 59 + [["GET", "/missing", None, []]],
        }
        measured = open_loop.run_plan(plan)
    finally:
        server.shutdown()
        server.server_close()
    assert measured["sent"] == 60 and len(measured["latencies"]) == 60
    assert measured["errors"] == 1 and measured["first_error"].startswith("404")
    assert measured["send_rate"] > 0 and measured["answer_rate"] > 0
    assert all(latency >= 0 for latency in measured["latencies"])


def test_table_columns_line_up() -> None:
    lines = render_table(["a", "bbb"], [["long cell", "x"]]).splitlines()
    assert lines[0].index("bbb") == lines[2].index("x")


def test_far_cron_specs_are_distinct_and_never_this_month() -> None:
    specs = far_cron_specs(2000, first=100_000, distinct=True)
    assert len(set(specs)) == 2000
    assert all(s.month != datetime.now(UTC).month for s in specs)
    with pytest.raises(ValueError):
        far_cron_specs(200_000, distinct=True)


def test_standard_cron_mix_is_a_daily_job_per_minute_of_the_day() -> None:
    specs = far_cron_specs(3000)
    assert len(set(specs)) == 1440
    assert all(s.month != datetime.now(UTC).month for s in specs)


def test_recorder_is_done_after_every_start() -> None:
    recorder = StartRecorder(2)
    recorder.record(1)
    assert not recorder.done.is_set() and recorder.remaining == 1
    recorder.record(0)
    assert recorder.done.is_set()
    assert recorder.starts[0] >= recorder.starts[1]


def test_floor_starts_each_job_at_or_after_its_due_time() -> None:
    recorder = StartRecorder(5)
    floor = FloorSystem("floor", recorder)
    dues = [time.time() + 0.01 * i for i in range(5, 0, -1)]
    floor.add_date_jobs(dues)
    try:
        assert recorder.done.wait(timeout=5)
    finally:
        floor.stop()
    assert all(start >= due for start, due in zip(recorder.starts, dues, strict=True))


def test_helpers_read_the_real_system() -> None:
    assert 0 < free_port() < 65536
    assert rss_bytes() > 1_000_000


def test_a_failing_child_is_reported_not_parsed() -> None:
    with pytest.raises(ChildFailed, match="no-such-system"):
        run_child_json("bench.dispatch", ["--child", "no-such-system", "date-1000"], timeout=60)


def test_store_scale_fills_serves_and_times_a_small_store(tmp_path: Path) -> None:
    """bench.store --scale at a few hundred rows: the filler's files open in the store
    with every row there, the server starts on them and answers every timed query."""
    from bench import store_scale
    from stores.sqlite import SqliteStore

    tree = store_scale.Tree("cronwell", store_scale.HERE)
    hold = store_scale.Tree(
        "hold-all", store_scale.HERE, (("CRONWELL_LOAD_AHEAD", "0"),), files="cronwell"
    )
    figures = store_scale.run(tmp_path, [tree, hold], jobs=300, executions=2000, runs=1, requests=2)
    mine = figures["cronwell"]
    # the filled jobs fire months away: the load window holds none of them, the
    # service holding every job holds all, from the one shared file
    assert mine.scheduled == [0] and figures["hold-all"].scheduled == [300]
    assert not (tmp_path / "hold-all-jobs.db").exists()
    assert len(mine.startup_s) == len(mine.peak_mb) == 1 and mine.peak_mb[0] > 10
    assert set(mine.queries_ms) == set(store_scale.QUERIES)
    store = SqliteStore(tmp_path / "cronwell-executions.db")
    store.open()
    try:
        assert store.count_executions() == 2000
        assert sum(store.execution_stats().values()) == 2000
    finally:
        store.close()
    report = store_scale.report(figures, jobs=300, executions=2000)
    assert "start-up with 300 jobs" in report
    rows = json.loads(json_line("store-scale", store_scale.results(figures)))["results"]
    assert {r["workload"] for r in rows} >= {"startup", "peak-rss", "stats", "page-user-status"}


def test_open_ab_rotates_the_first_server_and_summarises_each_tree() -> None:
    servers = [Server(name, "127.0.0.1", port) for port, name in enumerate("abc", 1)]
    orders = [[s.name for s in open_ab.rotated(servers, k)] for k in range(4)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    rows = [
        {"system": "a", "p50_ms": 2.0, "p99_ms": 10.0},
        {"system": "b", "p50_ms": 3.0, "p99_ms": 30.0},
        {"system": "a", "p50_ms": 4.0, "p99_ms": 20.0},
        {"system": "a", "p50_ms": 1.0, "p99_ms": 5.0},
    ]
    a, b, c = open_ab.summarise(["a", "b", "c"], rows)
    assert (a["rounds"], a["p50_median_ms"], a["p99_median_ms"]) == (3, 2.0, 10.0)
    assert a["p99_ms"] == [10.0, 20.0, 5.0]
    assert (b["rounds"], b["p99_median_ms"]) == (1, 30.0)
    assert c == {
        "system": "c",
        "rounds": 0,
        "p50_median_ms": None,
        "p99_median_ms": None,
        "p50_ms": [],
        "p99_ms": [],
    }


def test_open_ab_reads_trees_as_name_and_path() -> None:
    name, path = open_ab.tree("old=/tmp/st-old")
    assert name == "old" and path == Path("/tmp/st-old")
    with pytest.raises(argparse.ArgumentTypeError):
        open_ab.tree("/tmp/st-old")
