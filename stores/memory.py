"""The in-memory store: the reference implementation of the Store contract.

Used by engine tests and benchmarks, and run through the same contract suite as every
real backend. Nothing survives the process. One lock makes each method atomic.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from engine.errors import (
    ApiKeyNotFound,
    DuplicateEmail,
    ExecutionNotFound,
    JobExists,
    JobNotFound,
    ServerNotFound,
    StoreError,
    UserNotFound,
)
from engine.interfaces import CHANGES_KEPT, FireClaim, JobChange, abandons
from engine.model import (
    TERMINAL_STATUSES,
    Execution,
    Job,
    Node,
    Status,
    as_utc,
)
from stores.base import (
    RUN_COUNTERS,
    JobCounts,
    Store,
    check_collection,
    check_maintenance_task,
)
from stores.clone import clone
from stores.records import ApiKey, AuditEntry, Server, User


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


#: the kwargs of every stored job that has none: the store never mutates a stored job's
#: kwargs and every read copies them, so one empty dict serves all (64 B per job)
_NO_KWARGS: dict[str, Any] = {}


def _with_counters_of(job: Job, stored: Job | None) -> Job:
    """A stored copy of `job` keeping `stored`'s RUN_COUNTERS (the Store contract)."""
    copied = clone(job)
    if not copied.kwargs:
        copied.kwargs = _NO_KWARGS
    if stored is not None:
        for name in RUN_COUNTERS:
            setattr(copied, name, getattr(stored, name))
    return copied


