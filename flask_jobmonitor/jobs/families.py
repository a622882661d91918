"""Job families: a parent is not done while its children still run.

Rules (the status moves themselves are in status.py):

* When the task of a job that has children returns, the job moves ``running`` -> ``waiting``
  ("Waiting for children"): its own work is done, it holds no worker and sends no heartbeat,
  and it still counts as active (not deletable, "unprocessed" in the list).
* When its last child ends, the family ends, with the family's outcome:
  ``completed`` if every child completed; ``failed`` if any child failed (its message says
  "2 of 13 child jobs failed"); otherwise ``stopped`` (none failed, some were stopped or
  cancelled). A parent whose children had all ended when its task returned passes through
  ``waiting`` for a moment and ends the same way, so the outcome does not depend on timing.
* A task that waits for its children itself (``ctx.wait_for_children``) has seen how they
  ended and decides its own outcome: returning normally completes it, as any task.
* The end is decided race-safely: every path that records the end of a child (the runner, the
  forking worker's settling, control actions, recovery) calls :func:`child_ended`, and the
  recovery pass calls :func:`end_stuck_families`; each tries one conditional UPDATE from
  ``waiting`` that also requires that no child is active, so when two children end at once on
  two workers exactly one of them ends the parent. The parent checks again itself right after
  it starts waiting, so a child that ended in between is not missed.
* Nested families end bottom up: a waiting child is an active child of its own parent, and its
  end is a child's end for that parent. A waiting child takes no slot among its root's children
  in flight (children.py), so its own children can run: a family never waits on itself.
* Stop of a waiting parent (control.stop) stops its children and it ends ``stopped`` once they
  have; force stop ends it at once and force-stops them. It cannot be cancelled or deleted.
* Resume of a stopped parent (control.resume) resumes its stopped children of resumable tasks
  first, down the tree, then the parent: run again, it waits for them, and the family ends
  with their outcome. Cancelled children stay cancelled and count in that outcome.
* One notification per family: the parent's end tells its user (children tell theirs only with
  ``JOBMONITOR_NOTIFY_CHILDREN``; see notifications.py), as batches do in GoodJob (one callback
  when the batch finishes) and Sidekiq.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import events
from ..records.journal import write_log
from ..records.models import job_table
from ..records.notifications import notify_end
from ..records.status import ACTIVE_STATUSES, JobStatus
from ..records.transitions import apply_transition_where
from ..timeutil import utcnow

if TYPE_CHECKING:
    from ..state import JobMonitorState
    from ..worker.context import RunInfo

log = logging.getLogger("flask_jobmonitor.internal.families")
#: The logger named in the lines this module writes into a parent's own log.
_LOG_AS = "flask_jobmonitor.families"
_ACTIVE = sorted(s.value for s in ACTIVE_STATUSES)
#: The job table again, as a parent's child (children.py names its own alias ``parent``).
_child = job_table.alias("child")
#: How many waiting parents one recovery pass looks at.
_BATCH = 500


def active_child(parent_id: Any, root_id: Any) -> sa.Exists:
    """EXISTS an active child of ``parent_id`` (a value or a column of the outer row), looked up
    through the index on (root_id, status): a root with 10,000 children finds one of its few
    active ones at once, where a walk of the parent's children would read the ended ones too."""
    return sa.exists().where(_child.c.root_id == root_id, _child.c.parent_id == parent_id, _child.c.status.in_(_ACTIVE))


def family_outcome(counts: Mapping[str, int]) -> tuple[str, str | None]:
    """The move that ends a family whose children ended in ``counts`` (status -> how many), and
    the message that explains it: ``family_completed``, ``family_failed`` or ``family_stopped``."""
    total = sum(counts.values())
    failed = counts.get(JobStatus.FAILED.value, 0)
    if failed:
        return "family_failed", f"{failed} of {total} child jobs failed"
    unfinished = total - counts.get(JobStatus.COMPLETED.value, 0)
    if unfinished:
        return "family_stopped", f"{unfinished} of {total} child jobs were stopped or cancelled"
    return "family_completed", None


