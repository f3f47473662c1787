"""The Notifier on an engine driven by the fake clock: a missed fire is announced to a
real loopback webhook, an unwatched status is not, and the signature is HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

from api.config import Settings
from jobs.notify import Notifier, signature
from tests.engine_support import T0, Harness, date_at, make_job, wait_for
from tests.test_api_notifications import Hook


def test_a_missed_fire_is_announced_and_a_completed_one_is_not() -> None:
    hook = Hook()
    try:
        with Harness() as h:
            notify = {"on": ["missed"], "webhook": hook.url}
            h.add(make_job("in_grace", date_at(T0), misfire_grace_time=1, notify=notify))
            h.add(make_job("on_time", date_at(T0), notify=notify))
            notifier = Notifier(
                h.store, Settings(), h.clock, h.scheduler.annotate_execution, backoff=0.01
            )
            notifier.attach(h.scheduler.events)
            notifier.start()
            h.at(0.5)  # both run and complete: in_grace is 0.5 s late, within its grace
            h.settle()
            h.clock.set(T0 + timedelta(seconds=30))
            h.add(make_job("late2", date_at(T0), misfire_grace_time=1, notify=notify))
            h.at(30)  # late2 is 30 s late: missed
            (missed,) = h.executions("late2")
            assert str(missed.status) == "missed"
            assert wait_for(lambda: len(h.store.get_execution(missed.id).notifications) == 1)
            (attempt,) = h.store.get_execution(missed.id).notifications
            assert attempt["outcome"] == "delivered (HTTP 200)"
            assert attempt["at"] == (T0 + timedelta(seconds=30)).isoformat()
            assert [b["job_id"] for b in hook.bodies()] == ["late2"]
            assert wait_for(notifier.idle)
            notifier.stop()
            (on_time,) = h.executions("on_time")
            assert h.store.get_execution(on_time.id).notifications == []
    finally:
        hook.close()


def test_the_signature_is_an_hmac_sha256_of_the_body() -> None:
    body = json.dumps({"a": 1}).encode()
    assert signature("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature("k", body) != signature("other", body)
