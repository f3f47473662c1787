"""Prometheus metrics: `GET /metrics` in the text format, from prometheus-client.

Each app has its own `CollectorRegistry` (never the process-wide default), so tests that
build several apps in one process do not collide and nothing of ours mixes with a
library's metrics.

Nothing here runs on the engine's loop or worker threads:
- runs that ended (completed, failed, timeout, cancelled), their lateness and duration
  are counted by the engine's run observer (`engine.interfaces.RunObserver`), on the
  recorder thread right after it writes them: no extra thread wakes per run, no
  snapshot is copied, and the counting is plain numbers under one lock
  (api/run_tally.py), turned into families when Prometheus scrapes; fires that never
  ran (missed, skipped) by an event listener on the event thread, subscribed to those
  two kinds only;
- running executions, the worker backlog and jobs by state are read when Prometheus
  scrapes (a custom collector: two `len()`s and one counting query, off the event loop);
- store operations are timed by a thin wrapper around the engine's store (two clock
  reads and one histogram observe per call, about a microsecond; the loop's calls are
  per batch of fires, not per fire);
- HTTP requests by a request/response middleware pair.

Metric names (all prefixed `cronwell_`):
    fires_total{outcome,kind,job_class}          counter: every execution that ended
    fire_lateness_seconds                        histogram: due -> start, scheduled runs
    execution_duration_seconds{kind}             histogram: start -> end, runs that ran
    executions_running                           gauge (scrape)
    worker_backlog                               gauge (scrape)
    jobs{state}                                  gauge (scrape): active, paused, disabled
    store_operation_seconds{operation}           histogram: the engine's store calls
    http_requests_total{route,method,status}     counter
    http_request_duration_seconds{route,method,status}  histogram (streams: to headers)
    events_dropped_total                         counter: engine events lost to overflow
    sse_clients                                  gauge: connected event-stream clients
    sse_clients_dropped_total                    counter: stream clients dropped as slow

Every sample also carries `node`: the engine's node id (`CRONWELL_NODE_ID`, else
hostname:pid), so the series of several nodes on one store stay apart when one
Prometheus scrapes them all. The label is added at scrape time to whatever the
registry holds (`NodeLabelled`), so no instrument declares it and none can forget it.
"""

from __future__ import annotations

import copy
import functools
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from api import context, permissions, schemas
from api.openapi import documented
from api.run_tally import RunTally
from engine import events as ev
from engine.model import Execution

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from api.event_hub import EventHub
    from engine.scheduler import Scheduler
    from stores.base import Store

T = TypeVar("T")
PATH = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: the kinds the listener needs: fires that never ran (runs that did reach `ended`)
LISTENED = (ev.JOB_MISSED, ev.MAX_INSTANCES_REACHED)
#: seconds; a healthy engine starts fires within a few ms, a crowded one within a second
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
#: the store calls timed (the engine's whole store contract)
TIMED_OPERATIONS = (
    "add_job",
    "update_job",
    "remove_job",
    "get_job",
    "get_jobs",
    "list_jobs",
    "count_jobs",
    "due_job_rows",
    "claim_fire",
    "claim_fires",
    "add_execution",
    "update_execution",
    "finish_execution",
    "record_progress",
    "get_execution",
    "list_executions",
    "count_executions",
    "execution_stats",
    "abandon_running",
    "delete_executions_before",
)
UNMATCHED_ROUTE = "unmatched"


