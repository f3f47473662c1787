"""Chains: `on_success` / `on_failure` job ids, checked when a job is stored and
followed when a run ends.

`check_chains` runs on the loop thread (the single writer of jobs) for every add and
modify of a job that has a chain: each target must exist, and following the chains of
the targets (as the store has them, with this job's new lists) must never come back to
this job; otherwise InvalidField names the field and the whole cycle, e.g.
`on_success would loop: a -> b -> c -> a`.

`targets_after` is what the executor asks when a run ended: the jobs to start. A failed
or timed-out run that will be retried starts its on_failure jobs only after its last
attempt; a cancelled, missed or skipped execution starts nothing.
"""

from __future__ import annotations

from engine.errors import InvalidField
from engine.interfaces import SchedulerStore
from engine.model import Job, Status

#: jobs visited at most when looking for a loop (a chain graph is small in practice)
MAX_VISITED = 10_000
CHAIN_FIELDS = ("on_success", "on_failure")


def targets(job: Job) -> list[str]:
    return [*job.on_success, *(t for t in job.on_failure if t not in job.on_success)]


def check_chains(job: Job, store: SchedulerStore) -> None:
    """Refuse a chain naming a missing job or leading back to `job`."""
    if not job.on_success and not job.on_failure:
        return
    for name in CHAIN_FIELDS:
        ids = getattr(job, name)
        if job.id in ids:
            raise InvalidField(name, f"{name} would loop: {job.id} -> {job.id}")
        others = [i for i in ids if i != job.id]
        found = store.get_jobs(others) if others else {}
        missing = [i for i in others if i not in found]
        if missing:
            raise InvalidField(name, f"{name} names no job: {', '.join(missing)}")
    for name in CHAIN_FIELDS:
        cycle = _path_back(job, getattr(job, name), store)
        if cycle is not None:
            raise InvalidField(name, f"{name} would loop: {' -> '.join(cycle)}")


def _path_back(job: Job, first: list[str], store: SchedulerStore) -> list[str] | None:
    """job -> ... -> job through `first` and then the stored chains, or None."""
    parent: dict[str, str] = dict.fromkeys(first, job.id)
    frontier = list(dict.fromkeys(first))
    while frontier and len(parent) < MAX_VISITED:
        loaded = store.get_jobs(frontier)
        following: list[str] = []
        for node in frontier:
            stored = loaded.get(node)
            if stored is None:
                continue
            for child in targets(stored):
                if child == job.id:
                    return _unwind(parent, node, job.id)
                if child not in parent:
                    parent[child] = node
                    following.append(child)
        frontier = following
    return None


def _unwind(parent: dict[str, str], last: str, start: str) -> list[str]:
    path = [last]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return [*reversed(path), start]


def targets_after(job: Job, status: Status, will_retry: bool) -> list[str]:
    """The jobs a run of `job` that ended `status` starts."""
    if status is Status.COMPLETED:
        return list(job.on_success)
    if status in (Status.FAILED, Status.TIMEOUT) and not will_retry:
        return list(job.on_failure)
    return []
