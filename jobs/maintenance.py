"""MaintenanceJob: asks the store to do its own housekeeping, task by task.

What each task really does is the backend's (`Store.maintenance`): for SQLite,
rebuild_indexes is REINDEX, optimize_queries is ANALYZE / PRAGMA optimize, clear_cache
releases the connection's page cache, vacuum is VACUUM (only when asked: it rewrites
the whole file). MongoDB and Oracle map them to their matching commands. Every task
name is checked before the first one runs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from engine.errors import StoreError
from jobs.base import Argument, BaseJob, JobError
from jobs.params import check_signature, subset
from stores.base import MAINTENANCE_TASKS

DEFAULT_TASKS = ("rebuild_indexes", "optimize_queries", "clear_cache")


class MaintenanceJob(BaseJob):
    description: ClassVar[str] = "Job for maintenance tasks"
    admin_only: ClassVar[bool] = True
    arguments: ClassVar[tuple[Argument, ...]] = (
        Argument(
            "tasks",
            "array",
            f"Tasks to run, in order, from: {', '.join(MAINTENANCE_TASKS)}",
            default=list(DEFAULT_TASKS),
        ),
    )

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        check_signature(type(self).__name__, self.arguments, args, kwargs)
        tasks = subset(kwargs.get("tasks", list(DEFAULT_TASKS)), "tasks", MAINTENANCE_TASKS)
        store = self.context.store
        print(f"Maintenance on the {store.backend} store: {', '.join(tasks)}")
        results: list[dict[str, Any]] = []
        for task in tasks:
            if self.context.cancelled:
                raise JobError(f"Maintenance cancelled after {len(results)} of {len(tasks)} tasks")
            try:
                result = store.maintenance(task)
            except StoreError as exc:
                raise JobError(f"Maintenance task {task} failed: {exc}") from None
            details = ", ".join(
                f"{k}={v}" for k, v in result.items() if k not in ("task", "backend")
            )
            print(f"  {task}: {details or 'done'}")
            results.append(result)
        return {"backend": store.backend, "tasks": tasks, "results": results}
