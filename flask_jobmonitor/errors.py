"""Every exception flask-jobmonitor defines, in one place. Each names the job or the setting it
is about.

Grouped by kind: the base class; setup and settings; enqueueing and tasks; people's actions on
jobs; a running task's interruptions; files; the pages' query parameters. The public ones are
exported from the package (``flask_jobmonitor.__init__``). This module imports nothing from the
package but i18n.py (a base module: the refusals a person reads are translated when raised in a
request) and a type for annotations, so every layer may import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.exceptions import RequestEntityTooLarge

from .i18n import N_, format_file_size, gettext

if TYPE_CHECKING:
    from .records.status import JobStatus


# -- the base class ----------------------------------------------------------------------------


class JobMonitorError(Exception):
    """Base class of every error this package raises on purpose."""


# -- setup and settings ------------------------------------------------------------------------


class ConfigError(JobMonitorError):
    """A ``JOBMONITOR_*`` setting has a value that cannot work."""


class NotInitialized(JobMonitorError):
    """The extension was used with an app on which ``init_app`` was never called."""


# -- jobs: a task's own failure, a job not found, a status move refused ------------------------


class JobFailed(JobMonitorError):
    """Raise it from a task to fail the job with a message for people: every viewer of the job
    sees the message as is (the list, the job's page, its JSON and its log), so write it for them
    ("the import failed at line 17: price is not a number") and put nothing in it they need not
    see. Any other exception fails the job too, but its text is shown only to people holding
    ``jobmonitor.view_tracebacks`` (see failures.py).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobNotFound(JobMonitorError, LookupError):
    """No job has this id (or, for a person, none they are allowed to see)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} does not exist")
        self.job_id = job_id


#: The first clause of a refusal, for each status, as a person is told it (no internal status
#: names). Each clause is whole, so a translation agrees with itself ("This job" is its subject).
_STATUS_CLAUSES = {
    "queued": N_("This job is still waiting for a worker"),
    "running": N_("This job is running"),
    "stopping": N_("This job is already stopping"),
    "paused": N_("This job is paused"),
    "waiting": N_("This job is waiting for its child jobs"),
    "completed": N_("This job has already completed"),
    "failed": N_("This job has already failed"),
    "stopped": N_("This job has already been stopped"),
    "cancelled": N_("This job has been cancelled"),
}
#: The second clause for each refused move (the status machine's names, then control's): the
#: first form for a finished job ("no longer"), the second for one that may change ("now").
_MOVE_CLAUSES = {
    "request_stop": (N_("it can no longer be stopped"), N_("it cannot be stopped now")),
    "stop_family": (N_("it can no longer be stopped"), N_("it cannot be stopped now")),
    "force_stop": (N_("it can no longer be force-stopped"), N_("it cannot be force-stopped now")),
    "cancel": (N_("it can no longer be cancelled"), N_("it cannot be cancelled now")),
    "request_cancel": (N_("it can no longer be cancelled"), N_("it cannot be cancelled now")),
    "resume": (N_("it can no longer be resumed"), N_("it cannot be resumed now")),
    "restart": (N_("it can no longer be restarted"), N_("it cannot be restarted now")),
    "delete": (N_("it can no longer be deleted"), N_("it cannot be deleted now")),
    "change priority": (N_("it can no longer change priority"), N_("it cannot change priority now")),
}
#: The moves only the package makes (a worker, recovery), named in logs, never to people.
_INTERNAL_MOVES = {
    "start": "start",
    "finish": "finish",
    "fail": "be marked failed",
    "stopped": "be marked stopped",
    "pause": "be paused",
    "requeue": "be queued again",
    "retry": "be queued for a retry",
    "cancelled_at_checkpoint": "be marked cancelled",
    "wait_for_children": "wait for its child jobs",
    "family_completed": "be marked completed",
    "family_failed": "be marked failed",
    "family_stopped": "be marked stopped",
}
_FINISHED = frozenset({"completed", "failed", "stopped", "cancelled"})


def refusal_text(status: str, action: str) -> str:
    """A refusal in plain words, in the request's language: "This job has already completed;
    it can no longer be stopped."

    No job id and no internal status name: this is what the person who clicked is shown.
    """
    finished = status in _FINISHED
    what = gettext(_STATUS_CLAUSES.get(status, N_("This job has changed meanwhile")))
    if action in _MOVE_CLAUSES:
        move = gettext(_MOVE_CLAUSES[action][0 if finished else 1])
    else:
        internal = _INTERNAL_MOVES.get(action, action.replace("_", " "))
        move = f"it can no longer {internal}" if finished else f"it cannot {internal} now"
    return gettext("%(status)s; %(move)s.", status=what, move=move)


class TransitionRefused(JobMonitorError):
    """A status move that the status machine does not allow from the job's current status.

    Its text is meant for people (flash messages, the JSON ``error``): plain words, no id; the
    job id, status and action are attributes for code and logs.
    """

    def __init__(
        self,
        job_id: str,
        status: JobStatus,
        action: str,
        current_attempt: int | None = None,
        expected_attempt: int | None = None,
    ) -> None:
        if expected_attempt is not None and current_attempt != expected_attempt:
            move = _INTERNAL_MOVES.get(action) or _MOVE_CLAUSES.get(action, ("", action))[1].removeprefix(
                "it cannot "
            ).removesuffix(" now")
            text = (
                f"This job was run again meanwhile (it is on attempt {current_attempt}); "
                f"attempt {expected_attempt} cannot {move}."
            )
        else:
            text = refusal_text(str(status), action)  # JobStatus.__str__ is its value
        super().__init__(text)
        self.job_id = job_id
        self.status = status
        self.action = action


# -- enqueueing and tasks ----------------------------------------------------------------------


class UnknownTask(JobMonitorError, LookupError):
    """A job names a task that no ``@jobmonitor.task`` registered in this process."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"no tracked task is registered under the name {name!r}; is the module that defines it "
            "imported by the app (and by the worker)?"
        )
        self.name = name


