"""When a worker's SIGTERM or SIGINT takes effect: never in the middle of work on a job.

RQ's handlers act wherever the worker's main thread is. In a worker that RQ considers idle
(every moment it has no work horse running, so also while it claims a job before forking or
records the end of one), the first signal raises ``StopRequested`` there; a second one, a cold
shutdown, raises ``SystemExit``. Raised inside a claim or a recording, either leaves the job
wrong: claimed with nobody to run it, taken from RQ's queue but not claimed, or ended in RQ and
not in SQL (and a driver that turns the interruption into a database error made the write's
retry loop swallow the shutdown).

Rules (the worker mixin in process.py and the runner keep them):

* **Critical sections.** A worker defers SIGTERM and SIGINT while it does work on a job that must
  not be cut in two: from the moment a job id leaves RQ's queue until the job is either back at
  the front of that queue or the worker's current job (RQ's ``busy`` state, in which a signal
  asks the job to pause); while it claims a job; while it records a job's end, retries included.
  Sections nest: the outermost one decides.
* **Replay.** A signal that arrives inside a section is noted and, when the outermost section
  ends, handed to the handler installed for it (RQ's, through the worker), in the order the
  signals came. The handler then acts as it would have for a signal just received: RQ's rule that
  a second signal within one second of the first is a duplicate applies to the replay.
* **Bounded retries.** Once a worker got a signal, :func:`retry_deadline` bounds the retries of
  database writes (retry.py): a warm shutdown stops retrying ``JOBMONITOR_SHUTDOWN_GRACE`` seconds
  after its signal, a cold one (a second signal, a second or more after the first) at once. A
  write that was not done by then is left to recovery, as if the worker had died.

The state is per process and only the worker's main thread touches it (Python runs signal
handlers there); a forked work horse starts with none (:func:`reset`).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: A second signal sooner than this after the first is a duplicate (RQ's rule, see
#: ``BaseWorker.request_force_stop``), not a cold shutdown.
DUPLICATE_WITHIN = 1.0

_depth = 0
#: Signals held back: (signal number, when it arrived, time.monotonic()).
_pending: list[tuple[int, float]] = []
#: While a held signal is handed to its handler: when it arrived (else None).
_replaying: float | None = None
_grace: float | None = None
_first_signal_at: float | None = None
_deadline: float | None = None


def arm(grace: float) -> None:
    """Called by a worker as it starts: signals count from now, a warm shutdown's writes retry
    for at most ``grace`` seconds."""
    global _grace
    reset()
    _grace = grace


def reset() -> None:
    """Forget everything (a forked work horse: the worker's signals and sections are not its own)."""
    global _depth, _grace, _first_signal_at, _deadline, _replaying
    _depth = 0
    _replaying = None
    _pending.clear()
    _grace = _first_signal_at = _deadline = None


def defer(signum: int) -> bool:
    """Note that the worker got ``signum``; True if it arrived inside a critical section, in
    which case the handler must do nothing now (the signal is replayed when the section ends)."""
    global _first_signal_at, _deadline
    if _replaying is not None:
        return False  # a held signal handed on: counted when it arrived
    now = time.monotonic()
    if _first_signal_at is None:
        _first_signal_at = now
        _deadline = now + _grace if _grace is not None else None
    elif now - _first_signal_at >= DUPLICATE_WITHIN:
        _deadline = now  # a cold shutdown: no more retries
    if _depth:
        _pending.append((signum, now))
        return True
    return False


def retry_deadline() -> float | None:
    """``time.monotonic()`` value after which writes are no longer retried; None without a signal."""
    return _deadline


def enter() -> None:
    """Open a critical section (one :func:`leave` closes it)."""
    global _depth
    _depth += 1


def leave() -> None:
    """Close a critical section; the outermost one replays the signals that arrived meanwhile.
    The replayed handler may raise (RQ's ``StopRequested``, ``SystemExit``) from here."""
    global _depth, _replaying
    if _depth == 0:
        return
    _depth -= 1
    while not _depth and _pending:
        signum, arrived = _pending.pop(0)
        handler = signal.getsignal(signum)
        if callable(handler):
            _replaying = arrived
            try:
                handler(signum, None)
            finally:
                _replaying = None


def replay_after_first() -> float | None:
    """While a held signal is handed to its handler: how many seconds after the first signal it
    arrived (RQ's duplicate rule is judged on arrival, not on replay); else None."""
    if _replaying is None or _first_signal_at is None:
        return None
    return _replaying - _first_signal_at


@contextmanager
def critical_section() -> Iterator[None]:
    """Defer SIGTERM and SIGINT for the block (see the module docstring)."""
    enter()
    try:
        yield
    finally:
        leave()


def pending() -> bool:
    """Whether a signal waits for the end of the current critical section."""
    return bool(_pending)
