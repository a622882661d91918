"""SQLAlchemy models of tracked jobs and everything recorded about them.

The models have their own ``DeclarativeBase`` and ``MetaData`` instead of the host's
``db.Model``: the extension must not depend on how the host declares its models, and the
tables (all prefixed ``jobmonitor_``) can be created, migrated or dropped on their own.
Flask-SQLAlchemy's session still finds them: a table without a bind key goes to the default
engine, so ``db.session`` and Flask-Admin's ``ModelView(Job, db)`` work unchanged.

People are the host's users: a job stores the user's id as a string and a display name, with
no foreign key, so any user model (integer, UUID, LDAP name) fits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .dialects import MYSQL_DIALECTS
from .sqltypes import BigIntId, JSONType, LongText, Timestamp
from .status import JobStatus

#: Constraint names that Alembic can reproduce on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the extension's tables only."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _job_fk() -> sa.ForeignKey:
    return sa.ForeignKey("jobmonitor_job.id", ondelete="CASCADE")


class Job(Base):
    """One tracked job: what runs, for whom, and how far it got.

    ``waiting`` and ``duration`` are derived (see the properties) rather than stored, so they
    are always consistent with the timestamps they come from.
    """

    __tablename__ = "jobmonitor_job"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    type: Mapped[str] = mapped_column(sa.String(64), default="general")
    category: Mapped[str] = mapped_column(sa.String(64), default="general")
    description: Mapped[str | None] = mapped_column(LongText)
    task: Mapped[str] = mapped_column(sa.String(255))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default=JobStatus.QUEUED.value)
    is_system: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    low_priority: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    queue_name: Mapped[str] = mapped_column(sa.String(128))
    parent_id: Mapped[str | None] = mapped_column(sa.String(36))
    root_id: Mapped[str | None] = mapped_column(sa.String(36))
    restarted_from_id: Mapped[str | None] = mapped_column(sa.String(36))
    run_by_id: Mapped[str | None] = mapped_column(sa.String(64))
    run_by_name: Mapped[str | None] = mapped_column(sa.String(255))
    run_at_url: Mapped[str | None] = mapped_column(sa.String(2048))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    enqueued_at: Mapped[datetime | None] = mapped_column(Timestamp)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    ended_at: Mapped[datetime | None] = mapped_column(Timestamp)
    status_changed_at: Mapped[datetime] = mapped_column(Timestamp)
    progress_done: Mapped[int] = mapped_column(sa.Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(sa.Integer)
    # Which declared step runs now and how many there are: lets the list page say
    # "step 2 of 3" and draw an overall bar without joining the steps table.
    current_step: Mapped[int] = mapped_column(sa.Integer, default=0)
    step_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    error_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    warning_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    error_message: Mapped[str | None] = mapped_column(LongText)
    # the exception's text and traceback: only for jobmonitor.view_tracebacks (failures.py);
    # deferred, so no list loads it and no page can show it by accident
    error_detail: Mapped[str | None] = mapped_column(LongText, deferred=True)
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    stop_requested_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # True when the job was ended by RQ's stop command rather than at one of its checkpoints
    stop_forced: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    worker_name: Mapped[str | None] = mapped_column(sa.String(255))
    # written every ABANDONED_AFTER/4 s by the process running the job (see heartbeat.py)
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp)
    attempt: Mapped[int] = mapped_column(sa.Integer, default=0)
    # how often recovery queued the job again after its worker died (JOBMONITOR_MAX_RECOVERIES)
    recoveries: Mapped[int] = mapped_column(sa.Integer, default=0)
    # how many retries its task's retry policy granted (tasks.RetryPolicy): while it is queued
    # with retries, enqueued_at is the next try's time ("retry 2 of 3 at 14:05")
    retries: Mapped[int] = mapped_column(sa.Integer, server_default="0")

    steps: Mapped[list[JobStep]] = relationship(
        back_populates="job", order_by="JobStep.position", cascade="all, delete-orphan", passive_deletes=True
    )
    files: Mapped[list[JobFile]] = relationship(
        back_populates="job", order_by="JobFile.id", cascade="all, delete-orphan", passive_deletes=True
    )

    # Each list filter has an index that also holds is_system and the full sort key
    # (created_at, id): the page's id query is then an index-only scan with no sort, even for
    # a far page (bench/bench_list.py measured 104 ms -> 37 ms at 1,000,000 jobs).
    __table_args__ = (
        sa.Index("ix_jobmonitor_job_system_created", "is_system", "created_at", "id"),
        sa.Index("ix_jobmonitor_job_run_by_created", "run_by_id", "is_system", "created_at", "id"),
        sa.Index("ix_jobmonitor_job_status_created", "status", "is_system", "created_at", "id"),
        sa.Index("ix_jobmonitor_job_type_created", "type", "is_system", "created_at", "id"),
        sa.Index("ix_jobmonitor_job_category_created", "category", "is_system", "created_at", "id"),
        # a parent's children, in the list (?parent=) and on the parent's page, in creation order
        sa.Index("ix_jobmonitor_job_parent_created", "parent_id", "is_system", "created_at", "id"),
        sa.Index("ix_jobmonitor_job_restarted_from", "restarted_from_id"),
        sa.Index("ix_jobmonitor_job_ended", "ended_at"),  # throughput on the queue health page
        sa.Index("ix_jobmonitor_job_root_status", "root_id", "status"),
        # past runs of the same task: step time estimates and statistics
        sa.Index("ix_jobmonitor_job_task_status_created", "task", "status", "created_at"),
        # jobs whose status changed lately: which cached statistics buckets went stale
        sa.Index("ix_jobmonitor_job_status_changed", "status_changed_at"),
    )

    @property
    def job_status(self) -> JobStatus:
        """The status as the enum (the column holds its string value)."""
        return JobStatus(self.status)

    def waiting_seconds(self, now: datetime) -> float:
        """Seconds between creation and start; until ``now`` while it waits; until it ended if it
        never started (a job cancelled in the queue stops waiting)."""
        end = self.started_at or self.ended_at or now
        return max(0.0, (end - self.created_at).total_seconds())

    def duration_seconds(self, now: datetime) -> float | None:
        """Seconds it has run: until it ended, or until ``now`` while it runs. None if never started."""
        if self.started_at is None:
            return None
        return max(0.0, ((self.ended_at or now) - self.started_at).total_seconds())

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.task} {self.status}>"


class JobStep(Base):
    """A declared phase of a job ("Read file", "Validate", ...) with its own progress."""

    __tablename__ = "jobmonitor_step"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(36), _job_fk())
    position: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    ended_at: Mapped[datetime | None] = mapped_column(Timestamp)
    done: Mapped[int] = mapped_column(sa.Integer, default=0)
    total: Mapped[int | None] = mapped_column(sa.Integer)
    counters: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)

    job: Mapped[Job] = relationship(back_populates="steps")

    __table_args__ = (sa.UniqueConstraint("job_id", "position", name="uq_jobmonitor_step_job_position"),)


class JobSubtask(Base):
    """One action the task performed on one item (a row rejected, a product saved)."""

    __tablename__ = "jobmonitor_subtask"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(36), _job_fk())
    step_id: Mapped[int | None] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str | None] = mapped_column(LongText)
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (
        sa.Index("ix_jobmonitor_subtask_job", "job_id", "id"),
        sa.Index("ix_jobmonitor_subtask_job_status", "job_id", "status", "id"),
    )


class JobLog(Base):
    """A log record emitted while the job ran (by ``ctx.log`` or by any code the task called)."""

    __tablename__ = "jobmonitor_log"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(36), _job_fk())
    step_id: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    level: Mapped[int] = mapped_column(sa.SmallInteger)
    logger: Mapped[str | None] = mapped_column(sa.String(255))
    message: Mapped[str] = mapped_column(LongText)

    __table_args__ = (
        sa.Index("ix_jobmonitor_log_job", "job_id", "id"),
        sa.Index("ix_jobmonitor_log_job_level", "job_id", "level", "id"),
    )


class JobFile(Base):
    """A file that belongs to a job: an input, an output, or an error report.

    Files are served by this row's id only; ``storage_key`` is generated by the storage and
    never comes from a request. ``filename`` is the name the task knows the file by (the key
    of ``enqueue(files=...)``, read with ``ctx.input_file(...)``); ``original_name`` is the name
    of the uploaded file as the person chose it, which pages show and downloads use (None when
    it is the same, or for files stored before it was recorded).
    """

    __tablename__ = "jobmonitor_file"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(36), _job_fk(), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    filename: Mapped[str] = mapped_column(sa.String(255))
    original_name: Mapped[str | None] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    storage_key: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    job: Mapped[Job] = relationship(back_populates="files")

    @property
    def display_name(self) -> str:
        """The name people see and download the file under."""
        return self.original_name or self.filename


class JobAttempt(Base):
    """A failed attempt of a job whose task has a retry policy (tasks.RetryPolicy): its number
    (1 is the first run), when and where it ran, its error, and when it is tried again (None:
    no retry left, or the error is not one the policy retries). The job's own row tells how
    the attempt that followed the last of these went."""

    __tablename__ = "jobmonitor_attempt"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(36), _job_fk())
    number: Mapped[int] = mapped_column(sa.Integer)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    ended_at: Mapped[datetime] = mapped_column(Timestamp)
    worker_name: Mapped[str | None] = mapped_column(sa.String(255))
    # as on the job: a message every viewer reads, the exception's text and traceback only for
    # jobmonitor.view_tracebacks (failures.py)
    error_message: Mapped[str] = mapped_column(LongText)
    error_detail: Mapped[str | None] = mapped_column(LongText, deferred=True)
    retry_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (sa.Index("ix_jobmonitor_attempt_job", "job_id", "number"),)


class JobNotification(Base):
    """Tells a user that one of their jobs completed, failed or was stopped."""

    __tablename__ = "jobmonitor_notification"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(64))
    job_id: Mapped[str] = mapped_column(sa.String(36), _job_fk())
    event: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    read_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        sa.Index("ix_jobmonitor_notification_user", "user_id", "read_at", "id"),
        sa.Index("ix_jobmonitor_notification_job", "job_id"),
    )


class StatsBucket(Base):
    """The statistics page's figures of one closed hour or day, kept so that a long range is not
    aggregated from its raw jobs on every view (see stats/cache.py for when a row is written,
    trusted and dropped). One row per granularity, "system jobs shown", type filter ('' for every
    type) and bucket; empty buckets get a row too."""

    __tablename__ = "jobmonitor_stats_bucket"

    granularity: Mapped[str] = mapped_column(sa.String(4), primary_key=True)
    include_system: Mapped[bool] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(Timestamp, primary_key=True)
    created: Mapped[int] = mapped_column(default=0)
    started: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    stopped: Mapped[int] = mapped_column(default=0)
    wait_avg: Mapped[float | None] = mapped_column(sa.Float)
    wait_min: Mapped[float | None] = mapped_column(sa.Float)
    wait_max: Mapped[float | None] = mapped_column(sa.Float)
    duration_avg: Mapped[float | None] = mapped_column(sa.Float)
    duration_p95: Mapped[float | None] = mapped_column(sa.Float)
    # per job type in the bucket: [created, failed, duration sum, durations counted]
    by_type: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    computed_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (sa.Index("ix_jobmonitor_stats_bucket_start", "bucket_start"),)


class StatsStaleHour(Base):
    """An hour whose jobs were deleted at ``noted_at``: its cached buckets are dropped then, and
    once more by the next page view, in case a view that read the jobs before the delete kept
    them after it (a deleted job leaves no ``status_changed_at`` to find)."""

    __tablename__ = "jobmonitor_stats_stale"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    hour: Mapped[datetime] = mapped_column(Timestamp)
    noted_at: Mapped[datetime] = mapped_column(Timestamp, index=True)


class StatsWatermark(Base):
    """One row: every status change and delete before ``checked_at`` (less a margin) has already
    dropped the cached statistics buckets it made stale."""

    __tablename__ = "jobmonitor_stats_watermark"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    checked_at: Mapped[datetime] = mapped_column(Timestamp)


class AuditEntry(Base):
    """One thing a person (or the system) did to a job, or to all jobs: who, what, which job,
    when, from where. Append-only (jobs/audit.py); no foreign key to the job, whose name, task and
    owner are copied here, so the entry outlives the job's deletion."""

    __tablename__ = "jobmonitor_audit"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    # None: the system (the retention job); a command line user has a name but no id
    actor_id: Mapped[str | None] = mapped_column(sa.String(64))
    actor_name: Mapped[str | None] = mapped_column(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(32))
    job_id: Mapped[str | None] = mapped_column(sa.String(36))
    job_name: Mapped[str | None] = mapped_column(sa.String(255))
    job_task: Mapped[str | None] = mapped_column(sa.String(255))
    job_owner: Mapped[str | None] = mapped_column(sa.String(255))
    # the entries of one bulk request share it
    batch: Mapped[str | None] = mapped_column(sa.String(36))
    # the request's remote address, "command line", or "code"
    origin: Mapped[str | None] = mapped_column(sa.String(255))
    detail: Mapped[str | None] = mapped_column(LongText)

    __table_args__ = (
        # newest first is (created_at, id) descending: each filter's index ends with both, so a
        # page is an ordered walk and a day a range of it (web/admin/audit.py)
        sa.Index("ix_jobmonitor_audit_created", "created_at", "id"),
        sa.Index("ix_jobmonitor_audit_actor", "actor_name", "created_at", "id"),
        sa.Index("ix_jobmonitor_audit_action", "action", "created_at", "id"),
        sa.Index("ix_jobmonitor_audit_job", "job_id", "created_at", "id"),
    )


