"""The example's failure webhook (example_app/alerts.py), through flask-jobmonitor's ``job_ended``
signal: a real import fails on a real worker (a forked work horse too) and a local HTTP server
receives the post."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from rq import SimpleWorker, Worker

from example_app import alerts, create_app
from flask_jobmonitor.records.models import job_table

from .support.databases import dispose_engines
from .support.examples import build_catalogue, log_in
from .support.queues import empty_queues
from .support.workers import run_worker

SECRET = "a-shared-secret-of-the-endpoint"
NO_PRICE = "sku,name\nNEW-1,No price\n"
MESSAGE = "The file has no column price: its first line must name the columns sku, name, price."


class _Endpoint(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"body": body, "headers": dict(self.headers)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[SimpleNamespace]:
    received: list[dict[str, Any]] = []
    handler = type("Endpoint", (_Endpoint,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/hooks/jobs", received=received)
    finally:
        server.shutdown()
        server.server_close()


def _catalogue(redis_url: str, tmp_path: Path, url: str) -> Flask:
    app = build_catalogue(
        f"sqlite:///{tmp_path / 'catalogue.db'}",
        redis_url,
        tmp_path / "files",
        EXAMPLE_FAILURE_WEBHOOK_URL=url,
        EXAMPLE_WEBHOOK_SECRET=SECRET,
        EXAMPLE_PUBLIC_URL="https://catalogue.example.com/",
    )
    empty_queues(redis_url, ("high", "default", "low"))
    return app


@pytest.fixture
def catalogue(redis_url: str, tmp_path: Path, endpoint: SimpleNamespace) -> Iterator[Flask]:
    app = _catalogue(redis_url, tmp_path, endpoint.url)
    yield app
    dispose_engines(app)


def _import(app: Flask, csv_text: str, worker_class: type[Any] = SimpleWorker) -> dict[str, Any]:
    from example_app.extensions import db

    clerk = log_in(app, "clerk")
    data = {"file": (io.BytesIO(csv_text.encode()), "products.csv")}
    assert clerk.post("/import", data=data, content_type="multipart/form-data").status_code == 302
    run_worker(app, worker_class)
    with app.app_context(), db.engine.connect() as connection:
        return dict(connection.execute(sa.select(job_table)).mappings().one())


@pytest.mark.parametrize("worker_class", [SimpleWorker, Worker], ids=["simple", "forking"])
def test_a_failed_import_is_posted_once_signed_with_what_the_clerk_may_read(catalogue, endpoint, worker_class):
    job = _import(catalogue, NO_PRICE, worker_class)

    assert job["status"] == "failed"
    assert len(endpoint.received) == 1
    post = endpoint.received[0]
    expected = hmac.new(SECRET.encode(), post["body"], hashlib.sha256).hexdigest()
    assert post["headers"]["X-Jobmonitor-Signature"] == f"sha256={expected}"
    assert post["headers"]["Content-Type"] == "application/json"
    sent = json.loads(post["body"])
    link = f"https://catalogue.example.com/admin/jobs/{job['id']}/"
    assert sent["text"] == f"Job “{job['name']}” (run by Chris Clerk) failed: {MESSAGE} {link}"
    assert sent["job"]["id"] == job["id"]
    assert (sent["job"]["status"], sent["job"]["error"], sent["job"]["url"]) == ("failed", MESSAGE, link)
    assert sent["job"]["ended_at"].endswith("+00:00")
    assert "Traceback" not in post["body"].decode()


def test_a_completed_import_posts_nothing(catalogue, endpoint):
    job = _import(catalogue, "sku,name,price\nNEW-1,Fine,1.00\n")

    assert job["status"] == "completed"
    assert endpoint.received == []


def test_a_webhook_that_cannot_be_reached_leaves_the_job_failed_and_the_worker_working(redis_url, tmp_path, caplog):
    app = _catalogue(redis_url, tmp_path, "http://127.0.0.1:1/hooks/jobs")
    try:
        job = _import(app, NO_PRICE)
        assert (job["status"], job["error_message"]) == ("failed", MESSAGE)
        assert f"failure of job {job['id']} not posted to the webhook" in caplog.text
        # the same worker goes on with the next job
        assert _import_again(app)["status"] == "completed"
    finally:
        dispose_engines(app)


def _import_again(app: Flask) -> dict[str, Any]:
    from example_app.extensions import db

    clerk = log_in(app, "clerk")
    data = {"file": (io.BytesIO(b"sku,name,price\nNEW-2,Fine,1.00\n"), "products.csv")}
    assert clerk.post("/import", data=data, content_type="multipart/form-data").status_code == 302
    run_worker(app)
    with app.app_context(), db.engine.connect() as connection:
        return dict(connection.execute(sa.select(job_table).where(job_table.c.status == "completed")).mappings().one())


def test_a_failed_child_job_is_not_posted_its_family_is(catalogue, endpoint):
    child = SimpleNamespace(id="c", root_id="r", name="Rule 3", run_by_name=None, error_message="boom")
    with catalogue.app_context():
        alerts.post_failure(catalogue, "c", child, "failed")
    assert endpoint.received == []


def test_a_webhook_that_is_not_http_is_refused_at_start(tmp_path):
    with pytest.raises(RuntimeError, match="must be an http"):
        create_app({"EXAMPLE_FAILURE_WEBHOOK_URL": "file:///etc/passwd", "SECRET_KEY": "x" * 32}, str(tmp_path))
