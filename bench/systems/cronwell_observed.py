"""cronwell's engine with what the service hangs on it to be watched (issue 14), for a
same-run A/B against the bare "cronwell" row of `bench.dispatch`:

- "cronwell-imports": the bare engine in a process that imported what the others
  import (Sanic, prometheus-client, the API modules): the control for them, since
  those imports alone double the objects the cyclic collector traverses (19k -> 38k),
  which a burst pays for in every full collection;
- "cronwell-metrics": the API's `Metrics` as `create_app` wires it: the store wrapped to
  time every call, the run observer counting outcomes, lateness and durations on the
  recorder thread, the listener for missed and skipped fires, and a scrape (the whole exposition rendered) every SCRAPE_EVERY seconds,
  harsher than Prometheus' usual 15 s;
- "cronwell-sse0": the SSE event hub subscribed to the engine's events and the events
  endpoint served by Sanic on loopback, with no client;
- "cronwell-sse100": the same with IDLE_CLIENTS clients connected to
  /api/scheduler/events, each filtered to a job that never fires, so they receive only
  heartbeats: what a dashboard left open on another job costs the engine;
- "cronwell-sse100-all" (diagnostic, not in the A/B): 100 unfiltered clients reading
  every event (three per fire) as fast as they can, on one reader thread: the worst
  case of many dashboards following everything. At thousands of fires a second the
  event loop cannot write 100 copies of every event, the clients fall behind and are
  dropped (their queue is bounded): the run shows what that costs the engine meanwhile.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
import time
from typing import Any

from api import events_stream
from api.config import Settings
from api.event_hub import EventHub
from api.metrics import LISTENED as METRIC_KINDS
from api.metrics import Metrics
from bench.systems.base import StartRecorder
from bench.systems.cronwell import ADD_RATE_HINT, CronwellSystem
from engine.interfaces import RunObserver
from stores.base import Store

__all__ = ["ADD_RATE_HINT", "make_system"]
SCRAPE_EVERY = 1.0
IDLE_CLIENTS = 100
#: a job id no bench job has: the idle clients' filter
QUIET_JOB = "0" * 24


class MetricsSystem(CronwellSystem):
    def __init__(self, name: str, recorder: StartRecorder) -> None:
        self._metrics = Metrics(lambda: self._scheduler, lambda: self._store)
        super().__init__(name, recorder)
        self._scheduler.events.subscribe(self._metrics.on_event, METRIC_KINDS)
        self._stop_scraping = threading.Event()
        self._scrapes = 0
        self._scraper = threading.Thread(target=self._scrape, name="bench-scraper", daemon=True)

    def _engine_store(self) -> Store:
        return self._metrics.timed_store(self._store)

    def _run_observer(self) -> RunObserver:
        return self._metrics

    def _scrape(self) -> None:
        while not self._stop_scraping.wait(SCRAPE_EVERY):
            self._metrics.render()
            self._scrapes += 1

    def start(self, *, fires: bool = True) -> None:
        super().start(fires=fires)
        self._scraper.start()

    def stop(self) -> None:
        self._stop_scraping.set()
        self._scraper.join(5)
        super().stop()


class EventStreamSystem(CronwellSystem):
    """The hub on the engine's events and Sanic serving /api/scheduler/events."""

    def __init__(
        self, name: str, recorder: StartRecorder, clients: int, *, follow_all: bool = False
    ) -> None:
        super().__init__(name, recorder)
        self._clients_wanted = clients
        self._follow_all = follow_all
        self._received = 0
        self._reading = threading.Event()
        self._hub = EventHub()
        self._hub.listen(self._scheduler.events)
        self._server = _EventServer(self._hub)
        self._sockets: list[socket.socket] = []

    def start(self, *, fires: bool = True) -> None:
        super().start(fires=fires)
        self._server.start()
        query = "" if self._follow_all else f"?job_id={QUIET_JOB}"
        request = (
            f"GET /api/scheduler/events{query} HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        for _ in range(self._clients_wanted):
            sock = socket.create_connection(("127.0.0.1", self._server.port))
            sock.sendall(request)
            self._sockets.append(sock)
        deadline = time.monotonic() + 30
        while self._hub.client_count < self._clients_wanted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self._hub.client_count} SSE clients connected")
            time.sleep(0.01)
        if self._follow_all:
            self._reading.set()
            threading.Thread(target=self._read_all, name="bench-sse-readers", daemon=True).start()

    def _read_all(self) -> None:
        """Drain every client's socket as data comes (one thread, one selector)."""
        with selectors.DefaultSelector() as selector:
            for sock in self._sockets:
                selector.register(sock, selectors.EVENT_READ)
            while self._reading.is_set():
                for key, _ in selector.select(0.2):
                    try:
                        data = key.fileobj.recv(1 << 16)  # type: ignore[union-attr]
                    except OSError:
                        data = b""
                    if not data:
                        selector.unregister(key.fileobj)
                        continue
                    self._received += len(data)

    def stop(self) -> None:
        self._reading.clear()
        for sock in self._sockets:
            sock.close()
        self._server.stop()
        super().stop()
        if self._follow_all and self._received == 0:
            raise RuntimeError("the following clients read nothing: they were not connected")


class _EventServer:
    """The events blueprint on a Sanic app of its own, in a thread with its own loop."""

    def __init__(self, hub: EventHub) -> None:
        from sanic import Sanic

        self.app: Any = Sanic(f"bench_sse_{id(self)}", configure_logging=False)
        self.app.config.TOUCHUP = False
        self.app.config.ACCESS_LOG = False
        self.app.ctx.event_hub = hub
        self.app.ctx.settings = Settings()
        self.app.blueprint(events_stream.bp)
        self._hub = hub
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="bench-sse", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the SSE server did not start")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        server = await self.app.create_server(sock=self._sock, return_asyncio_server=True)
        await server.startup()
        self._hub.attach(asyncio.get_running_loop())
        await server.before_start()
        await server.after_start()
        self._ready.set()
        await self._stopped.wait()
        self._hub.close()
        await server.before_stop()
        await server.close()
        for connection in list(server.connections):
            connection.abort()
        await server.after_stop()

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)


def make_system(name: str, recorder: StartRecorder) -> CronwellSystem:
    if name == "cronwell-imports":
        return CronwellSystem(name, recorder)
    if name == "cronwell-metrics":
        return MetricsSystem(name, recorder)
    if name == "cronwell-sse0":
        return EventStreamSystem(name, recorder, 0)
    if name == "cronwell-sse100":
        return EventStreamSystem(name, recorder, IDLE_CLIENTS)
    if name == "cronwell-sse100-all":
        return EventStreamSystem(name, recorder, IDLE_CLIENTS, follow_all=True)
    raise ValueError(f"not an observed cronwell system: {name}")
