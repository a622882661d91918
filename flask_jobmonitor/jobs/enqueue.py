"""Turning a request to run a task into a durable job row and an RQ job with the same id.

Order matters here, because every failure must leave either nothing or an honest record:
1. check the task and its arguments (nothing written yet: a bad call leaves no trace);
2. store the input files (an uploaded file keeps the name it was uploaded under, for people,
   next to the key the task opens it by), then write the job, its declared steps and its file rows in one
   transaction (if that fails the stored files are removed again);
3. hand the job to RQ. If Redis refuses, the row is moved to ``failed`` with the reason and
   :class:`EnqueueError` is raised: no job is left ``queued`` that no worker will ever see.
"""

from __future__ import annotations

import io
import mimetypes
import uuid
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO, Any, cast
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from flask import flash, has_request_context, request, url_for
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from .. import events
from ..errors import EnqueueError, FileTooLarge, InvalidJobArguments, UnsafeLink
from ..i18n import gettext
from ..links import run_at_link
from ..records.models import Job, JobFile, JobStep, file_table, job_table
from ..records.status import JobStatus
from ..records.transitions import apply_transition
from ..state import JobMonitorState
from ..tasks import TrackedTask
from ..timeutil import utcnow
from ..users import describe_user
from .children import holds_children, in_flight, release, root_lock
from .signals import clear_signal
from .submit import submit_to_rq


@dataclass
class JobRequest:
    """Everything needed to create one job."""

    task: TrackedTask
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    user: Any = None
    name: str | None = None
    description: str | None = None
    files: Mapping[str, Any] = field(default_factory=dict)
    # input files already stored (file rows of another job: a restart's): the new job refers to
    # the same stored bytes, nothing is copied (control.delete keeps them while one refers to them)
    shared_files: Sequence[Any] = ()
    low_priority: bool = False
    run_at_url: str | None = None
    is_system: bool = False
    parent: Job | None = None
    restarted_from: Job | None = None
    delay: timedelta | None = None  # queue it later, through RQ's scheduler
    params: dict[str, Any] | None = None  # already-checked params (restart reuses the original's)
    flash: bool = True  # False: no "Job started" flash message, even in a request
    launching_page: bool = True  # False: no run_at_url given means none (not the requested page)


@dataclass
class _StoredFile:
    filename: str
    content_type: str
    key: str
    size: int
    original_name: str | None


def enqueue_job(state: JobMonitorState, job_request: JobRequest) -> Job:
    """Create the job described by ``job_request`` and queue it; see the module docstring."""
    task = job_request.task
    params = job_request.params or task.check_arguments(job_request.args, dict(job_request.kwargs))
    user_id, user_name = describe_user(job_request.user)
    parent = job_request.parent
    if parent is not None and job_request.user is None:
        user_id, user_name = parent.run_by_id, parent.run_by_name
    _check_files(job_request.files)
    run_at_url = _run_at_url(state, job_request) if parent is None else parent.run_at_url

    job_id = str(uuid.uuid4())
    priority = "low" if job_request.low_priority else "default"
    now = utcnow()
    job = Job(
        id=job_id,
        name=_clean(job_request.name or task.description or _humanize(task.name))[:255],
        type=task.type,
        category=task.category or "general",
        description=_clean(job_request.description) if job_request.description else None,
        task=task.name,
        params=params,
        status=JobStatus.QUEUED.value,
        is_system=job_request.is_system or bool(parent and parent.is_system),
        low_priority=job_request.low_priority,
        queue_name=state.settings.queue_names[priority],
        parent_id=parent.id if parent else None,
        root_id=(parent.root_id or parent.id) if parent else None,
        restarted_from_id=job_request.restarted_from.id if job_request.restarted_from else None,
        run_by_id=user_id,
        run_by_name=user_name,
        run_at_url=run_at_url,
        created_at=now,
        # a delayed job reaches the queue only then: until then it is scheduled, not waiting
        enqueued_at=now + job_request.delay if job_request.delay else now,
        status_changed_at=now,
        progress_done=0,
        step_count=len(task.steps),
        current_step=0,
        error_count=0,
        warning_count=0,
        attempt=0,
        recoveries=0,
        retries=0,
        stop_forced=False,
    )
    stored = _store_files(state, job_id, job_request.files) + [
        _StoredFile(row.filename, row.content_type, row.storage_key, row.size, row.original_name)
        for row in job_request.shared_files
    ]
    root_id = job.root_id
    hold_lock = root_lock(state, root_id) if root_id else nullcontext()
    release_now = False
    try:
        with hold_lock, Session(state.engine, expire_on_commit=False) as session, session.begin():
            if root_id:
                connection = session.connection()
                slot_free = in_flight(connection, root_id) < state.settings.children_in_flight
                if not slot_free or holds_children(connection, root_id):
                    # held back, released when a sibling ends (children.py); behind older held
                    # siblings even if a slot is free: a sibling that just ended frees its slot a
                    # moment before it releases the oldest held child, and the new one must not
                    # take that slot first
                    job.enqueued_at = None
                    release_now = slot_free
                elif not job_request.delay:
                    # released now, after the siblings released while this one waited for the lock
                    job.enqueued_at = utcnow()
            if job_request.shared_files:
                _lock_shared(session, job_id, [row.storage_key for row in job_request.shared_files])
            session.add(job)
            session.add_all(
                JobStep(job_id=job_id, position=i, name=step, status="pending", done=0, counters={})
                for i, step in enumerate(task.steps, start=1)
            )
            session.add_all(
                JobFile(
                    job_id=job_id,
                    kind="input",
                    filename=f.filename,
                    original_name=f.original_name,
                    content_type=f.content_type,
                    size=f.size,
                    storage_key=f.key,
                    created_at=now,
                )
                for f in stored
            )
    except BaseException:
        state.storage.delete_job(job_id)
        raise
    if job.enqueued_at is None:
        if release_now and root_id:
            release(state, root_id)  # the oldest held children, this one only in its turn
            job.enqueued_at = _enqueued_at(state, job_id)
        events.send(state, events.job_queued, job_id, again=False)
        return job
    # before RQ has it: a worker's job_started cannot come first
    events.send(state, events.job_queued, job_id, again=False)
    submit_to_rq(state, job, timeout=task.timeout, delay=job_request.delay)
    # a child is announced by its parent's page, a restart by the restart action's own message
    announced_elsewhere = parent is not None or job_request.restarted_from is not None
    if job_request.flash and not announced_elsewhere and state.settings.flash_on_enqueue and has_request_context():
        _flash_started(job)
    return job