class InvalidJobArguments(JobMonitorError, TypeError):
    """The arguments given to ``enqueue`` do not fit the task, or cannot be stored as JSON."""


class UnsafeLink(JobMonitorError, ValueError):
    """A link that is neither a path of this site nor an http(s) URL of an allowed host, such as
    a ``javascript:`` ``run_at_url`` given to ``enqueue`` (see ``links.py``)."""


class UnknownSchedule(JobMonitorError, LookupError):
    """No ``jobmonitor.schedule(...)`` registered a schedule under this name in this process."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule is registered under the name {name!r}")
        self.name = name


class EnqueueError(JobMonitorError):
    """The job could not be queued: recorded, but RQ could not take it (the job row was marked
    failed), or not recorded at all (a restart whose original's input files were deleted
    meanwhile)."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} could not be queued: {reason}")
        self.job_id = job_id
        self.reason = reason


# -- people's actions on jobs (jobs/control.py, jobs/pause_all.py) -----------------------------


class PermissionDenied(JobMonitorError):
    """The user may see the job but not do this to it."""


class ActionNotAllowed(JobMonitorError):
    """The action does not fit the job (its status, or a task that cannot resume)."""


class PauseAllUnavailable(JobMonitorError):
    """Redis, where the pause lives, cannot be reached (nothing was paused or resumed), or the
    database could not be reached after the workers were suspended or resumed (the message
    says what took effect)."""


# -- a running task's interruptions (worker/context.py, worker/runner.py) ----------------------


class RunSuperseded(JobMonitorError):
    """This run no longer owns its job (another attempt took over, or the job was deleted)."""


class StopRequested(BaseException):
    """Raised inside a task at its next checkpoint or progress tick after someone asked it to stop.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that a task's own ``except Exception``
    blocks do not swallow it; ``finally`` blocks and context managers still run.
    """


class PauseRequested(BaseException):
    """Raised inside a resumable task at its next tick when its worker is shutting down (deploy)."""


# -- the pages' query parameters (web/, stats/) ------------------------------------------------


class InvalidFilter(ValueError):
    """A query parameter of the job list has a value that cannot be used; the message says which."""

    @classmethod
    def not_one_of(cls, name: str, choices: Iterable[str], value: str) -> InvalidFilter:
        """``name`` must take one of ``choices``, and ``value`` is none of them."""
        return cls(
            gettext(
                "%(name)s must be one of %(choices)s; got %(value)s",
                name=name,
                choices=", ".join(choices),
                value=repr(value),
            )
        )


# -- files -------------------------------------------------------------------------------------


class FileNotInJob(JobMonitorError, LookupError):
    """A task asked for an input file that was not given to this job."""


class StorageError(JobMonitorError):
    """A stored file key is malformed or points outside the storage root."""


class FileTooLarge(JobMonitorError, RequestEntityTooLarge):
    """The input files given to ``enqueue`` hold more than ``JOBMONITOR_MAX_UPLOAD_BYTES``;
    nothing was stored and no job was created.

    It is also Werkzeug's 413 ``RequestEntityTooLarge``: raised in a request and not caught, it
    answers 413 with its text (the job pages show it in their layout, the JSON endpoints as
    ``{"error": ...}``), never a 500. Its text is meant for people: the limit, no path.
    """

    def __init__(self, limit: int) -> None:
        text = gettext(
            "The file is too large: the files of one job may hold at most %(limit)s.", limit=format_file_size(limit)
        )
        RequestEntityTooLarge.__init__(self, description=text)
        self.limit = limit

    def __str__(self) -> str:
        return str(self.description)
