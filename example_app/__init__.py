"""A small product catalogue that uses flask-jobmonitor for its imports, exports and mass edits.

Run it with ``scripts/demo`` (web, workers and Redis together) or by hand:
``flask --app example_app jobmonitor init-db && flask --app example_app seed && flask --app example_app run``
and ``flask --app example_app jobmonitor worker`` in another terminal.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from . import auth, views
from .admin_views import CatalogueHome, ExportProfilesView, ImportProfilesView, ProductView
from .auth import ROLE_PERMISSIONS
from .auth import bp as auth_bp
from .extensions import csrf, db, jobmonitor
from .models import Product


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the demo app; ``config`` overrides the defaults (tests use it)."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(
        SECRET_KEY=os.environ.get("EXAMPLE_SECRET_KEY", "demo-only-secret"),
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "EXAMPLE_DATABASE_URL", f"sqlite:///{os.path.join(app.instance_path, 'catalogue.db')}"
        ),
        JOBMONITOR_REDIS_URL=os.environ.get("EXAMPLE_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    if config:
        app.config.update(config)
    app.config.setdefault("JOBMONITOR_ROLE_PERMISSIONS", ROLE_PERMISSIONS)
    db.init_app(app)
    csrf.init_app(app)
    auth.init_app(app)
    admin = Admin(
        name="Catalogue",
        theme=Bootstrap4Theme(base_template="catalogue_base.html", fluid=True),
        index_view=CatalogueHome(url="/admin"),
    )
    admin.init_app(app)
    jobmonitor.init_app(app, admin=admin)
    admin.add_view(ProductView(Product, db, name="Products", category="Catalogue"))
    admin.add_view(ImportProfilesView(name="Import profiles", endpoint="import_profiles", category="Catalogue"))
    admin.add_view(ExportProfilesView(name="Export profiles", endpoint="export_profiles", category="Catalogue"))

    from . import tasks  # noqa: F401  (registers the tracked tasks)
    from .cli import seed_command

    app.register_blueprint(views.bp)
    app.register_blueprint(auth_bp)
    app.cli.add_command(seed_command)
    return app
