"""Exceptions raised by flask-jobmonitor. Each names the job or the setting it is about."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .status import JobStatus


class JobMonitorError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(JobMonitorError):
    """A ``JOBMONITOR_*`` setting has a value that cannot work."""


class NotInitialized(JobMonitorError):
    """The extension was used with an app on which ``init_app`` was never called."""


class JobNotFound(JobMonitorError, LookupError):
    """No job has this id (or, for a person, none they are allowed to see)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} does not exist")
        self.job_id = job_id


class TransitionRefused(JobMonitorError):
    """A status move that the status machine does not allow from the job's current status."""

    def __init__(
        self,
        job_id: str,
        status: JobStatus,
        action: str,
        current_attempt: int | None = None,
        expected_attempt: int | None = None,
    ) -> None:
        if expected_attempt is not None and current_attempt != expected_attempt:
            detail = f"it belongs to attempt {current_attempt}, not {expected_attempt}"
        else:
            detail = f"not allowed from status {status.value!r}"
        super().__init__(f"job {job_id}: cannot {action.replace('_', ' ')}: {detail}")
        self.job_id = job_id
        self.status = status
        self.action = action


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


class EnqueueError(JobMonitorError):
    """The job was recorded but could not be handed to RQ; the job row was marked failed."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id} could not be queued: {reason}")
        self.job_id = job_id
        self.reason = reason


class FileNotInJob(JobMonitorError, LookupError):
    """A task asked for an input file that was not given to this job."""


class StorageError(JobMonitorError):
    """A stored file key is malformed or points outside the storage root."""