def _enqueued_at(state: JobMonitorState, job_id: str) -> Any:
    with state.engine.connect() as connection:
        return connection.execute(sa.select(job_table.c.enqueued_at).where(job_table.c.id == job_id)).scalar()


def _flash_started(job: Job) -> None:
    """Tell the person who launched the job that it started, with a link to follow it."""
    try:
        link = url_for("jobmonitor_jobs.detail", job_id=job.id)
    except BuildError:  # no Flask-Admin views registered: a plain message
        flash(gettext("Job “%(name)s” started.", name=job.name), "info")
        return
    started = escape(gettext("Job “%(name)s” started.")) % {"name": job.name}
    follow = escape(gettext("Follow it"))
    flash(started + Markup(' <a href="%s">%s</a>.') % (link, follow), "info")


def requeue(state: JobMonitorState, job_id: str, action: str, *, at_front: bool = False) -> Job:
    """Move a stopped or paused job back to ``queued`` (``action`` "resume") and hand it to RQ.

    The job keeps its id, checkpoint and finished steps; the next run continues from there.
    """
    with Session(state.engine, expire_on_commit=False) as session:
        with session.begin():
            apply_transition(session.connection(), job_id, action, values={"ended_at": None, "enqueued_at": utcnow()})
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
    clear_signal(state, job_id)  # an old stop request must not stop the resumed run
    task = state.tasks.get(job.task)
    events.send(state, events.job_queued, job_id, again=True)
    submit_to_rq(state, job, timeout=task.timeout, at_front=at_front)
    return job


def requeue_paused(state: JobMonitorState, job_id: str) -> Job:
    """A job paused by a worker shutdown goes back to the front of its queue."""
    return requeue(state, job_id, "resume", at_front=True)


def _check_files(files: Mapping[str, Any]) -> None:
    for filename, data in files.items():
        if not isinstance(filename, str) or not filename or "/" in filename or "\\" in filename:
            raise InvalidJobArguments(f"input file names must be plain file names, got {filename!r}")
        if not isinstance(data, bytes | bytearray) and not hasattr(data, "read") and not hasattr(data, "stream"):
            raise InvalidJobArguments(
                f"input file {filename!r} must be bytes, a binary file object or an uploaded file, "
                f"got {type(data).__name__}"
            )