class ScheduleState(Base):
    """What is kept of a registered schedule (jobs/schedules.py) beyond the code that declares it:
    whether it is switched on, who switched it last, and its last run. A schedule with no row is
    on and has not run yet; a row outlives a schedule removed from the code (it is shown again if
    the schedule comes back)."""

    __tablename__ = "jobmonitor_schedule"

    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    changed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    changed_by_id: Mapped[str | None] = mapped_column(sa.String(64))
    changed_by_name: Mapped[str | None] = mapped_column(sa.String(255))
    # the job its last due time launched (no foreign key: the job may be deleted since)
    last_job_id: Mapped[str | None] = mapped_column(sa.String(36))
    last_run_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # its last due time that launched nothing, because it was switched off
    last_skipped_at: Mapped[datetime | None] = mapped_column(Timestamp)


#: File kinds a job can hold.
FILE_KINDS = ("input", "output", "error_report")
#: Step statuses, in the order a step passes through them.
STEP_STATUSES = ("pending", "running", "completed", "failed", "stopped")


# Typed handles on the tables for Core statements (hot paths use Core, not the ORM unit of work).
job_table = cast(sa.Table, Job.__table__)
step_table = cast(sa.Table, JobStep.__table__)
subtask_table = cast(sa.Table, JobSubtask.__table__)
log_table = cast(sa.Table, JobLog.__table__)
file_table = cast(sa.Table, JobFile.__table__)
notification_table = cast(sa.Table, JobNotification.__table__)
attempt_table = cast(sa.Table, JobAttempt.__table__)
schedule_table = cast(sa.Table, ScheduleState.__table__)
stats_bucket_table = cast(sa.Table, StatsBucket.__table__)
stats_watermark_table = cast(sa.Table, StatsWatermark.__table__)
stats_stale_table = cast(sa.Table, StatsStaleHour.__table__)
audit_table = cast(sa.Table, AuditEntry.__table__)


