"""enqueue(): a job row and an RQ job with the same id, or nothing at all, or an honest failure."""

from __future__ import annotations

import io
import math
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask_login import AnonymousUserMixin, UserMixin
from rq.job import Job as RQJob
from werkzeug.datastructures import FileStorage

from flask_jobmonitor import EnqueueError, FileTooLarge, InvalidJobArguments, JobStatus, UnknownTask, UnsafeLink
from flask_jobmonitor.jobs.submit import RUNNER_PATH
from flask_jobmonitor.records.models import Job, file_table, job_table, step_table
from flask_jobmonitor.state import get_state

from .support.apps import build_app
from .support.databases import count_rows, pushed
from .support.extensions import QUEUE_NAMES, db, jobmonitor
from .support.queues import rq_queue_sizes
from .support.rows import job_row, task_checkpoint
from .support.storage import files_under
from .support.workers import run_worker
from .tasks import greets, import_rows, noop, records_param, with_options


def rq_job(app, job_id: str) -> RQJob:
    return RQJob.fetch(job_id, connection=get_state(app).redis)


def assert_nothing_written(app) -> None:
    state = get_state(app)
    assert count_rows(db.engine, job_table) == 0
    assert count_rows(db.engine, step_table) == 0
    assert count_rows(db.engine, file_table) == 0
    assert files_under(state.settings.storage_path) == []
    assert rq_queue_sizes(app) == {"high": 0, "default": 0, "low": 0}


# -- the job row and the RQ job --------------------------------------------------------------------


def test_enqueue_records_a_queued_job_and_an_rq_job_with_the_same_id(app, engine):
    job = jobmonitor.enqueue(records_param, value={"a": [1, 2]}, user=("7", "Ann"), name="Record a value")

    row = job_row(engine, job.id)
    assert row.status == JobStatus.QUEUED == job.status
    assert row.task == "tests.tasks.records_param"
    assert row.params == {"args": [], "kwargs": {"value": {"a": [1, 2]}}}
    assert row.name == "Record a value"
    assert (row.type, row.category) == ("test", "general")  # no category declared: the general tab
    assert row.queue_name == QUEUE_NAMES["default"]
    assert row.attempt == 0
    assert row.created_at == row.enqueued_at == row.status_changed_at
    assert (row.started_at, row.ended_at, row.parent_id, row.root_id) == (None, None, None, None)
    queued = rq_job(app, job.id)
    assert queued.origin == QUEUE_NAMES["default"]
    assert queued.func_name == RUNNER_PATH
    assert queued.args == (job.id,)
    assert queued.description == "Record a value"
    assert queued.timeout == app.config["JOBMONITOR_JOB_TIMEOUT"]
    assert get_state(app).queue("default").job_ids == [job.id]


def test_a_launch_in_a_request_flashes_that_the_job_started_unless_told_not_to(app, engine):
    from flask import get_flashed_messages

    with app.test_request_context("/products/approve", method="POST"):
        job = jobmonitor.enqueue(noop, name="Approval")
        (flashed,) = get_flashed_messages()
        assert "Approval" in flashed and "started" in flashed
    with app.test_request_context("/products/approve", method="POST"):
        quiet = jobmonitor.enqueue(noop, name="Approval", flash=False)
        assert get_flashed_messages() == []
    assert {job_row(engine, job_id).status for job_id in (job.id, quiet.id)} == {"queued"}
    assert rq_queue_sizes(app)["default"] == 2


def test_low_priority_job_goes_to_the_low_queue(app, engine):
    job = jobmonitor.enqueue(noop, low_priority=True)

    assert job_row(engine, job.id).queue_name == QUEUE_NAMES["low"]
    assert job_row(engine, job.id).low_priority is True
    assert rq_job(app, job.id).origin == QUEUE_NAMES["low"]
    assert rq_queue_sizes(app) == {"high": 0, "default": 0, "low": 1}


