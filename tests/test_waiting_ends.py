"""A forking worker's job end that waits for the worker's next claim (worker/ends.py): written in
the next claim's transaction when the worker goes straight on, and alone before the worker waits
for a job or does anything else first (a job it does not claim, Redis failing, a suspension),
when it leaves its loop, or when the claim's transaction fails; a worker killed with an end
waiting leaves it to recovery, which records the job completed. A SimpleWorker writes its ends
at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import SimpleWorker, Worker
from rq.worker import WorkerStatus

from flask_jobmonitor import JobStatus
from flask_jobmonitor.jobs.maintenance import recover
from flask_jobmonitor.state import get_state
from flask_jobmonitor.timeutil import utcnow
from flask_jobmonitor.worker import process, runner
from flask_jobmonitor.worker.context import RunInfo
from flask_jobmonitor.worker.ends import WaitingEnd, ends
from flask_jobmonitor.worker.process import create_worker

from .support.extensions import jobmonitor
from .support.rows import add_job, job_row, log_messages, stop_heartbeat
from .support.workers import WorkerThread, run_worker
from .tasks import noop, plain_job_reading_status_of


@pytest.fixture(autouse=True)
def no_end_left_waiting() -> Iterator[None]:
    yield
    ends.loop_thread = ends.waiting = None


Seen = list[tuple[int | None, str, str]]


def drain_seeing_transactions(app: Any, engine: sa.Engine, worker_class: type[Any]) -> Seen:
    """Run a burst worker; return (transaction number or None in autocommit, statement,
    parameters) of every statement the engine sent meanwhile."""
    seen: Seen = []
    counter = iter(range(1, 1_000_000))

    def on_begin(connection: sa.Connection) -> None:
        connection.info["jm_transaction"] = next(counter)

    def on_execute(connection: sa.Connection, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        number = connection.info.get("jm_transaction") if connection.in_transaction() else None
        seen.append((number, statement, str(parameters)))

    sa.event.listen(engine, "begin", on_begin)
    sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        run_worker(app, worker_class)
    finally:
        sa.event.remove(engine, "begin", on_begin)
        sa.event.remove(engine, "before_cursor_execute", on_execute)
    return seen


def transaction_of(seen: Seen, job_id: str, status: str) -> int | None:
    """The transaction of the UPDATE that moved ``job_id`` to ``status`` (its first parameter)."""
    new_status = (f"('{status}'", f"{{'status': '{status}'")
    [number] = [
        n
        for n, statement, parameters in seen
        if statement.startswith("UPDATE jobmonitor_job SET status")
        and job_id in parameters
        and parameters.startswith(new_status)
    ]
    return number


def test_the_end_of_a_job_and_the_claim_of_the_next_are_committed_together(app, engine):
    jobs = [jobmonitor.enqueue(noop) for _ in range(3)]
    seen = drain_seeing_transactions(app, engine, Worker)

    assert {job_row(engine, job.id).status for job in jobs} == {"completed"}
    first, second, third = (job.id for job in jobs)
    assert transaction_of(seen, first, "completed") == transaction_of(seen, second, "running") is not None
    assert transaction_of(seen, second, "completed") == transaction_of(seen, third, "running") is not None
    # the last one, with no next job, is written alone when the burst worker leaves its loop
    assert transaction_of(seen, third, "completed") != transaction_of(seen, third, "running")


def test_a_simple_worker_writes_each_end_before_rq_records_the_job(app, engine):
    """Its end would wait before RQ's record of the job: a kill in between would leave nothing
    saying that the job completed."""
    jobs = [jobmonitor.enqueue(noop) for _ in range(2)]
    seen = drain_seeing_transactions(app, engine, SimpleWorker)

    first, second = (job.id for job in jobs)
    assert job_row(engine, first).status == job_row(engine, second).status == "completed"
    assert transaction_of(seen, first, "completed") != transaction_of(seen, second, "running")


def test_the_end_is_written_before_the_worker_waits_for_the_next_job(app, engine):
    idle = 6
    worker = WorkerThread(app, Worker, idle=idle).start()
    try:
        job = jobmonitor.enqueue(noop)
        while worker.thread.is_alive() and job_row(engine, job.id).status != "completed":
            time.sleep(0.02)
        completed_at = time.monotonic()
    finally:
        worker.join(timeout=60)
    quit_at = time.monotonic()
    assert job_row(engine, job.id).status == "completed"
    # written as the worker began to wait for more work, not as it quit after `idle` seconds
    # without a job (the idle time only starts once the job is done, whatever the machine's load)
    assert quit_at - completed_at > idle / 2


def test_a_worker_that_waited_a_slice_in_vain_writes_the_end_before_waiting_on(monkeypatch):
    """A job another worker took between this worker's look at the queues and its pop: the pop
    waits a slice without a job (1 s), then the waiting end is written."""
    calls: list[object] = []
    popped = iter([None, None, ("queue", "job-id")])

    result = process._pop_in_slices(lambda keys, timeout: next(popped), 1, (["rq:queue:default"], 5), {}, calls.append)

    assert result == ("queue", "job-id")
    assert calls == [["rq:queue:default"], None, None]


def test_a_claim_refused_still_commits_the_waiting_end(app, engine):
    state = get_state(app)
    ended = add_job(engine, status="running", attempt=1)
    cancelled = add_job(engine, status="cancelled")
    ends.waiting = WaitingEnd(runner_run(ended), utcnow())

    assert runner.claim(state, cancelled, "worker-1") is None

    assert job_row(engine, ended).status == "completed"
    assert ends.waiting is None


def test_a_claim_whose_transaction_fails_writes_the_waiting_end_alone(app, engine, monkeypatch):
    state = get_state(app)
    ended = add_job(engine, status="running", attempt=1)
    queued = add_job(engine, status="queued")
    ends.waiting = WaitingEnd(runner_run(ended), utcnow())
    real = runner.apply_transition

    def failing(connection: sa.Connection, job_id: str, action: str, **options: Any) -> Any:
        if action == "start":
            raise sa.exc.OperationalError("UPDATE", {}, Exception("the server went away"))
        return real(connection, job_id, action, **options)

    monkeypatch.setattr(runner, "apply_transition", failing)

    with pytest.raises(sa.exc.OperationalError):
        runner.claim(state, queued, "worker-1")

    assert job_row(engine, ended).status == "completed"
    assert job_row(engine, queued).status == "queued"


def test_a_worker_killed_with_an_end_waiting_leaves_it_to_recovery(app, engine, monkeypatch):
    """SIGKILL between a job and the next claim: nothing writes the end; RQ holds the job as
    finished with the run's result "completed", and recovery records it."""
    monkeypatch.setattr(process.AppWorkerMixin, "_write_waiting_end", lambda self: None)
    job = jobmonitor.enqueue(noop)
    run_worker(app, Worker)
    assert job_row(engine, job.id).status == JobStatus.RUNNING
    ends.waiting = None  # the killed process's memory
    stop_heartbeat(engine, job.id)

    report = recover(get_state(app))

    assert report.completed == [job.id]
    assert job_row(engine, job.id).status == JobStatus.COMPLETED
    assert any("RQ recorded the job as finished" in message for message in log_messages(engine, job.id))


