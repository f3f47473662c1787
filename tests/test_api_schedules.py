"""Issue 15's schedules over HTTP, on a real server on loopback: `cron` lines (five
fields, six with seconds, nicknames), `interval_seconds`, `run_date`, and the optional
`start_date`, `end_date`, `jitter_seconds`, on create and on update, on both surfaces;
every refusal in the surface's envelope naming the field; the cron-meaning fixes; how
listed jobs show their schedule; the OpenAPI document."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.api_support import BASH_ECHO, ThreadServer, finished_execution, new_user, serve_module

BERLIN = ZoneInfo("Europe/Berlin")
BASE_JOB = {"job_class_string": "jobs.echo.EchoJob", "name": "Schedules", "pub_args": ["x"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    yield from serve_module(tmp_path_factory, "schedules_api", {"hello.sh": BASH_ECHO})


@pytest.fixture(scope="module")
def user_id(server: ThreadServer) -> str:
    return new_user(server)


def call(
    server: ThreadServer, method: str, path: str, body: Any = None, **params: Any
) -> requests.Response:
    return requests.request(method, server.url + path, json=body, params=params or None, timeout=10)


def create(server: ThreadServer, user_id: str, **schedule: Any) -> requests.Response:
    return call(server, "POST", "/api/scheduler/jobs", {"user_id": user_id, **BASE_JOB, **schedule})


def created(server: ThreadServer, user_id: str, **schedule: Any) -> dict[str, Any]:
    response = create(server, user_id, **schedule)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def job(server: ThreadServer, job_id: str) -> dict[str, Any]:
    data: dict[str, Any] = call(server, "GET", f"/api/scheduler/jobs/{job_id}").json()["data"]
    return data


def update(server: ThreadServer, job_id: str, **body: Any) -> requests.Response:
    return call(server, "PUT", f"/api/scheduler/jobs/{job_id}", body)


def refused(response: requests.Response, status: int, key: str = "detail") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == [key], body
    message: str = body[key]
    return message


def when(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def future(days: float = 0, **delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days, **delta)


# -- cron lines ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "minute", "hour", "day_of_month", "month", "day_of_week"),
    [
        ("@hourly", "0", "*", "*", "*", "*"),
        ("@daily", "0", "0", "*", "*", "*"),
        ("@weekly", "0", "0", "*", "*", "0"),
        ("@monthly", "0", "0", "1", "*", "*"),
        ("@yearly", "0", "0", "1", "1", "*"),
        ("15 4 * * 1-5", "15", "4", "*", "*", "1-5"),
    ],
)
def test_cron_lines_and_nicknames(
    server: ThreadServer,
    user_id: str,
    line: str,
    minute: str,
    hour: str,
    day_of_month: str,
    month: str,
    day_of_week: str,
) -> None:
    data = created(server, user_id, cron=line)
    fields = (
        data["minute"],
        data["hour"],
        data["day_of_month"],
        data["month"],
        data["day_of_week"],
    )
    assert fields == (minute, hour, day_of_month, month, day_of_week)
    assert data["cron"] == " ".join(fields) and data["interval_seconds"] is None
    assert data["schedule"]["kind"] == "cron" and data["schedule"]["cron"] == data["cron"]
    next_run = when(data["next_run_time"])
    assert next_run > datetime.now(UTC) and (next_run.minute, next_run.second) == (int(minute), 0)
    assert job(server, data["_id"]) == data  # stored as shown


def test_six_field_cron_fires_on_seconds(server: ThreadServer, user_id: str) -> None:
    data = created(server, user_id, cron="*/2 * * * * *")
    assert data["cron"] == "*/2 * * * * *" and data["schedule"]["second"] == "*/2"
    assert data["schedule"]["description"] == "every 2 seconds (UTC)"
    next_run = when(data["next_run_time"])
    assert next_run.second % 2 == 0 and next_run - datetime.now(UTC) <= timedelta(seconds=2)
    execution = finished_execution(server.url, data["_id"])
    assert execution["status"] == "completed"
    assert when(execution["scheduled_for"]).second % 2 == 0
    call(server, "DELETE", f"/api/scheduler/jobs/{data['_id']}")


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("* * * *", "has 4 fields; expected 5"),
        ("@fortnightly", "has 1 fields"),
        ("61 * * * *", "invalid minute: 61 is out of range 0-59"),
        ("0 0 */31 * *", "invalid day_of_month: step 31 in '*/31' is larger than the range"),
        ("* * * * * * *", "has 7 fields"),
        ("60 * * * * *", "invalid second: 60 is out of range 0-59"),
    ],
)
def test_bad_cron_lines_are_422_naming_cron(
    server: ThreadServer, user_id: str, line: str, fragment: str
) -> None:
    message = refused(create(server, user_id, cron=line), 422)
    assert message.startswith(f"invalid cron {line!r}: ") and fragment in message


def test_cron_as_cron_means_it_over_http(server: ThreadServer, user_id: str) -> None:
    equal = created(server, user_id, minute="5-5", hour="*")
    assert when(equal["next_run_time"]).minute == 5
    runs = call(server, "GET", f"/api/scheduler/jobs/{equal['_id']}/next-runs", count=3).json()
    assert [when(r["fire_time"]).minute for r in runs["data"]] == [5, 5, 5]
    for day_of_week in ("*,0", "*,sat#3"):  # were a ValueError, a 500
        starred = create(server, user_id, minute="0", hour="0", day_of_week=day_of_week)
        assert starred.status_code == 200, starred.text
    sunday = created(server, user_id, cron="0 0 * * Sun-Sun")
    assert when(sunday["next_run_time"]).isoweekday() == 7
    for fields, field in (
        ({"minute": "0", "hour": "0", "day_of_month": "*/31"}, "day_of_month"),
        ({"minute": "4-6/3", "hour": "*"}, "minute"),
    ):
        assert refused(create(server, user_id, **fields), 422).startswith(f"invalid {field}: step")


# -- intervals and dates -----------------------------------------------------------------------


def test_interval_seconds(server: ThreadServer, user_id: str) -> None:
    before = datetime.now(UTC)
    data = created(server, user_id, interval_seconds=3600)
    first = when(data["next_run_time"])
    assert timedelta(seconds=3599) < first - before < timedelta(seconds=3601)
    assert data["interval_seconds"] == 3600 and data["cron"] is None and data["minute"] is None
    schedule = data["schedule"]
    assert schedule["kind"] == "interval" and schedule["interval_seconds"] == 3600
    assert schedule["description"].startswith("every hour, counted from ")
    assert when(schedule["anchor"]) == first


def test_an_interval_job_runs_every_interval(server: ThreadServer, user_id: str) -> None:
    data = created(server, user_id, interval_seconds=1)
    first = finished_execution(server.url, data["_id"])
    assert first["status"] == "completed"
    runs = call(server, "GET", f"/api/scheduler/jobs/{data['_id']}/next-runs", count=3).json()
    times = [when(r["fire_time"]) for r in runs["data"]]
    assert [b - a for a, b in itertools.pairwise(times)] == [timedelta(seconds=1)] * 2
    call(server, "DELETE", f"/api/scheduler/jobs/{data['_id']}")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "interval_seconds must be at least 1"),
        (-5, "interval_seconds must be at least 1"),
        (1.5, "interval_seconds must be an integer"),
        ("30", "interval_seconds must be an integer"),
        (True, "interval_seconds must be an integer"),
        (10**12, "interval_seconds must be at most 315360000"),
    ],
)
def test_bad_intervals_are_422(
    server: ThreadServer, user_id: str, value: Any, message: str
) -> None:
    assert refused(create(server, user_id, interval_seconds=value), 422) == message


def test_run_date_on_the_scheduler_surface(server: ThreadServer, user_id: str) -> None:
    at = future(days=3).replace(microsecond=0)
    data = created(server, user_id, run_date=at.isoformat(), timezone="Europe/Berlin")
    assert when(data["next_run_time"]) == at and when(data["run_date"]) == at
    assert data["schedule"]["description"] == (
        f"once, at {at.astimezone(BERLIN).strftime('%Y-%m-%d %H:%M:%S %Z')}"
    )
    naive = future(days=2).astimezone(BERLIN).replace(tzinfo=None, microsecond=0)
    local = created(server, user_id, run_date=naive.isoformat(), timezone="Europe/Berlin")
    assert when(local["run_date"]) == naive.replace(tzinfo=BERLIN)  # read on Berlin's clock
    assert "in the past" in refused(create(server, user_id, run_date="2020-01-01T00:00:00"), 422)
    assert refused(create(server, user_id, run_date="soon"), 422).startswith(
        "run_date is not an ISO 8601 datetime"
    )


def test_exactly_one_kind_of_schedule(server: ThreadServer, user_id: str) -> None:
    both = refused(create(server, user_id, cron="@daily", interval_seconds=60), 400)
    assert both.startswith("Send exactly one schedule, not cron and interval_seconds")
    three = refused(
        create(server, user_id, minute="0", run_date=future(1).isoformat(), cron="@daily"), 400
    )
    assert "not minute and cron and run_date" in three
    none = refused(create(server, user_id), 400)
    assert none.startswith("Missing schedule")
    assert refused(create(server, user_id, minute="0"), 400) == "Missing required field: hour"


# -- windows and jitter -----------------------------------------------------------------------


def test_window_in_the_jobs_timezone(server: ThreadServer, user_id: str) -> None:
    start = future(days=10).astimezone(BERLIN).replace(hour=8, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=2)
    data = created(
        server,
        user_id,
        cron="0 9 * * *",
        timezone="Europe/Berlin",
        start_date=start.replace(tzinfo=None).isoformat(),  # naive: Berlin's clock
        end_date=end.replace(tzinfo=None).isoformat(),
    )
    assert when(data["start_date"]) == start and when(data["end_date"]) == end
    assert when(data["next_run_time"]) == start + timedelta(hours=1)
    runs = call(server, "GET", f"/api/scheduler/jobs/{data['_id']}/next-runs", count=10).json()
    assert runs["total"] == 2  # 09:00 on the two days inside the window, and nothing after
    assert [when(r["local_time"]).hour for r in runs["data"]] == [9, 9]
    assert (
        "not before" in data["schedule"]["description"]
        and "not after" in data["schedule"]["description"]
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end_date": "2020-01-01T00:00:00"}, "end_date"),
        ({"start_date": "2031-01-02T00:00:00", "end_date": "2031-01-01T00:00:00"}, "end_date"),
        ({"start_date": "tomorrow"}, "start_date"),
        ({"jitter_seconds": -1}, "jitter_seconds"),
        ({"jitter_seconds": "5"}, "jitter_seconds"),
        ({"jitter_seconds": 10**9}, "jitter_seconds"),
        (
            {
                "cron": "0 0 1 1 *",
                "start_date": "2031-02-01T00:00:00",
                "end_date": "2031-12-01T00:00:00",
            },
            "end_date",
        ),
    ],
)
def test_bad_windows_are_422_naming_the_field(
    server: ThreadServer, user_id: str, change: dict[str, Any], field: str
) -> None:
    body = {"cron": "@hourly", **change}
    message = refused(create(server, user_id, **body), 422)
    assert field in message, message


def test_jitter_bounds_over_http(server: ThreadServer, user_id: str) -> None:
    data = created(server, user_id, cron="0 * * * *", jitter_seconds=600)
    assert data["jitter_seconds"] == 600 and data["schedule"]["jitter_seconds"] == 600
    runs = call(server, "GET", f"/api/scheduler/jobs/{data['_id']}/next-runs", count=20).json()
    assert runs["total"] == 20
    delays = []
    for run in runs["data"]:
        occurrence, fire = when(run["occurrence"]), when(run["fire_time"])
        assert (occurrence.minute, occurrence.second) == (0, 0)
        assert timedelta(0) <= fire - occurrence < timedelta(seconds=600)
        delays.append(fire - occurrence)
    assert len(set(delays)) > 15
    assert when(data["next_run_time"]) == when(runs["data"][0]["fire_time"])


def test_a_jittered_job_runs_at_its_jittered_time(server: ThreadServer, user_id: str) -> None:
    data = created(server, user_id, interval_seconds=2, jitter_seconds=1.5)
    planned = call(server, "GET", f"/api/scheduler/jobs/{data['_id']}/next-runs", count=1).json()
    first = planned["data"][0]
    execution = finished_execution(server.url, data["_id"])
    assert execution["status"] == "completed"
    assert when(execution["scheduled_for"]) == when(first["fire_time"])
    assert (
        timedelta(0)
        <= when(first["fire_time"]) - when(first["occurrence"])
        < timedelta(seconds=1.5)
    )
    call(server, "DELETE", f"/api/scheduler/jobs/{data['_id']}")


# -- updates --------------------------------------------------------------------------------


def test_updates_switch_kinds_and_keep_what_was_not_sent(
    server: ThreadServer, user_id: str
) -> None:
    data = created(server, user_id, minute="30", hour="6", day_of_week="1", jitter_seconds=60)
    job_id = data["_id"]
    assert update(server, job_id, hour="7").status_code == 200  # merged with the fields
    after = job(server, job_id)
    assert (after["minute"], after["hour"], after["day_of_week"]) == ("30", "7", "1")
    assert after["jitter_seconds"] == 60  # the jitter stays
    assert update(server, job_id, cron="*/10 * * * * *").status_code == 200
    after = job(server, job_id)
    assert after["cron"] == "*/10 * * * * *" and after["day_of_week"] == "*"
    assert update(server, job_id, interval_seconds=90).status_code == 200
    after = job(server, job_id)
    assert after["interval_seconds"] == 90 and after["cron"] is None and after["minute"] is None
    assert after["jitter_seconds"] == 60
    assert (
        update(
            server, job_id, end_date=future(days=30).isoformat(), jitter_seconds=None
        ).status_code
        == 200
    )
    after = job(server, job_id)
    assert after["jitter_seconds"] == 0 and after["end_date"] is not None
    assert after["interval_seconds"] == 90
    assert update(server, job_id, end_date=None).status_code == 200  # null removes it
    assert job(server, job_id)["end_date"] is None
    at = future(days=4).replace(microsecond=0)
    assert update(server, job_id, run_date=at.isoformat()).status_code == 200
    after = job(server, job_id)
    assert when(after["run_date"]) == at and when(after["next_run_time"]) == at
    assert refused(update(server, job_id, minute="0"), 400) == "Missing required field: hour"
    assert update(server, job_id, minute="0", hour="12").status_code == 200
    assert job(server, job_id)["cron"] == "0 12 * * *"


def test_bad_updates_change_nothing(server: ThreadServer, user_id: str) -> None:
    job_id = created(server, user_id, cron="@daily")["_id"]
    before = job(server, job_id)
    for body, status in (
        ({"cron": "@daily", "interval_seconds": 5}, 400),
        ({"interval_seconds": 0}, 422),
        ({"cron": "nope"}, 422),
        ({"end_date": "2001-01-01T00:00:00"}, 422),
        ({"jitter_seconds": -2}, 422),
        ({"run_date": "2001-01-01T00:00:00"}, 422),
        ({"name": "fine", "cron": "0 0 */31 * *"}, 422),
    ):
        refused(update(server, job_id, **body), status)
    assert job(server, job_id) == before


def test_a_timezone_change_rereads_the_schedule(server: ThreadServer, user_id: str) -> None:
    job_id = created(server, user_id, cron="0 9 * * *", jitter_seconds=30)["_id"]
    assert update(server, job_id, timezone="Asia/Tokyo").status_code == 200
    after = job(server, job_id)
    assert after["timezone"] == "Asia/Tokyo" and after["jitter_seconds"] == 30
    fire = when(after["next_run_time"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert fire.hour == 9 and fire.minute == 0 and fire.second < 30


# -- the scripts surface --------------------------------------------------------------------------


def test_scripts_surface_takes_window_and_jitter(server: ThreadServer) -> None:
    path = str(server.app.ctx.settings.script_roots[0] / "hello.sh")
    run_at = future(days=1).replace(microsecond=0, tzinfo=None)
    body = {
        "job_id": "windowed_script",
        "job_type": "bash",
        "script_path": path,
        "run_date": run_at.isoformat(),
        "start_date": (run_at - timedelta(hours=1)).isoformat(),
        "end_date": (run_at + timedelta(hours=1)).isoformat(),
        "jitter_seconds": 120,
    }
    response = call(server, "POST", "/api/schedule-job", body)
    assert response.status_code == 200, response.text
    next_run = when(response.json()["job"]["next_run_time"])
    occurrence = run_at.replace(tzinfo=UTC)
    assert occurrence <= next_run < occurrence + timedelta(seconds=120)
    listed = call(server, "GET", "/api/job/windowed_script").json()["job"]
    assert listed["trigger"].startswith("date[") and "jitter=120" in listed["trigger"]
    assert listed["schedule"]["jitter_seconds"] == 120 and listed["is_enabled"] is True
    for change, field in (
        ({"start_date": (run_at + timedelta(minutes=1)).isoformat()}, "start_date"),
        ({"end_date": (run_at - timedelta(minutes=1)).isoformat()}, "end_date"),
        ({"jitter_seconds": "x"}, "jitter_seconds"),
        ({"end_date": "2001-01-01T00:00:00"}, "end_date"),
    ):
        bad = call(server, "POST", "/api/schedule-job", {**body, "job_id": "bad_window", **change})
        assert field in refused(bad, 400, "error")
    cron_there = call(
        server, "POST", "/api/schedule-job", {**body, "job_id": "c", "cron": "@daily"}
    )
    assert refused(cron_there, 400, "error").startswith("Unknown fields: cron")


def test_scripts_jobs_keep_their_schedule_on_the_scheduler_surface(server: ThreadServer) -> None:
    refusal = refused(update(server, "windowed_script", jitter_seconds=5), 400)
    assert "jitter_seconds cannot be changed" in refusal


# -- the OpenAPI document --------------------------------------------------------------------------


def test_new_fields_are_in_the_openapi_document(server: ThreadServer) -> None:
    spec = call(server, "GET", "/openapi.json").json()
    for path, method in (("/api/scheduler/jobs", "post"), ("/api/scheduler/jobs/{job_id}", "put")):
        schema = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        properties = schema["properties"]
        for name in (
            "cron",
            "interval_seconds",
            "run_date",
            "start_date",
            "end_date",
            "jitter_seconds",
        ):
            assert name in properties, (path, name)
        assert properties["interval_seconds"]["minimum"] == 1
        assert properties["end_date"]["nullable"] is True
        assert "minute" not in schema.get("required", [])
    scripts = spec["paths"]["/api/schedule-job"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    assert {"start_date", "end_date", "jitter_seconds"} <= set(scripts["properties"])
    assert "cron" not in scripts["properties"]
    next_runs = spec["paths"]["/api/scheduler/jobs/{job_id}/next-runs"]["get"]
    (count,) = [p for p in next_runs["parameters"] if p["name"] == "count"]
    assert count["schema"] == {"type": "integer", "default": 5, "minimum": 1, "maximum": 100}


def test_naive_times_across_both_berlin_changes(server: ThreadServer, user_id: str) -> None:
    """A wall time the clocks skip is the moment they jump (as a fixed-time cron job
    fires then); a repeated one is its first occurrence."""
    berlin = {"timezone": "Europe/Berlin"}
    skipped = created(server, user_id, run_date="2030-03-31T02:30:00", **berlin)
    assert skipped["next_run_time"] == "2030-03-31T01:00:00+00:00"  # 03:00 CEST
    repeated = created(server, user_id, run_date="2030-10-27T02:30:00", **berlin)
    assert repeated["next_run_time"] == "2030-10-27T00:30:00+00:00"  # 02:30 CEST
    offset = created(server, user_id, run_date="2030-10-27T02:30:00+01:00", **berlin)
    assert offset["next_run_time"] == "2030-10-27T01:30:00+00:00"  # the second 02:30, asked for
    window = created(
        server,
        user_id,
        cron="*/30 * * * *",
        start_date="2030-03-31T02:10:00",
        end_date="2030-10-27T02:40:00",
        **berlin,
    )
    assert window["start_date"] == "2030-03-31T01:00:00+00:00"
    assert window["end_date"] == "2030-10-27T00:40:00+00:00"
    assert window["next_run_time"] == "2030-03-31T01:00:00+00:00"
