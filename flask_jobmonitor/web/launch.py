"""Launching a registered task through the JSON API (its URLs are in blueprint.py).

``GET <prefix>/api/tasks`` lists the tasks the user may launch, with the parameters their
signatures take; ``POST <prefix>/api/tasks/<name>/jobs`` launches one. Rules:

* Launching needs ``jobmonitor.launch`` or the permission the task names
  (``launch_permission``, permissions.py), on the server, and a task not declared
  ``launchable=False`` (child jobs, the retention job). A task the caller may not launch answers
  404 like one nobody registered: which tasks exist is not their business.
* The body is JSON, ``{"args": [...], "kwargs": {...}, "name", "description", "low_priority",
  "run_at_url", "delay_seconds"}`` (every key optional, no other key), or ``multipart/form-data`` with that JSON
  in the field ``params`` and one file field per input file: the field's name is the name the
  task opens the file by (``ctx.input_file``), the upload's own name is kept for people.
* Everything is checked before anything is written (enqueue.py): arguments that do not fit the
  task's signature or are not JSON answer 400, files past ``JOBMONITOR_MAX_UPLOAD_BYTES`` 413,
  and no job or file is left behind. Redis refusing the job answers 503; the job
  row then says ``failed`` with the reason (enqueue.py), never ``queued``.
* The answer is 201 with the new job's id, name, task, status and addresses (its
  ``GET /api/jobs/<id>``, also in ``Location``, and its page). A machine client's launch
  needs no CSRF token, a browser's does (requests.py).
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from datetime import timedelta
from typing import Any

from flask import Response, current_app, jsonify, request, url_for
from werkzeug.datastructures import FileStorage

from ..errors import EnqueueError, FileTooLarge, InvalidJobArguments, UnknownTask, UnsafeLink
from ..i18n import N_, gettext
from ..jobs.enqueue import JobRequest, enqueue_job
from ..records.models import Job
from ..state import JobMonitorState, get_state
from ..tasks import TrackedTask
from .requests import (
    abort_json,
    checked_object,
    decode_json,
    json_object,
    refuse_nameless_fields,
    require_access,
    require_csrf,
)
from .templating import job_url

#: The keys a launch body may hold: the JSON type each must have, and its words in an error.
LAUNCH_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "args": (list, N_("a JSON array")),
    "kwargs": (dict, N_("a JSON object")),
    "name": (str, N_("a string")),
    "description": (str, N_("a string")),
    "low_priority": (bool, N_("true or false")),
    "run_at_url": (str, N_("a string")),
    "delay_seconds": ((int, float), N_("a number of seconds")),
}
MAX_DELAY_SECONDS = 366 * 24 * 3600
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
        if parameter.annotation is not inspect.Parameter.empty:
            # as written in the code ("int | None"): a hint for people, not a schema
            annotation = parameter.annotation
            entry["annotation"] = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
        parameters.append(entry)
    return {
        "name": task.name,
        "type": task.type,
        "category": task.category,
        "description": task.description or _first_line(task.func.__doc__),
        "steps": list(task.steps),
        "resumable": task.resumable,
        "parameters": parameters,
        "launch_url": url_for("jobmonitor.launch", name=task.name),
    }


def _first_line(text: str | None) -> str | None:
    return (text or "").strip().split("\n", 1)[0].strip() or None


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
    tasks = sorted((task for task in state.tasks if _may_launch(state, user, task)), key=lambda task: task.name)
    return jsonify({"tasks": [task_json(task) for task in tasks]})


def launch(name: str) -> Response:
    """``POST /api/tasks/<name>/jobs``: launch ``name`` for the current user (module docstring)."""
    user = require_access()
    require_csrf()
    state = get_state()
    try:
        task = state.tasks.get(name)
    except UnknownTask:
        task = None
    if task is None or not _may_launch(state, user, task):
        abort_json(404, gettext("no task you may launch is registered under the name %(name)s", name=repr(name[:200])))
    body, files = _read_body()
    _check_types(task, body.get("args", []), body.get("kwargs", {}))
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
        delay=timedelta(seconds=body["delay_seconds"]) if body.get("delay_seconds") else None,
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
            "page_url": job_url(job.id),
        }
    )
    response.status_code = 201
    response.headers["Location"] = url_for("jobmonitor.job_detail", job_id=job.id)
    return response


def _may_launch(state: JobMonitorState, user: Any, task: TrackedTask) -> bool:
    return task.launchable and state.permissions.can_launch(user, task.launch_permission)


def _enqueue(state: JobMonitorState, job_request: JobRequest) -> Job:
    try:
        return enqueue_job(state, job_request)
    except InvalidJobArguments as invalid:
        abort_json(400, str(invalid))
    except UnsafeLink as unsafe:
        abort_json(400, f"run_at_url: {unsafe}")
    except FileTooLarge as too_large:
        abort_json(413, too_large.description or str(too_large))
    except EnqueueError:
        abort_json(503, gettext("the job could not be queued (Redis refused it); it is recorded as failed"))


def _read_body() -> tuple[dict[str, Any], dict[str, FileStorage]]:
    """The launch's JSON object and its files; 400, 415 for anything else (module docstring)."""
    files: dict[str, FileStorage] = {}
    example = '{"kwargs": {"limit": 10}}'
    if request.mimetype == "multipart/form-data":
        refuse_nameless_fields()
        unknown = sorted(set(request.form) - {"params", _csrf_field()})
        if unknown or "params" in request.files:
            abort_json(400, gettext("a form launch sends its JSON in the field params and nothing else but files"))
        for key in request.files:
            uploads = request.files.getlist(key)
            if len(uploads) > 1:
                abort_json(400, gettext("send each input file under a name of its own"))
            files[key] = uploads[0]
        raw = request.form.get("params", "")
        body = checked_object({} if raw == "" else decode_json(raw, "params"), tuple(LAUNCH_KEYS), example)
    else:
        body = json_object(tuple(LAUNCH_KEYS), example) or {}  # None only for forms=True
    for key, (kind, words) in LAUNCH_KEYS.items():
        if (
            key in body
            and body[key] is not None
            and (not isinstance(body[key], kind) or isinstance(body[key], bool) != (kind is bool))
        ):
            abort_json(400, gettext("%(key)s must be %(kind)s", key=key, kind=gettext(words)))
    if "ctx" in (body.get("kwargs") or {}):
        abort_json(400, gettext("the job context is given by the worker, not by the launch"))
    delay = body.get("delay_seconds")
    if delay is not None and (isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_SECONDS):
        abort_json(400, gettext("delay_seconds must be between 0 and %(limit)s", limit=MAX_DELAY_SECONDS))
    for key, limit in (("name", MAX_NAME), ("description", MAX_DESCRIPTION)):
        if len(body.get(key) or "") > limit:
            abort_json(400, gettext("%(name)s is longer than %(limit)s characters", name=key, limit=limit))
    return {key: value for key, value in body.items() if value is not None}, files


