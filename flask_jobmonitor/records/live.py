"""A running job's progress, kept in Redis while its SQL record cannot be written.

Why it exists: a job's progress reaches SQL through its :class:`~flask_jobmonitor.worker.context.JobContext`
at most once per ``JOBMONITOR_FLUSH_INTERVAL``. On SQLite only one connection writes at a time,
and a task's own ``db.session`` holds that write lock from its first INSERT/UPDATE until it
commits. The context writes from the task's own thread, so it cannot wait for that lock (the
holder is the thread that would wait): its write gives way and the progress stays buffered.
A task that keeps its transaction open for a whole step would show that step standing still
at 0 until it ends. So, while the SQL write must give way, the context publishes here what it
would have written, and the pages overlay it on the SQL record.

Rules:

1. Written only while SQL writes of the job give way (context.py decides): at most once per
   flush interval, one ``SET`` of one small key (:func:`~flask_jobmonitor.keys.live_key`) with
   a TTL of :data:`LIVE_TTL_SECONDS`. While SQL writes succeed (every PostgreSQL job, every
   SQLite task that commits in batches) there is no Redis round trip at all.
2. The first SQL write that succeeds after a publish deletes the key: SQL is the record again.
3. The value carries the run's ``attempt`` and exactly what the SQL write would have written:
   the job's current step and progress, and every step whose changes are not written yet.
4. Readers overlay it only on a job whose SQL row is ``running`` or ``stopping`` with the same
   attempt: once the job ended (or was resumed elsewhere) the key is ignored until it expires.
5. Never backwards: the job's progress is taken only when (step, done) is ahead of SQL; a step
   only when SQL still has it pending or running and not further along.
6. Read Redis before SQL (:func:`read_live` first, then load the jobs): the context writes SQL
   before it deletes the key, so a reader that finds no key reads SQL already up to date.
7. Redis unreachable or a value this release cannot read: SQL values alone, never an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from ..keys import live_key
from .models import Job
from .status import JobStatus

#: How long a published value lives without being renewed. A blocked job renews it every flush
#: interval and deletes it at its next SQL write; the TTL only bounds what a dead worker leaves.
LIVE_TTL_SECONDS = 3600
#: Job statuses whose SQL record may lag behind the running task.
LIVE_STATUSES = frozenset({JobStatus.RUNNING.value, JobStatus.STOPPING.value})
#: Step statuses that SQL may still be about to leave.
_OPEN_STEP_STATUSES = frozenset({"pending", "running"})
_FORMAT = 1  # bumped if the value's shape changes; readers ignore other formats
internal_log = logging.getLogger("flask_jobmonitor.internal.live")


@dataclass(frozen=True)
class LiveStep:
    """One step as the running task has it (not yet in SQL)."""

    position: int
    status: str
    done: int
    total: int | None
    counters: Mapping[str, int]
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True)
class LiveProgress:
    """What a blocked job would have written to SQL."""

    attempt: int
    current_step: int | None
    progress_done: int | None
    progress_total: int | None
    steps: Sequence[LiveStep] = field(default_factory=tuple)

    def step(self, position: int) -> LiveStep | None:
        """The live state of the step at ``position``, if it has one."""
        for live_step in self.steps:
            if live_step.position == position:
                return live_step
        return None


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def encode(progress: LiveProgress) -> str:
    """The JSON stored under the job's key."""
    return json.dumps(
        {
            "v": _FORMAT,
            "attempt": progress.attempt,
            "current_step": progress.current_step,
            "progress_done": progress.progress_done,
            "progress_total": progress.progress_total,
            "steps": [
                {
                    "position": s.position,
                    "status": s.status,
                    "done": s.done,
                    "total": s.total,
                    "counters": dict(s.counters),
                    "started_at": _time(s.started_at),
                    "ended_at": _time(s.ended_at),
                }
                for s in progress.steps
            ],
        },
        separators=(",", ":"),
    )


def decode(raw: bytes | str | None) -> LiveProgress | None:
    """Read a stored value; None for no value or one this release does not understand."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != _FORMAT:
            return None
        steps = tuple(
            LiveStep(
                position=int(s["position"]),
                status=str(s["status"]),
                done=int(s["done"]),
                total=None if s["total"] is None else int(s["total"]),
                counters={str(k): int(v) for k, v in (s.get("counters") or {}).items()},
                started_at=_parse_time(s.get("started_at")),
                ended_at=_parse_time(s.get("ended_at")),
            )
            for s in data.get("steps") or ()
        )
        return LiveProgress(
            attempt=int(data["attempt"]),
            current_step=None if data["current_step"] is None else int(data["current_step"]),
            progress_done=None if data["progress_done"] is None else int(data["progress_done"]),
            progress_total=None if data["progress_total"] is None else int(data["progress_total"]),
            steps=steps,
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def publish(redis: Redis, job_id: str, progress: LiveProgress) -> None:
    """Store the job's live progress (raises RedisError; the caller decides what that means)."""
    redis.set(live_key(job_id), encode(progress), ex=LIVE_TTL_SECONDS)


def clear(redis: Redis, job_id: str) -> None:
    """Forget the job's live progress: SQL has it now (raises RedisError)."""
    redis.delete(live_key(job_id))


def read_live(redis: Redis, job_ids: Iterable[str]) -> dict[str, LiveProgress]:
    """The live progress published for any of ``job_ids`` (one MGET). Call it before loading the
    jobs from SQL (rule 6). Redis unreachable: nothing (the pages show SQL values)."""
    ids = list(dict.fromkeys(job_ids))
    if not ids:
        return {}
    try:
        values = redis.mget([live_key(job_id) for job_id in ids])
    except RedisError as error:
        internal_log.warning("live progress not read, showing the stored values: %s", error)
        return {}
    found = {}
    for job_id, raw in zip(ids, values, strict=True):
        progress = decode(raw)
        if progress is not None:
            found[job_id] = progress
    return found


def applies_to(job: Any, progress: LiveProgress | None) -> bool:
    """True if ``progress`` was published by the run that ``job`` (its SQL row) says is running."""
    return progress is not None and job.status in LIVE_STATUSES and progress.attempt == job.attempt


def overlay_job(job: Job, progress: LiveProgress | None) -> None:
    """Move a *detached* job's progress forward to the live value, if it applies and is ahead.

    Only for jobs loaded outside any session (``visible_job_or_404``, ``visible_ids``): the
    change must never be written back.
    """
    if not applies_to(job, progress) or progress is None or progress.current_step is None:
        return
    live_at = (progress.current_step, progress.progress_done or 0)
    if live_at > (job.current_step or 0, job.progress_done or 0):
        job.current_step = progress.current_step
        job.progress_done = progress.progress_done or 0
        job.progress_total = progress.progress_total


def overlay_jobs(jobs: Iterable[Job], live: Mapping[str, LiveProgress]) -> None:
    """:func:`overlay_job` for each of ``jobs``."""
    for job in jobs:
        overlay_job(job, live.get(job.id))


def overlay_step(values: dict[str, Any], live_step: LiveStep | None) -> dict[str, Any]:
    """A step's SQL values (a dict of its columns) with the live ones, if SQL is behind."""
    if live_step is None or values.get("status") not in _OPEN_STEP_STATUSES:
        return values
    if live_step.status == "pending" or live_step.done < (values.get("done") or 0):
        return values
    merged = dict(values)
    merged.update(
        status=live_step.status,
        done=live_step.done,
        total=live_step.total,
        counters=dict(live_step.counters),
        started_at=values.get("started_at") or live_step.started_at,
        ended_at=live_step.ended_at,
    )
    return merged
