"""Commands to the engine loop, and the bounded queue that carries them.

Every change to job state is a command applied by the loop thread, the single writer.
Each command carries a `concurrent.futures.Future` that the loop resolves with the
result or the `CronwellError`; async callers `await asyncio.wrap_future(future)`.

The queue's condition variable is also what the loop sleeps on: it waits until the
heap's head is due or something is put here, so a new or earlier job wakes it at once
with no polling interval.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.command_future import CommandFuture
from engine.errors import EngineBusy, EngineStopped
from engine.model import Execution, Job


@dataclass(slots=True, kw_only=True)
class Command:
    future: Future[Any] = field(default_factory=CommandFuture)


@dataclass(slots=True)
class AddJob(Command):
    job: Job
    replace: bool = False


@dataclass(slots=True)
class AddJobs(Command):
    """Consecutive AddJobs taken together by `CommandQueue.drain`, so the handler can
    store them in one transaction (group commit). Each keeps its own future; this
    one's is never awaited."""

    adds: list[AddJob]


@dataclass(slots=True)
class ModifyJob(Command):
    job_id: str
    changes: dict[str, Any]


@dataclass(slots=True)
class RemoveJob(Command):
    job_id: str


@dataclass(slots=True)
class PauseJob(Command):
    job_id: str


@dataclass(slots=True)
class ResumeJob(Command):
    job_id: str


@dataclass(slots=True)
class RunJobNow(Command):
    job_id: str


@dataclass(slots=True)
class Backfill(Command):
    """Record and run the occurrences of a job's schedule in [start, end]
    (engine/scheduling/backfill.py)."""

    job_id: str
    start: datetime
    end: datetime


@dataclass(slots=True)
class CancelExecution(Command):
    execution_id: str
    #: ask the node running it when it runs elsewhere (False: a request from that node)
    forward: bool = True


@dataclass(slots=True)
class ScheduleRetry(Command):
    """Internal: a worker stored a `scheduled` retry; the loop puts it on the heap."""

    execution: Execution


@dataclass(slots=True)
class RunChained(Command):
    """Internal: a run ended and its job's on_success / on_failure name these jobs;
    the loop starts each one (engine/scheduling/chains.py)."""

    execution: Execution
    job_ids: list[str]


@dataclass(slots=True)
class SyncJobs(Command):
    """Internal: the store's change feed names these jobs (once per change, in order);
    the loop reloads those another node changed. None: reload every job (the feed
    lost a change, so which job it named is unknown)."""

    job_ids: list[str] | None


@dataclass(slots=True)
class RunTakenOver(Command):
    """Internal: queued executions this node took over from a node that stopped (or
    from its own earlier life) before starting them; each runs if still within its
    job's misfire grace, else is recorded missed."""

    executions: list[Execution]
    from_node: str | None


def group_adds(commands: list[Command]) -> list[Command]:
    """`commands` in order, each run of two or more AddJobs replaced by one AddJobs."""
    grouped: list[Command] = []
    run: list[AddJob] = []
    for command in commands:
        if type(command) is AddJob:
            run.append(command)
            continue
        _close_run(run, grouped)
        run = []
        grouped.append(command)
    _close_run(run, grouped)
    return grouped


def _close_run(run: list[AddJob], grouped: list[Command]) -> None:
    if len(run) > 1:
        grouped.append(AddJobs(run))
    else:
        grouped.extend(run)


class CommandQueue:
    """Bounded FIFO of commands plus the condition the loop thread sleeps on.

    Internal notices (retries posted by workers) bypass the bound: there is at most one
    per finished execution, so the worker pool already bounds them, and refusing one
    would lose a retry.
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        if maxsize < 1:
            raise ValueError("the command queue needs room for at least one command")
        self.maxsize = maxsize
        self._commands: deque[Command] = deque()
        self._internal: deque[Command] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._woken = False

    def __len__(self) -> int:
        return len(self._commands) + len(self._internal)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, command: Command) -> Future[Any]:
        """Queue a command; its future fails with EngineBusy/EngineStopped if refused."""
        refusal: Exception | None = None
        with self._cond:
            if self._closed:
                refusal = EngineStopped("the scheduler has shut down")
            elif len(self._commands) >= self.maxsize:
                refusal = EngineBusy(f"command queue full ({self.maxsize} pending); retry shortly")
            else:
                self._commands.append(command)
                self._cond.notify()
        if refusal is not None:
            command.future.set_exception(refusal)
        return command.future

    def post_internal(self, command: Command) -> bool:
        """Queue an engine-internal notice; False once closed (the caller keeps its state)."""
        with self._cond:
            if self._closed:
                return False
            self._internal.append(command)
            self._cond.notify()
            return True

    def drain(self) -> list[Command]:
        """Take everything pending: internal notices first, then commands in order, runs
        of two or more AddJobs grouped into one AddJobs."""
        with self._cond:
            if not self._commands and not self._internal:
                return []
            commands = list(self._commands)
            taken = [*self._internal]
            self._internal.clear()
            self._commands.clear()
        taken.extend(group_adds(commands))
        return taken

    def wait(self, timeout: float | None) -> None:
        """Sleep until a command arrives, `wake()` is called, or `timeout` passes."""
        with self._cond:
            if not self._commands and not self._internal and not self._woken:
                self._cond.wait(timeout)
            self._woken = False

    def wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify()

    def close(self) -> list[Command]:
        """Refuse new commands; return the ones never applied (their futures are the
        caller's to fail)."""
        with self._cond:
            self._closed = True
            self._woken = True
            self._cond.notify()
        return self.drain()