def _check_types(task: TrackedTask, args: list[Any], kwargs: dict[str, Any]) -> None:
    """400 when a JSON value does not fit the plain type its parameter declares (``int``,
    ``float``, ``str``, ``bool``, ``list``, ``dict``, optionally ``| None``): a typo the launcher
    sees at once, instead of a failed job. Other annotations are left to the task."""
    try:
        hints = typing.get_type_hints(task.func)
    except Exception:  # annotations that do not resolve here (names imported for type checking only)
        return
    try:
        bound = task.signature.bind_partial(None, *args, **kwargs).arguments
    except TypeError:
        return  # does not fit the signature at all: enqueue says how (check_arguments)
    context_name = next(iter(task.signature.parameters))  # the job context: given by the worker
    given: list[tuple[str, Any]] = []
    for name, value in bound.items():
        kind = task.signature.parameters[name].kind
        if name == context_name:
            continue
        if kind is inspect.Parameter.VAR_POSITIONAL:
            given += [(name, item) for item in value]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            given += [(name, item) for item in value.values()]
        else:
            given.append((name, value))
    for name, value in given:
        expected = hints.get(name)
        if expected is not None and not _fits(value, expected):
            abort_json(
                400,
                gettext(
                    "%(name)s must be %(type)s, got %(value)s",
                    name=name,
                    type=inspect.formatannotation(expected),
                    value=json.dumps(value)[:60],
                ),
            )


def _fits(value: Any, expected: Any) -> bool:
    """Whether the JSON ``value`` fits ``expected``; True for any type this does not check."""
    origin, members = typing.get_origin(expected), typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, member) for member in members)
    if expected is type(None):
        return value is None
    plain = origin or expected
    if plain is bool:
        return isinstance(value, bool)
    if plain is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if plain is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if plain is str:
        return isinstance(value, str)
    if plain is list:
        return isinstance(value, list) and (not members or all(_fits(item, members[0]) for item in value))
    if plain is dict:
        return isinstance(value, dict)
    return True


def _csrf_field() -> str:
    return str(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))


__all__ = ["LAUNCH_KEYS", "launch", "list_tasks", "task_json"]
