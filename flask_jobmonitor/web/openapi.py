"""The OpenAPI 3.1 description of the JSON API, served at ``<prefix>/api/openapi.json``.

Built from the code it describes where the two could drift: the list's filters, sorts and page
sizes (listing.py), the statuses (records/status.py), the actions (jobs/control.py REGISTRY),
the launch body (launch.py). ``tests/web/test_openapi.py`` runs schemathesis against the live
app with it (every operation, as an admin and as an own-jobs user): no server error, and no
answer that breaks it.

Rules the document states and the endpoints keep: every error is ``{"error": "<words for
people>"}``; times are UTC ISO 8601 with ``Z``; a job the caller may not see answers 404 like a
job that does not exist; changes are POSTs that need a CSRF token, except a machine client's
(a token the host's Flask-Login ``request_loader`` accepts, in ``Authorization: Bearer``, and
no cookie: requests.py; the example app's tokens, docs/developers.md "The JSON API").
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from ..jobs import control
from ..records.status import JobStatus
from ..state import get_state
from . import listing
from .details import LOG_LEVELS
from .launch import LAUNCH_KEYS, MAX_DELAY_SECONDS, MAX_DESCRIPTION, MAX_NAME
from .presenters import JOB_FRAGMENTS

VERSION = "1.0.0"

_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INTEGER = {"type": ["integer", "null"]}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_JOB_ID = {"type": "string", "pattern": "^[0-9a-f-]{36}$", "example": "0b9f7c1e-2f0a-4d39-9c53-0d0c5ef4c0a1"}

_ERRORS = {
    400: "The request makes no sense (a filter, a body, a CSRF token); the error says what.",
    401: "Not logged in: log in, or send a valid API token.",
    403: "Logged in, but without the permission this needs.",
    404: "No such job, file or task, or not one the caller may see (the two answer alike).",
    405: "This path takes another method.",
    409: "The job's status (or its task) does not allow the action now.",
    410: "The file's record is kept, its bytes are no longer stored.",
    413: "The files are larger than the app's upload limit.",
    415: "The body is neither JSON nor multipart/form-data.",
    503: "Redis could not be reached; nothing was queued (a launch is recorded as failed).",
}


def _error(code: int) -> dict[str, Any]:
    error: dict[str, Any] = {
        "description": _ERRORS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if code == 401:
        error["headers"] = {
            "WWW-Authenticate": {"description": "how to log in (a Bearer token)", "schema": {"type": "string"}}
        }
    return error


def _ok(description: str, schema: str, code: int = 200) -> dict[str, Any]:
    return {
        str(code): {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    return {**ok, **{str(code): _error(code) for code in (401, *codes)}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


_CSRF = {
    "name": "X-CSRFToken",
    "in": "header",
    "required": False,
    "description": "Flask-WTF's CSRF token: needed by a browser (a cookie), not by an API token without cookies.",
    "schema": {"type": "string"},
}


def _list_parameters() -> list[dict[str, Any]]:
    statuses = [status.value for status in JobStatus]
    text = {"type": "string", "maxLength": 200}
    flag = {"type": "string", "enum": ["", "0", "1", "true", "on"]}
    day = {"type": "string", "format": "date", "description": "a day of the caller's time zone, YYYY-MM-DD"}
    cursor = {"type": "string", "description": "a position from a next/previous link"}
    return [
        _query("ids", "These jobs (comma-separated ids, at most 200) instead of the list.", {"type": "string"}),
        _query(
            "html",
            "Parts to render as HTML, comma-separated (at most 20 names of 40 characters): default all of "
            "them with ids, none for the list.",
            {"type": "string", "pattern": r"^\s*[^,]{0,40}(,[^,]{0,40}){0,19}$", "example": ",".join(JOB_FRAGMENTS)},
        ),
        _query("q", "Search words (name, description, parameters) or a job id.", text),
        _query("type", "The task type.", {"type": "string", "maxLength": 64}),
        _query("user", "The id of the user who ran the jobs (with jobmonitor.view_all).", {"type": "string"}),
        _query("status", "One status.", {"type": "string", "enum": ["", *statuses]}),
        _query("group", "Finished or not.", {"type": "string", "enum": ["", *listing.STATUS_GROUPS]}),
        _query("category", "The task category.", {"type": "string", "maxLength": 64}),
        _query("from", "Created on or after this day.", day),
        _query("to", "Created on or before this day.", day),
        _query("system", "Show system jobs too (with jobmonitor.view_system).", flag),
        _query("children", "Show child jobs at the top level too.", flag),
        _query("parent", "The children of this job.", {"type": "string", "maxLength": 36}),
        _query("sort", "The order.", {"type": "string", "enum": ["", *listing.SORTABLE]}),
        _query("dir", "Its direction.", {"type": "string", "enum": ["", "asc", "desc"]}),
        _query("per_page", "Jobs a page.", {"type": "integer", "minimum": 1, "maximum": max(listing.PAGE_SIZES)}),
        _query("page", "A numbered page (old links; prefer next).", {"type": "integer", "minimum": 1}),
        _query("after", "The page after this position (sort=created).", cursor),
        _query("before", "The page before this position (sort=created).", cursor),
        _query("last", "The last page (sort=created).", flag),
    ]


def _schemas() -> dict[str, Any]:
    actions = list(control.REGISTRY)
    job_summary: dict[str, Any] = {
        "type": "object",
        "required": ["id", "status", "status_label", "active", "created_at", "actions"],
        "properties": {
            "id": _JOB_ID,
            "name": {"type": "string"},
            "type": {"type": "string"},
            "category": {"type": "string"},
            "task": {"type": "string"},
            "run_by_id": _NULLABLE_STRING,
            "run_by_name": _NULLABLE_STRING,
            "parent_id": _NULLABLE_STRING,
            "is_system": {"type": "boolean"},
            "low_priority": {"type": "boolean"},
            "status": {"type": "string", "enum": [status.value for status in JobStatus]},
            "status_label": {"type": "string", "description": "the status in the caller's language"},
            "timing": {
                "type": ["string", "null"],
                "enum": ["scheduled", "retry-wait", "retry", None],
                "description": "what the badge adds to the status: a queued job waiting for its time "
                "(scheduled), a retry waiting for its time (retry-wait), a retry queued or running (retry)",
            },
            "scheduled_for": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "a queued job that waits for a time (delayed, or a retry): when it runs",
            },
            "retries": {"type": "integer", "description": "retries its task's retry policy granted so far"},
            "retry_limit": {
                "type": ["integer", "null"],
                "description": "how many retries the policy grants (null: none, or the job never retried)",
            },
            "status_icon": {"type": "string"},
            "status_colour": {"type": "string"},
            "active": {"type": "boolean", "description": "not finished"},
            "moving": {"type": "boolean"},
            "progress_done": {"type": "integer"},
            "progress_total": _NULLABLE_INTEGER,
            "percent": _NULLABLE_NUMBER,
            "current_step": {"type": "integer"},
            "step_count": {"type": "integer"},
            "created_at": _TIME,
            "started_at": _NULLABLE_TIME,
            "ended_at": _NULLABLE_TIME,
            "failed_at": _NULLABLE_TIME,
            "waiting_seconds": _NULLABLE_NUMBER,
            "duration_seconds": _NULLABLE_NUMBER,
            "error_count": {"type": "integer"},
            "warning_count": {"type": "integer"},
            "error_message": _NULLABLE_STRING,
            "children_done": _NULLABLE_INTEGER,
            "children_total": _NULLABLE_INTEGER,
            "remaining_seconds": _NULLABLE_NUMBER,
            "remaining_text": _NULLABLE_STRING,
            "actions": {
                "type": "array",
                "items": {"type": "string", "enum": actions},
                "description": "what the caller may do to the job now",
            },
            "html": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    step = {
        "type": "object",
        "required": ["position", "name", "status"],
        "properties": {
            "position": {"type": "integer"},
            "name": {"type": "string"},
            "status": {"type": "string"},
            "status_label": {"type": "string"},
            "status_icon": {"type": "string"},
            "status_colour": {"type": "string"},
            "done": {"type": "integer"},
            "total": _NULLABLE_INTEGER,
            "counters": {"type": "object", "additionalProperties": {"type": "integer"}},
            "elapsed_seconds": _NULLABLE_NUMBER,
            "remaining_seconds": _NULLABLE_NUMBER,
            "estimated_seconds": _NULLABLE_NUMBER,
            "html": {"type": "string"},
        },
    }
    link = {"type": ["string", "null"], "description": "a path of this site, or null"}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string", "description": "what was wrong, in words for people"}},
        },
        "JobSummary": job_summary,
        "JobList": {
            "type": "object",
            "required": ["jobs", "now"],
            "properties": {
                "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/JobSummary"}},
                "now": _TIME,
                "next": link,
                "previous": link,
                "last": link,
                "sort_window": {
                    "type": ["integer", "null"],
                    "description": "set when a sort other than by creation ordered only this many newest matches",
                },
                "search_window": _NULLABLE_INTEGER,
            },
        },
        "Step": step,
        "JobDetail": {
            "type": "object",
            "required": ["id", "status", "steps", "actions", "files"],
            "properties": {
                **{key: value for key, value in job_summary["properties"].items() if key != "html"},
                "steps": {"type": "array", "items": {"$ref": "#/components/schemas/Step"}},
                "subtask_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "description": _NULLABLE_STRING,
                "params": {
                    "type": "object",
                    "description": "what the job was launched with: {args: [...], kwargs: {...}}",
                },
                "run_at_url": _NULLABLE_STRING,
                "files": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "kind", "name", "url"],
                        "properties": {
                            "id": {"type": "integer"},
                            "kind": {"type": "string", "enum": ["input", "output", "error_report"]},
                            "name": {"type": "string"},
                            "content_type": {"type": "string"},
                            "size": {"type": "integer"},
                            "url": {"type": "string", "description": "GET it to download the file"},
                        },
                    },
                },
                "attempts": {
                    "type": "array",
                    "description": "the failed attempts of a job whose task retries, the first first",
                    "items": {
                        "type": "object",
                        "required": ["number", "ended_at", "error_message", "retry_at"],
                        "properties": {
                            "number": {"type": "integer", "description": "1 is the first run"},
                            "started_at": _NULLABLE_TIME,
                            "ended_at": _TIME,
                            "worker_name": _NULLABLE_STRING,
                            "error_message": {"type": "string"},
                            "retry_at": {**_NULLABLE_TIME, "description": "when it was tried again (null: not)"},
                            "error_detail": {
                                "type": ["string", "null"],
                                "description": "with jobmonitor.view_tracebacks only",
                            },
                        },
                    },
                },
                "html": {"type": "object", "additionalProperties": {"type": "string"}},
                "error_detail": {"type": "string", "description": "with jobmonitor.view_tracebacks only"},
            },
        },
        "Subtasks": {
            "type": "object",
            "required": ["subtasks", "page", "next"],
            "properties": {
                "subtasks": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "name": {"type": "string"},
                            "status": {"type": "string"},
                            "message": _NULLABLE_STRING,
                            "created_at": _TIME,
                        },
                    },
                },
                "page": {"type": "integer"},
                "next": link,
            },
        },
        "Logs": {
            "type": "object",
            "required": ["logs", "page", "next"],
            "properties": {
                "logs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "created_at": _TIME,
                            "level": {"type": "integer"},
                            "level_name": {"type": "string"},
                            "logger": _NULLABLE_STRING,
                            "message": {"type": "string"},
                        },
                    },
                },
                "page": {"type": "integer"},
                "next": link,
            },
        },
        "ActionResult": {
            "type": "object",
            "required": ["message"],
            "properties": {
                "message": {"type": "string"},
                "status": _NULLABLE_STRING,
                "new_job_id": _NULLABLE_STRING,
            },
        },
        "BulkRequest": {
            "type": "object",
            "required": ["action", "ids"],
            "properties": {
                "action": {"type": "string", "enum": actions},
                "ids": {"type": "array", "items": {"type": "string"}, "maxItems": control.BULK_LIMIT},
            },
        },
        "BulkResult": {
            "type": "object",
            "required": ["message", "done", "skipped"],
            "properties": {
                "message": {"type": "string"},
                "done": {"type": "array", "items": {"type": "string"}},
                "new_jobs": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "restart: the id of each new job, by the id of the job it restarts",
                },
                "skipped": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"id": {"type": "string"}, "reason": {"type": "string"}},
                    },
                },
            },
        },
        "Notifications": {
            "type": "object",
            "required": ["unread", "items"],
            "properties": {
                "unread": {"type": "integer"},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "job_id": {"type": "string"},
                            "event": {"type": "string"},
                            "status_label": {"type": "string"},
                            "status_colour": {"type": "string"},
                            "job_name": {"type": "string"},
                            "created_at": _TIME,
                        },
                    },
                },
            },
        },
        "MarkRead": {
            "type": "object",
            "properties": {
                "ids": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}},
            },
        },
        "Marked": {"type": "object", "required": ["marked_read"], "properties": {"marked_read": {"type": "integer"}}},
        "Task": {
            "type": "object",
            "required": ["name", "parameters", "launch_url"],
            "properties": {
                "name": {"type": "string"},
                "type": {"type": "string"},
                "category": _NULLABLE_STRING,
                "description": _NULLABLE_STRING,
                "steps": {"type": "array", "items": {"type": "string"}},
                "resumable": {"type": "boolean"},
                "parameters": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "required"],
                        "properties": {
                            "name": {"type": "string"},
                            "required": {"type": "boolean"},
                            "keyword_only": {"type": "boolean"},
                            "default": {},
                            "annotation": {"type": "string", "description": "its type as the code writes it"},
                        },
                    },
                },
                "launch_url": {"type": "string"},
            },
        },
        "TaskList": {
            "type": "object",
            "required": ["tasks"],
            "properties": {"tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}}},
        },
        "Launch": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "args": {"type": "array", "description": "positional arguments after the job context"},
                "kwargs": {"type": "object", "description": "keyword arguments"},
                "name": {"type": "string", "maxLength": MAX_NAME},
                "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
                "low_priority": {"type": "boolean"},
                "run_at_url": {"type": "string", "description": "the page the job belongs to (a path of this site)"},
                "delay_seconds": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": MAX_DELAY_SECONDS,
                    "description": "queue it this many seconds from now (RQ's scheduler, run by every worker)",
                },
            },
        },
        "Launched": {
            "type": "object",
            "required": ["id", "status", "url"],
            "properties": {
                "id": _JOB_ID,
                "name": {"type": "string"},
                "task": {"type": "string"},
                "status": {"type": "string"},
                "url": {"type": "string", "description": "GET it for the job's progress"},
                "page_url": _NULLABLE_STRING,
            },
        },
    }


def _launched_responses() -> dict[str, Any]:
    responses = _responses(_ok("Queued.", "Launched", 201), 400, 403, 404, 413, 415, 503)
    responses["201"]["headers"] = {
        "Location": {"description": "the job's address in this API", "schema": {"type": "string"}}
    }
    return responses


def build_document(server_url: str, cookie_name: str = "session") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API served under ``server_url`` (the blueprint's prefix)."""
    assert set(LAUNCH_KEYS) == set(_schemas()["Launch"]["properties"]), "launch.py and the document disagree"
    job_id = _path("job_id", "A job id.", _JOB_ID)
    action_names = list(control.REGISTRY)
    paths: dict[str, Any] = {
        "/api/jobs": {
            "get": {
                "operationId": "listJobs",
                "summary": "The job list (the page's filters, sorting and cursor pages), or the jobs named by ids",
                "parameters": _list_parameters(),
                "responses": _responses(_ok("One page of jobs.", "JobList"), 400, 403),
            }
        },
        "/api/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "One job with its steps, time left and the actions the caller may take",
                "parameters": [job_id],
                "responses": _responses(_ok("The job.", "JobDetail"), 403, 404),
            }
        },
        "/api/jobs/{job_id}/subtasks": {
            "get": {
                "operationId": "listSubtasks",
                "summary": "The job's subtasks, oldest first, 50 a page",
                "parameters": [
                    job_id,
                    _query(
                        "status",
                        "Only those of this status (the task's own word).",
                        {"type": "string", "maxLength": 32},
                    ),
                    _query("page", "The page.", {"type": "integer", "minimum": 1, "maximum": 1_000_000}),
                ],
                "responses": _responses(_ok("One page of subtasks.", "Subtasks"), 400, 403, 404),
            }
        },
        "/api/jobs/{job_id}/logs": {
            "get": {
                "operationId": "listLogs",
                "summary": "The job's log, oldest first, 50 lines a page",
                "parameters": [
                    job_id,
                    _query("level", "At or above this level.", {"type": "string", "enum": ["", *LOG_LEVELS]}),
                    _query("q", "Lines holding these words.", {"type": "string", "maxLength": 200}),
                    _query("page", "The page.", {"type": "integer", "minimum": 1, "maximum": 1_000_000}),
                ],
                "responses": _responses(_ok("One page of log lines.", "Logs"), 400, 403, 404),
            }
        },
        "/api/jobs/{job_id}/{action}": {
            "post": {
                "operationId": "actOnJob",
                "summary": "Take an action on one job",
                "parameters": [job_id, _path("action", "The action.", {"type": "string", "enum": action_names}), _CSRF],
                "responses": _responses(_ok("Done.", "ActionResult"), 400, 403, 404, 409, 503),
            }
        },
        "/api/jobs/bulk": {
            "post": {
                "operationId": "actOnJobs",
                "summary": "Take one action on several jobs (those not visible count as skipped)",
                "parameters": [_CSRF],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BulkRequest"}}},
                },
                "responses": _responses(_ok("What was done and what was skipped.", "BulkResult"), 400, 403),
            }
        },
        "/api/tasks": {
            "get": {
                "operationId": "listTasks",
                "summary": "The registered tasks the caller may launch",
                "responses": _responses(_ok("The tasks.", "TaskList"), 403),
            }
        },
        "/api/tasks/{name}/jobs": {
            "post": {
                "operationId": "launchTask",
                "summary": "Launch a registered task (needs jobmonitor.launch or the task's own permission)",
                "parameters": [_path("name", "The task's registered name.", {"type": "string"}), _CSRF],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Launch"}},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "params": {"type": "string", "description": "the Launch object, as JSON"}
                                },
                                "additionalProperties": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "an input file, under the name the task opens it by",
                                },
                            }
                        },
                    },
                },
                "responses": _launched_responses(),
            }
        },
        "/api/notifications": {
            "get": {
                "operationId": "listNotifications",
                "summary": "The caller's unread notifications (newest first, at most 20)",
                "responses": _responses(_ok("Unread notifications.", "Notifications"), 403),
            }
        },
        "/api/notifications/read": {
            "post": {
                "operationId": "markNotificationsRead",
                "summary": "Mark notifications read: these ids, or all of the caller's",
                "parameters": [_CSRF],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MarkRead"}}},
                },
                "responses": _responses(_ok("How many were marked.", "Marked"), 400, 403),
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (JOBMONITOR_METRICS; the metrics token or jobmonitor.view_statistics)",
                "security": [{"metricsToken": []}, {"sessionCookie": []}, {"apiToken": []}],
                "responses": {
                    "200": {
                        "description": "Prometheus' text format, or OpenMetrics when Accept asks for it.",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/openmetrics-text": {"schema": {"type": "string"}},
                        },
                    },
                    "401": {"description": _ERRORS[401], "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "403": {"description": _ERRORS[403], "content": {"text/html": {"schema": {"type": "string"}}}},
                    "404": {
                        "description": "Metrics are switched off (JOBMONITOR_METRICS).",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
        "/files/{file_id}": {
            "get": {
                "operationId": "downloadFile",
                "summary": "A job's file, by id, if the caller may see its job",
                "parameters": [_path("file_id", "A file id (a whole number).", {"type": "string"})],
                "responses": {
                    "200": {
                        "description": "The file, as an attachment, in the media type it was stored with.",
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "401": _error(401),
                    "403": _error(403),
                    "404": _error(404),
                    "410": _error(410),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "flask-jobmonitor",
            "version": VERSION,
            "description": (
                "Follow, launch and control the background jobs of this app. Errors are "
                '{"error": "..."}; times are UTC ISO 8601. Log in with the site\'s session, or send '
                "the API token the site gives you."
            ),
        },
        "servers": [{"url": server_url or "/"}],
        "security": [{"sessionCookie": []}, {"apiToken": []}],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": cookie_name},
                "metricsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "JOBMONITOR_METRICS_TOKEN, for a Prometheus scraper",
                },
                "apiToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token the host's Flask-Login request_loader accepts",
                },
            },
        },
    }


def document() -> Response:
    """``GET <prefix>/api/openapi.json``: public, like any API's description (it names no job)."""
    cookie_name = current_app.config.get("SESSION_COOKIE_NAME") or "session"
    return jsonify(build_document(request.script_root + get_state().settings.url_prefix, cookie_name))


__all__ = ["VERSION", "build_document", "document"]
