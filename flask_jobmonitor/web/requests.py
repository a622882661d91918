"""Request-side helpers shared by the admin views and the JSON endpoints: who is asking, which
job they may see, which time zone they read times in, CSRF, and error answers.

The viewer's zone (:func:`request_zone`) is, in this order: what the host's selector returns
(``JOBMONITOR_TIMEZONE_SELECTOR`` or ``@jobmonitor.timezone_selector``); else, if the host
initialised Flask-Babel with a timezone selector of its own, Flask-Babel's ``get_timezone()``;
else ``JOBMONITOR_TIMEZONE``. A selector's answer that names no zone is logged and the default
used: a user's stale profile setting must not break the pages.

CSRF (:func:`require_csrf`) guards what a browser sends on its own. A request needs no CSRF
token only when all of these hold: Flask-Login loaded its user from the request itself (the
host's ``request_loader``), it carries no cookie at all, and its ``Authorization`` header is of
a scheme named in ``JOBMONITOR_TOKEN_SCHEMES`` (``Bearer``): an API token, which the host's
loader must be what reads. Everything else is checked: a session cookie (even with a token
beside it), a loader that reads HTTP Basic (browsers resend it from their cache), single
sign-on or a client certificate. The check is Flask-WTF's: its global ``CSRFProtect`` when the host
uses it (``protect()``: its field and header names, its strict Referer check over HTTPS), else
``validate_csrf`` with the configured names. That ``CSRFProtect`` leaves the package's
blueprint to this rule (:func:`install`), as Flask-WTF documents for APIs.

Error answers keep two rules. The JSON endpoints (``<prefix>/api/...``) answer ``{"error": ...}``
(api.py). The job pages answer 400, 403, 404 and 413 inside the admin layout, with the menu and a
link back to the job list (:func:`error_page_context`); a 404 never says whether a job exists
or is only someone else's, and repeats no id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from datetime import tzinfo
from typing import Any, NoReturn

import sqlalchemy as sa
from flask import Flask, abort, current_app, g, has_request_context, jsonify, request, url_for
from flask.blueprints import Blueprint
from flask_login import user_loaded_from_request
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import ValidationError

from ..i18n import N_, gettext
from ..records.models import Job
from ..state import JobMonitorState, get_state
from ..timeutil import as_zone

log = logging.getLogger("flask_jobmonitor.internal.requests")

_ID_LENGTH = 36


def current_user() -> Any:
    """The user making the request (Flask-Login's current_user), or None without a login manager."""
    return get_state().permissions.current_user()


def request_zone(state: JobMonitorState | None = None) -> tzinfo:
    """The time zone of this request's viewer (see the module's docstring); once per request.
    Outside a request, ``JOBMONITOR_TIMEZONE``."""
    state = state or get_state()
    if not has_request_context():
        return state.settings.timezone
    zone: tzinfo | None = g.get("_jobmonitor_zone")
    if zone is None:
        zone = g._jobmonitor_zone = _selected_zone(state) or state.settings.timezone
    return zone


def _selected_zone(state: JobMonitorState) -> tzinfo | None:
    """The zone a selector chose for this viewer: the package's (``JOBMONITOR_TIMEZONE_SELECTOR``,
    ``@jobmonitor.timezone_selector``), else Flask-Babel's ``timezone_selector`` called directly
    (``flask_babel.get_timezone()`` turns its None into Flask-Babel's own default, UTC, and
    raises on a name pytz does not know). None: no choice, ``JOBMONITOR_TIMEZONE``. A selector
    that raises or names no zone is logged and the default used: never a 500."""
    selector = state.timezone_selector
    source = "the time zone selector"
    if selector is None and _babel_picks_zones():
        selector, source = current_app.extensions["babel"].timezone_selector, "Flask-Babel's time zone selector"
    if selector is None:
        return None
    try:
        value = selector()
    except Exception:  # the host's code: its failure must not break the job pages
        log.exception("%s raised; using %s", source, state.settings.timezone)
        return None
    if value is None:
        return None
    try:
        return as_zone(value)
    except ValueError as error:
        default = state.settings.timezone
        log.warning("%s returned %r, which is no time zone (%s); using %s", source, value, error, default)
        return None


def _babel_picks_zones() -> bool:
    """Whether the host initialised Flask-Babel with a timezone selector (Flask-Babel's default
    zone alone does not override ``JOBMONITOR_TIMEZONE``)."""
    babel = current_app.extensions.get("babel")
    return babel is not None and getattr(babel, "timezone_selector", None) is not None


def is_valid_job_id(job_id: str) -> bool:
    """A job id is a 36-character UUID string; anything else cannot name a job."""
    return len(job_id) == _ID_LENGTH and all(ch in "0123456789abcdef-" for ch in job_id)


def visible_job_or_404(job_id: str, state: JobMonitorState | None = None) -> Job:
    """Load ``job_id`` if the current user may see it; otherwise 404.

    Someone else's job answers exactly like a job that does not exist, so ids cannot be probed.
    """
    state = state or get_state()
    if not is_valid_job_id(job_id):
        abort(404, description=gettext("no job with id '%(id)s'", id=job_id))
    with Session(state.engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
        if job is not None:
            session.expunge(job)
    if job is None or not state.permissions.can_view(current_user(), job):
        abort(404, description=gettext("no job with id '%(id)s'", id=job_id))
    return job


def install(app: Flask, blueprint: Blueprint) -> None:
    """Apply the module's CSRF rule to ``app``: note a user Flask-Login loads from the request,
    and leave ``blueprint`` (whose changes all call :func:`require_csrf`) out of Flask-WTF's
    global ``CSRFProtect``, whichever of the two extensions the host initialised first (the
    hook runs before ``CSRFProtect``'s own)."""
    user_loaded_from_request.connect(_loaded_from_request, app)

    def leave_blueprint_to_package() -> None:
        protect = current_app.extensions.get("csrf")
        if protect is not None and blueprint not in getattr(protect, "_exempt_blueprints", ()):
            protect.exempt(blueprint)

    app.before_request_funcs.setdefault(None, []).insert(0, leave_blueprint_to_package)


def _loaded_from_request(_app: Any, user: Any = None, **_extra: Any) -> None:
    g._jobmonitor_request_login = True


def is_token_request() -> bool:
    """Whether this request is a machine client's: user loaded from the request by the host's
    ``request_loader``, no cookie, an ``Authorization`` of a scheme of
    ``JOBMONITOR_TOKEN_SCHEMES`` (see the module's docstring)."""
    current_user()  # Flask-Login loads the user (and sends its signal) on first use
    if not g.get("_jobmonitor_request_login") or request.cookies:
        return False
    scheme = request.headers.get("Authorization", "").partition(" ")[0].lower()
    return scheme in get_state().settings.token_schemes


def refuse_nameless_fields() -> None:
    """400 for a form with a part that has no usable name (Werkzeug gives it the key None, on
    which Flask-WTF's check, and any code that sorts the names, would stumble: a 500)."""
    if request.mimetype in FORM_TYPES and any(
        not isinstance(key, str) for key in (*request.form.keys(), *request.files.keys())
    ):
        abort(400, description=gettext("the form holds a field without a name"))


def require_csrf() -> None:
    """Refuse a state-changing request without a valid CSRF token, unless it is a machine
    client's (:func:`is_token_request`); see the module's docstring.

    Honours Flask-WTF's ``WTF_CSRF_ENABLED = False``, the switch hosts use in their own tests.
    """
    if not current_app.config.get("WTF_CSRF_ENABLED", True) or is_token_request():
        return
    refuse_nameless_fields()
    protect = current_app.extensions.get("csrf")
    try:
        if protect is not None and hasattr(protect, "protect"):
            protect.protect()  # the host's CSRFProtect: its names, its Referer check over HTTPS
            return
        config = current_app.config
        token = request.form.get(config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
        for header in config.get("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"]):
            token = token or request.headers.get(header)
        validate_csrf(token)
    except (ValidationError, CSRFError) as error:
        reason = error.description if isinstance(error, CSRFError) else str(error)
        abort(400, description=gettext("CSRF check failed: %(reason)s", reason=gettext(str(reason))))
    except RuntimeError as error:  # Flask-WTF without the app's SECRET_KEY: nothing can be checked
        log.error("CSRF check impossible: %s", error)
        abort(400, description=gettext("CSRF check failed: %(reason)s", reason=gettext("The CSRF token is missing.")))


def json_error(status: int, message: str) -> Response:
    """A JSON error answer: ``{"error": message}`` with ``status``."""
    response = jsonify({"error": message})
    response.status_code = status
    return response


def abort_json(status: int, message: str) -> NoReturn:
    """Stop the request with a JSON error."""
    abort(json_error(status, message))


def decode_json(raw: str | bytes, what: str) -> Any:
    """``raw`` decoded as JSON; 400 naming ``what`` when it is not JSON (malformed, or nested past
    what Python's parser takes)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        abort_json(400, gettext("%(what)s is not valid JSON", what=what))


FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def json_object(keys: Collection[str], example: str, *, forms: bool = False) -> dict[str, Any] | None:
    """The JSON object a POST sends, checked: ``{}`` without a body; 400 for a body that is not
    JSON, not an object, or holds a key not in ``keys``; 415 for another media type. With
    ``forms``, a form post answers None (the caller reads the form)."""
    if forms and request.mimetype in FORM_TYPES:
        return None
    data = request.get_data(cache=True)
    if request.mimetype != "application/json":
        if not data and request.mimetype not in FORM_TYPES:  # a form's body may have been read already
            return {}
        abort_json(415, gettext("send JSON (application/json), such as %(example)s", example=example))
    return checked_object(decode_json(data, gettext("the body")) if data else {}, keys, example)


def checked_object(payload: Any, keys: Collection[str], example: str) -> dict[str, Any]:
    """``payload`` (decoded JSON: a body, or a form field holding JSON) if it is an object whose
    keys are all in ``keys``; else 400 saying what to send."""
    if not isinstance(payload, dict):
        abort_json(400, gettext("send a JSON object, such as %(example)s", example=example))
    unknown = sorted(set(payload) - set(keys))
    if unknown:
        abort_json(
            400,
            gettext(
                "unknown keys %(keys)s; this takes %(known)s",
                keys=", ".join(map(repr, unknown[:10])),
                known=", ".join(keys),
            ),
        )
    return payload


#: Flask-WTF's reasons for a refused CSRF token, marked for the catalogues (shown translated).
CSRF_REASONS = (
    N_("The CSRF token is missing."),
    N_("The CSRF token has expired."),
    N_("The CSRF token is invalid."),
    N_("The CSRF tokens do not match."),
    N_("The CSRF session token is missing."),
    N_("The referrer header is missing."),
    N_("The referrer does not match the host."),
)
#: The codes the job pages answer with their own page; others keep Flask's answer.
PAGE_ERROR_CODES = (400, 403, 404, 413)
_PAGE_ERRORS = {
    400: (N_("This request cannot be answered"), None),
    403: (N_("You may not open this page"), N_("Your account does not have the permission this page needs.")),
    404: (N_("Job not found"), N_("There is no job at this address, or it is not one you may see.")),
    413: (N_("The file is too large"), None),  # the limit, in the error's own words (FileTooLarge)
}


def error_page_context(error: HTTPException, home_url: str) -> dict[str, Any]:
    """What the error page (``jobmonitor/error.html``) shows for ``error``: a title, one
    sentence in plain words and the way back (the job list if the user may open it, else
    ``home_url``, the admin's start page)."""
    code = error.code or 500
    title, text = _PAGE_ERRORS.get(code, (error.name, None))
    title, text = gettext(title), (gettext(text) if text else text)
    if code == 403 and error.description != type(error).description:
        text = error.description  # a refusal of the package's own, in plain words (no id)
    if get_state().permissions.can_access(current_user()):
        back_url, back_label = url_for("jobmonitor_jobs.index"), gettext("Back to the job list")
    else:
        back_url, back_label = home_url, gettext("Back to the start page")
    return {
        "code": code,
        "title": title,
        # a 400 says what was wrong with the request (a filter, a form); a 404 never says more
        "text": text or error.description or error.name,
        "back_url": back_url,
        "back_label": back_label,
    }


def visible_ids(state: JobMonitorState, job_ids: list[str]) -> list[Job]:
    """The jobs among ``job_ids`` that the current user may see (unknown or foreign ones dropped)."""
    valid = [job_id for job_id in job_ids if is_valid_job_id(job_id)]
    if not valid:
        return []
    with Session(state.engine) as session:
        jobs = list(session.execute(sa.select(Job).where(Job.id.in_(valid))).scalars())
        session.expunge_all()
    user = current_user()
    return [job for job in jobs if state.permissions.can_view(user, job)]


def require_access() -> Any:
    """The current user, if they may see tracked jobs at all; else a JSON 401 (with
    ``WWW-Authenticate``: log in, or send a valid token) or 403."""
    state = get_state()
    user = current_user()
    if not state.permissions.can_access(user):
        if state.permissions.is_authenticated(user):
            abort_json(403, gettext("you may not see tracked jobs"))
        refused = json_error(401, gettext("log in, or send a valid API token"))
        refused.headers["WWW-Authenticate"] = 'Bearer realm="jobmonitor"'
        abort(refused)
    return user
