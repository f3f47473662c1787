"""The dashboard end to end in a real headless browser: Playwright driving Debian's
chromium against a real service on loopback, closed by stored API keys (an admin's and
a user's), so it starts at sign-in.

Run with `make test-browser` (`.ci/run` runs it after `make test`); skipped with a
reason where /usr/bin/chromium is missing. Screenshots of every page at 1280 and 390
pixels wide are written to docs/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.api_support import make_settings, running_server, write_script

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTHS = {"1280": (1280, 900), "390": (390, 844)}
BOTH = '#!/bin/bash\necho "hello from $1"\necho "a warning about $1" >&2\n'
# prints, waits, warns, waits: long enough for the page to watch each line arrive
LIVE = (
    '#!/bin/bash\necho "hello from $1"\nsleep 1.5\necho "a warning about $1" >&2\n'
    'sleep 1.5\necho "done"\n'
)
SLOW = "#!/bin/bash\necho started\nsleep 30\n"
ZONE = "Europe/Berlin"
# The dashboard formats times in the browser's own locale; the tests pin one with a
# 24-hour clock, or the hour they look for depends on the machine's default locale.
LOCALE = "en-GB"

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("browser")
    settings = make_settings(tmp)
    both = write_script(tmp / "scripts", "both.sh", BOTH)
    live = write_script(tmp / "scripts", "live.sh", LIVE)
    slow = write_script(tmp / "scripts", "slow.sh", SLOW)
    with running_server(settings) as server:

        def post(path: str, body: Any, key: str | None = None) -> Any:
            headers = {"X-API-Key": key} if key else {}
            answer = requests.post(server.url + path, json=body, headers=headers, timeout=5)
            assert answer.status_code == 200, answer.text
            return answer.json()

        # open mode until the admin's key: then every request needs one
        user = post(
            "/api/users/", {"name": "Grace Hopper", "email": "grace@example.com", "role": "admin"}
        )["user_id"]
        key = post(f"/api/users/{user}/keys", {"name": "browser"})["api_key"]
        other = post("/api/users/", {"name": "Linus Pauling", "email": "linus@example.com"}, key)[
            "user_id"
        ]
        other_key = post(f"/api/users/{other}/keys", {"name": "browser"}, key)["api_key"]
        post(
            "/api/scheduler/jobs",
            {
                "user_id": other,
                "job_class_string": "jobs.echo.EchoJob",
                "name": "Linus echo",
                "minute": "0",
                "hour": "6",
                "pub_args": ["mine"],
            },
            key,
        )
        post(
            "/api/servers/create",
            {"user_id": other, "name": "Linus box", "hostname": "linus.example", "port": 22},
            key,
        )
        yield {
            "server": server,
            "both": both,
            "live": live,
            "slow": slow,
            "user": user,
            "key": key,
            "other": other,
            "other_key": other_key,
            "headers": {"X-API-Key": key},
        }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def refused(self, status: int, count: int) -> None:
        """Chromium logs every 4xx answer as "Failed to load resource"; a test that
        provokes `count` of them on purpose accounts for exactly those."""
        mark = f"status of {status} "
        matching = [e for e in self.errors if mark in e and "Failed to load resource" in e]
        assert len(matching) == count, self.errors
        self.errors = [e for e in self.errors if e not in matching]

    def clean(self) -> None:
        """Assert that nothing was logged as an error since the last call."""
        errors, self.errors = self.errors, []
        assert errors == [], errors


@pytest.fixture(scope="module")
def tab(browser: Any, service: dict[str, Any]) -> Iterator[Watched]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id=ZONE, locale=LOCALE
    )
    context.set_default_timeout(15_000)
    watched = Watched(context.new_page())
    yield watched
    context.close()


def url(service: dict[str, Any], path: str) -> str:
    base: str = service["server"].url
    return base + path


def api(service: dict[str, Any], method: str, path: str, **kw: Any) -> Any:
    response = requests.request(
        method, url(service, path), headers=service["headers"], timeout=5, **kw
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_01_sign_in_with_a_key(tab: Watched, service: dict[str, Any]) -> None:
    page = tab.page
    page.goto(url(service, "/ui/"))
    assert page.url.endswith("/ui/sign-in?next=/ui/")
    page.get_by_label("API key").fill("cw_wrong-key")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("That API key is not valid (or was revoked).").wait_for()
    assert page.get_by_label("API key").get_attribute("aria-invalid") == "true"
    tab.refused(401, 1)
    page.get_by_label("API key").fill(service["key"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Jobs").wait_for()
    assert page.url == url(service, "/ui/")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["cronwell_session"]["httpOnly"] is True
    assert cookies["cronwell_session"]["sameSite"] == "Strict"
    assert service["key"] not in cookies["cronwell_session"]["value"]
    assert "Grace Hopper (admin)" in page.locator("header .who").inner_text()
    tab.clean()


def start_echo_job(page: Any, service: dict[str, Any], minute: str, hour: str) -> None:
    """The new-job form, filled for an EchoJob of the seeded user."""
    page.goto(url(service, "/ui/new-job"))
    page.get_by_label("User").select_option(label="Grace Hopper (grace@example.com)")
    page.get_by_label("Job class").select_option("jobs.echo.EchoJob")
    page.get_by_label("Name").fill("Browser echo")
    page.locator("#in-arg-pub_args").fill('["from", "the browser"]')
    page.get_by_label("Minute").fill(minute)
    page.get_by_label("Hour").fill(hour)


def test_02_a_validation_error_shows_beside_its_field(
    tab: Watched, service: dict[str, Any]
) -> None:
    page = tab.page
    start_echo_job(page, service, "0", "25")
    page.get_by_role("button", name="Create").click()
    error = page.locator("#hour-error")
    error.wait_for()
    assert "invalid hour" in error.inner_text()
    assert "25" in error.inner_text()
    assert page.get_by_label("Hour").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "in-hour"
    # a required argument the class's metadata names, refused by the API
    page.get_by_label("Job class").select_option("jobs.email.EmailNotificationJob")
    page.get_by_label("Hour").fill("9")
    page.get_by_role("button", name="Create").click()
    argument = page.locator("#arg-recipient-error")
    argument.wait_for()
    assert "needs pub_args[0]: recipient" in argument.inner_text()
    tab.refused(422, 2)
    tab.clean()


def test_03_create_a_job_class_job_through_the_form(tab: Watched, service: dict[str, Any]) -> None:
    page = tab.page
    start_echo_job(page, service, "15", "9,17")
    page.get_by_label("Description").fill("made in a browser")
    page.locator("#in-arg-pub_kwargs").fill('{"k": 1}')
    page.get_by_label("Day of week").fill("mon-fri")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name=re.compile("Browser echo")).wait_for()
    words = page.locator("p.words").inner_text()
    assert words == "At minute 15 of hours 9,17 on Monday to Friday (UTC)"  # the API's words
    job_id = page.url.rsplit("/", 1)[1]
    job = api(service, "GET", f"/api/scheduler/jobs/{job_id}")["data"]
    assert job["pub_args"] == ["from", "the browser"]
    assert job["pub_kwargs"] == {"k": 1}
    assert job["user_id"] == service["user"]
    assert (job["minute"], job["hour"], job["day_of_week"]) == ("15", "9,17", "mon-fri")
    assert page.locator("ol.fires li").count() == 10
    service["class_job"] = job_id
    tab.clean()


def test_03b_an_interval_job_through_the_form(tab: Watched, service: dict[str, Any]) -> None:
    page = tab.page
    page.goto(url(service, "/ui/new-job"))
    page.get_by_label("User").select_option(label="Grace Hopper (grace@example.com)")
    page.get_by_label("Job class").select_option("jobs.echo.EchoJob")
    page.get_by_label("Name").fill("Every ninety seconds")
    page.get_by_label("Every N seconds").fill("90")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name=re.compile("Every ninety seconds")).wait_for()
    job = api(service, "GET", f"/api/scheduler/jobs/{page.url.rsplit('/', 1)[1]}")["data"]
    assert job["interval_seconds"] == 90 and job["minute"] is None
    words = job["schedule"]["description"]
    assert page.locator("p.words").inner_text() == words[:1].upper() + words[1:]
    tab.clean()


def test_04_times_show_in_the_browser_zone_with_utc_on_hover(
    tab: Watched, service: dict[str, Any]
) -> None:
    page = tab.page
    page.goto(url(service, f"/ui/jobs/{service['class_job']}"))
    first = page.locator("ol.fires time").first
    title = first.get_attribute("title")
    shown = first.inner_text()
    assert title is not None and title.endswith(" UTC")
    utc = datetime.fromisoformat(first.get_attribute("datetime") or "")
    # Berlin is an hour or two ahead of UTC: the shown hour differs from the title's
    local_hour = utc.astimezone(ZoneInfo(ZONE)).hour
    assert f"{local_hour:02d}:" in shown, (shown, title)
    assert "UTC" not in shown
    tab.clean()


def test_05_edit_the_job_through_the_form(tab: Watched, service: dict[str, Any]) -> None:
    page = tab.page
    page.goto(url(service, f"/ui/jobs/{service['class_job']}/edit"))
    assert page.locator("#in-arg-pub_args").input_value() == '["from","the browser"]'
    assert page.get_by_label("Minute").input_value() == "15"
    page.get_by_label("Name").fill("Browser echo, edited")
    page.get_by_label("Hour").fill("8")
    page.locator("details.policy summary").click()
    page.get_by_label("retries").fill("2")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name=re.compile("Browser echo, edited")).wait_for()
    job = api(service, "GET", f"/api/scheduler/jobs/{service['class_job']}")["data"]
    assert (job["name"], job["hour"], job["retries"]) == ("Browser echo, edited", "8", 2)
    assert job["pub_args"] == ["from", "the browser"]
    tab.clean()


def test_06_create_a_bash_job_run_it_now_and_watch_its_output_live(
    tab: Watched, service: dict[str, Any]
) -> None:
    page = tab.page
    page.goto(url(service, "/ui/new-job?kind=script"))
    page.get_by_label("Job id").fill("browser_bash")
    page.get_by_label("Script type").select_option("bash")
    page.get_by_label("Script path").fill(str(service["live"]))
    # seconds other than :00, which chromium would drop from the input's value
    later = (datetime.now(UTC).astimezone() + timedelta(days=30)).replace(second=7)
    page.get_by_label("Run at").fill(later.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_label("Arguments, one per line").fill("the browser")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name=re.compile("bash:")).wait_for()
    assert page.url.endswith("/ui/jobs/browser_bash")
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url(re.compile("/ui/executions/"))
    live = page.locator("#exec-live")
    # the first line arrives while the run goes on, before the warning is printed
    live.get_by_text("hello from the browser").wait_for(timeout=10_000)
    assert "a warning" not in live.inner_text()
    assert page.locator("#exec-status").inner_text() == "running"
    # the warning arrives next, marked as standard error, the run still going
    page.locator("#exec-live .err-text", has_text="a warning about the browser").wait_for()
    assert "done" not in live.inner_text()
    # at the end the page shows the record: stdout and stderr apart
    page.locator("#exec-status", has_text="completed").wait_for(timeout=20_000)
    page.locator("#exec-watch").wait_for(state="detached")  # the page read itself again
    assert page.locator("#exec-stdout").inner_text().strip() == "hello from the browser\ndone"
    assert page.locator("#exec-stderr").inner_text().strip() == "a warning about the browser"
    service["execution"] = page.url.rsplit("/", 1)[1]
    tab.clean()


def test_06b_script_form_errors_and_the_script_edit_form(
    tab: Watched, service: dict[str, Any]
) -> None:
    page = tab.page
    page.goto(url(service, "/ui/new-job?kind=script"))
    page.get_by_label("Job id").fill("browser_past")
    page.get_by_label("Script path").fill(str(service["both"]))
    page.get_by_label("Run at").fill("2020-01-01T10:00:05")  # seconds: see test_06
    page.get_by_role("button", name="Create").click()
    error = page.locator("#run_date-error")
    error.wait_for()
    assert "is in the past" in error.inner_text()
    page.get_by_label("Run at").fill("2035-01-01T10:00:05")
    page.get_by_label("Script path").fill("/etc/passwd")
    page.get_by_role("button", name="Create").click()
    page.locator("#script_path-error").wait_for()
    assert "/etc/passwd" in page.locator("#script_path-error").inner_text()
    tab.refused(400, 2)
    # a script job keeps its schedule and script; name, description and arguments change
    page.goto(url(service, "/ui/jobs/browser_bash/edit"))
    assert page.get_by_label("Minute").count() == 0
    page.get_by_label("Name").fill("Bash from the browser")
    page.get_by_label("Arguments, one per line").fill("one\ntwo")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", name=re.compile("Bash from the browser")).wait_for()
    job = api(service, "GET", "/api/scheduler/jobs/browser_bash")["data"]
    assert (job["name"], job["pub_args"]) == ("Bash from the browser", ["one", "two"])
    tab.clean()


def test_07_pause_and_resume(tab: Watched, service: dict[str, Any]) -> None:
    page = tab.page
    page.goto(url(service, f"/ui/jobs/{service['class_job']}"))
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("button", name="Resume").wait_for()
    assert page.locator("h1 .state").inner_text() == "paused"
    assert api(service, "GET", f"/api/scheduler/jobs/{service['class_job']}")["data"]["is_paused"]
    page.get_by_role("button", name="Resume").click()
    page.get_by_role("button", name="Pause").wait_for()
    assert page.locator("h1 .state").inner_text() == "active"
    page.get_by_role("button", name="Disable").click()
    page.get_by_role("button", name="Enable").wait_for()
    assert page.locator("h1 .state").inner_text() == "disabled"
    page.get_by_role("button", name="Enable").click()
    page.get_by_role("button", name="Disable").wait_for()
    tab.clean()


def test_08_cancel_a_running_execution(tab: Watched, service: dict[str, Any]) -> None:
    api(
        service,
        "POST",
        "/api/schedule-job",
        json={
            "job_id": "browser_slow",
            "job_type": "bash",
            "script_path": str(service["slow"]),
            "run_date": "2035-01-01T00:00:00",
        },
    )
    page = tab.page
    page.goto(url(service, "/ui/jobs/browser_slow"))
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url(re.compile("/ui/executions/"))
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    page.locator("#exec-status", has_text="cancelled").wait_for(timeout=20_000)
    page.wait_for_load_state("load")
    tab.clean()


def test_09_delete_asks_first(tab: Watched, service: dict[str, Any]) -> None:
    page = tab.page
    page.goto(url(service, "/ui/jobs/browser_slow"))
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete").click()
    page.wait_for_timeout(300)
    assert page.url.endswith("/ui/jobs/browser_slow")
    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(url(service, "/ui/"))
    assert "browser_slow" in messages[0] or "slow.sh" in messages[0]
    assert "browser_slow" not in page.locator("table.jobs").inner_text()
    tab.clean()


def test_10_keyboard_and_labels(tab: Watched, service: dict[str, Any]) -> None:
    page = tab.page
    page.goto(url(service, "/ui/"))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # the filter form works from the keyboard alone
    page.get_by_label("Name or id").focus()
    page.keyboard.type("edited")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=edited"))
    assert page.locator("table.jobs tbody tr").count() == 1
    unlabelled_js = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                      && !(el.textContent || '').trim())
        .map(el => el.outerHTML.slice(0, 80))"""
    for path in (
        "/ui/",
        "/ui/new-job",
        "/ui/new-job?kind=script",
        f"/ui/jobs/{service['class_job']}/edit",
        "/ui/users",
        "/ui/servers",
        "/ui/nodes",
        "/ui/audit",
        f"/ui/executions/{service['execution']}",
    ):
        page.goto(url(service, path))
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # the forms' job classes arrive from available-jobs
        assert page.evaluate(unlabelled_js) == [], path
    tab.clean()