class Metrics:
    """One app's registry, its instruments, and what feeds them."""

    def __init__(
        self,
        scheduler: Callable[[], Scheduler | None],
        store: Callable[[], Store | None],
        hub: Callable[[], EventHub | None] = lambda: None,
        node: str | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        #: the `node` label on every sample (None: no label, an engine that is no node)
        self.node = node
        r = self.registry
        #: fires, lateness and durations: plain numbers, families built at scrape time
        self.runs = RunTally(LATENESS_BUCKETS, DURATION_BUCKETS)
        r.register(self.runs)
        self.store_seconds = Histogram(
            "cronwell_store_operation_seconds",
            "Seconds the engine's store calls took, by operation",
            ["operation"],
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "cronwell_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "cronwell_http_request_duration_seconds",
            "Seconds to answer an HTTP request (to the headers, for streams)",
            ["route", "method", "status"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        r.register(_LiveState(scheduler, store, hub))

    # -- the engine's run observer (its recorder thread) ------------------------------
    def ended(self, execution: Execution) -> None:
        """A run ended (completed, failed, timeout, cancelled) and is recorded."""
        self.runs.record(execution)

    # -- the event listener (the bus's delivery thread) ------------------------------
    def on_event(self, event: ev.Event) -> None:
        """A fire that never ran: missed, or skipped (max_instances, a full backlog)."""
        if event.execution is not None:
            self.runs.record(event.execution)

    # -- the store wrapper ------------------------------------------------------------
    def timed_store(self, store: Store) -> Store:
        """`store` with every contract call timed into store_operation_seconds."""
        return cast("Store", TimedStore(store, self.store_seconds))

    # -- HTTP -----------------------------------------------------------------------
    async def request_started(self, request: Request) -> None:
        request.ctx.metrics_started = time.perf_counter()

    async def request_answered(self, request: Request, response: HTTPResponse) -> None:
        started = getattr(request.ctx, "metrics_started", None)
        route = request.route
        template = route_template(route.path) if route is not None else UNMATCHED_ROUTE
        labels = (template, request.method, str(response.status))
        self.http_requests.labels(*labels).inc()
        if started is not None:
            self.http_seconds.labels(*labels).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        if self.node is None:
            return generate_latest(self.registry)
        return generate_latest(NodeLabelled(self.registry, self.node))


class NodeLabelled(Collector):
    """The families `inner` collects, with `node=<node>` added to every sample."""

    def __init__(self, inner: Collector, node: str) -> None:
        self._inner = inner
        self._node = node

    def collect(self) -> Iterator[Metric]:
        node = self._node
        for family in self._inner.collect():
            labelled = copy.copy(family)  # the collector's own family stays as it was
            labelled.samples = [
                sample._replace(labels={**sample.labels, "node": node}) for sample in family.samples
            ]
            yield labelled


@functools.cache
def route_template(path: str) -> str:
    """Sanic's route path as a label: `api/jobs/<job_id:str>` -> `/api/jobs/<job_id>`."""
    return "/" + re.sub(r"<([^:>]+):[^>]*>", r"<\1>", path)


class TimedStore:
    """A store whose contract calls are timed; everything else passes through."""

    def __init__(self, inner: Store, histogram: Histogram) -> None:
        self._inner = inner
        for name in TIMED_OPERATIONS:
            setattr(self, name, _timed(getattr(inner, name), histogram.labels(name)))

    def __getattr__(self, name: str) -> Any:  # backend, write_batch, open, close, users...
        return getattr(self._inner, name)


def _timed(call: Callable[..., T], series: Any) -> Callable[..., T]:
    observe = series.observe
    clock = time.perf_counter

    def timed(*args: Any, **kwargs: Any) -> T:
        began = clock()
        try:
            return call(*args, **kwargs)
        finally:
            observe(clock() - began)

    return timed


class _LiveState(Collector):
    """Gauges read at scrape time, so keeping them costs the engine nothing."""

    def __init__(
        self,
        scheduler: Callable[[], Scheduler | None],
        store: Callable[[], Store | None],
        hub: Callable[[], EventHub | None],
    ) -> None:
        self._scheduler = scheduler
        self._store = store
        self._hub = hub

    def describe(self) -> list[Metric]:
        return []  # collected only at scrape time: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        scheduler = self._scheduler()
        running = GaugeMetricFamily(
            "cronwell_executions_running", "Executions workers hold (running, or armed)"
        )
        backlog = GaugeMetricFamily(
            "cronwell_worker_backlog", "Queued executions waiting for a free worker"
        )
        dropped = CounterMetricFamily(
            "cronwell_events_dropped", "Engine events dropped because listeners fell behind"
        )
        if scheduler is not None:
            running.add_metric([], scheduler.executions_running)
            backlog.add_metric([], scheduler.worker_backlog)
            dropped.add_metric([], scheduler.events.overflowed)
        yield running
        yield backlog
        yield dropped
        store = self._store()
        if store is not None:
            counts = store.count_jobs()
            jobs = GaugeMetricFamily(
                "cronwell_jobs",
                "Jobs by state (a job both paused and disabled counts as disabled)",
                labels=["state"],
            )
            jobs.add_metric(["active"], max(0, counts.enabled - counts.paused))
            jobs.add_metric(["paused"], min(counts.paused, counts.enabled))
            jobs.add_metric(["disabled"], counts.total - counts.enabled)
            yield jobs
        hub = self._hub()
        if hub is not None:
            clients = GaugeMetricFamily("cronwell_sse_clients", "Connected event-stream clients")
            clients.add_metric([], hub.client_count)
            yield clients
            slow = CounterMetricFamily(
                "cronwell_sse_clients_dropped", "Event-stream clients dropped as too slow"
            )
            slow.add_metric([], hub.dropped_clients)
            yield slow


bp = Blueprint("metrics")


@bp.get(PATH)
@documented(response=schemas.PROMETHEUS_TEXT, media_type="text/plain")
async def metrics(request: Request) -> HTTPResponse:
    """Prometheus text exposition; needs an admin key unless CRONWELL_METRICS_OPEN=true."""
    if not context.settings(request).metrics_open:
        permissions.require_admin(request, "read the metrics")
    collected: Metrics = request.app.ctx.metrics
    body = await context.off_loop(request, collected.render)
    return HTTPResponse(body, content_type=CONTENT_TYPE)
