"""Per-job notifications: a webhook POST and / or a mail when an execution ends so.

A job's `notify` is `{"on": [statuses], "webhook": url, "email": address, "secret": key}`
(checked by api/workflow.py). The `Notifier` listens on the engine's event bus for
executions reaching a terminal status (the engine only emits events; it never waits
for a notification) and hands each one whose job asks for that status to a small
bounded pool of its own threads, so a slow peer delays neither the engine nor the bus.
Every status `notify.on` accepts arrives as an event: completed (execution_executed),
failed, timeout, cancelled and abandoned (execution_failed; abandoned is what recovery
at start and the sweep of a dead node's runs mark), missed (job_missed: beyond the
misfire grace, or a taken-over fire judged too late) and skipped (max_instances_reached,
or job_missed when the backlog is full). Recovery's events are emitted as the engine
starts, after this listener is attached (api/app.py), so a crash's ends notify too.

- **Webhook**: a JSON POST of `{"event", "job_id", "execution"}`; with a secret, the
  header `X-Cronwell-Signature: sha256=<hex HMAC-SHA256 of the body>`. A transport
  failure or a non-2xx answer is retried `attempts` times in all, waiting `backoff`,
  then twice that, and so on. Redirects are not followed (jobs/web.py).
- **Email**: one plain-text mail through the configured SMTP relay, with the delivery
  code EmailNotificationJob uses (jobs/email.py `deliver`), retried the same way.

Every attempt is appended to the execution's `notifications` list as
`{"at", "target", "attempt", "outcome"}` (`outcome` is `delivered ...` or
`failed: ...`) through `Scheduler.annotate_execution`, which serialises it with the
engine's own record of a chain on the same execution.

Which jobs notify is learnt from the store at start, kept current from the job events
of this node, and re-read every `refresh` seconds (jobs changed through another node
reach it then). At most `limit` executions wait for delivery; past that a notice is
dropped and logged, never blocking the event bus.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from engine import events as ev
from engine.clock import Clock
from engine.events import Event, EventBus
from engine.model import Execution
from jobs.base import JobError
from jobs.email import deliver
from jobs.settings import JobSettings
from jobs.web import http_request
from stores.base import Store

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Cronwell-Signature"
EVENT_HEADER = "X-Cronwell-Event"
_FINISHED = (
    ev.EXECUTION_EXECUTED,
    ev.EXECUTION_FAILED,
    ev.JOB_MISSED,
    ev.MAX_INSTANCES_REACHED,
)
_JOB_CHANGES = (ev.JOB_ADDED, ev.JOB_MODIFIED, ev.JOB_PAUSED, ev.JOB_RESUMED)


def signature(secret: str, body: bytes) -> str:
    """The value of the signature header for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(execution: Execution) -> bytes:
    record = execution.to_record()
    record["notifications"] = []  # attempts so far are no part of what is announced
    return json.dumps(
        {
            "event": f"execution.{execution.status}",
            "job_id": execution.job_id,
            "execution": record,
        },
        default=_json_value,
        sort_keys=True,
    ).encode()


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class Notifier:
    def __init__(
        self,
        store: Store,
        settings: JobSettings,
        clock: Clock,
        annotate: Callable[[str, Callable[[Execution], object]], None],
        *,
        workers: int = 2,
        limit: int = 1000,
        attempts: int = 3,
        backoff: float = 1.0,
        timeout: float = 10.0,
        refresh: float = 60.0,
    ) -> None:
        self._store = store
        #: `Scheduler.annotate_execution`: writes serialised with the engine's chain record
        self._annotate = annotate
        self._settings = settings
        self._clock = clock
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._timeout = timeout
        self._refresh = refresh
        self._limit = limit
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cronwell-notify")
        self._lock = threading.Lock()
        #: job id -> notify, for the jobs that have one
        self._notify: dict[str, dict[str, Any]] = {}
        self._pending = 0
        self._stop = threading.Event()
        self._loaded_at = 0.0
        self._unsubscribe: Callable[[], None] | None = None

    # -- wiring -----------------------------------------------------------------------------

    def attach(self, events: EventBus) -> None:
        kinds = (*_JOB_CHANGES, ev.JOB_REMOVED, *_FINISHED)
        self._unsubscribe = events.subscribe(self._on_event, kinds)

    def start(self) -> Notifier:
        self.load()
        return self

    def stop(self) -> None:
        """Stop taking notices; a delivery under way ends its current attempt (no retry)."""
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def load(self) -> None:
        jobs = self._store.list_jobs()
        with self._lock:
            self._notify = {j.id: j.notify for j in jobs if j.notify}
            self._loaded_at = time.monotonic()

    def idle(self) -> bool:
        """True when no notice waits or is being delivered (tests)."""
        with self._lock:
            return self._pending == 0

    # -- the event bus's thread: bookkeeping only ------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.kind in _FINISHED:
            execution = event.execution
            with self._lock:
                notify = self._notify.get(event.job_id)
                stale = time.monotonic() - self._loaded_at > self._refresh
                if stale:  # one reload at a time: later events use the cache meanwhile
                    self._loaded_at = time.monotonic()
            if stale:
                self._submit(self._reload_then, execution)
                return
            if execution is not None and notify and str(execution.status) in notify["on"]:
                self._submit(self._deliver_all, execution, notify)
            return
        with self._lock:
            if event.kind == ev.JOB_REMOVED or event.job is None or not event.job.notify:
                self._notify.pop(event.job_id, None)
            else:
                self._notify[event.job_id] = event.job.notify

    def _submit(self, work: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if self._pending >= self._limit:
                log.warning("notifications: %d waiting; one was dropped", self._pending)
                return
            self._pending += 1
        try:
            future = self._pool.submit(work, *args)
        except RuntimeError:  # shut down
            self._done()
            return
        future.add_done_callback(lambda _: self._done())

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1

    # -- the notifier's threads -------------------------------------------------------------

    def _reload_then(self, execution: Execution | None) -> None:
        self.load()
        if execution is None:
            return
        with self._lock:
            notify = self._notify.get(execution.job_id)
        if notify and str(execution.status) in notify["on"]:
            self._deliver_all(execution, notify)

    def _deliver_all(self, execution: Execution, notify: dict[str, Any]) -> None:
        if notify.get("webhook"):
            self._with_retries(execution, f"webhook {notify['webhook']}", self._webhook, notify)
        if notify.get("email"):
            self._with_retries(execution, f"email {notify['email']}", self._email, notify)

    def _with_retries(
        self,
        execution: Execution,
        target: str,
        send: Callable[[Execution, dict[str, Any]], str],
        notify: dict[str, Any],
    ) -> None:
        for attempt in range(1, self._attempts + 1):
            try:
                outcome = send(execution, notify)
                ok = True
            except JobError as exc:
                outcome, ok = f"failed: {exc}", False
            except Exception as exc:  # a bug or an unexpected error: recorded, not raised
                outcome, ok = f"failed: {type(exc).__name__}: {exc}", False
            self._note(execution.id, target, attempt, outcome)
            if ok:
                return
            if attempt < self._attempts and self._stop.wait(self._backoff * 2 ** (attempt - 1)):
                return
        log.warning("execution %s: %s was not notified: %s", execution.id, target, outcome)

    def _webhook(self, execution: Execution, notify: dict[str, Any]) -> str:
        body = payload(execution)
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: f"execution.{execution.status}",
        }
        secret = notify.get("secret")
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body)
        result = http_request(
            "POST", notify["webhook"], timeout=self._timeout, body=body, headers=headers
        )
        if not result.ok:
            raise JobError(f"HTTP {result.status}: {result.excerpt[:200]}")
        return f"delivered (HTTP {result.status})"

    def _email(self, execution: Execution, notify: dict[str, Any]) -> str:
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = notify["email"]
        message["Subject"] = (
            f"cronwell: {execution.job_name or execution.job_id} {execution.status}"
        )
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="cronwell")
        message.set_content(_mail_text(execution))
        deliver(self._settings, message, self._timeout)
        return "delivered (SMTP accepted)"

    def _note(self, execution_id: str, target: str, attempt: int, outcome: str) -> None:
        entry = {
            "at": self._clock.now().isoformat(),
            "target": target,
            "attempt": attempt,
            "outcome": outcome,
        }
        try:
            self._annotate(
                execution_id, lambda e: setattr(e, "notifications", [*e.notifications, entry])
            )
        except Exception as exc:
            log.error("could not record a notification of %s (%s)", execution_id, exc)


def _mail_text(execution: Execution) -> str:
    lines = [
        f"Job:        {execution.job_name} ({execution.job_id})",
        f"Execution:  {execution.id}",
        f"Status:     {execution.status}",
        f"Reason:     {execution.reason}",
        f"Scheduled:  {execution.scheduled_for.isoformat() if execution.scheduled_for else '-'}",
        f"Started:    {execution.started_at.isoformat() if execution.started_at else '-'}",
        f"Completed:  {execution.completed_at.isoformat() if execution.completed_at else '-'}",
    ]
    if execution.exit_code is not None:
        lines.append(f"Exit code:  {execution.exit_code}")
    if execution.error:
        lines += ["", "Error:", execution.error[-4000:]]
    if execution.output:
        lines += ["", "Output (last 4000 characters):", execution.output[-4000:]]
    return "\n".join(lines) + "\n"
