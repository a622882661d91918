"""A host app as a real project builds it: Flask-SQLAlchemy, Flask-Login, Flask-WTF's CSRFProtect,
Flask-Admin (Bootstrap 4) and ``jobmonitor.init_app(app, admin=admin)``, with a handful of users.

Users (``USERS``): ``admin`` (role ``admin``: every permission), ``manager`` (view_all + stop,
its role given as an object with ``.name``), ``clerk_a`` and ``clerk_b`` (no extra permission)
and ``auditor`` (view_all). Anonymous is a client that never logged in.

The ``app`` fixture overrides the root one: the root ``create_app`` registers no admin views.
Unlike the root fixture it does not keep an app context pushed while the test runs: a request
reuses an already pushed context of the same app, and with it ``g``, where Flask-Login caches the
user, so two clients logged in as different users would see each other's identity. One app per
database serves the whole session (building an app recompiles every template); each test starts
with empty job tables and queues. ``make_app(**config)`` builds a separate app for other settings.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
from flask import Blueprint, Flask, redirect, render_template_string, url_for
from flask.testing import FlaskClient
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_login import LoginManager, UserMixin, current_user, login_user
from flask_wtf.csrf import CSRFProtect, generate_csrf
from redis import Redis
from rq import SimpleWorker
from werkzeug.wrappers import Response

from flask_jobmonitor.permissions import PERMISSIONS, STOP, VIEW_ALL
from flask_jobmonitor.records.models import Base, job_table
from flask_jobmonitor.timeutil import utcnow

from ..app_factory import QUEUE_NAMES, db, jobmonitor
from ..conftest import run_worker


class Role(NamedTuple):
    """A role object as Flask-Security and most ORMs have them: only ``.name`` matters."""

    name: str


class User(UserMixin):
    """The host's user: an id, a display name and roles (names or objects with ``.name``)."""

    def __init__(self, id: str, name: str, roles: list[Any] | None = None) -> None:
        self.id = id
        self.name = name
        self.roles = roles or []

    def __repr__(self) -> str:
        return f"<User {self.id} {self.name}>"


USERS: dict[str, User] = {
    "admin": User("1", "Ada Admin", ["admin"]),
    "manager": User("2", "Max Manager", [Role("manager")]),
    "clerk_a": User("3", "Clara Clerk", []),
    "clerk_b": User("4", "Carl Clerk", []),
    "auditor": User("5", "Audrey Auditor", ["auditor"]),
}
USERS_BY_ID = {user.id: user for user in USERS.values()}
ROLE_PERMISSIONS = {"admin": PERMISSIONS, "manager": (VIEW_ALL, STOP), "auditor": (VIEW_ALL,)}

#: A page of the host that puts both helpers on it, as a host's base template would.
HOST_PAGE = """<!doctype html><html><body>
<nav>{{ jobmonitor_notifications() }}</nav>
<main>{{ jobmonitor_widget() }}</main>
</body></html>"""

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
    from .. import tasks

    jobmonitor.enqueue(tasks.noop, user=current_user, name="Export <prices>")
    return redirect(url_for("jobmonitor_jobs.index"))


