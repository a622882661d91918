"""The package's one Flask blueprint: its templates and static files, its error answers and
security headers, and the table of its URLs (JSON endpoints in api.py and launch.py, described
by openapi.py; metrics in metrics.py; downloads in downloads.py). The admin pages are
Flask-Admin views (admin/), registered by the extension.

Every answer under ``<prefix>/api/`` is JSON, errors included: a method a path does not take
is a JSON 405 naming the ones it does (``Allow``), an address that names no endpoint a JSON
404, a body past ``MAX_CONTENT_LENGTH`` a JSON 413.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import FileTooLarge
from ..i18n import gettext
from ..state import get_state
from . import api, downloads, launch, metrics, openapi
from .headers import add_security_headers
from .requests import json_error

bp = Blueprint("jobmonitor", __name__, template_folder="templates", static_folder="static", static_url_path="/static")
bp.after_request(add_security_headers)

#: The methods an API path answers in JSON whatever they are (a method outside them, such as
#: TRACE, gets Flask's own 405).
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _api(rule: str, view: Any, methods: list[str]) -> None:
    """Route ``rule`` to ``view`` for ``methods``; OPTIONS to a 204 whose ``Allow`` names them;
    every other method to a JSON 405 that names them too (routes of their own: Flask's routing
    would answer in HTML, and its automatic OPTIONS would list the 405 route's methods)."""
    bp.add_url_rule(rule, view_func=view, methods=methods, provide_automatic_options=False)
    bp.add_url_rule(
        rule,
        endpoint=f"{view.__name__}_options",
        view_func=partial(api.allowed_methods, allowed=methods),
        methods=["OPTIONS"],
        provide_automatic_options=False,
    )
    others = [method for method in _METHODS if method not in (*methods, "OPTIONS")]
    bp.add_url_rule(
        rule,
        endpoint=f"{view.__name__}_refused",
        view_func=partial(api.method_not_allowed, allowed=methods),
        methods=others,
        provide_automatic_options=False,
    )


_api("/api/jobs", api.jobs_summary, ["GET"])
_api("/api/jobs/bulk", api.bulk_action, ["POST"])
_api("/api/jobs/<job_id>", api.job_detail, ["GET"])
_api("/api/jobs/<job_id>/subtasks", api.job_subtasks, ["GET"])
_api("/api/jobs/<job_id>/logs", api.job_logs, ["GET"])
_api("/api/jobs/<job_id>/<action>", api.job_action, ["POST"])
_api("/api/tasks", launch.list_tasks, ["GET"])
_api("/api/tasks/<path:name>/jobs", launch.launch, ["POST"])  # a task's name may hold "/"
_api("/api/openapi.json", openapi.document, ["GET"])
_api("/api/notifications", api.notifications, ["GET"])
_api("/api/notifications/read", api.mark_notifications_read, ["POST"])
# any other path under /api/: a JSON 404, not the host's HTML one
bp.add_url_rule(
    "/api/<path:unknown>", view_func=api.no_such_endpoint, methods=list(_METHODS), provide_automatic_options=False
)
bp.add_url_rule("/metrics", view_func=metrics.metrics, methods=["GET"])
bp.add_url_rule("/files/<file_id>", view_func=downloads.download, methods=["GET"])


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    """JSON endpoints answer errors (404, 400 ...) as ``{"error": ...}``; downloads as usual."""
    if error.response is not None:
        return error.response
    if request.path.startswith(f"{get_state().settings.url_prefix}/api/"):
        if isinstance(error, RequestEntityTooLarge) and not isinstance(error, FileTooLarge):
            # Flask refused the body before any view read it (MAX_CONTENT_LENGTH)
            return json_error(413, gettext("the request is larger than this site accepts"))
        return json_error(error.code or 500, error.description or error.name)
    return error