def test_a_job_the_worker_does_not_claim_runs_after_the_waiting_end_is_written(app, engine):
    first = jobmonitor.enqueue(noop)
    queue = get_state(app).queue()
    plain = queue.enqueue(plain_job_reading_status_of, first.id)

    run_worker(app, Worker)

    assert plain.return_value() == "completed"  # what the plain job saw as it ran


@pytest.mark.parametrize("failing", ["the queues' lengths", "the heartbeat"])
def test_redis_failing_writes_the_waiting_end_before_rq_waits_for_it(app, engine, monkeypatch, failing):
    worker = create_worker(app, worker_class=Worker)
    ended = waiting_end_of(engine)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RedisConnectionError("Redis went away")

    if failing == "the heartbeat":
        monkeypatch.setattr(Worker, "heartbeat", broken)
        with pytest.raises(RedisConnectionError):
            worker.heartbeat()
    else:
        monkeypatch.setattr(worker.connection, "pipeline", broken)
        worker._before_waiting(["rq:queue:jobmonitor"])

    assert job_row(engine, ended).status == "completed"


def test_the_waiting_end_is_written_before_the_worker_waits_in_a_suspension(app, engine):
    worker = create_worker(app, worker_class=Worker)
    ended = waiting_end_of(engine)

    worker.set_state(WorkerStatus.SUSPENDED)

    assert job_row(engine, ended).status == "completed"


def test_a_queue_with_a_job_in_it_keeps_the_end_for_the_claim(app, engine):
    worker = create_worker(app, worker_class=Worker)
    ended = waiting_end_of(engine)
    jobmonitor.enqueue(noop)

    worker._before_waiting([get_state(app).queue().key])

    assert job_row(engine, ended).status == "running"
    assert ends.waiting is not None


def waiting_end_of(engine: sa.Engine) -> str:
    """A running job whose end waits, as the forking worker's loop leaves it after a job."""
    job_id = add_job(engine, status="running", attempt=1)
    ends.loop_thread = threading.get_ident()
    ends.waiting = WaitingEnd(runner_run(job_id), utcnow())
    return job_id


def runner_run(job_id: str) -> RunInfo:
    return RunInfo(
        job_id=job_id,
        attempt=1,
        name="ended",
        task="tests.tasks.noop",
        params={},
        checkpoint=None,
        root_id=None,
        run_by_id=None,
        run_by_name=None,
        is_system=False,
        run_at_url=None,
        parent_id=None,
        retries=0,
        claimed_at=utcnow(),
        worker_name="worker-1",
    )
