"""Worker classes that send their own worker a SIGTERM at one chosen moment of its life, for
the shutdown tests (``tests/test_shutdown.py``): no luck involved, the signal lands exactly
there. Chosen by environment variables of the worker subprocess:

* ``JM_SIGTERM_AT``: the window (see :data:`WINDOWS`);
* ``JM_SIGTERM_COLD=1``: after the first signal, wait a little over RQ's one second for
  duplicates and send a second one (a cold shutdown) at the same place.

Only the first time the window comes is signalled (``between`` waits for the second dequeue:
the moment after a first job, before the next).

    flask --app tests.worker_app:create_app jobmonitor worker \\
        --worker-class tests.sigterm_hooks.HookedWorker  # or HookedSimpleWorker
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from rq import SimpleWorker, Worker

from flask_jobmonitor.worker import ends, runner, shutdown

#: Where a worker can be signalled, in the order of a job's life.
WINDOWS = (
    "popping",  # Redis popped the job id; the pop's answer has not reached the worker's code yet
    "dequeued",  # the job id has left RQ's queue; nothing else happened yet
    "claiming",  # inside the claim's transaction (queued -> running), before its UPDATE
    "claimed",  # the claim is committed; RQ is not yet busy with the job
    "forking",  # RQ is busy with the job; the horse is not forked yet (forking worker only)
    "running",  # the task runs (signalled by the work horse or, in a SimpleWorker, by the task)
    "horse-exited",  # the horse exited; its outcome is not yet recorded (forking worker only)
    # inside the recording of the job's end, before its UPDATE: alone, or in the next job's claim
    # when that job was queued already (worker/ends.py)
    "recording",
    "between",  # after a job, before the next dequeue
    # after a job, while a reply of Redis is still on its way to the worker's client: RQ's handler
    # raises StopRequested between a command's send and its read, and the connection goes back to
    # the pool with the reply unread (forced here: a command is sent, its connection released)
    "mid-command",
)

_AT = os.environ.get("JM_SIGTERM_AT", "")
_COLD = os.environ.get("JM_SIGTERM_COLD") == "1"
_WORKER_PID = os.getpid()  # imported by the worker before it forks any horse
_seen: dict[str, int] = {}
_WARM_UP_ID = "00000000-0000-0000-0000-000000000000"  # runner.warm_up's statements


def _signal_worker(window: str, nth: int = 1) -> None:
    """SIGTERM the worker (from itself, or from its horse) the ``nth`` time ``window`` comes."""
    if window != _AT:
        return
    _seen[window] = _seen.get(window, 0) + 1
    if _seen[window] != nth:
        return
    os.kill(_WORKER_PID, signal.SIGTERM)
    if _COLD:
        time.sleep(shutdown.DUPLICATE_WITHIN + 0.2)
        os.kill(_WORKER_PID, signal.SIGTERM)


def _wrap(module: Any, name: str, before: Callable[..., None]) -> None:
    original = getattr(module, name)

    @functools.wraps(original)
    def hooked(*args: Any, **kwargs: Any) -> Any:
        before(*args, **kwargs)
        return original(*args, **kwargs)

    setattr(module, name, hooked)


def _before_transition(_connection: Any, _job_id: str, action: str, **_options: Any) -> None:
    if os.getpid() != _WORKER_PID or _job_id == _WARM_UP_ID:
        return  # the horse's own records, and the worker's start-up warm-up, are not windows
    if action == "start":
        _signal_worker("claiming")
    elif action == "finish":
        _signal_worker("recording")


def _signal_after(pop: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(pop)
    def popping(*args: Any, **kwargs: Any) -> Any:
        result = pop(*args, **kwargs)
        if result is not None:
            _signal_worker("popping")
        return result

    return popping


_wrap(runner, "apply_transition", _before_transition)
_wrap(ends, "apply_transition", _before_transition)  # an end that waited for the next claim (ends.py)
_wrap(runner, "_execute", lambda *_args, **_kwargs: _signal_worker("running"))


class _Hooks:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # under the worker's own wrapping of its pops (worker/process.py wraps them when it starts
        # working): the signal lands inside the pop call, after Redis took the id off the queue
        for name in ("blpop", "lpop", "blmove", "lmove"):
            setattr(self.connection, name, _signal_after(getattr(self.connection, name)))  # type: ignore[attr-defined]

    def reorder_queues(self, *args: Any, **kwargs: Any) -> Any:
        _signal_worker("dequeued")  # RQ calls it right after it dequeued a job
        return super().reorder_queues(*args, **kwargs)  # type: ignore[misc]

    def prepare_execution(self, *args: Any, **kwargs: Any) -> Any:
        _signal_worker("claimed")
        return super().prepare_execution(*args, **kwargs)  # type: ignore[misc]

    def fork_work_horse(self, *args: Any, **kwargs: Any) -> Any:
        _signal_worker("forking")
        return super().fork_work_horse(*args, **kwargs)  # type: ignore[misc]

    def execute_job(self, *args: Any, **kwargs: Any) -> Any:
        result = super().execute_job(*args, **kwargs)  # type: ignore[misc]
        _signal_worker("horse-exited")  # RQ is idle again; the worker has yet to record the end
        return result

    def dequeue_job_and_maintain_ttl(self, *args: Any, **kwargs: Any) -> Any:
        _signal_worker("between", nth=2)
        if _AT == "mid-command" and _seen.get("dequeues", 0) == 1:
            pool = self.connection.connection_pool  # type: ignore[attr-defined]
            connection = pool.get_connection()
            connection.send_command("BLPOP", "jobmonitor:test:never", 0.3)  # its reply comes later
            pool.release(connection)
            _signal_worker("mid-command")
        _seen["dequeues"] = _seen.get("dequeues", 0) + 1
        return super().dequeue_job_and_maintain_ttl(*args, **kwargs)  # type: ignore[misc]


class HookedWorker(_Hooks, Worker):
    """The forking worker, signalled at ``JM_SIGTERM_AT``."""


class HookedSimpleWorker(_Hooks, SimpleWorker):
    """The SimpleWorker, signalled at ``JM_SIGTERM_AT``."""
