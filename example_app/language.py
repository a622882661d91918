"""The catalogue's language: English, French or German, chosen in the menu bar, kept in the session.

Flask-Babel is initialised with :func:`locale` before flask-jobmonitor, so Flask-Admin's menus and
the job pages speak the same language (the package reads the host's locale selector); without a
choice, the browser's preferred language among the three decides. Changing it is a POST with the
CSRF token, like every change, back to the page it was made from (its Referer, or a ``next``
field; a path of this site only).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, redirect, request, session, url_for
from flask_babel import Babel
from werkzeug.wrappers import Response

from flask_jobmonitor import same_site_path
from flask_jobmonitor.i18n import language_name

#: The languages offered, in the menu's order.
LANGUAGES = ("en", "fr", "de")
SESSION_KEY = "language"

bp = Blueprint("language", __name__)
babel = Babel()


def locale() -> str:
    """The language of this request: the one chosen in the menu, else the browser's best match."""
    chosen = session.get(SESSION_KEY)
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


@bp.post("/language")
def choose() -> Response:
    language = request.form.get("language", "")
    if language not in LANGUAGES:
        abort(400, description=f"language must be one of {', '.join(LANGUAGES)}")
    session[SESSION_KEY] = language
    return redirect(same_site_path(request.form.get("next") or _referring_page(), url_for("admin.index")))


def _referring_page() -> str | None:
    """The page the menu was used on, from the Referer of this same site (the menu carries no
    ``next`` field: a page's address, an unknown job's id on a "not found" page included, stays
    out of its markup); None when the browser sent none."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc != request.host:
        return None
    return referrer.path + (f"?{referrer.query}" if referrer.query else "")


def _menu() -> dict[str, Any]:
    return {
        "catalogue_languages": [(code, language_name(code)) for code in LANGUAGES],
        "catalogue_language": locale,
    }


def init_app(app: Flask) -> None:
    """Flask-Babel with the catalogue's locale selector (call before ``jobmonitor.init_app``),
    the route that changes the language, and the menu's choices for the templates."""
    babel.init_app(app, locale_selector=locale)
    app.register_blueprint(bp)
    app.context_processor(_menu)
