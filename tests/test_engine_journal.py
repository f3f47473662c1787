"""The start journal (engine/running/journal.py): a run's start is on disk before the
run, survives the process, is forgotten once recorded, and tells recovery which
`queued` fires had in fact started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.interfaces import Outcome
from engine.model import Status
from engine.records import new_execution
from engine.running import journal as journal_module
from engine.running.journal import StartJournal
from engine.scheduling.recovery import ABANDONED_MESSAGE
from tests.engine_support import T0, Harness, Recorder, date_at, make_job
from tests.test_engine_recovery import DurableMemoryStore, stored


def _lines(folder: Path) -> list[str]:
    return sorted(line for path in folder.glob("*.journal") for line in path.read_text().split())


def test_a_live_journal_is_not_read_and_a_dead_one_is(tmp_path: Path) -> None:
    live = StartJournal(tmp_path)
    live.open()
    live.started("e1")
    assert _lines(tmp_path) == ["e1"]
    assert StartJournal(tmp_path).take_left_over() == set()  # its owner holds the lock
    live.close()  # e1 was never recorded: the file stays for the next start
    later = StartJournal(tmp_path)
    assert later.take_left_over() == {"e1"}
    later.forget_left_over()
    assert _lines(tmp_path) == []


def test_recorded_starts_are_forgotten_and_old_files_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "ROTATE_AFTER", 3)
    journal = StartJournal(tmp_path)
    journal.open()
    for number in range(7):
        journal.started(f"e{number}")
    assert journal.files == 3 and len(_lines(tmp_path)) == 7
    journal.recorded(["e0", "e1", "e2", "e3"])
    assert journal.files == 2  # the first file's starts are all recorded
    journal.recorded(["e4", "e5", "e6"])
    assert journal.files == 1 and _lines(tmp_path) == ["e6"]  # the current one stays
    journal.close()
    assert list(tmp_path.glob("*.journal")) == []  # a clean stop leaves nothing


def test_a_run_is_journaled_before_it_starts(tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def look(request: Any) -> Outcome:
        seen.append(_lines(tmp_path))
        return Outcome(Status.COMPLETED)

    store = DurableMemoryStore()
    with Harness(runner=Recorder(look), store=store, journal_folder=tmp_path) as h:
        h.scheduler.start(loop_thread=False)
        h.add(make_job("w", date_at(T0)))
        h.at(0)
        h.settle()
        (execution,) = h.executions("w")
        assert seen == [[execution.id]]
    assert list(tmp_path.glob("*.journal")) == []


def test_recovery_abandons_queued_fires_a_dead_process_had_started(tmp_path: Path) -> None:
    store = DurableMemoryStore()
    job = stored(store, make_job("j", date_at(T0), misfire_grace_time=60), None)
    begun = new_execution(job, "class", Status.QUEUED, T0, scheduled_for=T0)
    waiting = new_execution(job, "class", Status.QUEUED, T0, scheduled_for=T0)
    for execution in (begun, waiting):
        store.add_execution(execution)
    (tmp_path / "4242-dead.journal").write_text(f"{begun.id}\n")  # no lock: owner gone
    killed: list[set[str]] = []

    def kill(ids: Any) -> int:
        killed.append(set(ids))
        return 0

    with Harness(store=store, journal_folder=tmp_path, kill_leftovers=kill) as h:
        h.clock.set(T0)
        recovery = h.scheduler.start(loop_thread=False)
        h.settle()
        assert recovery.abandoned == 1
        assert [item.execution.id for item in recovery.requeued] == [waiting.id]
        abandoned = store.get_execution(begun.id)
        assert abandoned.status == Status.ABANDONED and abandoned.error == ABANDONED_MESSAGE
        assert "queued again" not in abandoned.output
        assert store.get_execution(waiting.id).status == Status.COMPLETED
        assert len(h.runner.requests) == 1
    assert killed == [{begun.id}]
    assert not (tmp_path / "4242-dead.journal").exists()
