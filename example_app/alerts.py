"""Tell the team when a job fails: the catalogue's receiver of flask-jobmonitor's ``job_ended``.

With ``EXAMPLE_FAILURE_WEBHOOK_URL`` set (the app's config or the environment), each failed job
is POSTed there as JSON: a chat's incoming webhook (its ``text`` is what Slack, Mattermost or
Rocket.Chat show) or an endpoint of your own (``job`` holds the fields). The rules:

* **Top-level jobs only.** A child job's failure ends its family ``failed`` ("2 of 13 child jobs
  failed"), which is told once; a mass edit of 1,000 rules must not post 1,000 messages.
* **Signed** when ``EXAMPLE_WEBHOOK_SECRET`` is set: the header ``X-Jobmonitor-Signature`` is
  ``sha256=`` and the HMAC-SHA256 of the body with that secret, so the endpoint can tell our
  posts from anyone's.
* **In line, with a short timeout** (:data:`TIMEOUT_SECONDS`). The signal is sent where the job
  ended: usually a worker, and a failure in RQ's forking ``Worker`` in the work horse, which
  exits as soon as its job is recorded, so a post left to a thread would die with it. A failed
  post is logged and dropped: the job's record is what counts, and the post is not worth a
  retry queue here.
* Only http(s) URLs; the message holds the text every viewer of the job may read
  (``job.error_message``), never the traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from flask_jobmonitor import JobStatus, job_ended

log = logging.getLogger(__name__)
#: How long each step of a post (connecting, sending, each read of the answer) may wait before
#: it is given up: a worker waits for it.
TIMEOUT_SECONDS = 3.0


def init_app(app: Flask) -> None:
    """Read the webhook's address and secret, and listen to this app's jobs' ends when it is set."""
    app.config.setdefault("EXAMPLE_FAILURE_WEBHOOK_URL", os.environ.get("EXAMPLE_FAILURE_WEBHOOK_URL"))
    app.config.setdefault("EXAMPLE_WEBHOOK_SECRET", os.environ.get("EXAMPLE_WEBHOOK_SECRET"))
    app.config.setdefault("EXAMPLE_PUBLIC_URL", os.environ.get("EXAMPLE_PUBLIC_URL"))
    url = app.config["EXAMPLE_FAILURE_WEBHOOK_URL"]
    if not url:
        return
    if urlsplit(url).scheme not in ("http", "https"):
        raise RuntimeError(f"EXAMPLE_FAILURE_WEBHOOK_URL must be an http(s) URL, not {url!r}")
    job_ended.connect(post_failure, sender=app)


def post_failure(app: Flask, job_id: str, job: Any, outcome: str, **_: Any) -> None:
    """``job_ended`` receiver: POST a failed top-level job to the webhook."""
    if outcome != JobStatus.FAILED or job is None or job.root_id is not None:
        return
    body = json.dumps(payload(app, job)).encode()
    request = urllib.request.Request(
        app.config["EXAMPLE_FAILURE_WEBHOOK_URL"],
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "catalogue-job-alerts"},
    )
    secret = app.config.get("EXAMPLE_WEBHOOK_SECRET")
    if secret:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        request.add_header("X-Jobmonitor-Signature", f"sha256={digest}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # http(s) only: init_app
            response.read()
    except (OSError, http.client.HTTPException) as error:  # refused, timed out, an error status, garbage
        log.warning("failure of job %s not posted to the webhook: %s", job_id, error)


def payload(app: Flask, job: Any) -> dict[str, Any]:
    """What is posted about a failed ``job``: a line for people, and the fields for code."""
    public = app.config.get("EXAMPLE_PUBLIC_URL")
    link = f"{public.rstrip('/')}/admin/jobs/{job.id}/" if public else None
    who = f" (run by {job.run_by_name})" if job.run_by_name else ""
    text = f"Job “{job.name}”{who} failed: {job.error_message or 'no reason recorded'}"
    if link:
        text = f"{text} {link}"
    return {
        "text": text,
        "job": {
            "id": job.id,
            "name": job.name,
            "task": job.task,
            "type": job.type,
            "status": job.status,
            "run_by": job.run_by_name,
            "error": job.error_message,
            "created_at": _iso(job.created_at),
            "ended_at": _iso(job.ended_at),
            "url": link,
        },
    }


def _iso(moment: Any) -> str | None:
    """A naive UTC time of the job tables as ISO 8601 with its offset."""
    return None if moment is None else moment.isoformat() + "+00:00"
