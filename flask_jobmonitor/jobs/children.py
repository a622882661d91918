"""Fair release of child jobs: a root job's children enter the RQ queue at most
``JOBMONITOR_CHILDREN_IN_FLIGHT`` at a time, so one job with 10,000 children cannot starve
other people's jobs queued after it.

A child over the limit is recorded ``queued`` with no ``enqueued_at`` (held in SQL, not in
Redis). Whenever a child ends, and on every recovery pass, the oldest held children of that
root are released into the queue up to the limit. A new child queues behind the held ones even
when a slot is free (enqueue.py): children are released in the order they were spawned. A child
that waits for its own children (families.py) holds no slot. Decisions for one root are taken under a
short Redis lock so that two children ending at once do not both release into the same slot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import sqlalchemy as sa
from redis.exceptions import LockError, RedisError

from ..keys import children_lock_key
from ..records.models import job_table
from ..records.status import JobStatus
from ..state import JobMonitorState
from ..timeutil import utcnow
from .submit import resubmit_by_id

log = logging.getLogger("flask_jobmonitor.internal.children")
_IN_FLIGHT = [JobStatus.RUNNING.value, JobStatus.STOPPING.value, JobStatus.PAUSED.value]
#: A child whose parent is in one of these (or waiting for its children with a stop requested)
#: is never released: stopping the parent cancels it (control.stop_children), and releasing it
#: first would start it in that moment's gap.
_PARENT_ENDING = [JobStatus.STOPPING.value, JobStatus.STOPPED.value, JobStatus.CANCELLED.value]
#: The job table again, as a child's parent (families.py names its own alias ``child``).
_parent = job_table.alias("parent")


@contextmanager
def root_lock(state: JobMonitorState, root_id: str) -> Iterator[None]:
    """Serialise hold/release decisions of one root job across processes (best effort without Redis)."""
    try:
        lock = state.redis.lock(children_lock_key(root_id), timeout=10, blocking_timeout=10)
        acquired = lock.acquire()
    except RedisError as error:
        log.warning("root %s: children lock unavailable (%s); deciding without it", root_id, error)
        yield
        return
    try:
        yield
    finally:
        if acquired:
            with suppress(LockError, RedisError):
                lock.release()


def in_flight(connection: sa.Connection, root_id: str) -> int:
    """Children of ``root_id`` that hold or wait for a worker (released, not finished)."""
    c = job_table.c
    released_waiting = sa.and_(c.status == JobStatus.QUEUED.value, c.enqueued_at.is_not(None))
    return int(
        connection.execute(
            sa.select(sa.func.count())
            .select_from(job_table)
            .where(c.root_id == root_id, sa.or_(c.status.in_(_IN_FLIGHT), released_waiting))
        ).scalar_one()
    )


def holds_children(connection: sa.Connection, root_id: str) -> bool:
    """Whether ``root_id`` holds back children that wait for a slot."""
    c = job_table.c
    held = sa.exists().where(c.root_id == root_id, c.status == JobStatus.QUEUED.value, c.enqueued_at.is_(None))
    return bool(connection.execute(sa.select(held)).scalar())


def release(state: JobMonitorState, root_id: str) -> list[str]:
    """Release the oldest held children of ``root_id`` into the queue, up to the limit."""
    c = job_table.c
    # a waiting parent someone asked to stop (stop_family) is ending too
    stopping_family = sa.and_(_parent.c.status == JobStatus.WAITING.value, _parent.c.stop_requested_at.is_not(None))
    parent_ending = sa.exists().where(
        _parent.c.id == c.parent_id, sa.or_(_parent.c.status.in_(_PARENT_ENDING), stopping_family)
    )
    released: list[str] = []
    with root_lock(state, root_id):
        with state.engine.begin() as connection:
            free = state.settings.children_in_flight - in_flight(connection, root_id)
            if free <= 0:
                return []
            candidates = list(
                connection.execute(
                    sa.select(c.id)
                    .where(
                        c.root_id == root_id,
                        c.status == JobStatus.QUEUED.value,
                        c.enqueued_at.is_(None),
                        ~parent_ending,
                    )
                    .order_by(c.created_at, c.id)
                    .limit(free)
                ).scalars()
            )
            for job_id in candidates:
                claimed = connection.execute(
                    sa.update(job_table)
                    .where(c.id == job_id, c.status == JobStatus.QUEUED.value, c.enqueued_at.is_(None))
                    .values(enqueued_at=utcnow())
                ).rowcount
                if claimed:
                    released.append(job_id)
        for job_id in released:
            resubmit_by_id(state, job_id)
    return released


def roots_with_held_children(connection: sa.Connection, limit: int = 100) -> list[str]:
    """Roots that still hold children back (recovery releases them if slots are free)."""
    c = job_table.c
    return list(
        connection.execute(
            sa.select(c.root_id)
            .distinct()
            .where(c.status == JobStatus.QUEUED.value, c.enqueued_at.is_(None), c.root_id.is_not(None))
            .limit(limit)
        ).scalars()
    )
