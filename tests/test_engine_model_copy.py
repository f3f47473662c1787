"""Jobs and executions copy every field, fast (events and cross-thread hand-offs copy them)."""

from __future__ import annotations

import copy
from dataclasses import fields
from datetime import UTC, datetime

from engine.model import Execution, Job, JobKind, Status
from engine.triggers import DateTrigger

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_copy_has_every_field_and_is_a_new_object() -> None:
    job = Job(
        id="j", name="n", kind=JobKind.BASH, target="/s.sh", trigger=DateTrigger(NOW), args=[1]
    )
    execution = Execution(id="e", job_id="j", status=Status.RUNNING, created_at=NOW, output="x")
    for original in (job, execution):
        copied = copy.copy(original)
        assert copied == original and copied is not original
        for f in fields(original):
            assert getattr(copied, f.name) is getattr(original, f.name)  # shallow, as copy.copy
    copied_job = copy.copy(job)
    copied_job.name = "renamed"
    assert job.name == "n"