def pages_to_shoot(service: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("jobs", "/ui/"),
        ("job-class", f"/ui/jobs/{service['class_job']}"),
        ("job-script", "/ui/jobs/browser_bash"),
        ("execution", f"/ui/executions/{service['execution']}"),
        ("new-class-job", "/ui/new-job"),
        ("new-script-job", "/ui/new-job?kind=script"),
        ("edit-job", f"/ui/jobs/{service['class_job']}/edit"),
        ("charts", "/ui/charts"),
        ("users", "/ui/users"),
        ("servers", "/ui/servers"),
        ("nodes", "/ui/nodes"),
        ("audit", "/ui/audit"),
    ]


def test_11_every_page_at_both_widths(browser: Any, tab: Watched, service: dict[str, Any]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    state = tab.page.context.storage_state()
    for width, (w, h) in WIDTHS.items():
        context = browser.new_context(
            viewport={"width": w, "height": h}, timezone_id=ZONE, locale=LOCALE, storage_state=state
        )
        watched = Watched(context.new_page())
        page = watched.page
        for name, path in pages_to_shoot(service):
            page.goto(url(service, path))
            page.wait_for_load_state("load")
            page.wait_for_timeout(300)  # local times written, forms filled
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= w, f"{name} is {overflow} px wide at {w} px"
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
            watched.clean()
        context.close()
    # the sign-in page, signed out
    for width, (w, h) in WIDTHS.items():
        context = browser.new_context(viewport={"width": w, "height": h})
        watched = Watched(context.new_page())
        watched.page.goto(url(service, "/ui/sign-in"))
        watched.page.screenshot(path=str(SHOTS / f"sign-in-{width}.png"), full_page=True)
        watched.clean()
        context.close()


def test_12_sign_out_ends_the_session(tab: Watched, service: dict[str, Any]) -> None:
    page = tab.page
    page.goto(url(service, "/ui/"))
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile("/ui/sign-in"))
    page.goto(url(service, "/ui/users"))
    assert "/ui/sign-in" in page.url
    status = page.evaluate(
        "fetch('/api/scheduler/jobs', {credentials: 'same-origin'}).then(r => r.status)"
    )
    assert status == 401
    tab.refused(401, 1)
    tab.clean()


