"""The package as users get it: build the sdist and the wheel, install the wheel into a clean
virtualenv, and run a Flask app written from scratch against it.

Nothing here imports the source tree into the app: the build runs on a copy of the sources in a
temporary folder (so no ``build/``, ``dist/`` or ``*.egg-info`` lands in the repository), the
app, its SQLite file, its stored files and the virtualenv live in ``tmp_path``, and every
command of the app runs with the virtualenv's interpreter from a folder outside the repository.
Dependencies come from the package index through pip, whose cache is reused.

Redis: database 12 of ``JOBMONITOR_PACKAGING_REDIS_URL`` (default 127.0.0.1:6379), with queue
names unique to the run; only the keys of this run are deleted afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("JOBMONITOR_PACKAGING_REDIS_URL", "redis://127.0.0.1:6379/12")
#: Files of the repository that the build needs (the rest is tests, docs, the example app...).
BUILD_INPUTS = ("pyproject.toml", "setup.cfg", "README.md", "MANIFEST.in", "LICENSE")

#: What both archives must carry besides the modules, relative to the package folder.
REQUIRED_DATA = (
    "py.typed",
    "web/static/jobmonitor.js",
    "web/static/jobmonitor.css",
    "records/migrations/env.py",
    "records/migrations/script.py.mako",
)


def _package_data_in_tree() -> list[str]:
    """Templates, static files and migration versions as they are in the source tree."""
    package = ROOT / "flask_jobmonitor"
    found = [p.relative_to(package).as_posix() for p in (package / "web" / "templates" / "jobmonitor").glob("*.html")]
    found += [p.relative_to(package).as_posix() for p in (package / "web" / "static").iterdir() if p.is_file()]
    found += [p.relative_to(package).as_posix() for p in (package / "records" / "migrations" / "versions").glob("*.py")]
    found += [p.relative_to(package).as_posix() for p in (package / "translations").rglob("*.[pm]o")]
    return sorted(found)


def run(
    command: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    what: str,
) -> str:
    """Run ``command``; on a non-zero exit or a timeout fail the test with its whole output."""
    args = [os.fspath(part) for part in command]
    started = time.monotonic()
    try:
        done = subprocess.run(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.output.decode(errors="replace") if isinstance(expired.output, bytes) else expired.output
        pytest.fail(f"{what}: timed out after {timeout:.0f} s\n$ {' '.join(args)}\n{output or ''}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{what}: exit code {done.returncode} after {time.monotonic() - started:.1f} s\n"
            f"$ {' '.join(args)} (in {cwd})\n{done.stdout}",
            pytrace=False,
        )
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: nothing that would put the source tree or the
    tools' virtualenv on the path of the clean one."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP") and not key.startswith("FLASK_")
    }
    env.update(PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


@dataclass(frozen=True)
class Artifacts:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """``python -m build`` on a copy of the sources: the sdist, and the wheel built from it."""
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.fail(f"the packaging tests need `build`: {sys.executable} -m pip install build", pytrace=False)
    work = tmp_path_factory.mktemp("build")
    source = work / "src"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "flask_jobmonitor",
        source / "flask_jobmonitor",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )
    dist = work / "dist"
    run(
        [sys.executable, "-m", "build", "--outdir", dist, source],
        cwd=work,
        env=clean_env(),
        timeout=300,
        what="python -m build",
    )
    sdists, wheels = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, f"expected one sdist and one wheel: {sorted(dist.iterdir())}"
    return Artifacts(sdist=sdists[0], wheel=wheels[0])


def test_sdist_and_wheel_carry_templates_static_files_migrations_and_py_typed(artifacts: Artifacts) -> None:
    required = sorted({*REQUIRED_DATA, *_package_data_in_tree()})
    assert any(name.startswith("web/templates/") for name in required)
    assert any(name.startswith("records/migrations/versions/") for name in required)

    with zipfile.ZipFile(artifacts.wheel) as wheel:
        in_wheel = {name.removeprefix("flask_jobmonitor/") for name in wheel.namelist()}
    with tarfile.open(artifacts.sdist) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        in_sdist = {
            name.removeprefix(f"{top}/flask_jobmonitor/") for name in sdist.getnames() if name.startswith(f"{top}/")
        }

    missing = {
        "wheel": [name for name in required if name not in in_wheel],
        "sdist": [name for name in required if name not in in_sdist],
    }
    assert missing == {"wheel": [], "sdist": []}, f"package data missing from the archives: {missing}"
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in in_wheel | in_sdist)


# -- a Flask app written from scratch against the installed wheel ---------------------------------

FRESH_APP = '''
"""A small members app that knows flask-jobmonitor only as an installed package."""

from __future__ import annotations

import os
import uuid

import sqlalchemy as sa
from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_login import LoginManager, UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_jobmonitor import JobContext, JobMonitor


class Model(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Model)
jobmonitor = JobMonitor(db=db)
login_manager = LoginManager()


class Member(UserMixin, db.Model):
    __tablename__ = "member"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(255))
    is_staff: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    def has_permission(self, permission: str) -> bool:
        return self.is_staff


@login_manager.user_loader
def load_member(member_id: str) -> Member | None:
    return db.session.get(Member, member_id)


@jobmonitor.task(name="freshapp.summarise_members", type="import", steps=["Read members", "Write summary"])
def summarise_members(ctx: JobContext, label: str) -> None:
    with ctx.step("Read members") as step:
        with ctx.input_file("members.csv") as handle:
            rows = [line for line in handle.read().decode("utf-8").splitlines()[1:] if line]
        step.set_total(len(rows))
        for row in rows:
            ctx.subtask(row.split(",")[0], status="done")
            step.count("read")
            step.advance()
    with ctx.step("Write summary", total=1) as step:
        ctx.add_output_file("summary.txt", f"{label}: {len(rows)} members\\n".encode(), content_type="text/plain")
        step.advance()
    ctx.log.info("summarised %d members", len(rows))


def create_app() -> Flask:
    app = Flask(__name__, instance_path=os.environ["FRESHAPP_INSTANCE"])
    prefix = os.environ["FRESHAPP_QUEUE_PREFIX"]
    app.config.update(
        SECRET_KEY="fresh-app-test-only",
        SQLALCHEMY_DATABASE_URI=os.environ["FRESHAPP_DATABASE_URL"],
        JOBMONITOR_REDIS_URL=os.environ["FRESHAPP_REDIS_URL"],
        JOBMONITOR_QUEUE_NAMES={level: f"{prefix}-{level}" for level in ("high", "default", "low")},
        JOBMONITOR_STORAGE_PATH=os.path.join(app.instance_path, "files"),
        JOBMONITOR_CATEGORIES={"import": "Imports"},
    )
    db.init_app(app)
    login_manager.init_app(app)
    admin = Admin(app, name="Members", theme=Bootstrap4Theme())
    jobmonitor.init_app(app, admin=admin)
    return app
'''

ENQUEUE_SCRIPT = """
import json

