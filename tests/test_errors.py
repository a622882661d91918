"""The package's exceptions: one base class, and each names what it is about."""

from __future__ import annotations

import pytest

import flask_jobmonitor
from flask_jobmonitor import (
    ConfigError,
    EnqueueError,
    FileNotInJob,
    InvalidJobArguments,
    JobMonitorError,
    JobNotFound,
    JobStatus,
    NotInitialized,
    RunSuperseded,
    StorageError,
    TransitionRefused,
    UnknownTask,
)

ERRORS = [
    ConfigError,
    EnqueueError,
    FileNotInJob,
    InvalidJobArguments,
    JobNotFound,
    NotInitialized,
    RunSuperseded,
    StorageError,
    TransitionRefused,
    UnknownTask,
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
def test_every_error_is_a_job_monitor_error_and_public(error):
    assert issubclass(error, JobMonitorError)
    assert error.__name__ in flask_jobmonitor.__all__


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


def test_transition_refused_describes_the_status_or_the_attempt():
    by_status = TransitionRefused("job-1", JobStatus.COMPLETED, "request_stop")
    by_attempt = TransitionRefused("job-1", JobStatus.RUNNING, "finish", current_attempt=3, expected_attempt=2)

    assert str(by_status) == "job job-1: cannot request stop: not allowed from status 'completed'"
    assert str(by_attempt) == "job job-1: cannot finish: it belongs to attempt 3, not 2"
