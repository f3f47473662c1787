"""DataCleanupJob: deletes execution history older than `days_old` days.

"Older" means created before now - days_old; only finished executions go (queued and
running ones are never touched), through `Store.delete_executions_before`.

Executions are the only collection that expires. The others are refused by name, with
the reason, before anything is deleted:
- users and servers are records people keep; they are removed through the API;
- jobs are the engine's to write (it holds every schedule in memory and is the single
  writer), so deleting one behind its back would leave a ghost in its heap; a finished
  job is removed with DELETE /api/scheduler/jobs/<id>.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from jobs.base import Argument, BaseJob, JobError
from jobs.params import check_signature, subset, whole_number
from stores.base import COLLECTIONS

EXPIRING = ("executions",)
NEVER_EXPIRE = {
    "users": "users are never expired; delete them through /api/users",
    "servers": "servers are never expired; delete them through /api/servers",
    "jobs": "jobs are removed through the engine (DELETE /api/scheduler/jobs/<id>), "
    "never behind its back",
}


class DataCleanupJob(BaseJob):
    description: ClassVar[str] = "Job to clean up old data"
    admin_only: ClassVar[bool] = True
    arguments: ClassVar[tuple[Argument, ...]] = (
        Argument("days_old", "integer", "Delete records older than this many days", default=30),
        Argument(
            "collections",
            "array",
            "Collections to clean (only executions expire)",
            default=["executions"],
        ),
    )

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        check_signature(type(self).__name__, self.arguments, args, kwargs)
        days_old = whole_number(kwargs.get("days_old", 30), "days_old", minimum=0)
        names = subset(kwargs.get("collections", list(EXPIRING)), "collections", COLLECTIONS)
        refused = [f"{name}: {NEVER_EXPIRE[name]}" for name in names if name not in EXPIRING]
        if refused:
            raise JobError("Cannot clean " + "; ".join(refused))
        now = self.context.now()
        cutoff = now - timedelta(days=days_old)
        deleted = {"executions": self.context.store.delete_executions_before(cutoff)}
        print(f"Data cleanup at {now.isoformat()}: records created before {cutoff.isoformat()}")
        for name, count in deleted.items():
            print(f"  {name}: {count} deleted")
        return {"days_old": days_old, "cutoff": cutoff.isoformat(), "deleted": deleted}