from freshapp import Member, create_app, db, jobmonitor, summarise_members

app = create_app()
with app.app_context():
    db.create_all()  # the host's own tables; the job tables came from `flask jobmonitor migrate`
    member = Member(email="ada@example.org", full_name="Ada Member")
    db.session.add(member)
    db.session.commit()
    job = jobmonitor.enqueue(
        summarise_members,
        label="Spring",
        user=member,
        name="Summarise members",
        files={"members.csv": b"email,name\\nada@example.org,Ada\\nbob@example.org,Bob\\neve@example.org,Eve\\n"},
    )
    print(json.dumps({"job_id": job.id, "member_id": member.id, "status": job.status, "run_by": job.run_by_id}))
"""

CHECK_SCRIPT = """
import json
import sys
from pathlib import Path

import sqlalchemy as sa
from flask_login import FlaskLoginClient

import flask_jobmonitor
from flask_jobmonitor import Job, JobLog, JobNotification, JobSubtask
from flask_jobmonitor.state import get_state
from freshapp import Member, create_app, db

job_id, member_id = sys.argv[1], sys.argv[2]
app = create_app()
app.test_client_class = FlaskLoginClient
out = {"module": flask_jobmonitor.__file__, "prefix": sys.prefix}
with app.app_context():
    out["tables"] = sorted(sa.inspect(db.engine).get_table_names())
    job = db.session.get(Job, job_id)
    out["status"] = job.status
    out["error_message"] = job.error_message
    out["run_by"] = [job.run_by_id, job.run_by_name]
    steps = sorted(job.steps, key=lambda step: step.position)
    out["steps"] = [[step.position, step.name, step.status, step.done, step.total] for step in steps]
    out["files"] = sorted([f.kind, f.filename, f.size] for f in job.files)
    storage = get_state().storage
    output = next(f for f in job.files if f.kind == "output")
    with storage.open(output.storage_key) as handle:
        out["output_text"] = handle.read().decode()
    out["output_file_id"] = output.id
    out["subtasks"] = sorted(db.session.scalars(sa.select(JobSubtask.name).where(JobSubtask.job_id == job_id)))
    out["logs"] = list(db.session.scalars(sa.select(JobLog.message).where(JobLog.job_id == job_id)))
    notifications = db.session.scalars(sa.select(JobNotification).where(JobNotification.job_id == job_id))
    out["notifications"] = [[n.user_id, n.event] for n in notifications]
    out["template"] = app.jinja_env.get_template("jobmonitor/detail.html").filename
    out["static_folder"] = app.blueprints["jobmonitor"].static_folder
    member = db.session.get(Member, member_id)
    anonymous = app.test_client()
    logged_in = app.test_client(user=member)  # FlaskLoginClient: logs the member in