def test_task_options_become_job_fields_and_the_rq_timeout(app, engine):
    job = jobmonitor.enqueue(with_options, description="for the docs", is_system=True)

    row = job_row(engine, job.id)
    assert (row.name, row.type, row.category, row.description) == (
        "Task with options",
        "test",
        "imports",
        "for the docs",
    )
    assert row.is_system is True
    assert rq_job(app, job.id).timeout == 321


def test_job_name_defaults_to_the_humanized_task_name(app):
    assert jobmonitor.enqueue(import_rows, files={"rows.csv": b"x"}).name == "Import rows"


def test_task_can_be_given_by_name(app, engine):
    job = jobmonitor.enqueue("tests.tasks.records_param", 5)

    assert job_row(engine, job.id).params == {"args": [5], "kwargs": {}}


def test_declared_steps_are_created_pending_in_order(app):
    job = jobmonitor.enqueue(import_rows, files={"rows.csv": b"a\n"})

    row = db.session.get(Job, job.id)
    assert row.step_count == 3
    assert row.current_step == 0
    assert [(s.position, s.name, s.status, s.done, s.total, s.counters) for s in row.steps] == [
        (1, "Read file", "pending", 0, None, {}),
        (2, "Validate", "pending", 0, None, {}),
        (3, "Save", "pending", 0, None, {}),
    ]


def test_task_without_declared_steps_has_no_step_rows(app, engine):
    job = jobmonitor.enqueue(noop)

    assert job_row(engine, job.id).step_count == 0
    assert count_rows(engine, step_table) == 0


def test_task_kwargs_pass_a_parameter_that_clashes_with_an_option(app, engine):
    job = jobmonitor.enqueue(greets, name="Greeting job", task_kwargs={"name": "Ann"})

    row = job_row(engine, job.id)
    assert row.name == "Greeting job"
    assert row.params == {"args": [], "kwargs": {"name": "Ann"}}
    run_worker(app)
    assert task_checkpoint(job_row(engine, job.id)) == {"greeted": "Ann"}


# -- input files --------------------------------------------------------------------------------


def test_input_files_are_stored_with_size_and_content_type(app):
    upload = FileStorage(io.BytesIO(b"id;name\n1;x\n"), filename="export.csv", content_type="text/csv; charset=utf-8")
    job = jobmonitor.enqueue(
        noop,
        files={
            "raw.bin": b"\x00\x01\x02",
            "notes.txt": io.BytesIO(b"hello"),
            "upload.csv": upload,
            "array.json": bytearray(b"{}"),
        },
    )

    storage = get_state(app).storage
    files = {f.filename: f for f in db.session.get(Job, job.id).files}
    assert {name: (f.kind, f.size, f.content_type) for name, f in files.items()} == {
        "raw.bin": ("input", 3, "application/octet-stream"),
        "notes.txt": ("input", 5, "text/plain"),
        "upload.csv": ("input", 12, "text/csv"),
        "array.json": ("input", 2, "application/json"),
    }
    contents = {name: storage.open(f.storage_key).read() for name, f in files.items()}
    assert contents == {
        "raw.bin": b"\x00\x01\x02",
        "notes.txt": b"hello",
        "upload.csv": b"id;name\n1;x\n",
        "array.json": b"{}",
    }
    assert all(f.storage_key.startswith(f"{job.id}/") for f in files.values())


@pytest.mark.parametrize(
    ("uploaded", "shown"),
    [
        ("sample-products.csv", "sample-products.csv"),
        ("C:\\Users\\chris\\März €.csv", "März €.csv"),  # some browsers send the path
        ("products.csv", None),  # the same as the key: nothing extra to keep
        ("", None),
    ],
)
def test_an_upload_keeps_its_name_for_people_while_the_task_opens_it_by_its_key(app, engine, uploaded, shown):
    upload = FileStorage(io.BytesIO(b"sku\n1\n"), filename=uploaded, content_type="text/csv")
    job = jobmonitor.enqueue("tests.tasks.reads_input", "products.csv", files={"products.csv": upload})

    [file] = db.session.get(Job, job.id).files
    assert (file.filename, file.original_name) == ("products.csv", shown)
    assert file.display_name == (shown or "products.csv")
    run_worker(app)
    row = job_row(engine, job.id)
    assert row.status == JobStatus.COMPLETED, row.error_message
    assert task_checkpoint(row) == {"content": "sku\n1\n", "names": ["products.csv"]}


