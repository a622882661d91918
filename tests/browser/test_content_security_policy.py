"""The job pages work under their own Content-Security-Policy (headers.py), in a real browser.

An admin and a clerk go through a whole task each: start an import, follow it on the list, its
page and the "My jobs" page while the live refresh swaps in parts, answer the confirm questions
of a bulk action, of Stop and of "Pause all jobs", open the statistics with their charts and the
queue health, open the menu and the bell. Every ``securitypolicyviolation`` event of every page
(reported from an init script, so none is lost to a navigation) and every console message about
the policy is collected: there must be none. The progress bars must be as wide as their figure
says, drawn from the CSS (no style attribute, which the policy refuses).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ..support.browser import LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, job_row, log_in, products_csv, start_import

pytestmark = pytest.mark.slow

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
    window.__jmCspViolation({
        page: location.pathname,
        directive: event.violatedDirective,
        blocked: event.blockedURI,
        sample: event.sample,
        source: event.sourceFile + ":" + event.lineNumber,
    });
});
"""

#: Each bar: the width drawn, in percent of its track, the figure of its class and aria-valuenow.
BAR_WIDTHS = """() => Array.from(document.querySelectorAll('[data-jm="bar"]')).map((bar) => {
    const drawn = 100 * bar.getBoundingClientRect().width / bar.parentElement.getBoundingClientRect().width;
    const match = bar.className.match(/jm-w-([0-9]+)/);
    return {
        drawn: drawn,
        cls: match ? parseInt(match[1], 10) : null,
        value: parseFloat(bar.getAttribute("aria-valuenow")),
        moving: bar.classList.contains("progress-bar-animated"),
        style: bar.getAttribute("style"),
    };
})"""


