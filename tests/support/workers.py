"""Real RQ workers in the test process: a burst worker that empties the queues and returns, or a
worker in a background thread that a test meets while it runs a job.

A forking ``rq.Worker`` still forks a real work horse per job; a ``SimpleWorker`` runs the job in
its own thread. Either quits promptly (see :func:`stop_pubsub_listener_first`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from rq import SimpleWorker
from rq.timeouts import BaseDeathPenalty

from flask_jobmonitor.state import get_state
from flask_jobmonitor.worker.process import create_worker


def run_worker(app: Flask, worker_class: type[Any] = SimpleWorker, **options: Any) -> Any:
    """Run a burst worker of ``worker_class`` until the queues are empty; return the worker."""
    worker = create_worker(app, worker_class=worker_class, **options)
    stop_pubsub_listener_first(worker)
    worker.work(burst=True)
    return worker


def stop_pubsub_listener_first(worker: Any) -> None:
    """Make a burst worker's exit prompt. RQ unsubscribes its command listener and only then
    tells the listener thread to stop; when the thread reads the UNSUBSCRIBE reply in between,
    it waits for the next message (60 s) and RQ's ``join(timeout=1)`` adds a second to about
    one run in five. Stopping the thread before unsubscribing closes that window."""
    unsubscribe = worker.unsubscribe

    def stop_then_unsubscribe() -> None:
        if worker.pubsub_thread is not None:
            worker.pubsub_thread.stop()
        unsubscribe()

    worker.unsubscribe = stop_then_unsubscribe


# -- workers in a thread --------------------------------------------------------------------------


class NoDeathPenalty(BaseDeathPenalty):
    """RQ's default job timeout uses SIGALRM, which only the main thread may set up. Workers run
    in a thread here, and no test relies on RQ's timeout."""

    def setup_death_penalty(self) -> None:
        pass

    def cancel_death_penalty(self) -> None:
        pass


_thread_classes: dict[type[Any], type[Any]] = {}


def thread_worker_class(base: type[Any]) -> type[Any]:
    """``base`` (``rq.Worker`` or ``rq.SimpleWorker``) made runnable outside the main thread: no
    signal handlers (SIGINT/SIGTERM stay the test runner's), no SIGALRM timeout."""
    if base not in _thread_classes:
        _thread_classes[base] = type(
            f"Threaded{base.__name__}",
            (base,),
            {"death_penalty_class": NoDeathPenalty, "_install_signal_handlers": lambda self: None},
        )
    return _thread_classes[base]


class WorkerThread:
    """A real RQ worker working the app's queues in a background thread: a burst worker (quits
    once the queues are empty), or with ``idle`` seconds, one that waits for work and quits after
    ``idle`` seconds without any. ``queues``: priorities to listen to (default: all three)."""

    def __init__(
        self,
        app: Flask,
        worker_class: type[Any] = SimpleWorker,
        queues: tuple[str, ...] = ("high", "default", "low"),
        idle: int | None = None,
        logging_level: str = "INFO",
    ) -> None:
        names = [get_state(app).settings.queue_names[priority] for priority in queues]
        self.worker = create_worker(app, names, worker_class=thread_worker_class(worker_class))
        stop_pubsub_listener_first(self.worker)
        self.idle = idle
        self.logging_level = logging_level
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name=f"rq-{self.worker.name}", daemon=True)

    def _work(self) -> None:
        try:
            if self.idle is None:
                self.worker.work(burst=True, logging_level=self.logging_level)
            else:
                self.worker.work(burst=False, max_idle_time=self.idle, logging_level=self.logging_level)
        except BaseException as error:  # reported by join()
            self.error = error

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def join(self, timeout: float = 30.0) -> None:
        """Wait for the burst worker to finish the queues and quit (raises if it does not)."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"worker {self.worker.name} still busy after {timeout} s")
        if self.error is not None:
            raise self.error

    @property
    def horse_pid(self) -> int:
        return int(getattr(self.worker, "horse_pid", 0) or 0)


@contextmanager
def worker_thread(
    app: Flask, worker_class: type[Any] = SimpleWorker, timeout: float = 30.0, **options: Any
) -> Iterator[WorkerThread]:
    """Start a worker thread (see :class:`WorkerThread`); on leaving the block wait for it to quit."""
    running = WorkerThread(app, worker_class, **options).start()
    try:
        yield running
    finally:
        running.join(timeout)