def test_input_file_is_readable_by_the_task(app, engine):
    job = jobmonitor.enqueue("tests.tasks.reads_input", "b.txt", files={"a.txt": b"first", "b.txt": b"second"})

    run_worker(app)

    row = job_row(engine, job.id)
    assert row.status == JobStatus.COMPLETED, row.error_message
    assert task_checkpoint(row) == {"content": "second", "names": ["a.txt", "b.txt"]}


@pytest.mark.parametrize("filename", ["../x", "a/b", "a\\b", "/etc/passwd", ""])
def test_file_name_with_a_path_is_refused_and_nothing_is_written(app, filename):
    with pytest.raises(InvalidJobArguments, match="plain file names"):
        jobmonitor.enqueue(noop, files={"ok.txt": b"fine", filename: b"x"})

    assert_nothing_written(app)


@pytest.mark.parametrize("data", ["text, not bytes", 42, None], ids=["str", "int", "none"])
def test_file_content_that_is_not_binary_is_refused(app, data):
    with pytest.raises(InvalidJobArguments, match="must be bytes"):
        jobmonitor.enqueue(noop, files={"a.txt": data})

    assert_nothing_written(app)


# -- the upload limit (issue 15, row 9) ----------------------------------------------------------


@pytest.fixture
def limit_1kb(app, monkeypatch):
    state = get_state(app)
    monkeypatch.setattr(state, "settings", replace(state.settings, max_upload_bytes=1024))
    return state


def test_the_upload_limit_defaults_to_10_mb(app):
    assert get_state(app).settings.max_upload_bytes == 10 * 1024 * 1024


@pytest.mark.parametrize(
    "files",
    [
        lambda: {"a.csv": b"x" * 1025},
        lambda: {"a.csv": io.BytesIO(b"x" * 1025)},
        lambda: {"a.csv": FileStorage(io.BytesIO(b"x" * 5000), "big.csv")},
        lambda: {"a.csv": b"x" * 600, "b.csv": io.BytesIO(b"y" * 600)},  # the files of one job together
    ],
    ids=["bytes", "stream", "upload", "two-files"],
)
def test_files_past_the_upload_limit_are_refused_and_nothing_is_stored(limit_1kb, app, files):
    with pytest.raises(FileTooLarge, match="at most 1 KB") as refused:
        jobmonitor.enqueue(noop, files=files())

    assert refused.value.code == 413 and refused.value.limit == 1024
    assert_nothing_written(app)


def test_files_up_to_the_upload_limit_are_stored(limit_1kb, app, engine):
    job = jobmonitor.enqueue(noop, files={"a.csv": io.BytesIO(b"x" * 1000), "b.csv": b"y" * 24})
    assert sorted(row.size for row in count_files(engine, job.id)) == [24, 1000]


def test_no_upload_limit_with_none(app, monkeypatch, engine):
    state = get_state(app)
    monkeypatch.setattr(state, "settings", replace(state.settings, max_upload_bytes=None))
    job = jobmonitor.enqueue(noop, files={"a.csv": io.BytesIO(b"x" * (11 * 1024 * 1024))})
    assert [row.size for row in count_files(engine, job.id)] == [11 * 1024 * 1024]


def count_files(engine, job_id):
    with engine.connect() as connection:
        return connection.execute(sa.select(file_table).where(file_table.c.job_id == job_id)).all()


# -- users and pages ------------------------------------------------------------------------------


class LoginUser(UserMixin):
    def __init__(self, user_id: int, name: str) -> None:
        self.id = user_id
        self.name = name


