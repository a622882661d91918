"""The catalogue's pages: products, and the forms that launch jobs."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from flask_jobmonitor import EnqueueError, FileTooLarge

from .extensions import jobmonitor
from .tasks import (
    apply_pricing_rules,
    change_prices,
    export_products,
    import_products,
    stock_report,
    sync_supplier_stock,
)

bp = Blueprint("catalogue", __name__)
#: The most a mass edit raises prices by, in percent (it lowers them by less than 100%: to above 0).
MAX_PERCENT = 1000


@bp.before_request
def _login_required() -> Response | None:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path))
    return None


@bp.get("/")
def index() -> Response:
    return redirect(url_for("admin.index"))


@bp.post("/import")
def start_import() -> Response:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose a CSV file to import.", "error")
        return redirect(url_for("admin.index"))
    return _launch(
        lambda: jobmonitor.enqueue(
            import_products, name=f"Import {upload.filename}", files={"products.csv": upload}, user=current_user
        )
    )


@bp.post("/export")
def start_export() -> Response:
    return _launch(lambda: jobmonitor.enqueue(export_products, name="Export all products", user=current_user))


@bp.post("/rules")
def start_rules() -> Response:
    return _launch(lambda: jobmonitor.enqueue(apply_pricing_rules, name="Apply pricing rules", user=current_user))


@bp.post("/report")
def start_report() -> Response:
    return _launch(lambda: jobmonitor.enqueue(stock_report, name="Stock report", user=current_user))


@bp.post("/supplier-sync")
def start_supplier_sync() -> Response:
    return _launch(
        lambda: jobmonitor.enqueue(sync_supplier_stock, name="Sync stock from the supplier", user=current_user)
    )


@bp.post("/mass-edit")
def start_mass_edit() -> Response:
    try:
        percent = float(request.form.get("percent", ""))
    except ValueError:
        percent = math.nan
    # float() also reads "nan" and "inf": no price can change by those (and JSON cannot hold them)
    if not -100 < percent <= MAX_PERCENT:
        flash(f"The percentage must be a number above -100 and at most {MAX_PERCENT}.", "error")
        return redirect(url_for("admin.index"))
    return _launch(
        lambda: jobmonitor.enqueue(change_prices, percent, name=f"Change prices by {percent:+g}%", user=current_user)
    )


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> Any:
    """413 for an upload past the limit on the catalogue's forms (the package's pages and JSON
    answer their own): Flask's MAX_CONTENT_LENGTH on the request, or the package's FileTooLarge
    on the files (a RequestEntityTooLarge too). JSON for JSON requests; else the start page,
    answered 413, with the reason where the form was."""
    message = too_large_message(error)
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return {"error": message}, 413
    flash(message, "error")
    return current_app.view_functions["admin.index"](), 413


def too_large_message(error: RequestEntityTooLarge) -> str:
    """What a person reads of a 413: the package's own words for its limit (FileTooLarge), also
    when Flask refused the request before the files were counted."""
    if isinstance(error, FileTooLarge):
        return str(error.description)
    limit = jobmonitor.state().settings.max_upload_bytes
    return str(FileTooLarge(limit).description if limit is not None else error.description)


def _launch(start: object) -> Response:
    try:
        start()  # type: ignore[operator]
    except EnqueueError as error:
        flash(f"The job could not be started: {error.reason}", "error")
    return redirect(url_for("admin.index"))