def search_document(table: sa.Table = job_table) -> sa.ColumnElement[Any]:
    """The text PostgreSQL's full-text index covers: name, description and parameters.

    The list's search box matches word prefixes in it, which a GIN index answers without the
    full scan a leading-wildcard ``LIKE`` needs.
    """
    return sa.func.to_tsvector(
        sa.literal_column("'simple'::regconfig"),
        table.c.name
        + sa.literal_column("' '")
        + sa.func.coalesce(table.c.description, sa.literal_column("''"))
        + sa.literal_column("' '")
        + sa.cast(table.c.params, sa.Text),
    )


#: The GIN index behind the job list's search box (PostgreSQL only; SQLite tables are small).
#: Created by an ``after_create`` DDL rather than declared as an ``Index``: SQLAlchemy does not
#: attach an index on this expression to the table.
SEARCH_INDEX_DDL = (
    "CREATE INDEX IF NOT EXISTS ix_jobmonitor_job_search ON jobmonitor_job USING gin "
    "(to_tsvector('simple'::regconfig, name || ' ' || coalesce(description, '') || ' ' || CAST(params AS TEXT)))"
)
sa.event.listen(job_table, "after_create", sa.DDL(SEARCH_INDEX_DDL).execute_if(dialect="postgresql"))

#: The search on MySQL/MariaDB (see search.py): InnoDB's FULLTEXT index on a stored generated
#: column of the same text, invisible to ``SELECT *``. A FULLTEXT index cannot hold the JSON
#: column itself (its collation differs), nor span name and parameters otherwise. ``STORED``
#: and ``INVISIBLE`` are MariaDB 10.3+ and MySQL 8.0.23+.
MYSQL_SEARCH_DDL = (
    "ALTER TABLE jobmonitor_job ADD COLUMN search_text LONGTEXT GENERATED ALWAYS AS "
    "(concat_ws(' ', name, description, params)) STORED INVISIBLE, "
    "ADD FULLTEXT INDEX ix_jobmonitor_job_search (search_text)"
)
for _dialect in sorted(MYSQL_DIALECTS):
    sa.event.listen(job_table, "after_create", sa.DDL(MYSQL_SEARCH_DDL).execute_if(dialect=_dialect))

