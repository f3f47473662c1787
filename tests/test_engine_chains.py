"""Chains on a fake clock: on_success / on_failure start their jobs with triggered_by,
a loop is refused naming the cycle, a removed target is reported on the source."""

from __future__ import annotations

import threading

import pytest

from engine.errors import InvalidField
from engine.interfaces import Outcome, RunRequest
from engine.model import Execution, Status
from tests.engine_support import T0, Harness, Recorder, date_at, make_job


def outcome_by_job(request: RunRequest) -> Outcome:
    if request.job.id.startswith("bad"):
        return Outcome(Status.FAILED, error="boom")
    return Outcome(Status.COMPLETED, output=f"{request.job.id}\n")


def chained_runs(h: Harness, job_id: str) -> list[Execution]:
    return [e for e in h.executions(job_id) if e.reason == "chain"]


def test_paused_and_disabled_targets_are_reported_not_run() -> None:
    later = T0.replace(year=2027)
    with Harness(runner=Recorder(outcome_by_job)) as h:
        h.add(make_job("resting", date_at(later), paused=True))
        h.add(make_job("off", date_at(later), enabled=False))
        h.add(make_job("good", date_at(T0), on_success=["resting", "off"]))
        h.at(0)
        h.settle()
        h.at(0)  # applies the RunChained command the recorder posted
        h.settle()
        (good,) = h.executions("good")
        assert h.store.get_execution(good.id).chained == [
            {"job_id": "resting", "error": "job resting is paused; nothing was started"},
            {"job_id": "off", "error": "job off is disabled; nothing was started"},
        ]
        assert h.executions("resting") == [] and h.executions("off") == []


def test_chained_runs_record_their_trigger() -> None:
    with Harness(runner=Recorder(outcome_by_job)) as h:
        h.add(make_job("ok_target", date_at(T0.replace(year=2027))))
        h.add(make_job("fail_target", date_at(T0.replace(year=2027))))
        h.add(make_job("good", date_at(T0), on_success=["ok_target"], on_failure=["fail_target"]))
        h.add(make_job("bad", date_at(T0), on_success=["fail_target"], on_failure=["ok_target"]))
        h.at(0)
        h.settle()
        h.at(0)  # applies the RunChained commands the recorder posted
        h.settle()
        (good,) = h.executions("good")
        (bad,) = h.executions("bad")
        ok_runs = chained_runs(h, "ok_target")
        assert sorted(e.triggered_by for e in ok_runs) == sorted([good.id, bad.id])
        assert chained_runs(h, "fail_target") == []  # neither run ended so
        assert all(e.status == Status.COMPLETED for e in ok_runs)
        stored = h.store.get_execution(good.id)
        (entry,) = stored.chained
        assert entry["job_id"] == "ok_target" and entry["execution_id"] in {e.id for e in ok_runs}


def test_a_failure_with_retries_left_starts_on_failure_only_after_the_last_attempt() -> None:
    with Harness(runner=Recorder(outcome_by_job)) as h:
        h.add(make_job("alarm", date_at(T0.replace(year=2027))))
        h.add(make_job("bad_retrying", date_at(T0), retries=1, on_failure=["alarm"]))
        h.at(0)
        h.settle()
        h.at(0)
        h.settle()
        assert chained_runs(h, "alarm") == []  # the first attempt will be retried
        h.at(1)  # the retry (retry_delay 0) is due
        h.settle()
        h.at(1)
        h.settle()
        runs = chained_runs(h, "alarm")
        assert len(runs) == 1
        last = next(e for e in h.executions("bad_retrying") if e.attempt == 2)
        assert runs[0].triggered_by == last.id


def test_a_removed_target_is_reported_on_the_triggering_execution() -> None:
    with Harness(runner=Recorder(outcome_by_job)) as h:
        h.add(make_job("gone", date_at(T0.replace(year=2027))))
        h.add(make_job("src", date_at(T0), on_success=["gone"]))
        h.do(h.scheduler.remove_job("gone"))
        h.at(0)
        h.settle()
        h.at(0)
        h.settle()
        (src,) = h.executions("src")
        assert src.status == Status.COMPLETED
        assert h.store.get_execution(src.id).chained == [
            {"job_id": "gone", "error": "job gone was removed; nothing was started"}
        ]


def test_a_loop_is_refused_naming_the_cycle() -> None:
    later = T0.replace(year=2027)
    with Harness() as h:
        h.add(make_job("a", date_at(later)))
        h.add(make_job("b", date_at(later), on_success=["a"]))
        h.add(make_job("c", date_at(later), on_failure=["b"]))
        with pytest.raises(InvalidField, match=r"^on_success would loop: a -> c -> b -> a$"):
            h.do(h.scheduler.modify_job("a", on_success=["c"]))
        with pytest.raises(InvalidField, match=r"^on_failure would loop: a -> a$"):
            h.do(h.scheduler.modify_job("a", on_failure=["a"]))
        with pytest.raises(InvalidField, match=r"^on_success names no job: nowhere$"):
            h.add(make_job("d", date_at(later), on_success=["nowhere"]))
        assert h.store.get_job("a").on_success == ()  # nothing was changed
        # chains that share targets without looping back are fine
        h.add(make_job("e", date_at(later), on_success=["c", "b"], on_failure=["a"]))
        h.add(make_job("f", date_at(later)))
        assert h.do(h.scheduler.modify_job("a", on_failure=["f"])).on_failure == ["f"]
        with pytest.raises(InvalidField, match=r"^on_success would loop: f -> e -> a -> f$"):
            h.do(h.scheduler.modify_job("f", on_success=["e"]))


def test_additions_to_one_execution_from_several_threads_are_all_kept() -> None:
    """The chain record (loop thread) and notification attempts (notifier threads)
    both add to a finished execution: annotate_execution serialises them."""
    with Harness(runner=Recorder(outcome_by_job)) as h:
        h.add(make_job("noted", date_at(T0)))
        h.at(0)
        h.settle()
        (execution,) = h.executions("noted")

        def add_many(thread: int) -> None:
            for n in range(25):
                h.scheduler.annotate_execution(
                    execution.id,
                    lambda e, n=n: setattr(
                        e, "notifications", [*e.notifications, {"thread": thread, "n": n}]
                    ),
                )

        threads = [threading.Thread(target=add_many, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(h.store.get_execution(execution.id).notifications) == 200
