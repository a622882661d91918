"""Launching a registered task through the JSON API (its URLs are in blueprint.py).

``GET <prefix>/api/tasks`` lists the tasks the user may launch, with the parameters their
signatures take; ``POST <prefix>/api/tasks/<name>/jobs`` launches one. Rules:

* Launching needs ``jobmonitor.launch`` or the permission the task names
  (``launch_permission``, permissions.py), on the server; a task the user may not launch answers
  403, one nobody registered 404.
* The body is JSON, ``{"args": [...], "kwargs": {...}, "name", "description", "low_priority",
  "run_at_url"}`` (every key optional, no other key), or ``multipart/form-data`` with that JSON
  in the field ``params`` and one file field per input file: the field's name is the name the
  task opens the file by (``ctx.input_file``), the upload's own name is kept for people.
* Everything is checked before anything is written (enqueue.py): arguments that do not fit the
  task's signature or are not JSON answer 400, files past ``JOBMONITOR_MAX_UPLOAD_BYTES`` 413,
  and no job, file or audit entry is left behind. Redis refusing the job answers 503; the job
  row then says ``failed`` with the reason (enqueue.py), never ``queued``.
* The answer is 201 with the new job (as ``GET /api/jobs/<id>`` reads it) and its address in
  ``Location``. Launching asks for a CSRF token only with a session cookie (requests.py).
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from flask import Response, jsonify, request, url_for
from werkzeug.datastructures import FileStorage

from ..errors import EnqueueError, FileTooLarge, InvalidJobArguments, UnknownTask, UnsafeLink
from ..i18n import gettext
from ..jobs.enqueue import JobRequest, enqueue_job
from ..records.models import Job
from ..state import JobMonitorState, get_state
from ..tasks import TrackedTask
from .requests import abort_json, require_access, require_csrf

#: The keys a launch body may hold, and the type each must have.
LAUNCH_KEYS: dict[str, tuple[type, ...]] = {
    "args": (list,),
    "kwargs": (dict,),
    "name": (str,),
    "description": (str,),
    "low_priority": (bool,),
    "run_at_url": (str,),
}
MAX_NAME = 255
MAX_DESCRIPTION = 10_000


def task_json(task: TrackedTask) -> dict[str, Any]:
    """What a client needs to launch ``task``: its name, kind, steps and the parameters of its
    signature after the job context (with their defaults when those are JSON)."""
    parameters = []
    for parameter in list(task.signature.parameters.values())[1:]:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        entry: dict[str, Any] = {
            "name": parameter.name,
            "required": parameter.default is inspect.Parameter.empty,
            "keyword_only": parameter.kind is inspect.Parameter.KEYWORD_ONLY,
        }
        if parameter.default is not inspect.Parameter.empty and _is_json(parameter.default):
            entry["default"] = parameter.default
        parameters.append(entry)
    return {
        "name": task.name,
        "type": task.type,
        "category": task.category,
        "description": task.description,
        "steps": list(task.steps),
        "resumable": task.resumable,
        "parameters": parameters,
        "launch_url": url_for("jobmonitor.launch", name=task.name),
    }


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def list_tasks() -> Response:
    """``GET /api/tasks``: the registered tasks this user may launch, by name."""
    user = require_access()
    state = get_state()
    tasks = sorted(
        (task for task in state.tasks if state.permissions.can_launch(user, task.launch_permission)),
        key=lambda task: task.name,
    )
    return jsonify({"tasks": [task_json(task) for task in tasks]})


def launch(name: str) -> Response:
    """``POST /api/tasks/<name>/jobs``: launch ``name`` for the current user (module docstring)."""
    user = require_access()
    require_csrf()
    state = get_state()
    try:
        task = state.tasks.get(name)
    except UnknownTask:
        abort_json(404, gettext("no task is registered under the name %(name)s", name=repr(name[:200])))
    if not state.permissions.can_launch(user, task.launch_permission):
        abort_json(403, gettext("you may not launch this task"))
    body, files = _read_body()
    job_request = JobRequest(
        task=task,
        args=body.get("args", []),
        kwargs=body.get("kwargs", {}),
        user=user,
        name=body.get("name"),
        description=body.get("description"),
        files=files,
        low_priority=body.get("low_priority", False),
        run_at_url=body.get("run_at_url"),
        launching_page=False,  # the API's own address is no page a person launched it from
        flash=False,
    )
    job = _enqueue(state, job_request)
    response = jsonify(
        {
            "id": job.id,
            "name": job.name,
            "task": job.task,
            "status": job.status,
            "url": url_for("jobmonitor.job_detail", job_id=job.id),
            "page_url": _page_url(job.id),
        }
    )
    response.status_code = 201
    response.headers["Location"] = url_for("jobmonitor.job_detail", job_id=job.id)
    return response


def _enqueue(state: JobMonitorState, job_request: JobRequest) -> Job:
    try:
        return enqueue_job(state, job_request)
    except (InvalidJobArguments, UnsafeLink) as invalid:
        abort_json(400, str(invalid))
    except FileTooLarge as too_large:
        abort_json(413, too_large.description or str(too_large))
    except EnqueueError:
        abort_json(503, gettext("the job could not be queued (Redis refused it); it is recorded as failed"))


def _page_url(job_id: str) -> str | None:
    """The job's page in the admin, when the host registered the job pages."""
    try:
        return url_for("jobmonitor_jobs.detail", job_id=job_id)
    except Exception:  # werkzeug.routing.BuildError: no Flask-Admin views in this app
        return None


def _read_body() -> tuple[dict[str, Any], dict[str, FileStorage]]:
    """The launch's JSON object and its files; 400 for anything else (module docstring)."""
    files: dict[str, FileStorage] = {}
    if request.mimetype == "multipart/form-data":
        raw = request.form.get("params", "")
        for key in request.files:
            uploads = request.files.getlist(key)
            if len(uploads) > 1:
                abort_json(400, gettext("send each input file under a name of its own"))
            files[key] = uploads[0]
        body: Any = {} if raw == "" else _decode(raw)
    elif request.mimetype == "application/json" or not request.get_data(cache=True):
        body = {} if not request.get_data(cache=True) else _decode(request.get_data(as_text=True))
    else:
        abort_json(415, gettext("send JSON (application/json) or a form with files (multipart/form-data)"))
    if not isinstance(body, dict):
        abort_json(400, gettext('send a JSON object, such as {"kwargs": {"limit": 10}}'))
    unknown = sorted(set(body) - set(LAUNCH_KEYS))
    if unknown:
        abort_json(
            400,
            gettext(
                "unknown keys %(keys)s; a launch takes %(known)s",
                keys=", ".join(map(repr, unknown[:10])),
                known=", ".join(LAUNCH_KEYS),
            ),
        )
    for key, types in LAUNCH_KEYS.items():
        if key in body and body[key] is not None and not isinstance(body[key], types):
            abort_json(400, gettext("%(key)s must be a %(kind)s", key=key, kind=types[0].__name__))
    if any(not isinstance(key, str) for key in body.get("kwargs") or {}):
        abort_json(400, gettext("kwargs must be a JSON object"))
    for key, limit in (("name", MAX_NAME), ("description", MAX_DESCRIPTION)):
        if len(body.get(key) or "") > limit:
            abort_json(400, gettext("%(name)s is longer than %(limit)s characters", name=key, limit=limit))
    return {key: value for key, value in body.items() if value is not None}, files


def _decode(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        abort_json(400, gettext("the body is not valid JSON"))


__all__ = ["LAUNCH_KEYS", "launch", "list_tasks", "task_json"]