#: Statistics of the job list's "not a child job" condition (PostgreSQL 14 and later). The list
#: writes it ``coalesce(parent_id, '') = ''`` when a filter has its own index, so that no index
#: takes it (listing._top_level); without statistics of that expression PostgreSQL guesses that
#: 0.5 % of the jobs pass it, takes a status and a type for a few hundred rows and sorts them
#: all instead of walking the status index (174 ms instead of 22 at 1,000,000 jobs).
TOP_LEVEL_STATISTICS_DDL = (
    "CREATE STATISTICS IF NOT EXISTS jobmonitor_job_top_level ON (coalesce(parent_id, '')) FROM jobmonitor_job"
)
sa.event.listen(job_table, "after_create", sa.DDL(TOP_LEVEL_STATISTICS_DDL).execute_if(dialect="postgresql"))


#: The list's search on SQLite (see search.py): an FTS5 table, and the document number of each
#: job. FTS5 rowids cannot be the job table's own rowid: VACUUM may renumber the rowids of a
#: table whose key is not an INTEGER PRIMARY KEY.
FTS_TABLE = "jobmonitor_job_search"
KEY_TABLE = "jobmonitor_job_search_key"
#: Document numbers follow creation time: a job's is ``its creation millisecond * DOCS_PER_MS``
#: plus its rank among the jobs created in that millisecond, so FTS5 hands out matches newest
#: first (``ORDER BY rowid DESC``) without reading them all.
DOCS_PER_MS = 1 << 20