class MemoryStore(Store):
    backend = "memory"
    durable = False

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._executions: dict[str, Execution] = {}
        self._users: dict[str, User] = {}
        self._servers: dict[str, Server] = {}
        #: the job change feed: a memory store is one process's, so a short tail serves
        self._changes: deque[JobChange] = deque(maxlen=CHANGES_KEPT)
        self._change_seq = 0
        self._nodes: dict[str, Node] = {}
        self._cancels: dict[str, str] = {}
        self._keys: dict[str, ApiKey] = {}
        self._key_ids_by_hash: dict[str, str] = {}
        self._audit: dict[str, AuditEntry] = {}

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    # -- jobs ------------------------------------------------------------------------
    def add_job(self, job: Job, *, replace: bool = False) -> None:
        with self._lock:
            stored = self._jobs.get(job.id)
            if stored is not None and not replace:
                raise JobExists(job.id)
            self._jobs[job.id] = _with_counters_of(job, stored)
            self._changed(job.id)

    def update_job(self, job: Job) -> None:
        with self._lock:
            stored = self._jobs.get(job.id)
            if stored is None:
                raise JobNotFound(job.id)
            self._jobs[job.id] = _with_counters_of(job, stored)
            self._changed(job.id)

    def remove_job(self, job_id: str) -> None:
        with self._lock:
            if self._jobs.pop(job_id, None) is None:
                raise JobNotFound(job_id)
            self._changed(job_id)

    def _changed(self, job_id: str) -> None:
        self._change_seq += 1
        self._changes.append(JobChange(self._change_seq, job_id))

    # -- several nodes -----------------------------------------------------------------
    def job_changes(self, after: int, limit: int = 1000) -> list[JobChange]:
        with self._lock:
            return [c for c in self._changes if c.seq > after][:limit]

    def last_job_change(self) -> int:
        with self._lock:
            return self._change_seq

    def prune_job_changes(self, through: int) -> int:
        with self._lock:
            pruned = 0
            while self._changes and self._changes[0].seq <= through:
                self._changes.popleft()
                pruned += 1
            return pruned

    def heartbeat(self, node: Node) -> None:
        with self._lock:
            self._nodes[node.node_id] = copy.copy(node)

    def list_nodes(self) -> list[Node]:
        with self._lock:
            nodes = sorted(self._nodes.values(), key=lambda n: (n.started_at, n.node_id))
            return [copy.copy(n) for n in nodes]

    def remove_node(self, node_id: str) -> None:
        with self._lock:
            self._nodes.pop(node_id, None)

    def count_active(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for e in self._executions.values():
                if e.status in (Status.QUEUED, Status.RUNNING):
                    counts[e.job_id] = counts.get(e.job_id, 0) + 1
            return counts

    def take_over(self, from_node: str | None, to_node: str | None, note: str) -> list[Execution]:
        with self._lock:
            taken = []
            for execution in self._executions.values():
                if execution.status is Status.QUEUED and execution.node == from_node:
                    execution.node = to_node
                    execution.output += note
                    taken.append(clone(execution))
            return sorted(taken, key=lambda e: (e.created_at, e.id))

    def start_claimed(self, execution: Execution) -> bool:
        copied = clone(execution)
        with self._lock:
            stored = self._executions.get(execution.id)
            if stored is None or stored.status is not Status.QUEUED:
                return False
            if stored.node != execution.node:
                return False
            self._executions[execution.id] = copied
            return True

    def request_cancel(self, execution_id: str, node_id: str) -> None:
        with self._lock:
            self._cancels[execution_id] = node_id

    def take_cancel_requests(self, node_id: str) -> list[str]:
        with self._lock:
            taken = [e for e, n in self._cancels.items() if n == node_id]
            for execution_id in taken:
                del self._cancels[execution_id]
            return taken

    def get_job(self, job_id: str) -> Job:
        with self._lock:
            try:
                return clone(self._jobs[job_id])
            except KeyError:
                raise JobNotFound(job_id) from None

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, Job]:
        with self._lock:
            stored = [self._jobs.get(job_id) for job_id in job_ids]
        # stored jobs are replaced, never mutated, by job writes; the run counters
        # claim/finish bump in place are plain attribute reads here
        return {job.id: clone(job) for job in stored if job is not None}

    def list_jobs(self, owner: str | None = None) -> list[Job]:
        with self._lock:
            jobs = [j for j in self._jobs.values() if owner is None or j.owner == owner]
            return [clone(j) for j in sorted(jobs, key=lambda j: (j.created_at, j.id))]

    def count_jobs(self, owner: str | None = None) -> JobCounts:
        with self._lock:
            jobs = [j for j in self._jobs.values() if owner is None or j.owner == owner]
            return JobCounts(
                total=len(jobs),
                enabled=sum(1 for j in jobs if j.enabled),
                paused=sum(1 for j in jobs if j.paused),
            )

    def claim_fire(
        self,
        job_id: str,
        expected_next_run_time: datetime | None,
        next_run_time: datetime | None,
        executions: Sequence[Execution],
    ) -> bool:
        copies = [clone(execution) for execution in executions]
        with self._lock:
            return self._claim_locked(job_id, expected_next_run_time, next_run_time, copies)

    def claim_fires(self, claims: Sequence[FireClaim]) -> list[bool]:
        # one lock for the loop's whole batch, the copies made before it is taken
        copies = [[clone(execution) for execution in c.executions] for c in claims]
        with self._lock:
            return [
                self._claim_locked(c.job_id, c.expected_next_run_time, c.next_run_time, copied)
                for c, copied in zip(claims, copies, strict=True)
            ]

    def _claim_locked(
        self,
        job_id: str,
        expected_next_run_time: datetime | None,
        next_run_time: datetime | None,
        copies: list[Execution],
    ) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.next_run_time != expected_next_run_time:
            return False
        job.next_run_time = _utc(next_run_time)
        if copies:
            job.last_run_time = _utc(expected_next_run_time)
        for copied in copies:
            self._executions[copied.id] = copied
        return True

    # -- executions ------------------------------------------------------------------
    def add_execution(self, execution: Execution) -> None:
        with self._lock:
            self._executions[execution.id] = clone(execution)

    def update_execution(self, execution: Execution) -> None:
        with self._lock:
            if execution.id not in self._executions:
                raise ExecutionNotFound(execution.id)
            self._executions[execution.id] = clone(execution)

    def finish_execution(self, execution: Execution) -> None:
        copied = clone(execution)
        with self._lock:
            if execution.id not in self._executions:
                raise ExecutionNotFound(execution.id)
            self._finish_locked(copied)

    def record_progress(self, started: Sequence[Execution], finished: Sequence[Execution]) -> None:
        # copied before the lock is taken: the lock is what the loop and readers share
        running = [clone(e) for e in started]
        done = [clone(e) for e in finished]
        with self._lock:
            executions = self._executions
            for copied in running:
                if copied.id in executions:
                    executions[copied.id] = copied
            for copied in done:
                if copied.id in executions:
                    self._finish_locked(copied)

    def _finish_locked(self, copied: Execution) -> None:
        self._executions[copied.id] = copied
        job = self._jobs.get(copied.job_id)
        if job is not None:
            job.total_executions += 1
            started = copied.started_at
            if started is not None and (job.last_run_time is None or started > job.last_run_time):
                job.last_run_time = started

    def get_execution(self, execution_id: str) -> Execution:
        with self._lock:
            try:
                return clone(self._executions[execution_id])
            except KeyError:
                raise ExecutionNotFound(execution_id) from None

    def _filtered(
        self, job_id: str | None, owner: str | None, status: Status | None
    ) -> list[Execution]:
        return [
            e
            for e in self._executions.values()
            if (job_id is None or e.job_id == job_id)
            and (owner is None or e.owner == owner)
            and (status is None or e.status == status)
        ]

    def list_executions(
        self,
        *,
        job_id: str | None = None,
        owner: str | None = None,
        status: Status | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Execution]:
        with self._lock:
            rows = sorted(
                self._filtered(job_id, owner, status),
                key=lambda e: (e.created_at, e.id),
                reverse=True,
            )
            return [clone(e) for e in rows[offset : offset + limit]]

    def count_executions(
        self, *, job_id: str | None = None, owner: str | None = None, status: Status | None = None
    ) -> int:
        with self._lock:
            return len(self._filtered(job_id, owner, status))

    def execution_stats(self, owner: str | None = None) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for e in self._filtered(None, owner, None):
                counts[str(e.status)] = counts.get(str(e.status), 0) + 1
            return counts

    def abandon_running(
        self,
        now: datetime,
        message: str,
        *,
        keep_nodes: Collection[str] = (),
        only_nodes: Collection[str] | None = None,
    ) -> list[Execution]:
        with self._lock:
            marked: list[Execution] = []
            for e in self._executions.values():
                if not abandons(e.node, keep_nodes, only_nodes):
                    continue
                if e.status == Status.RUNNING:
                    e.status = Status.ABANDONED
                    e.completed_at = as_utc(now)
                    e.error = message
                    marked.append(clone(e))
            return marked

    def delete_executions_before(
        self, cutoff: datetime, *, job_id: str | None = None, limit: int | None = None
    ) -> int:
        with self._lock:
            doomed = [
                e.id
                for e in sorted(self._executions.values(), key=lambda e: (e.created_at, e.id))
                if e.created_at < cutoff
                and e.status in TERMINAL_STATUSES
                and (job_id is None or e.job_id == job_id)
            ][: None if limit is None else max(limit, 0)]
            for execution_id in doomed:
                del self._executions[execution_id]
            return len(doomed)

    # -- users -----------------------------------------------------------------------
    def _check_email(self, user: User) -> None:
        wanted = user.email.casefold()
        for other in self._users.values():
            if other.id != user.id and other.email.casefold() == wanted:
                raise DuplicateEmail(user.email)

    def add_user(self, user: User) -> None:
        with self._lock:
            self._check_email(user)
            self._users[user.id] = clone(user)

    def get_user(self, user_id: str) -> User:
        with self._lock:
            try:
                return clone(self._users[user_id])
            except KeyError:
                raise UserNotFound(user_id) from None

    def list_users(self) -> list[User]:
        with self._lock:
            users = sorted(self._users.values(), key=lambda u: (u.created_at, u.id))
            return [clone(u) for u in users]

    def update_user(self, user: User) -> None:
        with self._lock:
            if user.id not in self._users:
                raise UserNotFound(user.id)
            self._check_email(user)
            self._users[user.id] = clone(user)

    def delete_user(self, user_id: str) -> None:
        with self._lock:
            if self._users.pop(user_id, None) is None:
                raise UserNotFound(user_id)

    # -- servers ---------------------------------------------------------------------
    def add_server(self, server: Server) -> None:
        with self._lock:
            self._servers[server.id] = clone(server)

    def get_server(self, server_id: str) -> Server:
        with self._lock:
            try:
                return clone(self._servers[server_id])
            except KeyError:
                raise ServerNotFound(server_id) from None

    def list_servers(self, user_id: str | None = None) -> list[Server]:
        with self._lock:
            servers = [s for s in self._servers.values() if user_id in (None, s.user_id)]
            return [clone(s) for s in sorted(servers, key=lambda s: (s.created_at, s.id))]

    def update_server(self, server: Server) -> None:
        with self._lock:
            if server.id not in self._servers:
                raise ServerNotFound(server.id)
            self._servers[server.id] = clone(server)

    def delete_server(self, server_id: str) -> None:
        with self._lock:
            if self._servers.pop(server_id, None) is None:
                raise ServerNotFound(server_id)

    # -- API keys --------------------------------------------------------------------
    def add_api_key(self, key: ApiKey) -> None:
        with self._lock:
            if key.key_hash in self._key_ids_by_hash or key.id in self._keys:
                raise StoreError("memory store failed: an API key with this hash or id exists")
            self._keys[key.id] = clone(key)
            self._key_ids_by_hash[key.key_hash] = key.id

    def get_api_key(self, key_id: str) -> ApiKey:
        with self._lock:
            try:
                return clone(self._keys[key_id])
            except KeyError:
                raise ApiKeyNotFound(key_id) from None

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._lock:
            key_id = self._key_ids_by_hash.get(key_hash)
            return None if key_id is None else clone(self._keys[key_id])

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        with self._lock:
            keys = [k for k in self._keys.values() if k.active and user_id in (None, k.user_id)]
            return [clone(k) for k in sorted(keys, key=lambda k: (k.created_at, k.id))]

    def revoke_api_key(self, key_id: str, when: datetime) -> None:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None:
                raise ApiKeyNotFound(key_id)
            if key.revoked_at is None:
                key.revoked_at = as_utc(when)

    def touch_api_key(self, key_id: str, when: datetime) -> None:
        with self._lock:
            key = self._keys.get(key_id)
            if key is not None:
                key.last_used_at = as_utc(when)

    def has_api_keys(self) -> bool:
        with self._lock:
            return bool(self._keys)

    # -- audit trail -----------------------------------------------------------------
    def add_audit_entries(self, entries: Sequence[AuditEntry]) -> None:
        copies = [clone(e) for e in entries]
        with self._lock:
            for entry in copies:
                self._audit[entry.id] = entry

    def _audit_matching(self, user_id: str | None, since: datetime | None) -> list[AuditEntry]:
        return [
            e
            for e in self._audit.values()
            if (user_id is None or e.user_id == user_id)
            and (since is None or e.created_at >= since)
        ]

    def list_audit_entries(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        with self._lock:
            rows = sorted(
                self._audit_matching(user_id, since),
                key=lambda e: (e.created_at, e.id),
                reverse=True,
            )
            return [clone(e) for e in rows[max(offset, 0) : max(offset, 0) + max(limit, 0)]]

    def count_audit_entries(
        self, *, user_id: str | None = None, since: datetime | None = None
    ) -> int:
        with self._lock:
            return len(self._audit_matching(user_id, since))

    def delete_audit_before(self, cutoff: datetime) -> int:
        with self._lock:
            doomed = [e.id for e in self._audit.values() if e.created_at < cutoff]
            for entry_id in doomed:
                del self._audit[entry_id]
            return len(doomed)

    # -- whole collections -----------------------------------------------------------
    def export(self, collection: str) -> Iterator[dict[str, Any]]:
        check_collection(collection)
        with self._lock:
            sources: dict[str, dict[str, Any]] = {
                "users": self._users,
                "servers": self._servers,
                "jobs": self._jobs,
                "executions": self._executions,
            }
            source = sources[collection]
            records = [obj.to_record() for obj in source.values()]
        for record in records:
            record.pop("password_encrypted", None)
            yield record

    def maintenance(self, task: str) -> dict[str, Any]:
        check_maintenance_task(task)
        return {"task": task, "backend": self.backend, "done": "nothing to do in memory"}
