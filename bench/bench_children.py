"""Fair release of children: how long another person's small job waits behind a root job's
1,000 children, with ``JOBMONITOR_CHILDREN_IN_FLIGHT`` = N (4) and, as the baseline in the same
run, N = 10,000 (every child released into the queue at once, as plain RQ would).

    .venv/bin/python bench/bench_children.py [--quick] [--children 1000] [--in-flight 4]

One root job (user Ann) spawns the children (each works ``--child-seconds``); once it has
spawned them all, Bob's small job is queued. Two ``rq.SimpleWorker`` processes drain the queue.
Expected: Bob waits about N child durations (divided among the workers), not 1,000.

Redis: a private ``redis-server`` on ``--redis-port`` (default 6392). Database: PostgreSQL
``jobmonitor_bench_children`` (created if missing, job tables re-created). Writes
``bench/results/children.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import sqlalchemy as sa  # noqa: E402
from measured import revision  # noqa: E402
from ownredis import RedisServer  # noqa: E402
from soak import prepare_database  # noqa: E402

from flask_jobmonitor.records.models import job_table  # noqa: E402
from tests import reliability_tasks as rt  # noqa: E402
from tests.support.extensions import jobmonitor  # noqa: E402
from tests.support.reliability import ReliabilityEnv  # noqa: E402
from tests.support.waiting import wait_status  # noqa: E402

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/jobmonitor_bench_children"
BASELINE_IN_FLIGHT = 10_000
WORKERS = 2


def run_once(database_url: str, redis_url: str, in_flight: int, children: int, child_seconds: float) -> dict[str, Any]:
    """One root with ``children`` children, then Bob's job; returns the figures of the run."""
    prepare_database(database_url)
    env = ReliabilityEnv(database_url, redis_url, Path(tempfile.mkdtemp(prefix="jobmonitor-children-")))
    try:
        env.start(CHILDREN_IN_FLIGHT=in_flight, FLUSH_INTERVAL=0.5, ABANDONED_AFTER=30)
        for _ in range(WORKERS):
            env.worker("rq.SimpleWorker", wait=False)
        for worker in env.workers:
            worker.wait_ready()
        began = time.monotonic()
        root = jobmonitor.enqueue(
            rt.spawns_family, count=children, child_seconds=child_seconds, user=("1", "Ann"), name="1,000 children"
        )
        wait_status(env.engine, root.id, ("completed", "failed"), 600)
        spawned = time.monotonic() - began
        ahead_in_rq = len(set(env.state.queue().job_ids))
        small = jobmonitor.enqueue(rt.ticks_for, seconds=0.0, user=("2", "Bob"), name="Bob's small job")
        bob = wait_status(env.engine, small.id, ("completed", "failed"), 900)
        c = job_table.c
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            with env.engine.connect() as connection:
                open_children = connection.execute(
                    sa.select(sa.func.count()).where(c.root_id == root.id, c.status.not_in(["completed", "failed"]))
                ).scalar_one()
            if not open_children:
                break
            time.sleep(0.5)
        drained = time.monotonic() - began
        with env.engine.connect() as connection:
            rows = connection.execute(sa.select(c.started_at, c.ended_at, c.status).where(c.root_id == root.id)).all()
        durations = [(r.ended_at - r.started_at).total_seconds() for r in rows if r.started_at and r.ended_at]
        first_start = min(r.started_at for r in rows if r.started_at)
        last_end = max(r.ended_at for r in rows if r.ended_at)
        # wall-clock time per child while all workers drain them: Bob's wait / slot is how many
        # children's worth of time he waited
        slot = (last_end - first_start).total_seconds() / len(durations)
        wait = (bob.started_at - bob.created_at).total_seconds()
        # children that started after Bob's job was queued and before it started: run ahead of him
        ahead_of_bob = sum(1 for r in rows if r.started_at and bob.created_at <= r.started_at < bob.started_at)
        return {
            "in_flight": in_flight,
            "children": len(rows),
            "children_completed": sum(1 for r in rows if r.status == "completed"),
            "child_run_seconds": round(statistics.mean(durations), 4),
            "child_slot_seconds": round(slot, 4),
            "children_in_rq_when_bob_queued": ahead_in_rq,
            "bob_wait_seconds": round(wait, 3),
            "bob_wait_in_children": round(wait / slot, 1),
            "children_run_ahead_of_bob": ahead_of_bob,
            "spawn_seconds": round(spawned, 1),
            "drain_seconds": round(drained, 1),
        }
    finally:
        env.close()


def main() -> int:
    measured = revision()  # taken first: a commit made while it runs is not what it measured
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 children")
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--child-seconds", type=float, default=0.05)
    parser.add_argument("--redis-port", type=int, default=6392)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    children = 200 if args.quick else args.children

    server = RedisServer(args.redis_port).start()
    try:
        runs = []
        for in_flight in (args.in_flight, BASELINE_IN_FLIGHT):
            print(f"CHILDREN_IN_FLIGHT={in_flight}: {children} children of {args.child_seconds} s ...", flush=True)
            figures = run_once(args.database_url, server.url, in_flight, children, args.child_seconds)
            print("  " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
            runs.append(figures)
    finally:
        server.stop()

    fair, baseline = runs
    print()
    print(f"{'N':>6} {'child run s':>12} {'slot s':>8} {'Bob waits s':>12} {'= children':>11} {'ran ahead':>10}")
    for figures in runs:
        print(
            f"{figures['in_flight']:>6} {figures['child_run_seconds']:>12.3f} {figures['child_slot_seconds']:>8.3f} "
            f"{figures['bob_wait_seconds']:>12.2f} {figures['bob_wait_in_children']:>11.1f} "
            f"{figures['children_run_ahead_of_bob']:>10}"
        )
    ratio = baseline["bob_wait_seconds"] / max(fair["bob_wait_seconds"], 1e-3)
    print(f"Bob's wait with N={fair['in_flight']} is {ratio:.0f}x shorter than with every child released at once")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "children.json").write_text(
        json.dumps(
            {
                "runs": runs,
                "workers": f"{WORKERS} x rq.SimpleWorker",
                "database": sa.make_url(args.database_url).get_backend_name(),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                "date": time.strftime("%Y-%m-%d"),
                "revision": measured,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
