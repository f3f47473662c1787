"""ServerHealthCheckJob: is a stored server reachable, and is its web instance up?

Two probes, each with a timeout (`Settings.extra["health_check_timeout"]`, 5 s):
a TCP connect to hostname:port, and, when the server has an instance_url, an HTTP GET
of it (redirects not followed; 2xx and 3xx count as up). The server's status becomes
"running" when every probe passed, "unreachable" when every probe failed, "degraded"
when some did; `last_check` keeps each probe's result and latency.

An unreachable server is a finding, not a failure: the execution completes and its
return value says what was found. Only a bad or unknown server id fails it.
"""

from __future__ import annotations

import socket
import time
from typing import Any, ClassVar

from engine.errors import ServerNotFound
from jobs.base import Argument, BaseJob, JobError
from jobs.params import check_signature, required_text, setting_seconds
from jobs.web import check_http_url, http_request
from stores.records import Server


def probe_tcp(hostname: str, port: int, timeout: float) -> dict[str, Any]:
    """Connect and close; the latency is the time to the completed handshake."""
    started = time.perf_counter()
    try:
        with socket.create_connection((hostname, port), timeout=timeout):
            latency = round((time.perf_counter() - started) * 1000, 2)
    except (OSError, OverflowError, ValueError) as exc:  # refused, timeout, DNS, bad port
        return {
            "ok": False,
            "target": f"{hostname}:{port}",
            "error": str(exc) or type(exc).__name__,
        }
    return {"ok": True, "target": f"{hostname}:{port}", "latency_ms": latency}


def probe_http(url: str, timeout: float) -> dict[str, Any]:
    """GET the URL; up when it answers 2xx or 3xx."""
    try:
        result = http_request("GET", check_http_url(url, "instance_url"), timeout=timeout)
    except JobError as exc:
        return {"ok": False, "url": url, "error": str(exc)}
    return {
        "ok": 200 <= result.status < 400,
        "url": url,
        "status_code": result.status,
        "latency_ms": result.latency_ms,
    }


def overall_status(probes: list[dict[str, Any]]) -> str:
    passed = sum(1 for p in probes if p["ok"])
    if passed == len(probes):
        return "running"
    return "unreachable" if passed == 0 else "degraded"


class ServerHealthCheckJob(BaseJob):
    description: ClassVar[str] = "Job to check server health status"
    arguments: ClassVar[tuple[Argument, ...]] = (
        Argument("server_id", "string", "Id of a stored server", required=True, source="pub_args"),
    )

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        check_signature(type(self).__name__, self.arguments, args, kwargs)
        server_id = required_text(args, 0, "server_id", type(self).__name__)
        server = self._load(server_id)
        timeout = setting_seconds(self.context.settings.extra, "health_check_timeout", 5.0)
        probes = {"tcp": probe_tcp(server.hostname, server.port, timeout)}
        if server.instance_url and not self.context.cancelled:
            probes["http"] = probe_http(server.instance_url, timeout)
        status = overall_status(list(probes.values()))
        checked_at = self.context.now()
        report = {"server_id": server.id, "name": server.name, "status": status, **probes}
        server.status = status
        server.last_check = report
        server.last_check_at = checked_at
        self.context.store.update_server(server)
        self._print(server, probes)
        return {**report, "checked_at": checked_at.isoformat()}

    def _load(self, server_id: str) -> Server:
        """The server; another user's server is "not found" to a user's job, exactly
        as a missing one (a job acts within its owner's rights)."""
        try:
            server = self.context.store.get_server(server_id)
        except ServerNotFound:
            server = None
        if server is None or not self.context.may_touch(server.user_id):
            raise JobError(f"Server not found: {server_id}")
        return server

    @staticmethod
    def _print(server: Server, probes: dict[str, dict[str, Any]]) -> None:
        print(f"Health check of server {server.name} ({server.id}): {server.status}")
        for name, probe in probes.items():
            target = probe.get("target") or probe.get("url")
            if probe["ok"]:
                code = f" HTTP {probe['status_code']}" if "status_code" in probe else ""
                print(f"  {name} {target}: ok{code} in {probe['latency_ms']} ms")
            else:
                detail = probe.get("error") or f"HTTP {probe.get('status_code')}"
                print(f"  {name} {target}: FAILED ({detail})")
