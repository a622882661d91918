"""Time estimates of running jobs, one rule for the detail page, its JSON, the list and
"pause all":

- a running step's time left comes from its own rate (elapsed / done x items left);
- a step not finished has its usual duration: the median of the same step in the task's last
  ``ESTIMATE_SAMPLE`` completed runs;
- the job's time left (running jobs only) is the current step's time left (its rate, or else
  its usual duration minus the time it has run) plus the usual durations of the steps still
  pending; unknown (None) as soon as one of those is unknown, never a guess;
- the steps' values are SQL's with the live progress of a blocked job laid over them
  (:mod:`flask_jobmonitor.records.live`), so estimates move with the progress the page shows.

How a person reads them ("About 2 min left") is the web side's (web/details.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .live import LiveProgress, applies_to, overlay_step
from .models import Job, job_table, step_table
from .status import JobStatus

#: How many past runs of the same task feed the estimate of a step that has not finished.
ESTIMATE_SAMPLE = 20
_UNFINISHED_STEP_STATUSES = ("pending", "running")


@dataclass
class StepView:
    """A step as the detail page shows it."""

    id: int
    position: int
    name: str
    status: str
    done: int
    total: int | None
    counters: Mapping[str, int]
    started_at: datetime | None
    ended_at: datetime | None
    elapsed_seconds: float | None
    remaining_seconds: float | None
    estimated_seconds: float | None  # median of past runs, for a step not finished yet


def steps_with_estimates(
    connection: sa.Connection, job: Job, now: datetime, live: LiveProgress | None = None
) -> list[StepView]:
    """The job's steps with elapsed time, remaining time from the current rate, and for steps
    not finished the median duration of the same step in the task's last completed runs.
    ``live``: the job's live progress (read before the job was loaded), laid over SQL's values."""
    rows = connection.execute(
        sa.select(step_table).where(step_table.c.job_id == job.id).order_by(step_table.c.position)
    ).all()
    values = _with_live([dict(row._mapping) for row in rows], job, live)
    unfinished = {v["name"] for v in values if v["status"] in _UNFINISHED_STEP_STATUSES}
    medians = _past_step_medians(connection, {job.task: unfinished}).get(job.task, {})
    return [_step_view(v, now, medians) for v in values]


def job_remaining_seconds(status: str, steps: Sequence[StepView]) -> float | None:
    """Time left for the whole job (see the module docstring); None unless the job runs and
    every part of the sum is known."""
    if status != JobStatus.RUNNING.value:
        return None
    total = 0.0
    unfinished = False
    for step in steps:
        if step.status == "running":
            unfinished = True
            left = step.remaining_seconds
            if left is None and step.estimated_seconds is not None:
                run_for = step.elapsed_seconds or 0.0
                # past its usual duration the step may end any moment or much later: unknown
                left = step.estimated_seconds - run_for if run_for < step.estimated_seconds else None
            if left is None:
                return None
            total += left
        elif step.status == "pending":
            unfinished = True
            if step.estimated_seconds is None:
                return None
            total += step.estimated_seconds
    return total if unfinished else None


def jobs_time_left(
    connection: sa.Connection,
    jobs: Iterable[Any],
    now: datetime,
    live: Mapping[str, LiveProgress] | None = None,
) -> dict[str, float | None]:
    """Time left for each of ``jobs`` (a page of the job list), by job id: the same figure as
    :func:`job_remaining_seconds` on each job's detail page; None for a job that is not running
    or whose time left is unknown.

    ``jobs``: objects with ``id``, ``task``, ``status`` and ``attempt`` (``Job`` rows loaded for
    the page). ``live``: :func:`flask_jobmonitor.records.live.read_live` for those ids, read before the
    jobs were loaded, or None for SQL values only. Two indexed statements whatever the number
    of jobs: the steps of the running jobs (unique index on ``(job_id, position)``), and the
    step durations of the last ``ESTIMATE_SAMPLE`` completed runs of each of their tasks (one
    range of ``ix_jobmonitor_job_task_status_created`` per task).
    """
    jobs = list(jobs)
    result: dict[str, float | None] = {job.id: None for job in jobs}
    running = {job.id: job for job in jobs if job.status == JobStatus.RUNNING.value}
    if not running:
        return result
    steps_by_job: dict[str, list[dict[str, Any]]] = {}
    ids = sorted(running)
    for start in range(0, len(ids), _IN_CHUNK):
        rows = connection.execute(
            sa.select(step_table)
            .where(step_table.c.job_id.in_(ids[start : start + _IN_CHUNK]))
            .order_by(step_table.c.job_id, step_table.c.position)
        ).all()
        for row in rows:
            steps_by_job.setdefault(row.job_id, []).append(dict(row._mapping))
    unfinished: dict[str, set[str]] = {}
    for job_id, values in steps_by_job.items():
        job = running[job_id]
        values[:] = _with_live(values, job, (live or {}).get(job_id))
        names = unfinished.setdefault(job.task, set())
        names.update(v["name"] for v in values if v["status"] in _UNFINISHED_STEP_STATUSES)
    medians = _past_step_medians(connection, unfinished)
    for job_id, values in steps_by_job.items():
        job = running[job_id]
        views = [_step_view(v, now, medians.get(job.task, {})) for v in values]
        result[job_id] = job_remaining_seconds(job.status, views)
    return result


# a page of the list has at most a few hundred jobs; this keeps far below any bind limit
_IN_CHUNK = 500


def _with_live(values: list[dict[str, Any]], job: Any, live: LiveProgress | None) -> list[dict[str, Any]]:
    if live is None or not applies_to(job, live):
        return values
    return [overlay_step(v, live.step(v["position"])) for v in values]


def _step_view(values: Mapping[str, Any], now: datetime, medians: Mapping[str, float]) -> StepView:
    started, ended = values["started_at"], values["ended_at"]
    done, total, status = values["done"] or 0, values["total"], values["status"]
    elapsed = remaining = None
    if started is not None:
        elapsed = max(0.0, ((ended or now) - started).total_seconds())
        if status == "running" and total and done:
            remaining = elapsed / done * max(0, total - done)
    return StepView(
        id=values["id"],
        position=values["position"],
        name=values["name"],
        status=status,
        done=done,
        total=total,
        counters=values["counters"] or {},
        started_at=started,
        ended_at=ended,
        elapsed_seconds=elapsed,
        remaining_seconds=remaining,
        estimated_seconds=medians.get(values["name"]) if status in _UNFINISHED_STEP_STATUSES else None,
    )


def _past_step_medians(
    connection: sa.Connection, names_by_task: Mapping[str, Iterable[str]]
) -> dict[str, dict[str, float]]:
    """For each task, the median duration of each named step in its last ``ESTIMATE_SAMPLE``
    completed runs: one statement, one index range per task."""
    wanted = {task: set(names) for task, names in names_by_task.items() if names}
    if not wanted:
        return {}
    c, s = job_table.c, step_table.c
    branches = [
        sa.select(c.id, c.task)
        .where(c.task == task, c.status == JobStatus.COMPLETED.value)
        .order_by(c.created_at.desc())
        .limit(ESTIMATE_SAMPLE)
        .subquery()
        for task in sorted(wanted)
    ]
    selects = [sa.select(branch.c.id, branch.c.task) for branch in branches]
    recent = (sa.union_all(*selects) if len(selects) > 1 else selects[0]).subquery()
    rows = connection.execute(
        sa.select(recent.c.task, s.name, s.started_at, s.ended_at)
        .select_from(step_table.join(recent, s.job_id == recent.c.id))
        .where(
            s.name.in_(sorted(set().union(*wanted.values()))),
            s.started_at.is_not(None),
            s.ended_at.is_not(None),
        )
    ).all()
    durations: dict[tuple[str, str], list[float]] = {}
    for task, name, started, ended in rows:
        if name in wanted[task]:
            durations.setdefault((task, name), []).append((ended - started).total_seconds())
    medians: dict[str, dict[str, float]] = {}
    for (task, name), values in durations.items():
        medians.setdefault(task, {})[name] = statistics.median(values)
    return medians
