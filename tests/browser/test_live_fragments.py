"""What the live refresh shows is what a fresh load shows: one presenter for both.

A clerk watches one import in three places at once (the "My jobs" widget on the home page, the
import profile's "Last execution", the job's own page) while a real forking worker runs it. At
each state it goes through (queued, running, completed) the elements the refresh rewrote (the
widget item, the badge, the progress, the step rows ...) must equal, as normalized markup, the
same elements of a fresh load of the page for the same state.

"The same state" is what the test controls: the import waits queued behind a job that holds
the worker; running, its work horse is held still (``LiveApp.frozen_work``) while the pages
catch up and the fresh loads are made; completed is final. A fresh load is made in a tab whose
own live refresh is blocked, so it shows the page's server rendering only. Left out of the
comparison is only what moves by itself with the clock: the text of a running duration (the
script ticks it), the seconds in a running step's time and the time left, and CSRF tokens.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ..support.browser import LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, job_row, log_in, products_csv, start_import

pytestmark = pytest.mark.slow

CONVERGE_SECONDS = 90  # generous: a loaded machine refreshes late, never wrongly

#: The compared elements of each place, under its root.
WIDGET = ['[data-jm="widget-item"]']
LAST_EXECUTION = ['[data-jm="status"]', '[data-jm="progress"]']
DETAIL = [
    '[data-jm="status"]',
    '[data-jm="progress"]',
    '[data-jm="started"]',
    '[data-jm="ended"]',
    '[data-jm="duration"]',
    '[data-jm="waiting"]',
    '[data-jm="counts"]',
    '[data-jm="error-message"]',
    '[data-jm="time-left-row"]',
    '[data-jm="stop-hint"]',
    'table[data-jm="steps"] tbody',
]

NORMALIZED = r"""([rootSelector, selectors]) => {
    const root = document.querySelector(rootSelector);
    if (!root) { return null; }
    return selectors.map((selector) => {
        const el = root.matches(selector) ? root : root.querySelector(selector);
        if (!el) { return selector + ": missing"; }
        const copy = el.cloneNode(true);
        // the element itself too: querySelectorAll looks only below it (a duration is its own part)
        [copy, ...copy.querySelectorAll("*")].filter((e) => e.matches("[data-jm-since]:not([data-jm-until])"))
            .forEach((e) => { e.textContent = ""; });
        copy.querySelectorAll('[data-jm="step-time"], [data-jm="time-left"]').forEach((e) => {
            e.textContent = e.textContent.replace(/(\d+h )?(\d+m )?\d+[hms]\b|\d+ (min|h)\b|a minute/g, "T");
        });
        copy.querySelectorAll('input[name="csrf_token"]').forEach((e) => e.removeAttribute("value"));
        return copy.outerHTML.replace(/>\s+</g, "><").replace(/\s+/g, " ").trim();
    });
}"""


def markup(page: Page, root: str, selectors: list[str]) -> list[str] | None:
    return page.evaluate(NORMALIZED, [root, selectors])


class Place:
    """One place the job is watched in: its live page, and how to load it afresh."""

    def __init__(self, name: str, page: Page, url: str, root: str, selectors: list[str]) -> None:
        self.name, self.page, self.url, self.root, self.selectors = name, page, url, root, selectors

    def fresh(self, viewer: Page) -> list[str] | None:
        """The elements as a fresh load of the page renders them (its own refresh blocked)."""
        viewer.goto(self.url)
        return markup(viewer, self.root, self.selectors)

    def assert_like_a_fresh_load(self, viewer: Page, state: str) -> None:
        """Wait until the live page shows what a fresh load shows (the live page refreshes every
        second; the fresh load is made again each round, should the state have settled late);
        fail with both if they never agree."""
        deadline = time.monotonic() + CONVERGE_SECONDS
        while True:
            expected = self.fresh(viewer)
            assert expected is not None, f"{self.name}: the fresh load shows no {self.root}"
            shown = markup(self.page, self.root, self.selectors)
            if shown == expected or time.monotonic() > deadline:
                break
            self.page.wait_for_timeout(500)
        assert shown == expected, f"{self.name} ({state}): live {shown}\n!= fresh load {expected}"


def mostly_rejected_csv(rows: int) -> bytes:
    """A products CSV whose validation takes a while (a row at a time) but that saves only every
    50th row."""
    lines = ["sku,name,price,stock"]
    for number in range(1, rows + 1):
        price = "9.99" if number % 50 == 0 else "n/a"
        lines.append(f"BRW-frag-{number:04d},Fragment product {number},{price},1")
    return ("\n".join(lines) + "\n").encode()


def fresh_viewer(page: Page) -> Page:
    """A tab of the same session whose pages never refresh themselves: a page load's markup."""
    viewer = page.context.new_page()
    viewer.route(re.compile(r"/jobmonitor/api/jobs"), lambda route: route.abort())
    return viewer


