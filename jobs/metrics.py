"""SystemMetricsJob: a snapshot of the host the service runs on, via psutil.

CPU use is measured over `Settings.extra["metrics_cpu_interval"]` seconds (0.5 by
default: psutil needs an interval to compare against). Disk usage is that of the
filesystem holding the data folder, since that is what fills up with history.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

import psutil

from jobs.base import Argument, BaseJob
from jobs.params import check_signature, setting_seconds


def existing_ancestor(path: Path) -> Path:
    """The folder itself, or its nearest existing parent (before the first start)."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def human_bytes(count: float) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def collect(data_dir: Path, cpu_interval: float) -> dict[str, Any]:
    """Every figure, as plain numbers (bytes, percents, seconds)."""
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    disk_path = existing_ancestor(data_dir)
    disk = psutil.disk_usage(str(disk_path))
    load1, load5, load15 = psutil.getloadavg()
    return {
        "cpu": {
            "percent": psutil.cpu_percent(interval=cpu_interval),
            "logical_count": psutil.cpu_count(logical=True),
            "physical_count": psutil.cpu_count(logical=False),
            "load_average": {"1m": load1, "5m": load5, "15m": load15},
        },
        "memory": {
            "total": memory.total,
            "available": memory.available,
            "used": memory.used,
            "percent": memory.percent,
        },
        "swap": {"total": swap.total, "used": swap.used, "percent": swap.percent},
        "disk": {
            "path": str(disk_path),
            "total": disk.total,
            "used": disk.used,
            "free": disk.free,
            "percent": disk.percent,
        },
        "processes": {
            "count": len(psutil.pids()),
            "service_pid": os.getpid(),
            "service_rss": psutil.Process().memory_info().rss,
        },
        "uptime_seconds": round(time.time() - psutil.boot_time(), 1),
    }


class SystemMetricsJob(BaseJob):
    description: ClassVar[str] = "Job to collect system metrics"
    arguments: ClassVar[tuple[Argument, ...]] = ()

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        check_signature(type(self).__name__, self.arguments, args, kwargs)
        settings = self.context.settings
        interval = setting_seconds(settings.extra, "metrics_cpu_interval", 0.5)
        figures = collect(settings.data_dir, interval)
        cpu, mem, swap, disk = figures["cpu"], figures["memory"], figures["swap"], figures["disk"]
        load = cpu["load_average"]
        print(f"System metrics at {self.context.now().isoformat()}")
        print(
            f"  CPU: {cpu['percent']}% of {cpu['logical_count']} logical CPUs "
            f"({cpu['physical_count']} physical)"
        )
        print(f"  Load average: {load['1m']:.2f} {load['5m']:.2f} {load['15m']:.2f}")
        print(
            f"  Memory: {human_bytes(mem['used'])} used of {human_bytes(mem['total'])} "
            f"({mem['percent']}%), {human_bytes(mem['available'])} available"
        )
        print(
            f"  Swap: {human_bytes(swap['used'])} used of {human_bytes(swap['total'])} ({swap['percent']}%)"
        )
        print(
            f"  Disk {disk['path']}: {human_bytes(disk['used'])} used of "
            f"{human_bytes(disk['total'])} ({disk['percent']}%), {human_bytes(disk['free'])} free"
        )
        procs = figures["processes"]
        print(
            f"  Processes: {procs['count']}; this service (pid {procs['service_pid']}) "
            f"uses {human_bytes(procs['service_rss'])}"
        )
        print(f"  Uptime: {figures['uptime_seconds'] / 3600:.1f} h")
        return figures
