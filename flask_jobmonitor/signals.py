"""The control signal a running job polls (``stop`` or ``pause``): sending and clearing it.

A signal outlives the run it was meant for when that run dies before reading it (its horse was
killed by a force stop, its machine was lost); it is therefore cleared whenever a job goes back
to the queue, so a resumed run never stops on an old request.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from .extension import JobMonitorState
from .keys import CONTROL_TTL_SECONDS, control_key

log = logging.getLogger("flask_jobmonitor.internal.signals")


def send_signal(state: JobMonitorState, job_id: str, value: str) -> None:
    """Ask the run of ``job_id`` to ``stop`` or ``pause`` at its next chance (best effort: the
    SQL status carries a stop request too)."""
    try:
        state.redis.set(control_key(job_id), value, ex=CONTROL_TTL_SECONDS)
    except RedisError as error:
        log.warning("job %s: could not send the %s signal through Redis: %s", job_id, value, error)


def clear_signal(state: JobMonitorState, job_id: str) -> None:
    """Remove the signal of ``job_id`` (best effort: it also expires on its own)."""
    try:
        state.redis.delete(control_key(job_id))
    except RedisError as error:
        log.warning("job %s: could not clear its control signal: %s", job_id, error)