class PlainUser:
    def __init__(self) -> None:
        self.id = "u-9"
        self.username = "zed"


class NoIdUser:
    name = "nobody knows my id"


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (("7", "Ann"), ("7", "Ann")),
        ((7, "Ann"), ("7", "Ann")),
        (LoginUser(42, "Bob"), ("42", "Bob")),
        (PlainUser(), ("u-9", "zed")),
        ("script", ("script", "script")),
        (AnonymousUserMixin(), (None, None)),
        (None, (None, None)),
    ],
    ids=["tuple", "int-tuple", "get_id-and-name", "id-and-username", "string", "anonymous", "none"],
)
def test_user_is_stored_as_id_and_display_name(app, engine, user, expected):
    job = jobmonitor.enqueue(noop, user=user)

    row = job_row(engine, job.id)
    assert (row.run_by_id, row.run_by_name) == expected


def test_user_without_an_id_is_refused_and_nothing_is_written(app):
    with pytest.raises(TypeError, match="cannot tell the id"):
        jobmonitor.enqueue(noop, user=NoIdUser(), files={"a.txt": b"x"})

    assert_nothing_written(app)


def test_run_at_url_is_the_requested_page_inside_a_request(app, engine):
    with app.test_request_context("/catalogue/import?profile=3"):
        job = jobmonitor.enqueue(noop)

    assert job_row(engine, job.id).run_at_url == "/catalogue/import?profile=3"


def test_run_at_url_of_a_form_post_is_the_page_with_the_form(app, engine):
    with app.test_request_context(
        "/catalogue/import/start", method="POST", headers={"Referer": "http://localhost/catalogue/import"}
    ):
        job = jobmonitor.enqueue(noop)

    assert job_row(engine, job.id).run_at_url == "/catalogue/import"


def test_run_at_url_of_a_form_post_behind_a_proxy_that_ends_tls(app, engine):
    # the browser was on https, the app is asked over http: the same site all the same
    with app.test_request_context(
        "/catalogue/import/start", method="POST", headers={"Referer": "https://localhost/catalogue/import"}
    ):
        job = jobmonitor.enqueue(noop)

    assert job_row(engine, job.id).run_at_url == "/catalogue/import"


def test_run_at_url_ignores_a_referrer_from_another_site(app, engine):
    with app.test_request_context(
        "/catalogue/import/start", method="POST", headers={"Referer": "http://evil.example/catalogue"}
    ):
        job = jobmonitor.enqueue(noop)

    assert job_row(engine, job.id).run_at_url == "/catalogue/import/start"


def test_run_at_url_from_a_forged_host_and_referer_keeps_only_the_path(app, engine):
    """Host and Referer both say evil.example: they agree, but the sender chose both."""
    with app.test_request_context(
        "/catalogue/import/start",
        method="POST",
        headers={"Host": "evil.example", "Referer": "http://evil.example/phish?x=1"},
    ):
        job = jobmonitor.enqueue(noop)

    assert job_row(engine, job.id).run_at_url == "/phish?x=1"


def test_run_at_url_of_a_referer_that_leaves_the_site_by_its_path_is_not_kept(app, engine):
    with app.test_request_context(
        "/catalogue/import/start", method="POST", headers={"Referer": "http://localhost//evil.example/"}
    ):
        job = jobmonitor.enqueue(noop)

    assert job_row(engine, job.id).run_at_url == "/catalogue/import/start"


def test_explicit_run_at_url_wins_and_none_outside_a_request(app, engine):
    with app.test_request_context("/somewhere"):
        explicit = jobmonitor.enqueue(noop, run_at_url="/products/5")
    outside = jobmonitor.enqueue(noop)

    assert job_row(engine, explicit.id).run_at_url == "/products/5"
    assert job_row(engine, outside.id).run_at_url is None


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)//",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "products/5",
        "https:///nohost",
    ],
)
def test_an_explicit_run_at_url_that_is_not_a_safe_link_is_refused_and_nothing_written(app, link):
    with pytest.raises(UnsafeLink):
        jobmonitor.enqueue(noop, run_at_url=link, files={"a.txt": b"x"})

    assert_nothing_written(app)


