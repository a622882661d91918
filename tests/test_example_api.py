"""The example catalogue's API tokens (example_app/tokens.py), used as a script of a supplier's
would: make a token on the command line, launch an import with its CSV, follow the job to its
end, download what it produced, and see an expired, revoked or forged token refused."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from rq import SimpleWorker

from example_app.extensions import db
from example_app.tokens import ApiToken

from .support.databases import dispose_engines
from .support.examples import build_catalogue
from .support.workers import run_worker

API = "/jobmonitor/api"


@pytest.fixture
def catalogue(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.delenv("EXAMPLE_SECRET_KEY", raising=False)
    monkeypatch.setenv("EXAMPLE_DEMO_DELAY", "0")
    app = build_catalogue(
        f"sqlite:///{tmp_path / 'catalogue.db'}",
        redis_url,
        tmp_path / "files",
        instance_path=tmp_path / "instance",
        WTF_CSRF_ENABLED=True,  # as the demo runs: the tokens must do without it
    )
    yield app
    dispose_engines(app)


def make_token(app: Flask, username: str, *extra: str) -> str:
    result = app.test_cli_runner().invoke(args=["create-token", username, *extra])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("cat_")
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_script_with_a_clerk_s_token_imports_a_file_follows_it_and_reads_its_report(catalogue):
    headers = bearer(make_token(catalogue, "clerk", "--name", "supplier sync"))
    client = catalogue.test_client()
    tasks = {task["name"]: task for task in client.get(f"{API}/tasks", headers=headers).get_json()["tasks"]}
    assert "example_app.tasks.import_products" in tasks
    csv = "sku,name,price,stock\nSKU-9001,Kettle,25.5,3\nSKU-9002,Broken,not a price,1\n"
    launched = client.post(
        f"{API}/tasks/example_app.tasks.import_products/jobs",
        data={
            "params": json.dumps({"kwargs": {"row_delay": 0}, "name": "Nightly supplier import"}),
            "products.csv": (io.BytesIO(csv.encode()), "supplier-2026-11-30.csv"),
        },
        content_type="multipart/form-data",
        headers=headers,
    )
    assert launched.status_code == 201, launched.get_data(as_text=True)
    job_url = launched.get_json()["url"]
    assert client.get(job_url, headers=headers).get_json()["status"] == "queued"
    run_worker(catalogue, SimpleWorker)
    job = client.get(job_url, headers=headers).get_json()
    assert job["status"] in ("completed", "completed_with_errors"), job
    assert job["error_count"] == 1
    assert job["run_by_name"] == "Chris Clerk"
    names = {entry["kind"]: entry for entry in job["files"]}
    assert names["input"]["name"] == "supplier-2026-11-30.csv"
    download = client.get(names["input"]["url"], headers=headers)
    assert download.status_code == 200 and download.data == csv.encode()
    # the clerk's list holds it, under the name the script gave
    listed = client.get(f"{API}/jobs?type=import", headers=headers).get_json()["jobs"]
    assert [entry["name"] for entry in listed] == ["Nightly supplier import"]


def test_an_expired_a_revoked_and_a_forged_token_log_no_one_in(catalogue):
    client = catalogue.test_client()
    expired = make_token(catalogue, "admin")
    with catalogue.app_context():
        for row in db.session.execute(sa.select(ApiToken)).scalars():
            row.expires_at = row.created_at - timedelta(seconds=1)
        db.session.commit()
    revoked = make_token(catalogue, "clerk")
    assert catalogue.test_cli_runner().invoke(args=["revoke-tokens", "clerk"]).output.strip() == "1 token(s) revoked"
    for token in (expired, revoked, "cat_" + "x" * 43, expired.upper(), ""):
        response = client.get(f"{API}/jobs", headers=bearer(token))
        assert response.status_code == 401, token
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    with catalogue.app_context():
        hashes = db.session.execute(sa.select(ApiToken.token_hash)).scalars().all()
    assert expired not in hashes and all(len(value) == 64 for value in hashes)  # only hashes are kept


def test_a_token_acts_as_its_user_and_a_browser_session_still_needs_csrf(catalogue):
    clerk = bearer(make_token(catalogue, "clerk"))
    client = catalogue.test_client()
    launched = client.post(
        f"{API}/tasks/example_app.tasks.stock_report/jobs", json={}, headers=bearer(make_token(catalogue, "admin"))
    )
    assert launched.status_code == 201
    admin_job = launched.get_json()["id"]
    assert client.get(f"{API}/jobs/{admin_job}", headers=clerk).status_code == 404  # not the clerk's
    assert client.post(f"{API}/jobs/{admin_job}/cancel", headers=clerk).status_code == 404
    browser = catalogue.test_client()
    page = browser.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    login = {"username": "admin", "password": "admin", "csrf_token": csrf[1]}
    assert browser.post("/login", data=login).status_code == 302
    refused = browser.post(f"{API}/jobs/{admin_job}/cancel")
    assert refused.status_code == 400 and "CSRF" in refused.get_json()["error"]


def test_create_token_names_an_unknown_user(catalogue):
    result = catalogue.test_cli_runner().invoke(args=["create-token", "nobody"])
    assert result.exit_code != 0
    assert "no user 'nobody'" in result.output
