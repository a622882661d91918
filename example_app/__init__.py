"""A small product catalogue that uses flask-jobmonitor for its imports, exports and mass edits.

Run it with ``scripts/demo`` (web, workers and Redis together) or by hand:
``flask --app example_app jobmonitor init-db && flask --app example_app seed && flask --app example_app run``
and ``flask --app example_app jobmonitor worker`` in another terminal.

The session cookie is signed with ``EXAMPLE_SECRET_KEY`` when it is set; otherwise with a random
key made at the first start and kept in the instance folder (``instance/secret_key``, readable
by its owner only), with a warning in the log. The app never starts with a key written in its
code: a key anyone can read lets anyone sign a session cookie as the admin.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from typing import Any

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from werkzeug.wrappers import Response

from . import alerts, auth, language, tokens, views
from .admin_views import CatalogueHome, ExportProfilesView, ImportProfilesView, ProductView
from .auth import ROLE_PERMISSIONS
from .auth import bp as auth_bp
from .extensions import csrf, db, jobmonitor
from .models import Product

#: Room for a form's own fields and the multipart framing beside its files (MAX_CONTENT_LENGTH).
UPLOAD_FRAMING = 64 * 1024
#: What the catalogue's own pages send (the package's pages send their own, stricter set first,
#: and a header already set is kept): never framed, no referrer off the site, no type sniffing.
#: No script or style rule: Flask-Admin's model views (Products) still use inline script.
HOST_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

#: Keys that were public at some time (the demo's old built-in key): never accepted.
KNOWN_KEYS = frozenset({"demo-only-secret"})
log = logging.getLogger(__name__)


def create_app(config: dict[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    """Build the demo app; ``config`` overrides the defaults (tests use it), ``instance_path``
    the folder of its SQLite file and generated secret key."""
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "EXAMPLE_DATABASE_URL", f"sqlite:///{os.path.join(app.instance_path, 'catalogue.db')}"
        ),
        JOBMONITOR_REDIS_URL=os.environ.get("EXAMPLE_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    if config:
        app.config.update(config)
    app.config["SECRET_KEY"] = _secret_key(app, app.config.get("SECRET_KEY"))
    app.config.setdefault("JOBMONITOR_ROLE_PERMISSIONS", ROLE_PERMISSIONS)
    db.init_app(app)
    csrf.init_app(app)
    auth.init_app(app)
    tokens.init_app(app)  # API tokens for machine clients (Authorization: Bearer ...)
    language.init_app(app)  # Flask-Babel before the package: its pages follow the same locale
    admin = Admin(
        name="Catalogue",
        theme=Bootstrap4Theme(base_template="catalogue_base.html", fluid=True),
        index_view=CatalogueHome(url="/admin"),
    )
    admin.init_app(app)
    jobmonitor.init_app(app, admin=admin)
    alerts.init_app(app)  # a webhook when a job fails (EXAMPLE_FAILURE_WEBHOOK_URL)
    # Flask refuses a larger request before reading it (a 413); the files a job keeps are
    # counted again where they are stored (JOBMONITOR_MAX_UPLOAD_BYTES, validated by the
    # package): the form's own fields and the multipart framing are what the 64 KB leave room
    # for. Flask's config holds MAX_CONTENT_LENGTH = None by default, so "not set" is None.
    upload_limit = jobmonitor.state(app).settings.max_upload_bytes
    if upload_limit is not None and app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = upload_limit + UPLOAD_FRAMING
    app.after_request(_host_headers)
    admin.add_view(ProductView(Product, db, name="Products", category="Catalogue"))
    admin.add_view(ImportProfilesView(name="Import profiles", endpoint="import_profiles", category="Catalogue"))
    admin.add_view(ExportProfilesView(name="Export profiles", endpoint="export_profiles", category="Catalogue"))

    from . import tasks  # noqa: F401  (registers the tracked tasks)
    from .cli import seed_command

    app.register_blueprint(views.bp)
    app.register_blueprint(auth_bp)
    app.cli.add_command(seed_command)
    return app


def _secret_key(app: Flask, configured: Any) -> str:
    """The key that signs the session: ``configured`` (from ``config``), ``EXAMPLE_SECRET_KEY``,
    or the instance folder's generated one; a known or empty key stops the start."""
    key = configured or os.environ.get("EXAMPLE_SECRET_KEY")
    if key is None:
        path = os.path.join(app.instance_path, "secret_key")
        key = _generated_key(path)
        log.warning(
            "EXAMPLE_SECRET_KEY is not set: sessions are signed with the key generated in %s. "
            "Set EXAMPLE_SECRET_KEY to a long random value for anything but a demo on this machine.",
            path,
        )
    if not isinstance(key, str) or len(key) < 16 or key in KNOWN_KEYS:
        raise RuntimeError(
            "SECRET_KEY / EXAMPLE_SECRET_KEY must be a private random value of at least 16 characters, "
            "not a published one; unset it to use a key generated in the instance folder"
        )
    return key


def _generated_key(path: str) -> str:
    """The key kept at ``path``, made (random, mode 0600) if there is none yet.

    Made in a temporary file and linked into place, so that the web process and a worker that
    start together agree on one key and never read a half-written file.
    """
    try:
        with open(path, encoding="ascii") as existing:
            key = existing.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    temporary = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as new:
            new.write(secrets.token_urlsafe(48) + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: its key is kept
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    with open(path, encoding="ascii") as kept:
        return kept.read().strip()


def _host_headers(response: Response) -> Response:
    """``after_request``: :data:`HOST_HEADERS` on every answer that lacks them."""
    for name, value in HOST_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
