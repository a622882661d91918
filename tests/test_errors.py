"""The package's exceptions: one base class, and each names what it is about."""

from __future__ import annotations

import pytest

import flask_jobmonitor
from flask_jobmonitor import (
    ActionNotAllowed,
    ConfigError,
    EnqueueError,
    FileNotInJob,
    InvalidJobArguments,
    JobFailed,
    JobMonitorError,
    JobNotFound,
    JobStatus,
    NotInitialized,
    PauseRequested,
    PermissionDenied,
    RunSuperseded,
    StopRequested,
    StorageError,
    TransitionRefused,
    UnknownTask,
)

ERRORS = [
    ActionNotAllowed,
    ConfigError,
    EnqueueError,
    FileNotInJob,
    InvalidJobArguments,
    JobFailed,
    JobNotFound,
    NotInitialized,
    PermissionDenied,
    RunSuperseded,
    StorageError,
    TransitionRefused,
    UnknownTask,
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
def test_every_error_is_a_job_monitor_error_and_public(error):
    assert issubclass(error, JobMonitorError)
    assert error.__name__ in flask_jobmonitor.__all__


@pytest.mark.parametrize("interruption", [StopRequested, PauseRequested], ids=lambda e: e.__name__)
def test_a_task_interruption_is_a_base_exception_that_except_exception_does_not_catch(interruption):
    assert issubclass(interruption, BaseException)
    assert not issubclass(interruption, Exception)
    assert interruption.__name__ in flask_jobmonitor.__all__


def test_lookup_errors_are_lookup_errors_and_bad_arguments_type_errors():
    assert issubclass(JobNotFound, LookupError)
    assert issubclass(UnknownTask, LookupError)
    assert issubclass(FileNotInJob, LookupError)
    assert issubclass(InvalidJobArguments, TypeError)


def test_enqueue_error_names_the_job_and_the_reason():
    error = EnqueueError("job-1", "Redis is unreachable")

    assert str(error) == "job job-1 could not be queued: Redis is unreachable"
    assert (error.job_id, error.reason) == ("job-1", "Redis is unreachable")


def test_unknown_task_hints_at_the_missing_import():
    assert "imported by the app (and by the worker)" in str(UnknownTask("x.y"))


def test_transition_refused_says_the_status_or_the_attempt_in_plain_words():
    by_status = TransitionRefused("job-1", JobStatus.COMPLETED, "request_stop")
    by_attempt = TransitionRefused("job-1", JobStatus.RUNNING, "finish", current_attempt=3, expected_attempt=2)

    assert str(by_status) == "This job has already completed; it can no longer be stopped."
    assert str(by_attempt) == "This job was run again meanwhile (it is on attempt 3); attempt 2 cannot finish."
    assert (by_status.job_id, by_status.status, by_status.action) == ("job-1", JobStatus.COMPLETED, "request_stop")


@pytest.mark.parametrize("status", list(JobStatus))
@pytest.mark.parametrize("action", ["request_stop", "force_stop", "resume", "cancel", "restart", "delete"])
def test_no_refusal_names_an_internal_status_or_the_job_id(status, action):
    text = str(TransitionRefused("3f2b8c1e-0000-4000-8000-00000000abcd", status, action))

    assert text.startswith("This job ") and text.endswith(".")
    assert "3f2b8c1e" not in text
    assert f"'{status.value}'" not in text and "status" not in text


def test_every_status_and_every_move_has_its_plain_words():
    """A status or move added to the machine without words would be refused as "has changed
    meanwhile" or with its internal name: the wording grows with the machine."""
    from flask_jobmonitor.errors import _INTERNAL_MOVES, _MOVE_CLAUSES, _STATUS_CLAUSES
    from flask_jobmonitor.records.status import TRANSITIONS

    assert set(_STATUS_CLAUSES) == {status.value for status in JobStatus}
    assert set(TRANSITIONS) <= set(_MOVE_CLAUSES) | set(_INTERNAL_MOVES)
