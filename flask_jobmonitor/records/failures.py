"""What a failed job tells whom.

A task's exception may carry anything: SQL with its parameters (SQLAlchemy's ``[SQL: ...]
[parameters: ...]``), absolute paths, host names, other people's data. So the record of a failure
has two texts, written together by the runner:

- ``error_message`` is for everyone who may see the job: the list, the job's page, the JSON, the
  notification's job and the job's log. For a :class:`~flask_jobmonitor.errors.JobFailed` (the
  task author's words for people) it is that message as is; for any other exception it is a
  fixed sentence that names only the exception's class.
- ``error_detail`` is the exception's text with its traceback. The job's page (a collapsed
  "Error details" block) and ``/api/jobs/<id>`` show it only to people holding
  ``jobmonitor.view_tracebacks`` (admins by default, permissions.py), and the worker writes it to
  its own log (the ``flask_jobmonitor.internal.runner`` logger), never to the job's log.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from rq.timeouts import JobTimeoutException

from ..errors import JobFailed
from .models import Job, job_table
from .status import JobStatus

if TYPE_CHECKING:
    from ..state import JobMonitorState

#: Longest ``error_message`` stored (a JobFailed message is cut there).
MAX_MESSAGE = 4000
#: Longest ``error_detail`` stored: its start and its end (where the exception is) are kept.
MAX_DETAIL = 65536


class Failure(NamedTuple):
    """The two texts of one failure: ``message`` for every viewer, ``detail`` for those allowed."""

    message: str
    detail: str


#: Failures the worker itself causes, told in plain words (their text adds nothing a viewer needs).
_KNOWN_CAUSES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (JobTimeoutException, "The job ran longer than its time limit and was ended."),
    ((SystemExit, KeyboardInterrupt), "The worker running the job was shut down before the job ended."),
)


def unexpected_message(error: BaseException) -> str:
    """What every viewer reads about an exception that was not meant for them: its class only."""
    for kind, message in _KNOWN_CAUSES:
        if isinstance(error, kind):
            return message
    return (
        f"The job failed because of an unexpected error ({type(error).__name__}). An administrator can see the details."
    )


def describe(error: BaseException) -> Failure:
    """The public message and the private detail (text and traceback) of ``error``."""
    message = str(error.message) if isinstance(error, JobFailed) else unexpected_message(error)
    if error.__traceback__ is not None:
        detail = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    else:
        detail = "".join(traceback.format_exception_only(type(error), error))
    if len(detail) > MAX_DETAIL:
        half = MAX_DETAIL // 2 - 10
        detail = f"{detail[:half]}\n[... cut ...]\n{detail[-half:]}"
    return Failure(message[:MAX_MESSAGE] or unexpected_message(error), detail.rstrip("\n"))


def visible_detail(state: JobMonitorState, user: Any, job: Job) -> str | None:
    """The detail of ``job``'s failure if ``user`` may read it (and it has one), else None."""
    # only a failed job has one: the JSON refresh of a running job's page asks no more SQL
    if job.status != JobStatus.FAILED.value or not state.permissions.can_view_tracebacks(user, job):
        return None
    with state.engine.connect() as connection:
        detail = connection.execute(sa.select(job_table.c.error_detail).where(job_table.c.id == job.id)).scalar()
    return detail or None