class PolicyWatch:
    """The violations and policy console messages of every page of one browser context, and the
    policy each job page was served with."""

    def __init__(self) -> None:
        self.violations: list[dict[str, Any]] = []
        self.console: list[str] = []
        self.policies: dict[str, str | None] = {}

    def watch(self, page: Page) -> Page:
        page.context.expose_function("__jmCspViolation", self._violation)
        page.context.add_init_script(REPORT_VIOLATIONS)
        page.context.on("page", self._listen)
        self._listen(page)
        return page

    def _listen(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("response", self._response)

    def _violation(self, violation: dict[str, Any]) -> None:
        self.violations.append(violation)

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.console.append(text)

    def _response(self, response: Any) -> None:
        if response.request.resource_type == "document" and "/admin/" in response.url:
            self.policies[response.url] = response.headers.get("content-security-policy")

    def assert_clean(self) -> None:
        assert self.violations == [], self.violations
        assert self.console == [], self.console


def assert_bars_drawn_as_their_figures(page: Page) -> int:
    """Every progress bar of the page is as wide as its class says, and the class is its figure
    (rounded down); an indeterminate bar (moving, no figure) is full. Returns how many."""
    bars = page.evaluate(BAR_WIDTHS)
    for bar in bars:
        assert bar["style"] is None, bar
        assert bar["cls"] is not None, bar
        assert abs(bar["drawn"] - bar["cls"]) < 1.5, bar
        if bar["value"] or not bar["moving"]:
            assert bar["cls"] == int(bar["value"]), bar
    return len(bars)


def open_menus(page: Page) -> None:
    """Flask-Admin's menu category (a ``javascript:void(0)`` toggle) and the job bell."""
    page.locator("a.dropdown-toggle", has_text="Activity").click()
    expect(page.locator(".dropdown-menu.show")).to_be_visible()
    page.keyboard.press("Escape")
    page.locator("#jm-bell").click()
    expect(page.locator(".jm-notification-menu")).to_be_visible()
    page.keyboard.press("Escape")


def answer_next_dialog(page: Page, accept: bool) -> list[str]:
    questions: list[str] = []

    def answer(dialog: Any) -> None:
        questions.append(dialog.message)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()

    page.once("dialog", answer)
    return questions


def test_the_admin_goes_through_every_job_page_without_a_policy_violation(new_page: Any, live_app: LiveApp) -> None:
    watch = PolicyWatch()
    admin = watch.watch(new_page())
    log_in(admin, "admin")
    data, _bad = products_csv("csp-admin", rows=300)
    job_id = start_import(admin, "csp-admin.csv", data)

    # the list: the row refreshes live until the import ends, its bar drawn from its class
    admin.goto("/admin/jobs/")
    row = job_row(admin, job_id)
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)
    expect(row.locator('[data-jm="bar"]')).to_have_class(re.compile(r"\bjm-w-100\b"))
    assert assert_bars_drawn_as_their_figures(admin) >= 1
    open_menus(admin)

    # a bulk action asks first: dismissed, nothing happens; accepted, the job is deleted
    row.locator('input[name="ids"]').check()
    admin.select_option("#jm-bulk-action", "delete")
    questions = answer_next_dialog(admin, accept=False)
    admin.get_by_role("button", name="Apply to selected").click()
    assert questions == ["Apply this action to the selected jobs?"]
    expect(row).to_be_visible()
    questions = answer_next_dialog(admin, accept=True)
    admin.get_by_role("button", name="Apply to selected").click()
    expect(admin.locator(".alert")).to_contain_text("1 deleted")
    assert questions == ["Apply this action to the selected jobs?"]
    expect(job_row(admin, job_id)).to_have_count(0)

    # a long import: its page refreshes live; Stop asks first
    long_data, _bad = products_csv("csp-admin-long", rows=3000)
    long_id = start_import(admin, "csp-admin-long.csv", long_data)
    admin.goto(f"/admin/jobs/{long_id}/")
    detail = admin.locator("#jm-detail")
    expect(detail.locator('[data-jm="status-label"]').first).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
    admin.wait_for_function(
        """() => parseFloat(document.querySelector('#jm-detail [data-jm="bar"]').getAttribute("aria-valuenow")) > 0""",
        timeout=JOB_TIMEOUT_MS,
    )
    assert assert_bars_drawn_as_their_figures(admin) == 1
    questions = answer_next_dialog(admin, accept=True)
    detail.locator('[data-jm="actions"] [data-jm-action-button="stop"]').click()
    expect(admin.locator(".alert-success")).to_contain_text("Work already done is kept")
    assert questions and questions[0].startswith("Stop this job")
    expect(admin.locator('#jm-detail [data-jm="status-label"]').first).to_have_text("Stopped", timeout=JOB_TIMEOUT_MS)
    assert_bars_drawn_as_their_figures(admin)

    # "My jobs", the statistics with their charts, the queue health and its "Pause all jobs?"
    admin.goto("/admin/my-jobs/")
    expect(admin.locator(f'[data-job-id="{long_id}"]').first).to_be_visible()
    assert_bars_drawn_as_their_figures(admin)
    admin.goto("/admin/job-statistics/")
    expect(admin.locator("svg.jm-chart")).to_have_count(3)
    admin.goto("/admin/queues/")
    expect(admin.locator("svg.jm-chart")).to_have_count(1)
    questions = answer_next_dialog(admin, accept=False)
    admin.locator('[data-jm-action="pause-all"]').click()
    assert questions and questions[0].startswith("Pause all jobs?")
    expect(admin.locator('[data-jm="pause-banner"]')).to_have_count(0)
    open_menus(admin)

    served = {url: policy for url, policy in watch.policies.items() if "/admin/jobs/" in url or "statistics" in url}
    assert served and all(policy and "script-src 'self'" in policy for policy in served.values()), served
    watch.assert_clean()


def test_the_clerk_follows_an_import_without_a_policy_violation(new_page: Any, live_app: LiveApp) -> None:
    watch = PolicyWatch()
    clerk = watch.watch(new_page())
    log_in(clerk, "clerk")
    data, _bad = products_csv("csp-clerk", rows=600)
    job_id = start_import(clerk, "csp-clerk.csv", data)

    # the job's page, live until it ends (then it reloads itself once)
    clerk.goto(f"/admin/jobs/{job_id}/")
    expect(clerk.locator("#jm-detail")).to_have_attribute("data-jm-active", "false", timeout=JOB_TIMEOUT_MS)
    expect(clerk.locator('#jm-detail [data-jm="status-label"]').first).to_have_text("Completed")
    assert assert_bars_drawn_as_their_figures(clerk) == 1

    # the list and "My jobs", after a second import started from the list's menu
    job_id = start_import(clerk, "csp-clerk-2.csv", data)
    clerk.goto("/admin/jobs/")
    row = job_row(clerk, job_id)
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)
    assert assert_bars_drawn_as_their_figures(clerk) >= 2
    clerk.goto("/admin/my-jobs/")
    assert assert_bars_drawn_as_their_figures(clerk) >= 0
    open_menus(clerk)

    # a page the clerk may not open: the error page in the layout, under the same policy
    response = clerk.goto("/admin/job-statistics/")
    assert response is not None and response.status == 403
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
    watch.assert_clean()
