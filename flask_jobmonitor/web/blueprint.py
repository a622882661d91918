"""The package's one Flask blueprint: its templates and static files, its error answers and
security headers, and the table of its URLs (JSON endpoints in api.py and launch.py, described
by openapi.py; downloads in downloads.py). The admin pages are Flask-Admin views (admin/), registered by the extension.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import HTTPException

from ..state import get_state
from . import api, downloads, launch, metrics, openapi
from .headers import add_security_headers
from .requests import json_error

bp = Blueprint("jobmonitor", __name__, template_folder="templates", static_folder="static", static_url_path="/static")
bp.after_request(add_security_headers)

bp.add_url_rule("/api/jobs", view_func=api.jobs_summary, methods=["GET"])
bp.add_url_rule("/api/jobs/<job_id>", view_func=api.job_detail, methods=["GET"])
bp.add_url_rule("/api/jobs/<job_id>/<action>", view_func=api.job_action, methods=["POST"])
bp.add_url_rule("/api/jobs/bulk", view_func=api.bulk_action, methods=["GET", "POST"])
bp.add_url_rule("/api/tasks", view_func=launch.list_tasks, methods=["GET"])
bp.add_url_rule("/api/tasks/<name>/jobs", view_func=launch.launch, methods=["POST"])
bp.add_url_rule("/api/openapi.json", view_func=openapi.document, methods=["GET"])
bp.add_url_rule("/api/notifications", view_func=api.notifications, methods=["GET"])
bp.add_url_rule("/api/notifications/read", view_func=api.mark_notifications_read, methods=["POST"])
bp.add_url_rule("/metrics", view_func=metrics.metrics, methods=["GET"])
bp.add_url_rule("/files/<int:file_id>", view_func=downloads.download, methods=["GET"])


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    """JSON endpoints answer errors (404, 400 ...) as ``{"error": ...}``; downloads as usual."""
    if error.response is not None:
        return error.response
    if request.path.startswith(f"{get_state().settings.url_prefix}/api/"):
        return json_error(error.code or 500, error.description or error.name)
    return error