def test_13_the_jobs_list_updates_itself_from_the_event_stream(
    browser: Any, service: dict[str, Any]
) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id=ZONE, locale=LOCALE
    )
    try:
        watched = Watched(context.new_page())
        page = watched.page
        sign_in(page, service, service["key"])
        page.evaluate("window.__not_reloaded = true")
        assert page.locator("table.jobs").get_by_text("Made elsewhere").count() == 0
        api(
            service,
            "POST",
            "/api/scheduler/jobs",
            json={
                "user_id": service["user"],
                "job_class_string": "jobs.echo.EchoJob",
                "name": "Made elsewhere",
                "minute": "0",
                "hour": "5",
            },
        )
        page.locator("table.jobs").get_by_text("Made elsewhere").wait_for(timeout=10_000)
        assert page.evaluate("window.__not_reloaded") is True  # updated in place
        assert int(page.locator("body").get_attribute("data-refreshed") or 0) >= 1
        watched.clean()
    finally:
        context.close()


def sign_in(page: Any, service: dict[str, Any], key: str) -> None:
    page.goto(url(service, "/ui/"))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Jobs").wait_for()


def test_14_a_user_key_sees_only_its_own(browser: Any, service: dict[str, Any]) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, timezone_id=ZONE, locale=LOCALE
    )
    try:
        watched = Watched(context.new_page())
        page = watched.page
        sign_in(page, service, service["other_key"])
        table = page.locator("table.jobs").inner_text()
        assert "Linus echo" in table
        assert "Browser echo" not in table and "Bash from the browser" not in table
        assert "Linus Pauling (user)" in page.locator("header .who").inner_text()
        assert page.get_by_role("link", name="Audit").count() == 0
        page.goto(url(service, "/ui/users"))
        assert page.get_by_role("heading", name=re.compile("Linus Pauling")).count() == 1
        assert page.get_by_text("Grace Hopper").count() == 0
        page.goto(url(service, "/ui/servers"))
        assert page.get_by_text("Linus box").count() == 1
        page.screenshot(path=str(SHOTS / "user-servers-390.png"), full_page=True)
        # another user's job is missing, as over the API
        answer = page.goto(url(service, f"/ui/jobs/{service['class_job']}"))
        assert answer is not None and answer.status == 404
        answer = page.goto(url(service, "/ui/audit"))
        assert answer is not None and answer.status == 403
        watched.refused(404, 1)
        watched.refused(403, 1)
        watched.clean()
    finally:
        context.close()


def test_15_users_page_makes_and_revokes_a_key(tab: Watched, service: dict[str, Any]) -> None:
    page = tab.page
    sign_in(page, service, service["key"])
    page.goto(url(service, "/ui/users"))
    linus = page.locator("section.user", has_text="Linus Pauling")
    before = linus.locator("tbody tr").count()
    linus.get_by_role("button", name="New key").click()
    page.locator("#new-key").wait_for()
    made = page.locator("#new-key-value").inner_text()
    assert made.startswith("cw_")
    check = requests.get(url(service, "/api/users/"), headers={"X-API-Key": made}, timeout=5)
    assert check.status_code == 200
    page.reload()
    linus = page.locator("section.user", has_text="Linus Pauling")
    assert linus.locator("tbody tr").count() == before + 1
    row = linus.locator("tbody tr", has_text=made[:8])
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    page.locator("section.user", has_text="Linus Pauling").locator(
        "tbody tr", has_text=made[:8]
    ).wait_for(state="detached")
    check = requests.get(url(service, "/api/users/"), headers={"X-API-Key": made}, timeout=5)
    assert check.status_code == 401
    tab.clean()
