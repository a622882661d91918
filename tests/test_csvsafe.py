"""csvsafe.py: formula-safe CSV cells, in the package's statistics CSV and in the example's exports
(issue 15, row 7)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis

from flask_jobmonitor import csvsafe
from flask_jobmonitor.records.models import file_table
from flask_jobmonitor.state import get_state

from .support.databases import dispose_engines
from .support.examples import build_catalogue
from .support.workers import run_worker

HYPERLINK = '=HYPERLINK("http://evil.example","x")'


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-3", "'-3"),  # text: it cannot be told from a formula's start
        ("a=1", "a=1"),
        ("", ""),
        ("'=1", "'=1"),  # already text for a spreadsheet
        (-3, -3),  # a number stays a number
        (-2.5, -2.5),
        (Decimal("-1.10"), Decimal("-1.10")),
        (None, None),
        (True, True),
    ],
)
def test_only_text_that_starts_like_a_formula_is_escaped(value: Any, written: Any) -> None:
    assert csvsafe.cell(value) == written
    assert csvsafe.row([value, 7]) == [written, 7]


def test_a_negative_number_stays_a_number_in_the_written_file() -> None:
    out = io.StringIO()
    csv.writer(out).writerow(csvsafe.row([-3, -0.5, "-3"]))
    assert out.getvalue() == "-3,-0.5,'-3\r\n"


def test_the_statistics_csv_escapes_text_cells() -> None:
    """The statistics CSV holds dates and numbers today; its writer escapes text all the same,
    so that a column of names added later cannot carry a formula."""
    from flask_jobmonitor.web.admin.statistics import _csv

    app = Flask(__name__)
    with app.test_request_context():
        response = _csv([["type", "created"], ["=cmd|' /C calc'!A0", -3]], "statistics.csv")
    assert list(csv.reader(io.StringIO(response.get_data(as_text=True)))) == [
        ["type", "created"],
        ["'=cmd|' /C calc'!A0", "-3"],
    ]


# -- the example's import report and export -------------------------------------------------------


@pytest.fixture
def catalogue(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    from example_app.extensions import db
    from example_app.models import Product

    Redis.from_url(redis_url).flushdb()
    app = build_catalogue(database_url, redis_url, tmp_path / "files", init_db=False, seed=False)
    with app.app_context():
        db.create_all()
        db.session.execute(sa.delete(Product))
        db.session.commit()
        yield app
        db.session.execute(sa.delete(Product))
        db.session.commit()
    dispose_engines(app)


def _file_text(app: Flask, job_id: str, filename: str) -> list[list[str]]:
    from example_app.extensions import db

    with db.engine.connect() as connection:
        key = connection.execute(
            sa.select(file_table.c.storage_key).where(file_table.c.job_id == job_id, file_table.c.filename == filename)
        ).scalar_one()
    with get_state(app).storage.open(key) as stream:
        return list(csv.reader(io.StringIO(stream.read().decode())))


def test_a_formula_in_an_imported_sku_is_escaped_in_the_report_and_in_later_exports(catalogue: Flask) -> None:
    from example_app.extensions import jobmonitor
    from example_app.tasks import export_products, import_products

    rows = [["sku", "name", "price", "stock"], [HYPERLINK, "Saved", "1.5", "1"], ["@SUM(A1)", "Rejected", "x", "1"]]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    imported = jobmonitor.enqueue(
        import_products, files={"products.csv": io.BytesIO(text.getvalue().encode())}, row_delay=0
    )
    run_worker(catalogue)
    report = _file_text(catalogue, imported.id, "rejected-rows.csv")
    assert report[1][:2] == ["3", "'@SUM(A1)"]

    exported = jobmonitor.enqueue(export_products, row_delay=0)
    run_worker(catalogue)
    export = _file_text(catalogue, exported.id, "products.csv")
    assert export[1] == ["'" + HYPERLINK, "Saved", "1.5", "1"]