def _store_files(state: JobMonitorState, job_id: str, files: Mapping[str, Any]) -> list[_StoredFile]:
    """Store the new input files; past ``JOBMONITOR_MAX_UPLOAD_BYTES`` (all files together)
    raise :class:`FileTooLarge` and keep none of them. The limit is counted while the bytes are
    read, not taken from what the request says about its size."""
    stored: list[_StoredFile] = []
    limit = state.settings.max_upload_bytes
    used = 0
    try:
        for filename, data in files.items():
            stream: bytes | IO[bytes] = (
                data
                if isinstance(data, bytes)
                else bytes(data)
                if isinstance(data, bytearray)
                else getattr(data, "stream", data)
            )
            if limit is not None:
                if isinstance(stream, bytes):
                    if used + len(stream) > limit:
                        raise FileTooLarge(limit)
                else:
                    stream = cast(IO[bytes], _LimitedReader(stream, limit - used, limit))
            content_type = (
                getattr(data, "mimetype", None) or mimetypes.guess_type(filename)[0] or "application/octet-stream"
            )
            key, size = state.storage.save(job_id, stream)
            used += size
            stored.append(_StoredFile(filename, content_type, key, size, _uploaded_name(data, filename)))
    except BaseException:
        state.storage.delete_job(job_id)
        raise
    return stored


class _LimitedReader(io.RawIOBase):
    """A file that reads ``source`` and raises :class:`FileTooLarge` past ``allowed`` bytes."""

    def __init__(self, source: IO[bytes], allowed: int, limit: int) -> None:
        super().__init__()
        self._source = source
        self._left = allowed
        self._limit = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        # one byte more than is left: the only way to tell "exactly at the limit" from "past it"
        want = self._left + 1 if size is None or size < 0 else min(size, self._left + 1)
        chunk = self._source.read(want)
        self._left -= len(chunk)
        if self._left < 0:
            raise FileTooLarge(self._limit)
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _uploaded_name(data: Any, key: str) -> str | None:
    """The name an uploaded file (``FileStorage``) came with, if it differs from ``key``.

    Only a label: the base name (browsers may send a path), without NUL characters, at most 255
    characters. Files are stored under generated keys whatever it says.
    """
    name = getattr(data, "filename", None)
    if not isinstance(name, str):
        return None
    name = _clean(name.replace("\\", "/").rsplit("/", 1)[-1]).strip()[:255]
    return name if name and name != key else None


def _run_at_url(state: JobMonitorState, job_request: JobRequest) -> str | None:
    """ "The page where it was run" as stored (``links.run_at_link``): the ``run_at_url`` given,
    else the launching page. A given link that is unsafe raises :class:`UnsafeLink`, except the
    original's link on a restart (a row stored before links were checked), which is dropped."""
    hosts = state.settings.run_at_hosts
    if job_request.run_at_url:
        try:
            return run_at_link(job_request.run_at_url, hosts)
        except UnsafeLink:
            if job_request.restarted_from is None:
                raise
    return _launching_page(hosts) if job_request.launching_page else None


def _launching_page(hosts: frozenset[str]) -> str | None:
    """The page a person was on when they launched the job, as a path of this site: the
    referring page of a form post on the same site, else the requested page. Outside a
    request: nothing.

    Only the path and query are kept: ``Host`` and ``Referer`` are chosen by the sender, so a
    forged pair must not store a link to another site."""
    if not has_request_context():
        return None
    here = urlsplit(request.url)
    pages = [urlunsplit(("", "", here.path, here.query, ""))]
    referrer = urlsplit(request.referrer or "")
    # the host only: behind a proxy that ends TLS the request says http and the Referer https
    if request.method != "GET" and referrer.netloc == here.netloc:
        pages.insert(0, urlunsplit(("", "", referrer.path or "/", referrer.query, "")))
    for page in pages:
        try:
            return run_at_link(page, hosts)
        except UnsafeLink:
            continue
    return None


def _clean(text: str) -> str:
    """Text without NUL characters, which PostgreSQL refuses in text columns."""
    return str(text).replace("\x00", "")


def _humanize(task_name: str) -> str:
    return task_name.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def _lock_shared(session: Session, job_id: str, keys: list[str]) -> None:
    """The stored files a restart shares with its original still exist, and stay until the new
    job's rows are in: their rows are locked (PostgreSQL; SQLite has one writer), so a delete
    of the original waits and then sees the new job refer to them (control.delete keeps them).
    A delete that came first leaves fewer rows: the restart is refused."""
    found = set(
        session.execute(
            sa.select(file_table.c.storage_key).where(file_table.c.storage_key.in_(keys)).with_for_update()
        ).scalars()
    )
    if found != set(keys):
        raise EnqueueError(job_id, "the original job and its input files were deleted meanwhile")
