"""The control signal a running job polls (``stop``, ``cancel`` or ``pause``): sending and clearing it.

``cancel`` is a stop whose run then ends ``cancelled`` instead of ``stopped`` (control.cancel of
a running job). Redis carries that difference only: if the signal is lost, the SQL status still
stops the job, which then ends ``stopped`` and can be cancelled from there.

A signal outlives the run it was meant for when that run dies before reading it (its horse was
killed by a force stop, its machine was lost); it is therefore cleared whenever a job goes back
to the queue, so a resumed run never stops on an old request.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from ..keys import CONTROL_TTL_SECONDS, control_key
from ..state import JobMonitorState

log = logging.getLogger("flask_jobmonitor.internal.signals")


def send_signal(state: JobMonitorState, job_id: str, value: str, *, replace: bool = True) -> None:
    """Ask the run of ``job_id`` to ``stop``, ``cancel`` or ``pause`` at its next chance (best effort: the
    SQL status carries a stop request too). ``replace=False`` leaves a signal already waiting
    alone (a pause of all jobs must not turn a person's stop into a pause)."""
    try:
        state.redis.set(control_key(job_id), value, ex=CONTROL_TTL_SECONDS, nx=not replace)
    except RedisError as error:
        log.warning("job %s: could not send the %s signal through Redis: %s", job_id, value, error)


def read_signal(state: JobMonitorState, job_id: str) -> str | None:
    """The signal waiting for ``job_id`` (``stop``, ``cancel`` or ``pause``), or None (also when
    Redis cannot be read: the caller then acts on what the SQL status says)."""
    try:
        return _read(state, job_id)
    except RedisError as error:
        log.warning("job %s: could not read its control signal: %s", job_id, error)
        return None


def _read(state: JobMonitorState, job_id: str) -> str | None:
    value = state.redis.get(control_key(job_id))
    return value.decode() if isinstance(value, bytes) else value


def await_signal(state: JobMonitorState, job_id: str, seconds: float, poll: float = 0.02) -> str | None:
    """The signal of ``job_id`` once there is one, waiting up to ``seconds`` for it; None if none
    came (or Redis cannot be read: then at once, and the caller acts on the SQL status).

    A request to stop or cancel a running job writes ``stopping`` to SQL first and sets its
    signal after: a run that read ``stopping`` before the signal was set learns from it which of
    the two it was asked for (runner._record_stop)."""
    deadline = time.monotonic() + seconds
    try:
        while (value := _read(state, job_id)) is None and time.monotonic() < deadline:
            time.sleep(poll)
    except RedisError as error:
        log.warning("job %s: could not read its control signal: %s", job_id, error)
        return None
    return value


def clear_signal(state: JobMonitorState, job_id: str) -> None:
    """Remove the signal of ``job_id`` (best effort: it also expires on its own)."""
    try:
        state.redis.delete(control_key(job_id))
    except RedisError as error:
        log.warning("job %s: could not clear its control signal: %s", job_id, error)
