"""DataBackupJob: the named collections, exported to one timestamped JSON file.

The file lands in `Settings.backups` (CRONWELL_BACKUP_DIR, default `<data dir>/backups`)
as `cronwell-backup-<UTC stamp>.json`, readable by people and by `json.load`:

    {"format": "cronwell-backup", "version": 1, "created_at": "...", "backend": "sqlite",
     "collections": {"users": [{...}, ...], "servers": [...], "jobs": [...], ...}}

Records are the stores' plain-dict form, encoded as the SQL and Mongo stores encode them
(`stores.codec`: datetimes as UTC ISO 8601 text ending in Z). Each collection is
streamed from `Store.export` straight into the file, so a large history is never held in
memory; the file appears under its final name only once complete (`jobs.files`).
Server passwords are left out by `export`: they are never written to a backup.

Restoring: stop the service (the engine holds the job schedule in memory and is the
only writer of jobs), then, with the store the service uses,

    from pathlib import Path
    from jobs.backup import restore_backup
    restore_backup(store, Path("var/backups/cronwell-backup-20260101T000000Z.json"))

It inserts users, servers, jobs and executions in that order, skipping any record
whose id already exists (and users whose email is taken), and returns the counts.
Restored servers have no password (re-enter it through the API); restored jobs keep
their stored next_run_time, so fires missed meanwhile follow each job's misfire policy
when the service starts again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, TextIO

from engine.errors import DuplicateEmail, InvalidInput, NotFound
from engine.model import Execution, Job
from jobs.base import Argument, BaseJob, JobError
from jobs.files import publish, stamp
from jobs.params import check_signature, subset
from stores.base import COLLECTIONS, Store
from stores.codec import dumps, revive
from stores.records import Server, User

FORMAT = "cronwell-backup"
VERSION = 1


class BackupCancelled(Exception):
    """Stops the streaming write; the partial file is then discarded."""


class DataBackupJob(BaseJob):
    description: ClassVar[str] = "Job to backup database"
    admin_only: ClassVar[bool] = True
    arguments: ClassVar[tuple[Argument, ...]] = (
        Argument(
            "collections",
            "array",
            f"Collections to back up, from: {', '.join(COLLECTIONS)}",
            default=list(COLLECTIONS),
        ),
    )

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        check_signature(type(self).__name__, self.arguments, args, kwargs)
        names = subset(kwargs.get("collections", list(COLLECTIONS)), "collections", COLLECTIONS)
        created = self.context.now()
        counts: dict[str, int] = {}
        folder = self.context.settings.backups

        def write(handle: TextIO) -> None:
            header = {
                "format": FORMAT,
                "version": VERSION,
                "created_at": created.isoformat(),
                "backend": self.context.store.backend,
            }
            # the header's closing brace is left off: the collections follow, streamed
            handle.write(json.dumps(header)[:-1] + ', "collections": {')
            for position, name in enumerate(names):
                handle.write(("," if position else "") + f"\n{json.dumps(name)}: [")
                counts[name] = self._write_records(handle, self.context.store.export(name))
                handle.write("\n]")
            handle.write("\n}}\n")

        try:
            path = publish(folder, f"cronwell-backup-{stamp(created)}", ".json", write)
        except BackupCancelled:
            raise JobError("Backup cancelled; no file was kept") from None
        except OSError as exc:
            raise JobError(f"Cannot write the backup into {folder}: {exc}") from None
        size = path.stat().st_size
        print(f"Backup written to {path} ({size} bytes)")
        for name, count in counts.items():
            print(f"  {name}: {count} records")
        return {
            "file": str(path),
            "bytes": size,
            "counts": counts,
            "created_at": created.isoformat(),
        }

    def _write_records(self, handle: TextIO, records: Iterable[dict[str, Any]]) -> int:
        count = 0
        for record in records:
            if count % 500 == 0 and self.context.cancelled:
                raise BackupCancelled
            handle.write(("," if count else "") + "\n" + dumps(record))
            count += 1
        return count


def _insert_missing(
    exists: Callable[[str], object], add: Callable[[Any], None]
) -> Callable[[Any], bool]:
    """An inserter that skips records whose id is already stored."""

    def insert(obj: Any) -> bool:
        try:
            exists(obj.id)
            return False
        except NotFound:
            add(obj)
            return True

    return insert


def restore_backup(store: Store, path: Path) -> dict[str, dict[str, int]]:
    """Insert a backup's records that the store does not hold yet; see the module doc.

    Returns {"users": {"restored": n, "skipped": m}, ...} for the collections in the file.
    Raises InvalidInput when the file is not a cronwell backup.
    """
    with Path(path).open(encoding="utf-8") as handle:
        try:
            backup = json.load(handle)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is not a cronwell backup: {exc}") from None
    if not isinstance(backup, dict) or backup.get("format") != FORMAT:
        raise InvalidInput(f"{path} is not a cronwell backup (no format marker)")
    if backup.get("version") != VERSION:
        raise InvalidInput(f"{path} is backup version {backup.get('version')}, not {VERSION}")

    kinds: dict[str, tuple[type, Callable[[Any], bool]]] = {
        "users": (User, _insert_missing(store.get_user, store.add_user)),
        "servers": (Server, _insert_missing(store.get_server, store.add_server)),
        "jobs": (Job, _insert_missing(store.get_job, store.add_job)),
        "executions": (Execution, _insert_missing(store.get_execution, store.add_execution)),
    }
    collections: dict[str, list[dict[str, Any]]] = backup.get("collections", {})
    result: dict[str, dict[str, int]] = {}
    for name in COLLECTIONS:  # users before the servers and jobs that name them
        if name not in collections:
            continue
        cls, insert = kinds[name]
        restored = skipped = 0
        for record in collections[name]:
            obj: Any = revive(cls, record)
            try:
                added = insert(obj)
            except DuplicateEmail:  # another user already has this email
                added = False
            if added:
                restored += 1
            else:
                skipped += 1
        result[name] = {"restored": restored, "skipped": skipped}
    return result
