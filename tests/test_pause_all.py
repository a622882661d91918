"""``flask jobmonitor pause`` / ``resume`` (pause_all.py) with real worker subprocesses: a forking
``Worker`` and a ``SimpleWorker`` on one Redis, a resumable job that pauses at a checkpoint and
later continues from it, a job that cannot pause and is reported until it ends, a job launched
during the pause that waits, and an idle worker that must not take a job while suspended.

Redis: RQ's suspension is one key for a whole Redis database, so these tests use this run's own
test database (``JOBMONITOR_TEST_REDIS_URL``), not the reliability tests' shared one (14): a
pause there would suspend the workers of other test runs. Every test resumes at its end.
Jobs end only when the test opens their gate (a Redis key): nothing depends on how fast they run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Worker
from rq.suspension import WORKERS_SUSPENDED
from rq.worker_registration import unregister

from flask_jobmonitor.jobs import control
from flask_jobmonitor.jobs import pause_all as pausing
from flask_jobmonitor.jobs.signals import read_signal, send_signal
from flask_jobmonitor.keys import PAUSE_ALL_KEY, PAUSED_BY_PAUSE_ALL_KEY
from flask_jobmonitor.records.models import job_table
from flask_jobmonitor.state import get_state

from . import reliability_tasks as rt
from .support.extensions import jobmonitor
from .support.reliability import ROOT, ReliabilityEnv
from .support.rows import add_job, insert_job, job_row, log_messages, subtasks
from .support.waiting import wait_for, wait_row, wait_status
from .tasks import noop

pytestmark = pytest.mark.slow
PAUSED_NOTE = "Paused for a worker shutdown"
ASKED_NOTE = "to pause for maintenance"


@pytest.fixture
def rel(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[ReliabilityEnv]:
    env = ReliabilityEnv(database_url, redis_url, tmp_path)
    redis = Redis.from_url(redis_url)
    try:
        yield env
    finally:
        redis.delete(WORKERS_SUSPENDED, PAUSE_ALL_KEY, PAUSED_BY_PAUSE_ALL_KEY)
        for worker in env.workers:  # a warm shutdown, so each one unregisters itself
            if worker.alive:
                worker.terminate()
                with suppress(subprocess.TimeoutExpired):
                    worker.wait_exit(timeout=30)
        env.close()
        # a worker that had to be killed stays registered until its TTL; other tests of this
        # Redis (queue health's figures) expect no worker but their own
        for worker in env.workers:
            registered = Worker.find_by_key(f"rq:worker:{worker.name}", connection=redis)
            if registered is not None:
                unregister(registered)
                redis.delete(registered.key)
        redis.close()


def gate() -> str:
    return f"jm-test-gate-{uuid.uuid4().hex}"


def worker_state(rel: ReliabilityEnv, worker: object) -> str:
    value = rel.redis.hget(f"rq:worker:{worker.name}", "state")  # type: ignore[attr-defined]
    return value.decode() if value else ""


def items(rel: ReliabilityEnv, job_id: str) -> list[tuple[int, int]]:
    """(item number, attempt that recorded it) of every subtask, in the order written."""
    return [(int(s.name.split()[1]), int(s.message.split()[1])) for s in subtasks(rel.engine, job_id)]


class RunningCommand:
    """A ``flask jobmonitor ...`` subprocess whose output lines are read as they come."""

    def __init__(self, rel: ReliabilityEnv, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "tests.worker_app:create_app", "jobmonitor", *args],
            cwd=ROOT,
            env={**os.environ, **rel.environment, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 60) -> None:
        wait_for(lambda: any(text in line for line in self.lines), timeout, f"{text!r} in\n{self.output}")

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


def test_pause_waits_until_nothing_runs_and_resume_lets_the_paused_job_continue(rel):
    rel.start()
    workers = [rel.worker("rq.Worker"), rel.worker("rq.SimpleWorker")]
    resumable_gate, plain_gate = gate(), gate()
    resumable = jobmonitor.enqueue(rt.resumable_until_gate, gate=resumable_gate, name="Resumable import")
    plain = jobmonitor.enqueue(rt.child_at_gate, gate=plain_gate, name="Plain export")
    stopped_by_hand = insert_job(rel.engine, status="stopped", task="tests.reliability_tasks.resumable_until_gate")
    wait_row(rel.engine, resumable.id, lambda r: len(subtasks(rel.engine, r.id)) >= 3, 60, rel.worker_logs())
    wait_status(rel.engine, plain.id, "running", 60)

    pause = RunningCommand(rel, "pause", "--timeout", "600")

    # the command's first line comes once it has started (a Python process importing the app) and
    # written its note into the running job's log (SQLite's one writer shared with two workers)
    pause.wait_for_line("2 running: 1 pausing, 1 not resumable, expected end unknown", timeout=180)
    # the resumable job pauses at a checkpoint and waits at the front of its queue; the plain
    # one runs on, and the command waits for it
    pause.wait_for_line("1 running: 1 not resumable, expected end unknown")
    wait_row(  # paused, then queued again by its worker's after-job callback
        rel.engine,
        resumable.id,
        lambda r: r.status == "queued" and any(PAUSED_NOTE in m for m in log_messages(rel.engine, r.id)),
        60,
        f"the resumable job to pause\n{rel.worker_logs()}",
    )
    assert any(ASKED_NOTE in m for m in log_messages(rel.engine, resumable.id))
    assert not any(ASKED_NOTE in m for m in log_messages(rel.engine, plain.id))
    launched = jobmonitor.enqueue(noop, name="Launched during the pause")  # accepted, and waits
    assert pause.process.poll() is None
    rel.redis.set(plain_gate, 1)

    assert pause.wait(timeout=120) == 0, f"{pause.output}\n{rel.worker_logs()}"
    assert "nothing runs: ready for maintenance" in pause.output
    assert job_row(rel.engine, plain.id).status == "completed"
    for worker in workers:  # both take no job: RQ's suspension
        wait_for(lambda w=worker: worker_state(rel, w) == "suspended", 60, f"{worker.name} suspended")
    assert job_row(rel.engine, launched.id).status == "queued"
    assert job_row(rel.engine, resumable.id).status == "queued"
    assert rel.state.queue().job_ids == [resumable.id, launched.id]  # the paused job first
    paused_at = items(rel, resumable.id)[-1][0] + 1

    resume = rel.cli("jobmonitor", "resume")

    assert resume.returncode == 0, resume.stderr
    assert "1 job paused for the maintenance continues from its checkpoint" in resume.stdout
    wait_status(rel.engine, launched.id, "completed", 60)
    # the resumed run has recorded an item of its own before the gate opens: opened sooner, a
    # busy machine let the run see the gate before its first item, and it wrote none
    wait_row(
        rel.engine,
        resumable.id,
        lambda r: r.attempt >= 2 and r.status == "running" and any(a == r.attempt for _n, a in items(rel, r.id)),
        60,
        "the resumed run's first item",
    )
    rel.redis.set(resumable_gate, 1)
    done = wait_status(rel.engine, resumable.id, ("completed", "failed"), 60)
    assert done.status == "completed", done.error_message
    written = items(rel, resumable.id)
    assert [n for n, _attempt in written] == list(range(len(written)))  # none lost, none repeated
    assert {a for n, a in written if n >= paused_at} == {done.attempt} != {written[0][1]}
    assert job_row(rel.engine, stopped_by_hand).status == "stopped"  # a person's stop stays
    assert any("resumed by" in m and "after the maintenance" in m for m in log_messages(rel.engine, resumable.id))
    assert "Jobs were not paused; nothing to resume." in rel.cli("jobmonitor", "resume").stdout  # harmless again


def test_pause_times_out_listing_the_job_that_cannot_pause(rel):
    rel.start()
    rel.worker("rq.Worker")
    plain_gate = gate()
    plain = jobmonitor.enqueue(rt.child_at_gate, gate=plain_gate, name="Plain export")
    wait_status(rel.engine, plain.id, "running", 60)

    result = rel.cli("jobmonitor", "pause", "--timeout", "1")

    assert result.returncode == 3, f"{result.stdout}\n{result.stderr}"
    assert "1 running: 1 not resumable, expected end unknown" in result.stdout
    assert f"{plain.id} Plain export (not resumable, expected end unknown)" in result.stderr
    again = rel.cli("jobmonitor", "pause", "--no-wait")  # pausing twice is harmless
    assert again.returncode == 0 and "1 running: 1 not resumable" in again.stdout
    rel.redis.set(plain_gate, 1)
    assert wait_status(rel.engine, plain.id, ("completed", "failed"), 60).status == "completed"
    assert "Jobs resumed: workers take jobs again." in rel.cli("jobmonitor", "resume").stdout


@pytest.mark.parametrize("worker_class", ["rq.Worker", "rq.SimpleWorker"], ids=["forking", "simple"])
def test_an_idle_worker_takes_no_job_queued_during_the_pause(rel, worker_class):
    """RQ looks at its suspension before it starts waiting for a job: a worker that was already
    waiting puts the job back (worker/process.py) instead of running it."""
    rel.start()
    worker = rel.worker(worker_class)
    wait_for(lambda: worker_state(rel, worker) == "idle", 60, "the worker to wait for jobs")

    paused = rel.cli("jobmonitor", "pause", "--no-wait")
    assert paused.returncode == 0, paused.stderr
    assert "nothing runs" in paused.stdout
    launched = jobmonitor.enqueue(noop, name="Launched during the pause")

    wait_for(lambda: worker_state(rel, worker) == "suspended", 60, f"the worker to be suspended\n{worker.log_tail()}")
    assert job_row(rel.engine, launched.id).status == "queued"
    assert rel.state.queue().job_ids == [launched.id]

    assert rel.cli("jobmonitor", "resume").returncode == 0
    assert wait_status(rel.engine, launched.id, ("completed", "failed"), 60).status == "completed"


def test_a_paused_job_cancelled_during_the_maintenance_stays_cancelled(rel):
    rel.start()
    rel.worker("rq.SimpleWorker")
    job = jobmonitor.enqueue(rt.resumable_until_gate, gate=gate(), name="Resumable import")
    wait_row(rel.engine, job.id, lambda r: len(subtasks(rel.engine, r.id)) >= 1, 60, rel.worker_logs())
    assert rel.cli("jobmonitor", "pause", "--timeout", "120").returncode == 0
    assert job_row(rel.engine, job.id).status == "queued"

    control.cancel(rel.state, job.id, (None, "Pat Person"))
    result = rel.cli("jobmonitor", "resume")

    assert "Jobs resumed: workers take jobs again." in result.stdout
    assert job_row(rel.engine, job.id).status == "cancelled"


def test_resume_withdraws_the_pause_requests_no_run_has_read(rel):
    """A job that paused and was queued again between the pause's look and its request would
    find that request on its next run, after the maintenance, and pause once more: resume
    withdraws the pause's requests, and leaves a person's stop alone."""
    rel.start()
    state = rel.state
    paused_late, stopped = insert_job(rel.engine), insert_job(rel.engine)
    state.redis.hset(
        PAUSED_BY_PAUSE_ALL_KEY, mapping={paused_late: "2026-11-29T14:02:00", stopped: "2026-11-29T14:02:01"}
    )
    state.redis.hset(PAUSE_ALL_KEY, mapping={"since": "2026-11-29T14:02:00", "by": "Ops"})
    send_signal(state, paused_late, "pause")
    send_signal(state, stopped, "stop")

    assert rel.cli("jobmonitor", "resume").returncode == 0

    assert read_signal(state, paused_late) is None
    assert read_signal(state, stopped) == "stop"


def test_resume_counts_a_paused_job_that_a_worker_takes_the_moment_the_workers_are_resumed(app, engine, monkeypatch):
    """CI found it: a worker took the paused job between the lifting of the suspension and
    resume's look at the job, which read ``running`` and said no paused job continued. The jobs
    are looked at while the workers are still suspended."""
    state = get_state(app)
    job_id = add_job(engine, status="queued")
    pausing.pause_all(state)
    state.redis.hset(PAUSED_BY_PAUSE_ALL_KEY, job_id, "2026-11-29T14:02:00")
    looked_at = pausing._continuing

    def a_worker_as_fast_as_can_be(state_, job_ids):  # takes the job once workers may take jobs
        if not state.redis.exists(WORKERS_SUSPENDED):
            with engine.begin() as connection:
                connection.execute(sa.update(job_table).where(job_table.c.id == job_id).values(status="running"))
        return looked_at(state_, job_ids)

    monkeypatch.setattr(pausing, "_continuing", a_worker_as_fast_as_can_be)
    try:
        report = pausing.resume_all(state)
    finally:
        state.redis.delete(WORKERS_SUSPENDED, PAUSE_ALL_KEY, PAUSED_BY_PAUSE_ALL_KEY)

    assert report.continuing == [job_id]
    assert "1 job paused for the maintenance continues from its checkpoint" in report.message
    assert not state.redis.exists(WORKERS_SUSPENDED)
