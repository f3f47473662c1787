"""The per-job workflow fields over HTTP: `overlap`, `on_success`, `on_failure`, `notify`.

Declared once and used by both surfaces' job bodies (`POST /api/scheduler/jobs`,
`PUT /api/scheduler/jobs/<id>`, `POST /api/schedule-job`), so they are validated with
the surface's envelope and appear in the OpenAPI document. `job_values` turns what was
sent into Job attributes; a loop in on_success / on_failure is the engine's to refuse
(engine/scheduling/chains.py), since only the loop sees every job's chains at once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from api.validation import Field, check_email
from engine.errors import InvalidField
from engine.model import OVERLAP_POLICIES, TERMINAL_STATUSES, Execution, Job

#: statuses a notification may be sent on (every terminal one; missed is among them)
NOTIFY_STATUSES = tuple(sorted(str(s) for s in TERMINAL_STATUSES))
#: what `notify.on` is when not sent
DEFAULT_NOTIFY_ON = ["failed", "timeout"]
_NOTIFY_KEYS = ("on", "webhook", "email", "secret")
MAX_CHAIN = 20

FIELDS = (
    Field(
        "overlap",
        "string",
        max_length=20,
        example="skip",
        description="what a fire does while max_instances runs are active: skip (record it "
        "skipped; the default), queue (run it after the current one; at most one waits), "
        "replace (cancel the running one and start), allow (overlap up to max_instances)",
    ),
    Field(
        "on_success",
        "strings",
        max_length=MAX_CHAIN,
        example=[],
        description="job ids to run when a run of this job completes; a loop is refused",
    ),
    Field(
        "on_failure",
        "strings",
        max_length=MAX_CHAIN,
        example=[],
        description="job ids to run when a run of this job fails or times out",
    ),
    Field(
        "notify",
        "object",
        nullable=True,
        description='{"on": [statuses], "webhook": "http(s) URL", "email": "address", '
        '"secret": "optional HMAC-SHA256 key"}: statuses among '
        f"{', '.join(NOTIFY_STATUSES)} (default {', '.join(DEFAULT_NOTIFY_ON)}); at least "
        "one of webhook and email; null removes it on update",
    ),
)
NAMES = tuple(f.name for f in FIELDS)


def job_values(values: dict[str, Any]) -> dict[str, Any]:
    """Job attribute values for the workflow fields that were sent (checked)."""
    out: dict[str, Any] = {}
    if "overlap" in values:
        if values["overlap"] not in OVERLAP_POLICIES:
            raise InvalidField(
                "overlap",
                f"overlap must be one of {', '.join(OVERLAP_POLICIES)}, not {values['overlap']!r}",
            )
        out["overlap"] = values["overlap"]
    for name in ("on_success", "on_failure"):
        if name in values:
            out[name] = _job_ids(name, values[name])
    if "notify" in values:
        out["notify"] = None if values["notify"] is None else check_notify(values["notify"])
    return out


def _job_ids(name: str, ids: list[str]) -> tuple[str, ...]:
    cleaned: list[str] = []
    for sent in ids:
        job_id = sent.strip()
        if not job_id or len(job_id) > 200:
            raise InvalidField(name, f"{name} must hold job ids, not {job_id!r}")
        if job_id not in cleaned:
            cleaned.append(job_id)
    return tuple(cleaned)


def check_notify(notify: dict[str, Any]) -> dict[str, Any]:
    unknown = [k for k in notify if k not in _NOTIFY_KEYS]
    if unknown:
        raise InvalidField(
            "notify",
            f"notify has unknown key(s) {', '.join(unknown)} (accepted: {', '.join(_NOTIFY_KEYS)})",
        )
    on = notify.get("on", DEFAULT_NOTIFY_ON)
    if not isinstance(on, list) or not on or not all(isinstance(s, str) for s in on):
        raise InvalidField("notify", "notify.on must be a non-empty list of statuses")
    bad = [s for s in on if s not in NOTIFY_STATUSES]
    if bad:
        raise InvalidField(
            "notify",
            f"notify.on: {', '.join(bad)} is not a status to notify on "
            f"(one of {', '.join(NOTIFY_STATUSES)})",
        )
    checked: dict[str, Any] = {"on": sorted(set(on))}
    webhook = notify.get("webhook")
    if webhook is not None:
        checked["webhook"] = _check_url(webhook)
    email = notify.get("email")
    if email is not None:
        if not isinstance(email, str):
            raise InvalidField("notify", "notify.email must be an email address")
        checked["email"] = check_email(email, "notify.email")
    if "webhook" not in checked and "email" not in checked:
        raise InvalidField("notify", "notify needs a webhook, an email, or both")
    secret = notify.get("secret")
    if secret is not None:
        if not isinstance(secret, str) or not secret or len(secret) > 500:
            raise InvalidField("notify", "notify.secret must be a string of 1-500 characters")
        checked["secret"] = secret
    return checked


def _check_url(url: Any) -> str:
    if not isinstance(url, str) or len(url) > 2000:
        raise InvalidField("notify", "notify.webhook must be an http or https URL")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidField("notify", f"notify.webhook must be an http or https URL, not {url!r}")
    return url.strip()


def job_view(job: Job) -> dict[str, Any]:
    """The workflow fields of a job as both surfaces show them: never the secret."""
    notify = job.notify
    if notify is not None:
        notify = {k: v for k, v in notify.items() if k != "secret"}
        notify["has_secret"] = bool(job.notify and job.notify.get("secret"))
    return {
        "overlap": job.overlap,
        "on_success": list(job.on_success),
        "on_failure": list(job.on_failure),
        "notify": notify,
    }


def execution_view(e: Execution) -> dict[str, Any]:
    return {
        "overlap_decision": e.overlap_decision,
        "triggered_by": e.triggered_by,
        "chained": list(e.chained),
        "notifications": list(e.notifications),
    }