def test_an_explicit_url_of_another_host_keeps_only_its_path(app, engine):
    job = jobmonitor.enqueue(noop, run_at_url="https://evil.example/catalogue/import?profile=3#top")

    assert job_row(engine, job.id).run_at_url == "/catalogue/import?profile=3"


def test_an_explicit_url_of_an_allowed_host_is_kept_whole(app, database_url, redis_url, tmp_path):
    application = build_app(
        database_url, redis_url, str(tmp_path / "files"), JOBMONITOR_RUN_AT_HOSTS=["Shop.Example.com"]
    )
    with pushed(application):
        kept = jobmonitor.enqueue(noop, run_at_url="https://shop.example.com/orders/7")
        other = jobmonitor.enqueue(noop, run_at_url="https://shop.example.com.evil.example/orders/7")
        # a user name and password in the URL would be shown with it: only the path is kept
        credentials = jobmonitor.enqueue(noop, run_at_url="https://clerk:secret@shop.example.com/orders/7")

        assert job_row(db.engine, kept.id).run_at_url == "https://shop.example.com/orders/7"
        assert job_row(db.engine, other.id).run_at_url == "/orders/7"
        assert job_row(db.engine, credentials.id).run_at_url == "/orders/7"


# -- refused calls leave no trace ------------------------------------------------------------------


def test_unknown_task_is_refused_and_nothing_is_written(app):
    with pytest.raises(UnknownTask, match=r"no\.such\.task"):
        jobmonitor.enqueue("no.such.task", files={"a.txt": b"x"})

    assert_nothing_written(app)


def test_unregistered_function_is_an_unknown_task(app):
    def not_a_task(ctx: Any) -> None:
        pass

    with pytest.raises(UnknownTask):
        jobmonitor.enqueue(not_a_task)

    assert_nothing_written(app)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1, 2), {}),
        ((), {"value": 1, "colour": "red"}),
        ((), {"value": {1, 2}}),
        ((), {"value": datetime(2024, 1, 1)}),
        ((), {"value": math.nan}),
        ((), {"value": (1, 2)}),
        ((object(),), {}),
    ],
    ids=["too-many-args", "unexpected-kwarg", "set", "datetime", "nan", "tuple", "object"],
)
def test_invalid_arguments_are_refused_and_nothing_is_written(app, args, kwargs):
    with pytest.raises(InvalidJobArguments, match=r"tests\.tasks\.records_param"):
        jobmonitor.enqueue(records_param, *args, files={"in.csv": b"a,b"}, **kwargs)

    assert_nothing_written(app)


# -- Redis down -------------------------------------------------------------------------------------


def test_enqueue_with_redis_down_marks_the_job_failed_and_raises(app, database_url, tmp_path):
    down = build_app(database_url, "redis://127.0.0.1:1/0", str(tmp_path / "files"))
    with pushed(down):
        with pytest.raises(EnqueueError) as refused:
            jobmonitor.enqueue(noop, user=("7", "Ann"), files={"a.txt": b"kept for the record"})

        job_id = refused.value.job_id
        assert job_id in str(refused.value)
        assert "Redis is unreachable" in refused.value.reason
        row = job_row(db.engine, job_id)
        assert row.status == JobStatus.FAILED
        assert row.error_message == refused.value.reason
        assert row.ended_at is not None
        assert row.ended_at >= row.created_at
        assert [f.filename for f in db.session.get(Job, job_id).files] == ["a.txt"]
        assert count_rows(db.engine, job_table) == 1


def test_enqueued_job_object_is_detached_but_readable(app):
    job = jobmonitor.enqueue(import_rows, files={"rows.csv": b"x"})

    assert isinstance(job, Job)
    assert job.id and job.task == "tests.tasks.import_rows"
    assert job.status == "queued"