def create_web_app(database_url: str, redis_url: str, storage_path: str, **config: Any) -> Flask:
    """The host app of the web tests (see the module docstring), modelled on ``tests.app_factory``."""
    app = Flask("jobmonitor_web_tests")
    app.config.update(
        TESTING=True,
        SECRET_KEY="web-test",
        SQLALCHEMY_DATABASE_URI=database_url,
        JOBMONITOR_REDIS_URL=redis_url,
        JOBMONITOR_STORAGE_PATH=storage_path,
        JOBMONITOR_FLUSH_INTERVAL=0.2,
        JOBMONITOR_QUEUE_NAMES=QUEUE_NAMES,
        JOBMONITOR_ROLE_PERMISSIONS=ROLE_PERMISSIONS,
        **config,
    )
    db.init_app(app)
    CSRFProtect(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "host.login_page"
    login_manager.user_loader(USERS_BY_ID.get)
    admin = Admin(app, name="Host admin", theme=Bootstrap4Theme())
    jobmonitor.init_app(app, admin=admin)
    app.register_blueprint(host)
    from .. import tasks  # noqa: F401  (registers the test tasks)

    return app


def _empty_tables(engine: sa.Engine) -> None:
    # DELETE rather than TRUNCATE: on the few rows a test leaves it is several times faster
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


def _dispose(application: Flask) -> None:
    with application.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def _reset(application: Flask, redis_url: str) -> Flask:
    """Empty job tables and queues, so each test starts from nothing."""
    Redis.from_url(redis_url).delete(*(f"rq:queue:{name}" for name in QUEUE_NAMES.values()))
    with application.app_context():
        _empty_tables(db.engine)
    return application


@pytest.fixture(scope="session")
def shared_app(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One host app per database for the whole session: a new app compiles every template anew,
    which would cost more than most tests."""
    application = create_web_app(database_url, redis_url, str(tmp_path_factory.mktemp("web-files")))
    yield application
    _dispose(application)


@pytest.fixture
def app(shared_app: Flask, redis_url: str) -> Flask:
    """The host app with empty job tables and queues (no app context pushed: see the module docstring)."""
    return _reset(shared_app, redis_url)


@pytest.fixture
def make_app(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build a host app with extra config (empty tables, empty queues); cleaned up afterwards."""
    built: list[Flask] = []

    def build(**config: Any) -> Flask:
        application = create_web_app(database_url, redis_url, str(tmp_path / "files"), **config)
        built.append(application)
        return _reset(application, redis_url)

    yield build
    for application in built:
        _dispose(application)


@pytest.fixture
def engine(app: Flask) -> sa.Engine:
    with app.app_context():
        return db.engine


@pytest.fixture
def client_for(app: Flask) -> Callable[[str | None], FlaskClient]:
    """``client_for("clerk_a")``: a test client logged in as that user; ``None``: anonymous."""

    def make(who: str | None) -> FlaskClient:
        client = app.test_client()
        if who is not None:
            assert client.get(f"/_test/login/{who}").status_code == 200
        return client

    return make


def csrf_token(client: FlaskClient) -> str:
    """A valid CSRF token for ``client``'s session (``generate_csrf()`` in one of its requests)."""
    response = client.get("/_test/csrf")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def enqueue(app: Flask, task: Any, who: str | None = "clerk_a", **options: Any) -> str:
    """Enqueue ``task`` for user ``who`` outside any request (no flash); return the job id."""
    with app.app_context():
        return jobmonitor.enqueue(task, user=USERS[who] if who else None, **options).id


def run_jobs(app: Flask) -> None:
    """Run every queued job with a real (burst) SimpleWorker."""
    run_worker(app, SimpleWorker)


def add_job(engine: sa.Engine, owner: str | None = "clerk_a", **values: Any) -> str:
    """Insert a job row run by ``owner`` (a key of USERS, or None for nobody); return its id."""
    now = utcnow()
    user = USERS[owner] if owner else None
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": "a job",
        "type": "general",
        "category": "general",
        "task": "tests.tasks.noop",
        "params": {"args": [], "kwargs": {}},
        "status": "queued",
        "is_system": False,
        "low_priority": False,
        "queue_name": QUEUE_NAMES["default"],
        "run_by_id": user.id if user else None,
        "run_by_name": user.name if user else None,
        "created_at": now,
        "status_changed_at": values.get("created_at", now),
        "progress_done": 0,
        "current_step": 0,
        "step_count": 0,
        "error_count": 0,
        "warning_count": 0,
        "attempt": 0,
        "stop_forced": False,
    }
    row.update(values)
    with engine.begin() as connection:
        connection.execute(sa.insert(job_table).values(**row))
    return str(row["id"])


def at(minutes: float, base: datetime = datetime(2026, 3, 2, 12, 0, 0)) -> datetime:
    """A fixed time ``minutes`` after noon on 2 March 2026 (naive UTC, as the package stores)."""
    return base + timedelta(minutes=minutes)


@contextmanager
def recorded_statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect the SQL text of every statement ``engine`` sends while the block runs."""
    statements: list[str] = []

    def before_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before_cursor_execute)


_ROW_ID = re.compile(r'<tr data-job-id="([0-9a-f-]{36})"')


def listed_ids(html: str) -> list[str]:
    """The job ids of the rows of a rendered job list, in page order."""
    return _ROW_ID.findall(html)
