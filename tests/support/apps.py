"""The one builder of test host apps, :func:`build_app`, with an option for each kind of host.

* ``build_app(url)``: configured by nothing but the database and the given ``config``, so a test
  sees the package's defaults and can set any key;
* ``build_app(url, redis_url, storage_path)``: the plain host of most tests (short flush
  interval, this process's queue names);
* ``login="page"``: a host as a real project builds it (``WEB_HOST``): Flask-Login with a login
  view and a ``request_loader`` for API tokens (:func:`token_user`), Flask-WTF's CSRFProtect,
  Flask-Admin (Bootstrap 4), the pages of :data:`host` (``/_test/login/<who>`` among them) and
  the users of ``users.USERS``;
* ``login="header"``: Flask-Login reads the user's id from the ``X-User`` header of each request.

Every app shares ``extensions.db`` and ``extensions.jobmonitor``, on which the test tasks of
``tests/tasks.py`` and ``tests/reliability_tasks.py`` are registered (imported here for that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from flask import Blueprint, Flask, redirect, render_template_string, url_for
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import Babel
from flask_login import LoginManager, current_user, login_user
from flask_wtf.csrf import CSRFProtect, generate_csrf
from werkzeug.wrappers import Response

from .. import reliability_tasks, tasks  # noqa: F401  (registers the test tasks)
from .databases import empty_tables
from .extensions import QUEUE_NAMES, db, jobmonitor
from .queues import empty_queues
from .users import ROLE_PERMISSIONS, USERS, USERS_BY_ID, User

#: A page of the host that puts both helpers on it, as a host's base template would.
HOST_PAGE = """<!doctype html><html><body>
<nav>{{ jobmonitor_notifications() }}</nav>
<main>{{ jobmonitor_widget() }}</main>
</body></html>"""

#: The options of the web tests' host (``tests/web``): see the module docstring.
WEB_HOST: dict[str, Any] = {
    "name": "jobmonitor_web_tests",
    "login": "page",
    "admin": "Host admin",
    "SECRET_KEY": "web-test",
    "JOBMONITOR_ROLE_PERMISSIONS": ROLE_PERMISSIONS,
}

host = Blueprint("host", __name__)


@host.get("/login")
def login_page() -> str:
    return "Please log in"


@host.get("/_test/login/<who>")
def test_login(who: str) -> str:
    login_user(USERS[who])
    return f"logged in as {who}"


@host.get("/_test/csrf")
def test_csrf() -> str:
    """The CSRF token of this client's session, as a page would embed it."""
    return generate_csrf()


@host.get("/_test/page")
def host_page() -> str:
    return render_template_string(HOST_PAGE)


@host.get("/_test/start")
def start_job() -> Response:
    """Launches a job from a request, as a host view does, then shows the process tracker."""
    jobmonitor.enqueue(tasks.noop, user=current_user, name="Export <prices>")
    return redirect(url_for("jobmonitor_jobs.index"))


def token_user(request: Any) -> User | None:
    """The user of an API token ``token-<who>`` (``Authorization: Bearer token-clerk_a``), as a
    host's ``request_loader`` reads one; anything else logs no one in."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not token.startswith("token-"):
        return None
    return USERS.get(token.removeprefix("token-"))


def build_app(
    database_url: str,
    redis_url: str | None = None,
    storage_path: str | None = None,
    *,
    name: str = "jobmonitor_tests",
    queue_names: Mapping[str, str] = QUEUE_NAMES,
    login: Literal["page", "header"] | None = None,
    users: Mapping[str, User] = USERS_BY_ID,
    admin: str | None = None,
    locale_selector: Callable[[], str | None] | None = None,
    **config: Any,
) -> Flask:
    """A test host app on the shared ``db`` and ``jobmonitor`` (see the module docstring).

    Without ``redis_url`` only ``TESTING``, the database and ``config`` are set. With it, the app
    also has a secret key, ``redis_url``, ``storage_path``, a flush interval of 0.2 s and
    ``queue_names``; ``config`` overrides any of them. ``login``: how a user logs in (None: no
    Flask-Login); ``users``: who can, by id. ``admin``: the name of a Flask-Admin the package
    adds its views to (None: no admin views). ``locale_selector``: Flask-Babel initialised with
    it before the package (None: Flask-Babel left to the package, as a host that never calls
    ``Babel(app)``).
    """
    app = Flask(name)
    settings: dict[str, Any] = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url}
    if redis_url is not None:
        settings.update(
            SECRET_KEY="test",
            JOBMONITOR_REDIS_URL=redis_url,
            JOBMONITOR_STORAGE_PATH=storage_path,
            JOBMONITOR_FLUSH_INTERVAL=0.2,
            JOBMONITOR_QUEUE_NAMES=dict(queue_names),
        )
    settings.update(config)
    app.config.update(settings)
    db.init_app(app)
    if login == "page":
        CSRFProtect(app)
    if login is not None:
        login_manager = LoginManager(app)
        login_manager.user_loader(users.get)
        if login == "page":
            login_manager.login_view = "host.login_page"
            login_manager.request_loader(token_user)  # machine clients: Authorization: Bearer token-<who>
        else:
            login_manager.request_loader(lambda request: users.get(request.headers.get("X-User", "")))
    if locale_selector is not None:
        Babel(app, locale_selector=locale_selector)
    admin_views = None if admin is None else Admin(app, name=admin, theme=Bootstrap4Theme())
    jobmonitor.init_app(app, admin=admin_views)
    if login == "page":
        app.register_blueprint(host)
    return app


def emptied(app: Flask, redis_url: str, *, restart_ids: bool = True) -> Flask:
    """Empty ``app``'s job tables and this process's queues on ``redis_url``; return ``app``.
    (``restart_ids``: see ``databases.empty_tables``.)"""
    empty_queues(redis_url)
    with app.app_context():
        empty_tables(db.engine, restart_ids=restart_ids)
    return app