# requests outside that app context: each gets its own, as in a server (Flask-Login keeps the
# request's user in ``g``, which a shared app context would carry from one request to the next)
pages = {"anonymous_list": [anonymous.get("/admin/jobs/").status_code, ""]}
for key, url in {
    "list": "/admin/jobs/",
    "detail": f"/admin/jobs/{job_id}/",
    "js": "/jobmonitor/static/jobmonitor.js",
    "download": f"/jobmonitor/files/{out['output_file_id']}",
    "notifications": "/jobmonitor/api/notifications",
}.items():
    response = logged_in.get(url)
    pages[key] = [response.status_code, response.get_data(as_text=True)]
    response.close()
installed_js = Path(flask_jobmonitor.__file__).parent / "web" / "static" / "jobmonitor.js"
out["js_matches_installed"] = pages["js"][1] == installed_js.read_text()
out["pages"] = pages
print(json.dumps(out))
"""


@dataclass(frozen=True)
class FreshApp:
    folder: Path
    venv: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def flask(self) -> Path:
        return self.venv / "bin" / "flask"


@dataclass
class RedisScope:
    """The queue name prefix of this run and the jobs it queued: the keys to delete afterwards."""

    prefix: str
    job_ids: list[str] = field(default_factory=list)


@pytest.fixture
def redis_scope() -> Iterator[RedisScope]:
    """Queue names of this run; afterwards only this run's keys are deleted from Redis (its
    queues, RQ's registries and scheduler locks of them, and RQ's keys of its jobs)."""
    try:
        Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as error:
        pytest.fail(f"the packaging test needs a real Redis at {REDIS_URL}: {error}", pytrace=False)
    scope = RedisScope(prefix=f"jm-packaging-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    yield scope
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        for pattern in [f"*{scope.prefix}*", *(f"*{job_id}*" for job_id in scope.job_ids)]:
            keys = list(redis.scan_iter(match=pattern, count=1000))
            if keys:
                redis.delete(*keys)
        # RQ's set of known queues, and worker records that listened to this run's queues
        queues = [name for name in redis.smembers("rq:queues") if scope.prefix in name]
        if queues:
            redis.srem("rq:queues", *queues)
        for key in redis.scan_iter(match="rq:worker:*", count=1000):
            if redis.type(key) == "hash" and scope.prefix in (redis.hget(key, "queues") or ""):
                redis.delete(key)
                redis.srem("rq:workers", key)
    finally:
        redis.close()


def test_wheel_installs_into_a_clean_virtualenv_and_runs_a_fresh_app(
    artifacts: Artifacts, tmp_path: Path, redis_scope: RedisScope
) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=clean_env(), timeout=120, what="python -m venv")
    venv_env = clean_env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    run(
        [venv / "bin" / "python", "-m", "pip", "install", "--progress-bar", "off", artifacts.wheel],
        cwd=tmp_path,
        env=venv_env,
        timeout=900,
        what="pip install <wheel> into a clean virtualenv",
    )
    run([venv / "bin" / "python", "-m", "pip", "check"], cwd=tmp_path, env=venv_env, timeout=120, what="pip check")

    folder = tmp_path / "freshapp"
    folder.mkdir()
    (folder / "freshapp.py").write_text(textwrap.dedent(FRESH_APP).lstrip())
    (folder / "enqueue_one.py").write_text(textwrap.dedent(ENQUEUE_SCRIPT).lstrip())
    (folder / "check_job.py").write_text(textwrap.dedent(CHECK_SCRIPT).lstrip())
    instance = tmp_path / "instance"
    instance.mkdir()
    app = FreshApp(
        folder=folder,
        venv=venv,
        env={
            **venv_env,
            "FRESHAPP_INSTANCE": str(instance),
            "FRESHAPP_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
            "FRESHAPP_REDIS_URL": REDIS_URL,
            "FRESHAPP_QUEUE_PREFIX": redis_scope.prefix,
        },
    )

    migrated = run(
        [app.flask, "--app", "freshapp", "jobmonitor", "migrate"],
        cwd=folder,
        env=app.env,
        timeout=120,
        what="flask jobmonitor migrate",
    )
    assert "jobmonitor tables at revision" in migrated and "revision None" not in migrated, migrated

    enqueued_output = run(
        [app.python, "enqueue_one.py"], cwd=folder, env=app.env, timeout=120, what="enqueue the task as a member"
    )
    enqueued = json.loads(enqueued_output.strip().splitlines()[-1])
    redis_scope.job_ids.append(enqueued["job_id"])
    assert enqueued["status"] == "queued", enqueued
    assert enqueued["run_by"] == enqueued["member_id"], enqueued

    worker_output = run(
        [app.flask, "--app", "freshapp", "jobmonitor", "worker", "--burst", "--worker-class", "rq.SimpleWorker"],
        cwd=folder,
        env=app.env,
        timeout=180,
        what="flask jobmonitor worker --burst",
    )

    checked_output = run(
        [app.python, "check_job.py", enqueued["job_id"], enqueued["member_id"]],
        cwd=folder,
        env=app.env,
        timeout=120,
        what="check the job and the pages",
    )
    result = json.loads(checked_output.strip().splitlines()[-1])
    context = f"\n--- worker output ---\n{worker_output}\n--- check output (truncated) ---\n{checked_output[:4000]}"

    # the package came from the wheel in the clean virtualenv, not from the source tree
    venv_prefix = Path(result["prefix"]).resolve()
    module = Path(result["module"]).resolve()
    assert venv_prefix == venv.resolve(), result["prefix"]
    assert module.is_relative_to(venv_prefix) and not module.is_relative_to(ROOT), module
    assert Path(result["template"]).resolve().is_relative_to(venv_prefix), result["template"]
    assert Path(result["static_folder"]).resolve().is_relative_to(venv_prefix), result["static_folder"]

    # the migration created the job tables next to the host's own
    assert {"jobmonitor_job", "jobmonitor_step", "jobmonitor_alembic_version", "member"} <= set(result["tables"])

    # the job ran to completion with its steps, subtasks, log, files and a notification
    assert result["status"] == "completed", f"job {result['status']}: {result['error_message']}{context}"
    assert result["run_by"] == [enqueued["member_id"], "Ada Member"]
    assert [step[1:] for step in result["steps"]] == [
        ["Read members", "completed", 3, 3],
        ["Write summary", "completed", 1, 1],
    ], result["steps"]
    assert result["subtasks"] == ["ada@example.org", "bob@example.org", "eve@example.org"]
    assert "summarised 3 members" in result["logs"], result["logs"]
    assert [[kind, name] for kind, name, _ in result["files"]] == [["input", "members.csv"], ["output", "summary.txt"]]
    assert result["output_text"] == "Spring: 3 members\n"
    assert result["notifications"] == [[enqueued["member_id"], "completed"]]

    # the pages render for the logged-in member, from the installed templates and static files
    pages = result["pages"]
    assert pages["anonymous_list"][0] != 200, "the process tracker must not be open to anonymous visitors"
    for key in ("list", "detail", "js", "download", "notifications"):
        assert pages[key][0] == 200, f"{key}: HTTP {pages[key][0]}\n{pages[key][1][:3000]}"
    list_page, detail_page = pages["list"][1], pages["detail"][1]
    assert "Summarise members" in list_page and enqueued["job_id"] in list_page
    assert "/jobmonitor/static/jobmonitor.js" in list_page
    assert "Process tracker" in list_page and "Show child jobs" in list_page  # English, without Flask-Babel
    for text in ("Summarise members", "Read members", "Write summary", "members.csv", "summary.txt"):
        assert text in detail_page, f"{text!r} not on the job detail page"
    assert result["js_matches_installed"], "the served jobmonitor.js differs from the installed one"
    assert pages["download"][1] == "Spring: 3 members\n"
    assert enqueued["job_id"] in pages["notifications"][1]
