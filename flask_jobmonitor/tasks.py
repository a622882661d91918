"""Tracked tasks: functions that a worker runs with a :class:`~flask_jobmonitor.worker.context.JobContext`.

A task is registered by name. A job row stores only that name and JSON parameters, so a job
created by one release can be run, restarted or inspected by the next one as long as the name
still resolves, and nothing pickled ever sits in the database.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from croniter import croniter
from rq import Retry

from .errors import InvalidJobArguments, UnknownTask


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed run of a task is tried again: RQ's :class:`rq.Retry` (``max`` retries and
    the ``intervals`` in seconds between them, RQ's own rule for picking one) and the exception
    classes ``on`` that a retry is for (a run that raises anything else fails at once).

    The worker's runner decides (worker/runner.py): it records the failed attempt, moves the job
    back to ``queued`` with its next try time, and returns an ``rq.Retry`` to RQ, which holds the
    job in its scheduled registry until then (every ``flask jobmonitor worker`` runs RQ's
    scheduler). A stop or cancel, a worker's shutdown and a crashed worker are never retried.
    """

    max: int
    intervals: tuple[int, ...] = (0,)
    on: tuple[type[BaseException], ...] = (Exception,)

    @classmethod
    def build(cls, retry: Retry | int, on: type[Exception] | Sequence[type[Exception]]) -> RetryPolicy:
        """The policy of ``@task(retry=..., retry_on=...)``: ``retry`` an ``rq.Retry`` or a number
        of retries (no wait between them); ``on`` one exception class or several."""
        if isinstance(retry, bool) or not isinstance(retry, Retry | int):
            raise TypeError(f"retry must be an rq.Retry or a number of retries, got {retry!r}")
        rq_retry = Retry(max=retry) if isinstance(retry, int) else retry  # Retry checks max >= 1
        classes = (on,) if isinstance(on, type) else tuple(on)
        if not classes or not all(isinstance(c, type) and issubclass(c, Exception) for c in classes):
            raise TypeError(f"retry_on must be one or more Exception subclasses, got {on!r}")
        return cls(max=rq_retry.max, intervals=tuple(rq_retry.intervals) or (0,), on=classes)

    def applies_to(self, error: BaseException) -> bool:
        """Whether a run that raised ``error`` is one a retry is for."""
        return isinstance(error, self.on)

    def interval(self, retries_done: int) -> int:
        """Seconds before retry number ``retries_done + 1``, by RQ's rule (past the last interval
        given, the last one again)."""
        return int(Retry.get_interval(retries_done, list(self.intervals)))


@dataclass(frozen=True)
class TrackedTask:
    """A registered task and what is known about it before it runs."""

    func: Callable[..., Any]
    name: str
    type: str = "general"
    category: str | None = None
    steps: tuple[str, ...] = ()
    resumable: bool = False
    timeout: int | None = None
    description: str | None = None
    #: False: its jobs cannot be stopped, force-stopped or cancelled while they run
    stoppable: bool = True
    #: False: a finished job of it cannot be submitted again ("restart")
    restartable: bool = True
    #: True: a running job of it can be cancelled: it stops at its next checkpoint, then ends cancelled
    cancel_running: bool = False
    #: The permission that launching it through the JSON API needs (None: ``jobmonitor.launch``)
    launch_permission: str | None = None
    #: False: never launched through the JSON API, whatever the caller holds (work only code
    #: starts: child jobs, system maintenance)
    launchable: bool = True
    #: None: a run that raises fails for good; else when it is tried again (:class:`RetryPolicy`)
    retry: RetryPolicy | None = None
    signature: inspect.Signature = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signature", inspect.signature(self.func))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly (with a context you pass), as in a unit test of the task."""
        return self.func(*args, **kwargs)

    def check_arguments(self, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Return ``args``/``kwargs`` as the JSON-ready ``params`` dict, or raise
        :class:`InvalidJobArguments` if they do not fit the signature or are not JSON.

        Checking here, in the process that enqueues, turns a typo into an error the person who
        launched the job sees, instead of a failed job a minute later.
        """
        try:
            self.signature.bind(None, *args, **kwargs)
        except TypeError as error:
            raise InvalidJobArguments(f"arguments do not fit task {self.name!r}: {error}") from None
        params = {"args": list(args), "kwargs": dict(kwargs)}
        try:
            # allow_nan=False: NaN is not JSON and PostgreSQL's json type rejects it
            encoded = json.dumps(params, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise InvalidJobArguments(
                f"arguments of task {self.name!r} must be JSON values (str, int, float, bool, None, "
                f"list, dict): {error}"
            ) from None
        if "\\u0000" in encoded:
            raise InvalidJobArguments(
                f"arguments of task {self.name!r} contain a NUL character, which databases refuse"
            )
        decoded: dict[str, Any] = json.loads(encoded)
        if decoded != params:
            raise InvalidJobArguments(
                f"arguments of task {self.name!r} change when stored as JSON (tuples become lists, "
                "dict keys become strings); pass lists and string keys"
            )
        return decoded


class TaskRegistry:
    """Tasks by name. One registry belongs to one :class:`~flask_jobmonitor.JobMonitor`."""

    def __init__(self) -> None:
        self._tasks: dict[str, TrackedTask] = {}

    def register(self, task: TrackedTask) -> TrackedTask:
        """Add ``task``; a second, different function under the same name is an error."""
        existing = self._tasks.get(task.name)
        if existing is not None and existing.func is not task.func:
            qualified = f"{existing.func.__module__}.{existing.func.__qualname__}"
            raise ValueError(f"a task named {task.name!r} is already registered ({qualified})")
        self._tasks[task.name] = task
        return task

    def get(self, name_or_task: str | TrackedTask | Callable[..., Any]) -> TrackedTask:
        """Resolve a name, a :class:`TrackedTask` or its function to the registered task."""
        if isinstance(name_or_task, TrackedTask):
            name = name_or_task.name
        elif isinstance(name_or_task, str):
            name = name_or_task
        else:
            name = default_task_name(name_or_task)
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTask(name) from None

    def find(self, name: str) -> TrackedTask | None:
        """The task registered as ``name``, or None (a job of a task this release no longer has)."""
        return self._tasks.get(name)

    def __iter__(self) -> Iterator[TrackedTask]:
        return iter(self._tasks.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tasks


def default_task_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of ``func``: stable across processes, unique within a code base."""
    return f"{func.__module__}.{func.__qualname__}"


#: Prefix of the ids under which rq-scheduler holds the schedules.
SCHEDULE_ID_PREFIX = "jobmonitor-schedule-"


@dataclass(frozen=True)
class Schedule:
    """A task to run on a cron schedule (minute hour day-of-month month day-of-week, UTC)."""

    name: str
    task: str
    cron: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    job_name: str | None = None
    is_system: bool = False

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise ValueError(f"schedule {self.name!r}: {self.cron!r} is not a valid cron expression")

    @property
    def rq_id(self) -> str:
        """Id of the schedule's entry in rq-scheduler (RQ ids allow letters, digits, ``_`` and ``-``)."""
        return SCHEDULE_ID_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "_", self.name)