_DOCUMENT = "{row}.name || ' ' || coalesce({row}.description, '') || ' ' || coalesce({row}.params, '')"
# Tokens of the filters that never change once a job exists, so FTS5 can intersect a frequent
# word with a user's or a type's jobs instead of the list reading every match: s0/s1 (system),
# then t, c and u followed by the hex of type, category and run_by_id (search.facet_terms)
_FACETS = (
    "'s' || {row}.is_system || ' t' || hex({row}.type) || ' c' || hex({row}.category)"
    " || ' u' || hex(coalesce({row}.run_by_id, ''))"
)
# the millisecond of created_at as SQLAlchemy stores it on SQLite ("2026-11-29 15:46:31.123456");
# strftime reads the seconds only, as it would round .9995 and above up to the next second
_MILLISECOND = (
    "(CAST(strftime('%s', substr({row}.created_at, 1, 19)) AS INTEGER) * 1000"
    " + coalesce(CAST(substr({row}.created_at, 21, 3) AS INTEGER), 0))"
)
_FIRST_DOC = f"({_MILLISECOND} * {DOCS_PER_MS})"
_NEW_DOC = (
    f"(SELECT coalesce(max(docid) + 1, {_FIRST_DOC.format(row='new')}) FROM {KEY_TABLE} "
    f"WHERE docid >= {_FIRST_DOC.format(row='new')} AND docid < {_FIRST_DOC.format(row='new')} + {DOCS_PER_MS})"
)
_INDEX_NEW = f"""INSERT INTO {KEY_TABLE} (docid, job_id) VALUES ({_NEW_DOC}, new.id);
        INSERT INTO {FTS_TABLE} (rowid, document, facets)
            VALUES ((SELECT docid FROM {KEY_TABLE} WHERE job_id = new.id), {_DOCUMENT.format(row="new")},
                    {_FACETS.format(row="new")});"""
