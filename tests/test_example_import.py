"""The example app's product import, run by a real worker: what the person who imports reads.

A bad row (``price=nan`` among them: ``float()`` reads it) is a rejected row with its reason,
not a database error; a file that is not a CSV of products fails the job with a message for
people (``JobFailed``), which the clerk reads as is. The example's own SQLite database.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_jobmonitor.records.models import job_table, subtask_table

from .support.databases import dispose_engines
from .support.examples import build_catalogue, log_in
from .support.queues import empty_queues
from .support.workers import run_worker


@pytest.fixture
def catalogue(redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = build_catalogue(f"sqlite:///{tmp_path / 'catalogue.db'}", redis_url, tmp_path / "files")
    empty_queues(redis_url, ("high", "default", "low"))
    yield app
    dispose_engines(app)


def _import(app: Flask, csv_text: str | bytes) -> dict[str, Any]:
    """Import ``csv_text`` (bytes: as they are) as the clerk, run it with a real worker; the job's row."""
    from example_app.extensions import db

    clerk = log_in(app, "clerk")
    content = csv_text.encode() if isinstance(csv_text, str) else csv_text
    data = {"file": (io.BytesIO(content), "products.csv")}
    assert clerk.post("/import", data=data, content_type="multipart/form-data").status_code == 302
    run_worker(app)
    with app.app_context(), db.engine.connect() as connection:
        return dict(connection.execute(sa.select(job_table)).mappings().one())


def _rejected(app: Flask, job_id: str) -> dict[str, str]:
    from example_app.extensions import db

    t = subtask_table.c
    with app.app_context(), db.engine.connect() as connection:
        rows = connection.execute(sa.select(t.name, t.message).where(t.job_id == job_id, t.status == "error"))
        return {row.name: row.message for row in rows}


def test_rows_with_a_price_that_is_not_a_number_are_rejected_with_their_reason(catalogue: Flask) -> None:
    job = _import(
        catalogue,
        "sku,name,price,stock\n"
        "NEW-1,Good,1.50,3\n"
        "NEW-2,Not a number,nan,1\n"
        "NEW-3,Infinite,inf,1\n"
        "NEW-4,Words,twelve,1\n"
        "NEW-5,Half a box,2.00,1.5\n"
        "NEW-6,Good too,2.00,\n",
    )

    assert job["status"] == "completed", job["error_detail"]
    assert _rejected(catalogue, job["id"]) == {
        "line 3": "price 'nan' is not a number",
        "line 4": "price 'inf' is not a number",
        "line 5": "price 'twelve' is not a number",
        "line 6": "stock '1.5' is not a whole number",
    }


def test_a_file_without_a_price_column_fails_with_a_message_the_clerk_reads(catalogue: Flask) -> None:
    job = _import(catalogue, "sku,name\nNEW-1,No price\n")

    message = "The file has no column price: its first line must name the columns sku, name, price."
    assert (job["status"], job["error_message"]) == ("failed", message)
    page = unescape(log_in(catalogue, "clerk").get(f"/admin/jobs/{job['id']}/").get_data(as_text=True))
    assert message in page
    assert "Traceback" not in page and "Error details" not in page
    admin_page = log_in(catalogue, "admin").get(f"/admin/jobs/{job['id']}/").get_data(as_text=True)
    assert "Error details" in admin_page and "Traceback" in admin_page


def test_a_file_that_is_not_utf8_fails_with_a_message_the_clerk_reads(catalogue: Flask) -> None:
    job = _import(catalogue, "sku,name,price\nNEW-1,Caf\xe9,1.00\n".encode("latin-1"))

    assert job["status"] == "failed"
    assert job["error_message"] == 'The file is not UTF-8 text: save it as "CSV UTF-8" and import it again.'
