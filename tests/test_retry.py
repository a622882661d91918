"""retry.py: database writes are retried through an outage, but never past a shutdown's
deadline (shutdown.py): a worker that got SIGTERM stops retrying when its grace is over, and
at once after a cold shutdown."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from flask_jobmonitor.worker import shutdown
from flask_jobmonitor.worker.retry import retry_db


@pytest.fixture(autouse=True)
def fresh_shutdown_state() -> Iterator[None]:
    shutdown.reset()
    yield
    shutdown.reset()


def _always_down(calls: list[int]):
    def action() -> None:
        calls.append(1)
        raise sa.exc.OperationalError("UPDATE", {}, Exception("server closed the connection"))

    return action


def test_a_write_is_retried_until_it_succeeds_without_a_shutdown():
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise sa.exc.OperationalError("UPDATE", {}, Exception("down"))
        return "written"

    assert retry_db(flaky, 30, "a test write") == "written"
    assert len(calls) == 2


def test_a_pending_cold_shutdown_ends_the_retries_at_once():
    shutdown.arm(grace=60)
    shutdown.defer(signal.SIGTERM)
    shutdown._first_signal_at -= shutdown.DUPLICATE_WITHIN + 1  # the first signal, well before
    shutdown.defer(signal.SIGTERM)  # the second: a cold shutdown
    calls: list[int] = []

    with pytest.raises(sa.exc.OperationalError):
        retry_db(_always_down(calls), 30, "a test write")

    assert len(calls) == 1  # not retried for the 30 s it would otherwise have had


def test_a_warm_shutdown_whose_grace_is_over_ends_the_retries():
    shutdown.arm(grace=0.1)
    shutdown.defer(signal.SIGTERM)
    calls: list[int] = []

    with pytest.raises(sa.exc.OperationalError):
        retry_db(_always_down(calls), 30, "a test write")

    assert len(calls) == 1  # the first back-off (0.5 s) would outlast the 0.1 s grace


def test_signals_inside_a_critical_section_are_replayed_when_it_ends():
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, _frame: received.append(signum))
    try:
        with shutdown.critical_section():
            with shutdown.critical_section():
                assert shutdown.defer(signal.SIGUSR1)  # what the worker's handler asks
            assert received == [] and shutdown.pending()  # the inner section is not the outermost
        assert received == [signal.SIGUSR1] and not shutdown.pending()
        assert not shutdown.defer(signal.SIGUSR1)  # outside a section: act at once
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_signal_during_the_back_off_ends_the_retries_without_another_try():
    """The cold shutdown comes while the write waits to retry: no further try."""
    shutdown.arm(grace=60)
    shutdown.defer(signal.SIGTERM)
    shutdown._first_signal_at -= shutdown.DUPLICATE_WITHIN + 1  # the first signal, well before
    calls: list[int] = []
    # the second signal arrives 0.2 s into the first back-off (0.5 s)
    timer = threading.Timer(0.2, shutdown.defer, args=(signal.SIGTERM,))

    def down() -> None:
        calls.append(1)
        if len(calls) == 1:
            timer.start()
        raise sa.exc.OperationalError("UPDATE", {}, Exception("down"))

    with pytest.raises(sa.exc.OperationalError):
        retry_db(down, 30, "a test write")
    timer.join()
    assert len(calls) == 1


def test_a_replayed_signal_is_counted_once_when_it_arrived():
    """A warm SIGTERM held for longer than RQ's duplicate second is handed on as the warm
    shutdown it was: the hand-over does not count as a second (cold) signal, so the write
    retries of the shutdown's grace are kept."""
    handled: list[float | None] = []

    def handler(signum: int, _frame: object) -> None:
        shutdown.defer(signum)  # what the worker's handler asks first
        handled.append(shutdown.replay_after_first())

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        shutdown.arm(grace=60)
        with shutdown.critical_section():
            assert shutdown.defer(signal.SIGUSR1)
            shutdown._first_signal_at -= shutdown.DUPLICATE_WITHIN + 1  # the hold lasted a while
            shutdown._pending[0] = (signal.SIGUSR1, shutdown._first_signal_at)
        assert handled == [0.0]
        deadline = shutdown.retry_deadline()
        assert deadline is not None and deadline > shutdown._first_signal_at + 59  # still warm
    finally:
        signal.signal(signal.SIGUSR1, previous)
