"""The example's upload limit (issue 15, row 9): a file past JOBMONITOR_MAX_UPLOAD_BYTES, or a
request past Flask's MAX_CONTENT_LENGTH, answers 413 with the reason, and nothing is stored; a
"Submit again" of an import stores no second copy of its file."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from flask_jobmonitor.records.models import file_table, job_table

from .support.databases import dispose_engines
from .support.examples import build_catalogue, log_in
from .support.storage import files_under

LIMIT = 4096


@pytest.fixture
def catalogue(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    from example_app.extensions import db

    Redis.from_url(redis_url).flushdb()
    app = build_catalogue(
        database_url,
        redis_url,
        tmp_path / "files",
        init_db=False,
        JOBMONITOR_MAX_UPLOAD_BYTES=LIMIT,  # and so MAX_CONTENT_LENGTH = LIMIT + 64 KB
    )
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(sa.delete(file_table))
            connection.execute(sa.delete(job_table))
        yield app
    dispose_engines(app)


@pytest.fixture
def clerk(catalogue: Flask) -> FlaskClient:
    return log_in(catalogue, "clerk")


def _jobs_and_files(app: Flask) -> tuple[int, int, list[Path]]:
    from example_app.extensions import db

    with db.engine.connect() as connection:
        jobs = connection.execute(sa.select(sa.func.count()).select_from(job_table)).scalar_one()
        files = connection.execute(sa.select(sa.func.count()).select_from(file_table)).scalar_one()
    return jobs, files, files_under(app.config["JOBMONITOR_STORAGE_PATH"])


@pytest.mark.parametrize(
    "size",
    [LIMIT + 1, 50 * 1024 * 1024],
    ids=["past-the-job-limit", "50-MB-past-the-request-limit"],
)
def test_an_upload_past_the_limit_is_refused_with_413_and_nothing_is_stored(
    catalogue: Flask, clerk: FlaskClient, size: int
) -> None:
    data = {"file": (io.BytesIO(b"x" * size), "big.csv")}
    response = clerk.post("/import", data=data, content_type="multipart/form-data")

    assert response.status_code == 413
    assert "The file is too large: the files of one job may hold at most 4 KB." in response.get_data(as_text=True)
    assert _jobs_and_files(catalogue) == (0, 0, [])


def test_an_upload_past_the_limit_answers_json_to_a_json_request(catalogue: Flask, clerk: FlaskClient) -> None:
    data = {"file": (io.BytesIO(b"x" * (LIMIT + 1)), "big.csv")}
    response = clerk.post(
        "/import", data=data, content_type="multipart/form-data", headers={"Accept": "application/json"}
    )
    assert response.status_code == 413
    assert response.get_json() == {"error": "The file is too large: the files of one job may hold at most 4 KB."}


def test_an_upload_within_the_limit_starts_the_import(catalogue: Flask, clerk: FlaskClient) -> None:
    data = {"file": (io.BytesIO(b"sku,name,price,stock\nA-1,A,1,1\n"), "products.csv")}
    assert clerk.post("/import", data=data, content_type="multipart/form-data").status_code == 302
    jobs, files, stored = _jobs_and_files(catalogue)
    assert (jobs, files, len(stored)) == (1, 1, 1)


def test_submit_again_stores_no_second_copy_of_the_input(catalogue: Flask) -> None:
    from example_app.extensions import db

    admin = log_in(catalogue, "admin")
    data = {"file": (io.BytesIO(b"sku,name,price,stock\nA-1,A,1,1\n"), "products.csv")}
    assert admin.post("/import", data=data, content_type="multipart/form-data").status_code == 302
    with db.engine.connect() as connection:
        job_id = connection.execute(sa.select(job_table.c.id)).scalar_one()
    # finished without a worker: as a stopped job (restartable)
    with db.engine.begin() as connection:
        connection.execute(sa.update(job_table).values(status="stopped"))

    response = admin.post(f"/admin/jobs/{job_id}/action", data={"action": "restart"})

    assert response.status_code == 302
    jobs, files, stored = _jobs_and_files(catalogue)
    assert (jobs, files, len(stored)) == (2, 2, 1)  # two jobs, two file rows, one stored file


def test_the_request_limit_is_set_from_the_validated_upload_limit(catalogue: Flask, clerk: FlaskClient) -> None:
    # Flask's config holds MAX_CONTENT_LENGTH = None: a setdefault never set it, and every
    # request body was read whole (the file limit only answered after the upload was spooled)
    assert catalogue.config["MAX_CONTENT_LENGTH"] == LIMIT + 64 * 1024
    body = {"percent": "5", "padding": "x" * (LIMIT + 65 * 1024)}
    response = clerk.post("/mass-edit", data=body)  # a form that stores no file
    assert response.status_code == 413
    assert "at most 4 KB" in response.get_data(as_text=True)
    assert _jobs_and_files(catalogue)[:2] == (0, 0)


def test_the_package_json_keeps_its_own_413(catalogue: Flask, clerk: FlaskClient) -> None:
    # the catalogue's 413 page is for its own forms: the package's JSON answers as JSON
    response = clerk.post("/jobmonitor/api/notifications/read", data={"x": "y" * (LIMIT + 65 * 1024)})
    assert response.status_code == 413
    assert response.is_json and "error" in response.get_json()


def test_an_import_profile_upload_past_the_limit_is_said_on_its_page(catalogue: Flask, clerk: FlaskClient) -> None:
    data = {"file": (io.BytesIO(b"x" * (LIMIT + 65 * 1024)), "big.csv")}
    response = clerk.post("/admin/import_profiles/1/run", data=data, content_type="multipart/form-data")
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "at most 4 KB" in page and "Supplier price list" in page  # the profiles page, not the home page
    assert _jobs_and_files(catalogue)[:2] == (0, 0)


def test_a_413_without_an_upload_limit_is_no_500(database_url: str, redis_url: str, tmp_path: Path) -> None:
    app = build_catalogue(
        database_url,
        redis_url,
        tmp_path / "files",
        init_db=False,
        JOBMONITOR_MAX_UPLOAD_BYTES=None,
        MAX_FORM_MEMORY_SIZE=1024,
    )
    assert app.config["MAX_CONTENT_LENGTH"] is None
    client = log_in(app, "clerk")
    # a text field past Flask's form memory limit: a 413 whose limit is not the package's
    response = client.post("/mass-edit", data={"percent": "5", "note": "x" * 4096}, content_type="multipart/form-data")
    assert response.status_code == 413