_UNINDEX_OLD = f"""INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, document, facets)
            VALUES ('delete', (SELECT docid FROM {KEY_TABLE} WHERE job_id = old.id), {_DOCUMENT.format(row="old")},
                    {_FACETS.format(row="old")});
        DELETE FROM {KEY_TABLE} WHERE job_id = old.id;"""
#: SQLite schema of the search: the document numbers, the FTS5 index, and the triggers that
#: keep both in step with ``jobmonitor_job`` in the transaction that changes the job. The FTS5
#: table is contentless: the text lives in the job table only, and a delete hands FTS5 the text
#: it indexed (the trigger's ``old`` row). A status change touches none of it.
SQLITE_SEARCH_DDL: tuple[str, ...] = (
    f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} (docid INTEGER PRIMARY KEY, job_id VARCHAR(36) NOT NULL UNIQUE)",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(document, facets, content='', tokenize='unicode61')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_insert AFTER INSERT ON jobmonitor_job BEGIN {_INDEX_NEW} END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON jobmonitor_job BEGIN {_UNINDEX_OLD} END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update AFTER UPDATE OF id, name, description, params, is_system, "
    f"type, category, run_by_id, created_at ON jobmonitor_job BEGIN {_UNINDEX_OLD} {_INDEX_NEW} END",
)
#: Indexes jobs that existed before the search tables (a migration of a filled database).
SQLITE_SEARCH_BACKFILL: tuple[str, ...] = (
    f"INSERT INTO {KEY_TABLE} (docid, job_id) SELECT {_FIRST_DOC.format(row='j')} + "
    f"row_number() OVER (PARTITION BY {_MILLISECOND.format(row='j')} ORDER BY j.created_at, j.id) - 1, j.id "
    "FROM jobmonitor_job j",
    f"INSERT INTO {FTS_TABLE} (rowid, document, facets) SELECT k.docid, {_DOCUMENT.format(row='j')}, "
    f"{_FACETS.format(row='j')} FROM {KEY_TABLE} k JOIN jobmonitor_job j ON j.id = k.job_id",
)
SQLITE_SEARCH_DROP: tuple[str, ...] = (
    *(f"DROP TRIGGER IF EXISTS {FTS_TABLE}_{event}" for event in ("insert", "delete", "update")),
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
    f"DROP TABLE IF EXISTS {KEY_TABLE}",
)


def fts5_available(connection: sa.Connection) -> bool:
    """Whether this SQLite has FTS5 (and so the search tables)."""
    return bool(connection.exec_driver_sql("SELECT sqlite_compileoption_used('ENABLE_FTS5')").scalar())


def create_sqlite_search(connection: sa.Connection, *, backfill: bool) -> bool:
    """Create the search tables and triggers on a SQLite database (no-op elsewhere or without
    FTS5; returns whether they exist). ``backfill`` indexes the jobs already there."""
    if connection.dialect.name != "sqlite" or not fts5_available(connection):
        return False
    for statement in SQLITE_SEARCH_DDL:
        connection.exec_driver_sql(statement)
    if backfill:
        for statement in SQLITE_SEARCH_BACKFILL:
            connection.exec_driver_sql(statement)
    return True


def _create_sqlite_search(target: sa.Table, connection: sa.Connection, **_kw: Any) -> None:
    create_sqlite_search(connection, backfill=False)


def _drop_sqlite_search(target: sa.Table, connection: sa.Connection, **_kw: Any) -> None:
    if connection.dialect.name == "sqlite":
        for statement in SQLITE_SEARCH_DROP:
            connection.exec_driver_sql(statement)


sa.event.listen(job_table, "after_create", _create_sqlite_search)
sa.event.listen(job_table, "before_drop", _drop_sqlite_search)
