"""failures.py: the public message and the private detail of a failure."""

from __future__ import annotations

from rq.timeouts import JobTimeoutException

from flask_jobmonitor import JobFailed
from flask_jobmonitor.records.failures import MAX_DETAIL, MAX_MESSAGE, describe

SQL_TEXT = (
    "(psycopg.errors.NotNullViolation) [SQL: INSERT INTO product (price) VALUES (%(p)s)] [parameters: {'p': nan}]"
)


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


def test_an_unexpected_error_tells_viewers_its_class_only_and_keeps_its_text_and_traceback() -> None:
    failure = describe(_raised(ValueError(SQL_TEXT)))

    assert failure.message == (
        "The job failed because of an unexpected error (ValueError). An administrator can see the details."
    )
    assert failure.detail.startswith("Traceback (most recent call last)")
    assert failure.detail.endswith(f"ValueError: {SQL_TEXT}")


def test_a_job_failed_message_is_the_message_as_is() -> None:
    failure = describe(_raised(JobFailed("the import failed at line 17: price is not a number")))

    assert failure.message == "the import failed at line 17: price is not a number"
    assert failure.detail.endswith("JobFailed: the import failed at line 17: price is not a number")


def test_an_exception_never_raised_has_its_text_as_detail() -> None:
    assert describe(KeyError("k")).detail == "KeyError: 'k'"


def test_the_worker_s_own_causes_are_told_in_plain_words() -> None:
    timeout = describe(_raised(JobTimeoutException("Task exceeded maximum timeout value (180 seconds)")))
    shutdown = describe(_raised(SystemExit(1)))

    assert timeout.message == "The job ran longer than its time limit and was ended."
    assert "180 seconds" in timeout.detail
    assert shutdown.message == "The worker running the job was shut down before the job ended."


def test_long_texts_are_cut_keeping_the_end_of_the_traceback() -> None:
    failure = describe(_raised(JobFailed("x" * (MAX_MESSAGE * 2))))
    huge = describe(_raised(ValueError("y" * (MAX_DETAIL * 2) + " the end")))

    assert failure.message == "x" * MAX_MESSAGE
    assert len(huge.detail) <= MAX_DETAIL
    assert huge.detail.startswith("Traceback") and huge.detail.endswith("the end")
    assert "[... cut ...]" in huge.detail


def test_an_empty_job_failed_message_falls_back_to_the_plain_sentence() -> None:
    assert describe(_raised(JobFailed(""))).message.startswith("The job failed because of an unexpected error")
