"""The soak: many mixed jobs on several worker subprocesses while workers are killed and Redis
loses its data; then every job must be in a final status and SQL must agree with RQ.

Used by ``tests/test_soak.py`` (a short run, Redis loss simulated by deleting this run's keys)
and by ``bench/soak.py`` (thousands of jobs, a real Redis restart).

The mix (by share of all jobs, children included):

* ``ok``: short non-resumable jobs that complete (unless their worker dies mid-run: failed);
* ``fail``: jobs that raise (failed);
* ``resumable``: short resumable jobs (a dead run is queued again: completed, no subtask twice);
* ``stop``: long jobs stopped by a person once they run (stopped);
* ``resume``: resumable jobs stopped once they run, then resumed (completed);
* ``family``: root jobs spawning 8 children each (released a few at a time).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from redis.exceptions import RedisError
from rq.job import Job as RQJob

from flask_jobmonitor.errors import JobMonitorError
from flask_jobmonitor.jobs import control
from flask_jobmonitor.records.models import job_table, log_table, subtask_table
from flask_jobmonitor.timeutil import utcnow

from . import reliability_tasks as rt
from .support.extensions import jobmonitor
from .support.reliability import QUEUES, TERMINAL, ReliabilityEnv, WorkerProcess

log = logging.getLogger("tests.soak")
CHILDREN_PER_FAMILY = 8
SHARES = {"ok": 0.50, "fail": 0.08, "resumable": 0.12, "stop": 0.04, "resume": 0.04}  # + families
FAMILY_SHARE = 0.12  # children and their roots
RESUMABLE_ITEMS = 8
RESUME_ITEMS = 20
RECOVERY_NOTES = {
    "stopped responding": "worker stopped responding (heartbeat expired)",
    "ended unexpectedly": "work horse ended unexpectedly (noticed by its worker)",
    "shut down before the job could pause": "given up at shutdown",
    "RQ recorded the job as finished": "completed late (RQ said finished)",
}


@dataclass
class SoakResult:
    """What a soak run did and found."""

    jobs: int
    kinds: Counter[str]
    statuses: Counter[str]
    by_kind: dict[str, Counter[str]]
    seconds_to_drain: float
    drained: bool
    kills: int
    worker_restarts: int
    redis_losses: int
    recoveries: Counter[str]
    problems: list[str] = field(default_factory=list)

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.seconds_to_drain if self.seconds_to_drain else 0.0


def plan(total: int, rng: random.Random) -> list[str]:
    """Kinds of the top-level jobs to enqueue so that, children included, about ``total`` run."""
    families = max(1, round(total * FAMILY_SHARE / (CHILDREN_PER_FAMILY + 1)))
    rest = total - families * (CHILDREN_PER_FAMILY + 1)
    scale = rest / sum(SHARES.values())
    kinds = [kind for kind, share in SHARES.items() for _ in range(round(share * scale))]
    kinds += ["family"] * families
    rng.shuffle(kinds)
    return kinds


def enqueue(kind: str, rng: random.Random) -> str:
    if kind == "ok":
        job = jobmonitor.enqueue(rt.ticks_for, seconds=round(rng.uniform(0.0, 0.1), 3), tick=0.02)
    elif kind == "fail":
        job = jobmonitor.enqueue(rt.fails_soon, seconds=0.02)
    elif kind == "resumable":
        job = jobmonitor.enqueue(rt.resumable_items, count=RESUMABLE_ITEMS, item_seconds=0.03)
    elif kind == "stop":
        job = jobmonitor.enqueue(rt.ticks_for, seconds=60.0, tick=0.05)
    elif kind == "resume":
        job = jobmonitor.enqueue(rt.resumable_items, count=RESUME_ITEMS, item_seconds=0.05)
    elif kind == "family":
        job = jobmonitor.enqueue(rt.spawns_family, count=CHILDREN_PER_FAMILY, child_seconds=0.02)
    else:  # pragma: no cover
        raise ValueError(kind)
    return job.id


def forget_everything_in_redis(env: ReliabilityEnv, workers: list[WorkerProcess]) -> int:
    """What a Redis restart without persistence does to this run: every RQ queue, registry and
    job hash, every control signal and lock, every worker registration is gone."""
    keys: set[Any] = set()
    for name in QUEUES.values():
        keys.update(env.redis.scan_iter(match=f"*{name}*", count=1000))
    keys.update(env.redis.scan_iter(match="jobmonitor:*", count=1000))
    for worker in workers:
        keys.update(env.redis.scan_iter(match=f"*{worker.name}*", count=1000))
    with env.engine.connect() as connection:
        ids = list(connection.execute(sa.select(job_table.c.id)).scalars())
    keys.update(RQJob.key_for(job_id) for job_id in ids)
    removed = 0
    batch = list(keys)
    for start in range(0, len(batch), 500):
        removed += int(env.redis.delete(*batch[start : start + 500]))
    return removed


def _forget_keys(soak: Soak) -> None:
    soak.progress(f"deleted {forget_everything_in_redis(soak.env, soak.workers)} Redis keys")


class Soak:
    """One soak run on ``env`` (app started, no worker yet)."""

    def __init__(
        self,
        env: ReliabilityEnv,
        total: int,
        *,
        worker_classes: tuple[str, ...] = ("rq.Worker", "rq.Worker", "rq.SimpleWorker", "rq.SimpleWorker"),
        kills: int = 4,
        redis_loss_at: float | None = 0.4,
        lose_redis: Callable[[Soak], None] | None = None,
        seed: int = 7,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.env = env
        self.total = total
        self.worker_classes = worker_classes
        self.kills_planned = kills
        self.redis_loss_at = redis_loss_at
        self.lose_redis = lose_redis or _forget_keys
        self.rng = random.Random(seed)
        # the kills are spread over the run by progress (share of the jobs that ended), jittered
        self.kill_points = sorted((i + self.rng.uniform(0.7, 1.3)) / (kills + 1) for i in range(kills))
        self.progress = progress or (lambda message: None)
        self.kind_of: dict[str, str] = {}
        self.workers: list[WorkerProcess] = []
        self.kills = 0
        self.restarts = 0
        self.redis_losses = 0
        self.asked_to_stop: set[str] = set()
        self.resumed: set[str] = set()

    # -- running ------------------------------------------------------------------------------

    def start_workers(self) -> None:
        self.workers = [self.env.worker(cls, wait=False) for cls in self.worker_classes]
        for worker in self.workers:
            worker.wait_ready()

    def enqueue_all(self) -> None:
        for kind in plan(self.total, self.rng):
            self.kind_of[enqueue(kind, self.rng)] = kind

    def run(self, timeout: float, stall_seconds: float = 60.0) -> SoakResult:
        """Start the workers, enqueue everything, cause trouble, and wait until every job ended
        (or ``timeout`` passed, or the number of active jobs stayed the same for ``stall_seconds``:
        something is stuck)."""
        self.start_workers()
        started = time.monotonic()
        self.enqueue_all()
        self.progress(f"enqueued {len(self.kind_of)} top-level jobs in {time.monotonic() - started:.1f} s")
        drained = False
        last_report = started
        last_count, last_change = -1, started
        while time.monotonic() - started < timeout:
            active = self._active()
            if len(active) != last_count:
                last_count, last_change = len(active), time.monotonic()
            elif time.monotonic() - last_change > stall_seconds:
                self.progress(f"stalled: {len(active)} jobs still active, none ended for {stall_seconds:.0f} s")
                break
            self._act_as_people(active)
            self._restart_dead_workers()
            done_share = 1 - len(active) / max(1, self._job_count())
            if self.kills < self.kills_planned and done_share >= self.kill_points[self.kills]:
                self._kill_a_worker()
            if self.redis_loss_at is not None and not self.redis_losses and done_share >= self.redis_loss_at:
                self.progress(f"Redis loses its data at {done_share:.0%} done")
                self.lose_redis(self)
                self.redis_losses += 1
            if not active:
                drained = True
                break
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                self.progress(f"{time.monotonic() - started:.0f} s: {len(active)} active of {self._job_count()}")
            time.sleep(0.1)
        seconds = time.monotonic() - started
        return self._result(seconds, drained)

    def _job_count(self) -> int:
        with self.env.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(job_table)).scalar_one())

    def _active(self) -> dict[str, str]:
        with self.env.engine.connect() as connection:
            rows = connection.execute(
                sa.select(job_table.c.id, job_table.c.status).where(job_table.c.status.not_in(TERMINAL))
            ).all()
            stopped = connection.execute(
                sa.select(job_table.c.id).where(
                    job_table.c.status == "stopped", job_table.c.id.in_(self._targets("resume") - self.resumed)
                )
            ).scalars()
            waiting_for_resume = {job_id: "stopped" for job_id in stopped}
        return {**dict(rows), **waiting_for_resume}

    def _targets(self, kind: str) -> set[str]:
        return {job_id for job_id, k in self.kind_of.items() if k == kind}

    def _act_as_people(self, active: dict[str, str]) -> None:
        """Stop the "stop" and "resume" jobs once they run; resume the "resume" ones once stopped."""
        for job_id, status in active.items():
            kind = self.kind_of.get(job_id)
            try:
                if kind in ("stop", "resume") and status == "running" and job_id not in self.asked_to_stop:
                    if kind == "stop" or job_id not in self.resumed:
                        control.stop(self.env.state, job_id, user=("1", "Soak"))
                        self.asked_to_stop.add(job_id)
                elif kind == "resume" and status == "stopped" and job_id not in self.resumed:
                    control.resume(self.env.state, job_id, user=("1", "Soak"))
                    self.resumed.add(job_id)
            except (JobMonitorError, RedisError) as error:
                log.info("soak: %s of job %s refused: %s", kind, job_id, error)

    def _kill_a_worker(self) -> None:
        living = [w for w in self.workers if w.alive]
        if not living:
            return
        try:
            busy = [w for w in living if self.env.redis.hget(f"rq:worker:{w.name}", "current_job")]
        except RedisError:
            busy = []
        victim = self.rng.choice(busy or living)
        victim.kill_machine()
        self.kills += 1
        self.progress(f"killed worker {victim.name} (and its work horse)")
        self.workers[self.workers.index(victim)] = self.env.worker(victim.worker_class, wait=False)

    def _restart_dead_workers(self) -> None:
        for index, worker in enumerate(self.workers):
            if not worker.alive:
                self.progress(f"worker {worker.name} exited by itself ({worker.process.returncode}); restarted")
                self.restarts += 1
                self.workers[index] = self.env.worker(worker.worker_class, wait=False)

    # -- results ----------------------------------------------------------------------------------

    def _result(self, seconds: float, drained: bool) -> SoakResult:
        with self.env.engine.connect() as connection:
            rows = connection.execute(sa.select(job_table.c.id, job_table.c.status, job_table.c.parent_id)).all()
            notes = connection.execute(
                sa.select(log_table.c.message).where(log_table.c.logger == "flask_jobmonitor.jobs.maintenance")
            ).scalars()
            recoveries: Counter[str] = Counter()
            for message in notes:
                for needle, label in RECOVERY_NOTES.items():
                    if needle in message:
                        recoveries[label] += 1
        kinds: Counter[str] = Counter()
        by_kind: dict[str, Counter[str]] = {}
        for job_id, status, parent_id in rows:
            kind = "child" if parent_id else self.kind_of.get(job_id, "?")
            kinds[kind] += 1
            by_kind.setdefault(kind, Counter())[status] += 1
        result = SoakResult(
            jobs=len(rows),
            kinds=kinds,
            statuses=Counter(status for _id, status, _parent in rows),
            by_kind=by_kind,
            seconds_to_drain=seconds,
            drained=drained,
            kills=self.kills,
            worker_restarts=self.restarts,
            redis_losses=self.redis_losses,
            recoveries=recoveries,
        )
        result.problems = self.reconcile() + self.check_kinds(by_kind)
        return result

    def reconcile(self) -> list[str]:
        """SQL against RQ: every job final; none ``queued`` in SQL that RQ does not hold; none
        ``running`` without a live heartbeat; RQ waits for nothing."""
        problems: list[str] = []
        settings = self.env.state.settings
        cutoff = utcnow() - timedelta(seconds=settings.abandoned_after)
        with self.env.engine.connect() as connection:
            active = connection.execute(
                sa.select(job_table.c.id, job_table.c.status, job_table.c.enqueued_at, job_table.c.heartbeat_at).where(
                    job_table.c.status.not_in(TERMINAL)
                )
            ).all()
        if active:
            problems.append(f"{len(active)} jobs not in a final status: {Counter(r.status for r in active)}")
            for job in active[:10]:
                problems.append(self._what_holds(job.id))
        for job in active:
            if job.status == "queued" and job.enqueued_at is not None:
                rq_status = self.env.redis.hget(RQJob.key_for(job.id), "status")
                if rq_status not in (b"queued", b"started", b"scheduled", b"deferred"):
                    problems.append(f"job {job.id} queued in SQL, RQ status {rq_status!r}")
            if job.status in ("running", "stopping") and (job.heartbeat_at is None or job.heartbeat_at < cutoff):
                problems.append(f"job {job.id} {job.status} without a live heartbeat ({job.heartbeat_at})")
        waiting = {name: self.env.redis.llen(f"rq:queue:{name}") for name in QUEUES.values()}
        if any(waiting.values()) and not active:
            problems.append(f"RQ still holds jobs though SQL has none waiting: {waiting}")
        return problems

    def _what_holds(self, job_id: str) -> str:
        """One line on a job that did not end: its status, RQ's, its run and heartbeat, and the
        last lines of its log (what recovery or the worker last wrote)."""
        c = job_table.c
        with self.env.engine.connect() as connection:
            job = connection.execute(
                sa.select(c.status, c.attempt, c.worker_name, c.heartbeat_at, c.status_changed_at, c.recoveries).where(
                    c.id == job_id
                )
            ).first()
            if job is None:
                return f"  job {job_id} ({self.kind_of.get(job_id, 'child')}): deleted meanwhile"
            lines = connection.execute(
                sa.select(log_table.c.message)
                .where(log_table.c.job_id == job_id)
                .order_by(log_table.c.id.desc())
                .limit(3)
            ).scalars()
            last = " | ".join(reversed([" ".join(str(message).split())[:120] for message in lines]))
        rq_status = self.env.redis.hget(RQJob.key_for(job_id), "status")
        now = utcnow()
        beat = "never" if job.heartbeat_at is None else f"{(now - job.heartbeat_at).total_seconds():.1f} s ago"
        changed = (now - job.status_changed_at).total_seconds()
        return (
            f"  still {job.status} ({changed:.1f} s): job {job_id} ({self.kind_of.get(job_id, 'child')}), "
            f"RQ {rq_status!r}, attempt {job.attempt} on {job.worker_name}, heartbeat {beat}, "
            f"recoveries {job.recoveries}; log: {last}"
        )

    def check_kinds(self, by_kind: dict[str, Counter[str]]) -> list[str]:
        """Each kind ended the way it can end; resumed jobs recorded each item exactly once."""
        allowed = {
            "ok": {"completed", "failed"},  # failed: its worker died mid-run
            "fail": {"failed"},
            "resumable": {"completed", "failed"},  # failed: all its attempts died
            "stop": {"stopped", "failed", "completed"},
            "resume": {"completed", "failed"},
            "family": {"completed", "failed"},
            "child": {"completed", "failed"},
        }
        problems = [
            f"{kind} jobs ended {dict(statuses)}"
            for kind, statuses in by_kind.items()
            if not set(statuses) <= allowed.get(kind, set())
        ]
        items = {"resumable": RESUMABLE_ITEMS, "resume": RESUME_ITEMS}
        with self.env.engine.connect() as connection:
            for kind, count in items.items():
                ids = self._targets(kind)
                rows = connection.execute(
                    sa.select(subtask_table.c.job_id, subtask_table.c.name, sa.func.count())
                    .join(job_table, job_table.c.id == subtask_table.c.job_id)
                    .where(job_table.c.status == "completed", subtask_table.c.job_id.in_(ids))
                    .group_by(subtask_table.c.job_id, subtask_table.c.name)
                ).all()
                per_job: dict[str, dict[str, int]] = {}
                for job_id, name, n in rows:
                    per_job.setdefault(job_id, {})[name] = n
                for job_id, names in per_job.items():
                    if names != {f"item {i}": 1 for i in range(count)}:
                        twice = sorted(n for n, c in names.items() if c > 1)
                        problems.append(f"{kind} job {job_id}: {len(names)} items of {count}, repeated {twice}")
        problems += self.check_failures()
        failed_fails = by_kind.get("fail", Counter())["failed"]
        if failed_fails != sum(by_kind.get("fail", Counter()).values()):
            problems.append("a failing job did not end failed")
        return problems

    def check_failures(self) -> list[str]:
        """Every failure has a cause the soak provoked: the task raised, or its worker was killed
        (or, by design, a child could not be spawned while Redis was down). Anything else is a
        job the package failed although nothing was wrong with it."""
        with self.env.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    job_table.c.id, job_table.c.parent_id, job_table.c.error_message, job_table.c.error_detail
                ).where(job_table.c.status == "failed")
            ).all()
        problems = []
        for job_id, parent_id, message, detail in rows:
            kind = "child" if parent_id else self.kind_of.get(job_id, "?")
            message, detail = message or "", detail or ""
            expected = (
                (kind == "fail" and "ValueError: failing on purpose" in detail)
                or "stopped responding" in message
                or (kind == "family" and "EnqueueError: " in detail)  # spawn while Redis was down
                or (kind == "child" and message.startswith("Redis is unreachable") and self.redis_losses > 0)
            )
            if not expected:
                problems.append(f"{kind} job {job_id} failed without cause: {message[:160]}")
        return problems


def describe(result: SoakResult) -> str:
    lines = [
        f"jobs: {result.jobs} ({dict(result.kinds)})",
        f"drained: {result.drained} in {result.seconds_to_drain:.1f} s ({result.jobs_per_second:.1f} jobs/s)",
        f"statuses: {dict(result.statuses)}",
        f"by kind: { {k: dict(v) for k, v in result.by_kind.items()} }",
        f"worker kills: {result.kills}, workers that exited by themselves: {result.worker_restarts}, "
        f"Redis losses: {result.redis_losses}",
        f"recoveries: {dict(result.recoveries)}",
        f"reconciliation: {'OK' if not result.problems else result.problems}",
    ]
    return "\n".join(lines)