def start_waiting(state: JobMonitorState, run: RunInfo) -> bool:
    """The task of ``run`` returned normally. If its job has children, move it to ``waiting``
    (and end the family at once if they have all ended) and return True; False if it has none
    (the caller then finishes it as usual). Fenced by the run's attempt, like every end."""
    c = job_table.c
    has_child = sa.exists().where(_child.c.parent_id == run.job_id)
    with state.engine.begin() as connection:
        moved = apply_transition_where(
            connection, "wait_for_children", sa.and_(c.id == run.job_id, c.attempt == run.attempt, has_child)
        )
        if moved and connection.execute(sa.select(active_child(run.job_id, run.root_id or run.job_id))).scalar():
            write_log(connection, _LOG_AS, [run.job_id], "Its own work is done; it waits for its child jobs to end.")
    if not moved:
        return False
    child_ended(state, run.job_id)  # its children may all have ended already
    return True


def child_ended(state: JobMonitorState, parent_id: str | None) -> list[str]:
    """A child of ``parent_id`` ended (or the parent started waiting): end the family if the
    parent waits and no child of it is active any more, then do the same for its own parent.
    Safe to call from anywhere, any number of times: at most one call ends a family. Returns
    the ids of the parents it ended, bottom up."""
    ended_ids: list[str] = []
    while parent_id is not None:
        try:
            ended = _end_family(state, parent_id)
        except sa.exc.SQLAlchemyError as error:
            # the child's own end is recorded; the recovery pass ends the family later
            log.warning("job %s: its family's end not recorded yet (%s); recovery will", parent_id, error)
            break
        if ended is None:
            break
        ended_ids.append(parent_id)
        parent_id = ended.parent_id
    return ended_ids


def _end_family(state: JobMonitorState, parent_id: str) -> Any:
    """End the family of ``parent_id`` if it waits and all its children have ended; return the
    moved row (its ``parent_id``, whose family may end now too) when it did, else None."""
    c = job_table.c
    with state.engine.begin() as connection:
        parent = connection.execute(sa.select(c.status, c.root_id).where(c.id == parent_id)).first()
        if parent is None or parent.status != JobStatus.WAITING.value:
            return None  # the common case while a parent still runs: one lookup by id
        no_active_child = ~active_child(parent_id, parent.root_id or parent_id)
        if not connection.execute(sa.select(no_active_child)).scalar():
            return None
        counts = {
            status: int(count)
            for status, count in connection.execute(
                sa.select(c.status, sa.func.count()).where(c.parent_id == parent_id).group_by(c.status)
            ).all()
        }
        action, message = family_outcome(counts)
        now = utcnow()
        values: dict[str, Any] = {"ended_at": now}
        if action == "family_failed":
            values["error_message"] = message
        # conditional on the status and on the children: of two children ending at once on two
        # workers, only one moves the parent (the other's UPDATE finds it no longer waiting)
        moved = apply_transition_where(
            connection,
            action,
            sa.and_(c.id == parent_id, no_active_child),
            values=values,
            now=now,
            returning=(c.parent_id, c.root_id, c.run_by_id, c.status),
        )
        if not moved:
            return None
        row = moved[0]
        summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
        text = f"All {sum(counts.values())} child jobs have ended ({summary})."
        if message:
            text = f"{text} {message.capitalize()}."
        write_log(
            connection, _LOG_AS, [parent_id], text, logging.INFO if action == "family_completed" else logging.WARNING
        )
        notify_end(state, connection, row.run_by_id, parent_id, row.status, root_id=row.root_id)
    log.info("family of job %s ended: %s", parent_id, row.status)
    events.send(state, events.job_ended, parent_id, outcome=JobStatus(row.status))
    return row


def end_stuck_families(state: JobMonitorState) -> list[str]:
    """Recovery: end the families whose parent still waits although no child is active (the
    process that recorded the last child's end died before it looked at the parent). Returns
    the ids of the parents it ended."""
    c = job_table.c
    with state.engine.connect() as connection:
        stuck = list(
            connection.execute(
                sa.select(c.id)
                .where(c.status == JobStatus.WAITING.value, ~active_child(c.id, sa.func.coalesce(c.root_id, c.id)))
                .order_by(c.status_changed_at)
                .limit(_BATCH)
            ).scalars()
        )
    ended: list[str] = []
    for parent_id in stuck:
        ended.extend(child_ended(state, parent_id))
    return ended
