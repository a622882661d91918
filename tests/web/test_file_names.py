"""An uploaded file is shown and downloaded under the name the person uploaded, while the task
opens it by the key it declared (``files={"products.csv": upload}``); a restart keeps both."""

from __future__ import annotations

import html
import io
import re

import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from flask_jobmonitor.records.models import file_table

from ..support.users import csrf_token
from ..support.web import enqueue
from ..support.workers import run_worker


def _upload() -> FileStorage:
    return FileStorage(io.BytesIO(b"sku,name\nA-1,x\n"), filename="sample-products.csv", content_type="text/csv")


def _download_link(page: str, name: str) -> str:
    match = re.search(r'<a href="(/jobmonitor/files/\d+)" data-jm-file-kind="input">([^<]*)</a>', page)
    assert match, "the input file is listed on the job's page"
    assert html.unescape(match.group(2)) == name
    return match.group(1)


def test_the_job_page_lists_and_serves_an_upload_under_its_uploaded_name(app, client_for):
    from .. import tasks

    job_id = enqueue(app, tasks.reads_input, "clerk_a", filename="products.csv", files={"products.csv": _upload()})
    client = client_for("clerk_a")
    page = client.get(f"/admin/jobs/{job_id}/").get_data(as_text=True)
    link = _download_link(page, "sample-products.csv")
    response = client.get(link)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=sample-products.csv"
    assert response.data == b"sku,name\nA-1,x\n"


def test_a_restart_keeps_the_uploaded_name_and_the_task_still_finds_its_file(app, engine, client_for):
    from .. import tasks

    job_id = enqueue(app, tasks.reads_input, "clerk_a", filename="products.csv", files={"products.csv": _upload()})
    run_worker(app)
    client = client_for("clerk_a")
    answer = client.post(f"/jobmonitor/api/jobs/{job_id}/restart", headers={"X-CSRFToken": csrf_token(client)})
    new_job_id = answer.get_json()["new_job_id"]
    run_worker(app)
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(file_table.c.filename, file_table.c.original_name, file_table.c.content_type).where(
                file_table.c.job_id == new_job_id
            )
        ).one()
    assert tuple(row) == ("products.csv", "sample-products.csv", "text/csv")
    page = client.get(f"/admin/jobs/{new_job_id}/").get_data(as_text=True)
    _download_link(page, "sample-products.csv")
    assert 'data-jm-active="false"' in page and "Completed" in page
