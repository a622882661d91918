"""A clerk of the example catalogue who works in French, in a real browser, across a whole task:
chooses Français in the menu, starts an import, is told it started, follows it, watches it end,
is notified, and reads every time and count the way a French reader does; the page passes axe
in French too, and says its language."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from ..support.browser import LiveApp, assert_accessible
from .test_process_tracker import JOB_TIMEOUT_MS, log_in, products_csv

pytestmark = pytest.mark.slow


def test_a_clerk_works_in_french_from_start_to_notification(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "clerk")

    page.locator("#catalogue-language").click()
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#catalogue-language")).to_contain_text("Français")

    data, _bad = products_csv("fr", rows=40)
    page.set_input_files('input[name="file"]', files=[{"name": "produits.csv", "mimeType": "text/csv", "buffer": data}])
    page.get_by_role("button", name="Import CSV").click()  # the catalogue's own button (its words)
    flash = page.locator(".alert", has_text="a été lancée")
    expect(flash).to_contain_text("La tâche « Import produits.csv » a été lancée.")
    flash.get_by_role("link", name="Suivre son avancement").click()

    detail = page.locator("#jm-detail")
    expect(detail).to_have_attribute("data-jm-active", "false", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("h4 [data-jm='status-label']")).to_have_text("Terminée", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_role("heading", name=re.compile(r"^\d+ étapes?$"))).to_be_visible()
    # the bell: its one notification says the job's end in French
    page.locator("#jm-bell").click()
    expect(page.locator("[data-jm-notification]").first).to_contain_text("Import produits.csv : Terminée")
    page.keyboard.press("Escape")

    page.goto("/admin/jobs/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    row = page.locator("#jm-list tr[data-job-id]", has_text="Import produits.csv").first
    expect(row.locator("[data-jm='status-label']")).to_have_text("Terminée")
    # "il y a 5 s", "à l'instant": the browser's French words for a time that keeps moving
    expect(row.locator("time[data-jm-ago]").first).to_have_text(re.compile(r"^(il y a .+|à l'instant)$"))
    expect(page.get_by_label("Du", exact=True)).to_have_attribute("type", "date")
    expect(page.get_by_role("button", name="Filtrer")).to_be_visible()
    assert_accessible(page, "the job list in French")

    page.locator("#catalogue-language").click()
    page.get_by_role("button", name="Deutsch").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(row.locator("[data-jm='status-label']")).to_have_text("Abgeschlossen")
