"""The example catalogue's own pages in a real browser, as its people use them.

A manager raises and lowers prices from the Products page (Flask-Admin's "With selected"
actions, behind the app's CSRF protection); a clerk never sees the admin's run on a profile
page; every page offers Log out; someone else's job answers a "not found" page that keeps the
menu and leads back; an uploaded file is offered back under the name it was uploaded with.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ..support.browser import LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, _started_job_id, log_in, products_csv

pytestmark = pytest.mark.slow


def _product_row(page: Page, sku: str) -> Any:
    return page.locator("tr", has=page.locator("td.col-sku", has_text=sku))


def _wait_until_ended(page: Page, job_id: str) -> None:
    page.goto(f"/admin/jobs/{job_id}/")
    detail = page.locator("#jm-detail")
    expect(detail).to_have_attribute("data-jm-active", "false", timeout=JOB_TIMEOUT_MS)
    page.reload()  # the page reloads itself once the job ends; read the final one
    expect(page.locator("#jm-detail")).to_have_attribute("data-jm-active", "false")


def _mass_edit(page: Page, skus: list[str], action: str) -> str:
    """Tick ``skus`` on the Products page, choose ``action`` under "With selected", confirm;
    return the id of the job it started (from the flash message)."""
    page.goto("/admin/product/?search=SKU-000")
    for sku in skus:
        _product_row(page, sku).locator("input.action-checkbox").check()
    questions: list[str] = []

    def answer(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    page.get_by_role("button", name="With selected").click()  # Flask-Admin's actions menu
    page.get_by_text(action, exact=True).click()
    expect(page.locator(".alert", has_text="started")).to_be_visible()
    assert questions and "prices by 5%" in questions[0]
    assert "CSRF" not in page.content()
    return _started_job_id(page, f"Change prices of {len(skus)} products by {'+5' if 'Raise' in action else '-5'}%")


def _prices(page: Page, skus: list[str]) -> dict[str, float]:
    page.goto("/admin/product/?search=SKU-000")
    return {sku: float(_product_row(page, sku).locator("td.col-price").inner_text()) for sku in skus}


def test_the_products_page_raises_and_lowers_prices_in_a_real_browser(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "manager")
    skus = ["SKU-0003", "SKU-0004"]
    before = _prices(page, skus)
    untouched = _prices(page, ["SKU-0005"])

    job_id = _mass_edit(page, skus, "Raise prices by 5%")
    _wait_until_ended(page, job_id)
    expect(page.locator('#jm-detail [data-jm="status-label"]').first).to_have_text("Completed")
    raised = _prices(page, skus)
    assert raised == {sku: round(price * 1.05, 2) for sku, price in before.items()}
    assert _prices(page, ["SKU-0005"]) == untouched

    job_id = _mass_edit(page, skus, "Lower prices by 5%")
    _wait_until_ended(page, job_id)
    assert _prices(page, skus) == {sku: round(price * 0.95, 2) for sku, price in raised.items()}

    # the edit form carries the same token: saving a product works too
    page.goto("/admin/product/?search=SKU-0006")
    _product_row(page, "SKU-0006").locator('a[title="Edit Record"]').click()
    page.fill("#name", "Product 6, renamed in the browser")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".alert")).to_contain_text("Record was successfully saved.")
    expect(_product_row(page, "SKU-0006")).to_contain_text("Product 6, renamed in the browser")


def test_a_profile_page_shows_the_clerk_only_runs_the_clerk_may_open(new_page: Any, live_app: LiveApp) -> None:
    admin = new_page()
    log_in(admin, "admin")
    admin.goto("/admin/export_profiles/")
    admin.locator("tr", has_text="Products in stock").get_by_role("button", name="Export now").click()
    admins_run = admin.locator("tr", has_text="Products in stock").locator(".jm-last-execution [data-job-id]")
    expect(admins_run).to_contain_text("Alice Admin")
    admin_job_id = admins_run.get_attribute("data-job-id")
    assert admin_job_id

    clerk = new_page()
    log_in(clerk, "clerk")
    clerk.goto("/admin/export_profiles/")
    row = clerk.locator("tr", has_text="Products in stock")
    last = row.locator(".jm-last-execution")
    expect(last).to_be_visible()
    assert admin_job_id not in clerk.content()
    expect(last).not_to_contain_text("Alice Admin")
    expect(last).not_to_contain_text("Export “Products in stock”")  # the admin's run: nothing of it
    expect(last).to_contain_text("Never run.")

    # once the clerk runs it, the clerk's own run is the one shown
    row.get_by_role("button", name="Export now").click()
    expect(clerk.locator("tr", has_text="Products in stock").locator(".jm-last-execution")).to_contain_text(
        "Chris Clerk"
    )
    assert admin_job_id not in clerk.content()


def test_every_page_of_the_example_has_log_out_and_one_bell(new_page: Any, live_app: LiveApp) -> None:
    admin = new_page()
    log_in(admin, "admin")
    admin.goto("/admin/")
    admin.get_by_role("button", name="Stock report").click()
    job_id = _started_job_id(admin, "Stock report")
    pages = [
        "/admin/",
        "/admin/product/",
        "/admin/product/edit/?id=1",
        "/admin/import_profiles/",
        "/admin/export_profiles/",
        "/admin/jobs/",
        f"/admin/jobs/{job_id}/",
        "/admin/my-jobs/",
        "/admin/job-statistics/",
        "/admin/queues/",
        "/admin/jobs/00000000-0000-0000-0000-000000000000/",  # the "not found" page too
    ]
    for path in pages:
        admin.goto(path)
        expect(admin.get_by_role("button", name="Log out Alice Admin"), path).to_be_visible()
        # the job notifications' bell on every page (the Products pages too), never twice
        expect(admin.locator("#jm-bell"), path).to_have_count(1)

    clerk = new_page()
    log_in(clerk, "clerk")
    for path in ["/admin/", "/admin/product/", "/admin/jobs/", "/admin/job-statistics/"]:  # the last: 403
        clerk.goto(path)
        expect(clerk.get_by_role("button", name="Log out Chris Clerk"), path).to_be_visible()
    clerk.get_by_role("button", name="Log out Chris Clerk").click()
    expect(clerk).to_have_url(re.compile(r"/login$"))
    clerk.goto("/admin/jobs/")
    expect(clerk).to_have_url(re.compile(r"/login\?next="))


def test_someone_elses_job_is_a_not_found_page_with_the_menu_and_a_way_back(new_page: Any, live_app: LiveApp) -> None:
    admin = new_page()
    log_in(admin, "admin")
    admin.goto("/admin/")
    admin.get_by_role("button", name="Stock report").click()
    job_id = _started_job_id(admin, "Stock report")

    clerk = new_page()
    log_in(clerk, "clerk")
    response = clerk.goto(f"/admin/jobs/{job_id}/")
    assert response is not None and response.status == 404
    expect(clerk.get_by_role("heading", name="Job not found")).to_be_visible()
    expect(clerk.locator(".navbar").get_by_text("Activity")).to_be_visible()  # the admin menu is there
    assert job_id not in clerk.content() and "Stock report" not in clerk.locator("body").inner_text()
    clerk.get_by_role("link", name="Back to the job list").click()
    expect(clerk).to_have_url(re.compile(r"/admin/jobs/$"))
    expect(clerk.locator("#jm-list")).to_be_visible()


def test_an_uploaded_file_is_offered_back_under_its_uploaded_name(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "clerk")
    data, _bad = products_csv("name", rows=20)
    page.goto("/admin/import_profiles/")
    row = page.locator("tr", has_text="Supplier price list")
    row.locator('input[name="file"]').set_input_files(
        files=[{"name": "sample-products.csv", "mimeType": "text/csv", "buffer": data}]
    )
    row.get_by_role("button", name="Import").click()
    link = page.locator("tr", has_text="Supplier price list").get_by_role("link", name="Import sample-products.csv")
    job_id = (link.get_attribute("href") or "").rstrip("/").rsplit("/", 1)[-1]
    _wait_until_ended(page, job_id)
    # the task found its file under the key it declared ("products.csv") and completed
    expect(page.locator('#jm-detail [data-jm="status-label"]').first).to_have_text("Completed")
    input_file = page.locator('a[data-jm-file-kind="input"]')
    expect(input_file).to_have_text("sample-products.csv")
    with page.expect_download() as download_info:
        input_file.click()
    download = download_info.value
    assert download.suggested_filename == "sample-products.csv"
    assert Path(download.path()).read_bytes() == data