def test_a_watched_job_looks_live_as_a_fresh_load_shows_it_queued_running_and_completed(
    new_page: Any, live_app: LiveApp
) -> None:
    home = new_page()
    log_in(home, "clerk")
    long_data, _bad = products_csv("frag-hold", rows=3000)
    holder = start_import(home, "holds-the-worker-frag.csv", long_data)

    # the watched import is started from its profile and waits behind the holder
    profiles = home.context.new_page()
    profiles.goto("/admin/import_profiles/")
    row = profiles.locator("tr", has_text="Supplier price list")
    data = mostly_rejected_csv(rows=600)
    row.locator('input[name="file"]').set_input_files(
        files=[{"name": "watched-frag.csv", "mimeType": "text/csv", "buffer": data}]
    )
    row.get_by_role("button", name="Import").click()
    last = profiles.locator("tr", has_text="Supplier price list").locator(".jm-last-execution")
    expect(last).to_contain_text("Import watched-frag.csv")
    job_id = last.locator("[data-job-id]").get_attribute("data-job-id")
    assert job_id
    expect(last.locator('[data-jm="status-label"]')).to_have_text("Queued")

    home.goto("/admin/")
    detail = home.context.new_page()
    detail.goto(f"/admin/jobs/{job_id}/")
    places = [
        Place("widget", home, "/admin/", f'.jm-widget [data-job-id="{job_id}"]', WIDGET),
        Place(
            "last execution",
            profiles,
            "/admin/import_profiles/",
            f'.jm-last-execution [data-job-id="{job_id}"]',
            LAST_EXECUTION,
        ),
        Place("detail page", detail, f"/admin/jobs/{job_id}/", "#jm-detail", DETAIL),
    ]
    navigations: dict[str, list[str]] = {place.name: [] for place in places}
    for place in places:
        place.page.on(
            "framenavigated",
            lambda frame, place=place: (
                navigations[place.name].append(frame.url) if frame == place.page.main_frame else None
            ),
        )
    viewer = fresh_viewer(home)

    for place in places:
        place.assert_like_a_fresh_load(viewer, "queued")

    # the clerk stops the holder from the list: the watched import runs, and is held still mid-way
    jobs = home.context.new_page()
    jobs.goto("/admin/jobs/")
    jobs.once("dialog", lambda dialog: dialog.accept())
    job_row(jobs, holder).locator('[data-jm-action-button="stop"]').click()
    detail.wait_for_function(
        """() => {
            const row = document.querySelector('tr[data-step-position="2"]');
            const badge = row && row.querySelector("[data-jm-step-status]");
            return badge && badge.getAttribute("data-jm-step-status") === "running"
                && parseInt(row.querySelector('[data-jm="step-progress"]').textContent, 10) > 0;
        }""",
        timeout=JOB_TIMEOUT_MS,
    )
    with live_app.frozen_work():
        for place in places:
            expect(place.page.locator(f"{place.root} [data-jm=status-label]").first).to_have_text("Running")
            place.assert_like_a_fresh_load(viewer, "running")
        # the Stop hint came with the Stop button, without a reload
        expect(detail.locator('[data-jm="stop-hint"]')).to_be_visible()
        expect(detail.locator('[data-jm="actions"] [data-jm-action-button="stop"]')).to_be_visible()
    assert all(not urls for urls in navigations.values()), f"a page reloaded itself: {navigations}"

    # completed; the detail page reloads itself once then (to show logs and files), by design
    for place in places[:2]:
        expect(place.page.locator(f"{place.root} [data-jm=status-label]").first).to_have_text(
            "Completed", timeout=JOB_TIMEOUT_MS * 2
        )
    for place in places:
        place.assert_like_a_fresh_load(viewer, "completed")
    assert navigations["widget"] == [] and navigations["last execution"] == [], navigations


def test_the_user_picker_refuses_a_name_it_does_not_know(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "admin")
    page.goto("/admin/jobs/")
    picker = page.locator("[data-jm-user-picker]")
    picker.fill("Nobody Of That Name")
    page.locator("form.jm-filters button[type=submit]").click()
    # refused in the page, said at the field: nothing is sent
    expect(page).to_have_url(re.compile(r"/admin/jobs/$"))
    message = picker.evaluate("(el) => el.validationMessage")
    assert message == "No user called “Nobody Of That Name” has run a job: choose one from the list.", message
    # a name from the list filters by that user's id
    option = page.locator("#jm-users option").first
    label, user_id = option.get_attribute("value"), option.get_attribute("data-id")
    assert label and user_id
    picker.fill(label)
    assert picker.evaluate("(el) => el.validationMessage") == ""
    page.locator("form.jm-filters button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"[?&]user={re.escape(user_id)}(&|$)"))
    expect(picker).to_have_value(label)
    # an id the server does not know (a link, an old bookmark) is said on the page
    page.goto("/admin/jobs/?user=no-such-user")
    expect(page.locator('[data-jm="error"]')).to_have_text(
        "No user with id “no-such-user” has run a job: choose a user from the list."
    )
