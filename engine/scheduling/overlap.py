"""What a job's overlap policy decides, in the words recorded on the execution.

`Job.overlap` applies once max_instances executions of the job are active (queued or
running) when a fire is due (engine/scheduling/firing.py `_admit`):

- `skip` (the default, cronwell's behaviour before the policy existed): the fire is
  recorded `skipped`;
- `queue`: the fire is recorded `queued` and held by the worker pool until one of the
  active executions ends, then it runs; one at most waits, further fires are skipped;
- `replace`: the active executions are cancelled (queued ones withdrawn, running ones
  asked to stop, each recorded `cancelled` naming the run that replaced it) and the
  fire runs at once;
- `allow`: runs overlap up to max_instances, past that the fire is skipped. This is
  what `skip` does with max_instances above 1; `allow` names the intent.

Every run admitted while others of its job were active records that too ("allowed").
`Execution.overlap_decision` holds the decision: its first word (skipped, queued,
replaced, allowed), a colon and why; "" when nothing else of the job was active.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.running.pool import WorkItem


def allowed(active: int, max_instances: int) -> str:
    return f"allowed: {active} other execution(s) of this job active, max_instances={max_instances}"


def skipped(policy: str, active: int, max_instances: int) -> str:
    waiting = " and one is already waiting" if policy == "queue" else ""
    return (
        f"skipped: max_instances reached ({active} execution(s) of this job already queued "
        f"or running, max_instances={max_instances}){waiting}; overlap={policy}"
    )


def queued(active: int) -> str:
    return (
        f"queued: waits for one of the {active} active execution(s) of this job to end; "
        "overlap=queue"
    )


def replaced(items: Sequence[WorkItem]) -> str:
    ids = ", ".join(item.execution.id for item in items)
    return f"replaced: cancelled execution(s) {ids} to start this one; overlap=replace"


def replaced_by(execution_id: str) -> str:
    return f"cancelled: replaced by execution {execution_id} (overlap=replace)"
