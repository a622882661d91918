"""Reliability soak: thousands of mixed tracked jobs on 4 worker processes (2 forking ``rq.Worker``,
2 ``rq.SimpleWorker``) while workers are SIGKILLed with their work horses (a lost machine) and
restarted, and Redis is restarted once for real, losing all its data.

    .venv/bin/python bench/soak.py [--jobs 5000] [--quick] [--kills 12] [--redis-port 6391]

Redis: a private ``redis-server`` on ``--redis-port`` (no persistence), so restarting it
disturbs nobody. Database: PostgreSQL ``jobmonitor_soak`` (created if missing, its job tables
dropped and re-created), or ``--database-url``. Job mix, kills and checks: ``tests/soak_driver.py``
(the same driver as the short soak in ``tests/test_soak.py``). Prints the figures and writes
``bench/results/soak.json``; exits 1 if a job did not end or SQL and RQ disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # ownredis, the tests package (driver, tasks), the package

import sqlalchemy as sa  # noqa: E402
from measured import revision  # noqa: E402
from ownredis import RedisServer  # noqa: E402

from flask_jobmonitor.records.models import Base  # noqa: E402
from tests.soak_driver import Soak, describe  # noqa: E402
from tests.support.reliability import ReliabilityEnv  # noqa: E402

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/jobmonitor_soak"


def prepare_database(url: str) -> None:
    target = sa.make_url(url)
    if target.get_backend_name() == "postgresql":
        admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).scalar()
            if not exists:
                connection.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
        admin.dispose()
    engine = sa.create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()


def main() -> int:
    measured = revision()  # taken first: a commit made while it runs is not what it measured
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs in all, children included")
    parser.add_argument("--quick", action="store_true", help="600 jobs, 4 kills")
    parser.add_argument("--kills", type=int, default=None, help="worker kills (default: one per ~400 jobs)")
    parser.add_argument("--redis-port", type=int, default=6391)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--abandoned-after", type=float, default=5.0, help="JOBMONITOR_ABANDONED_AFTER")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stall", type=float, default=90, help="give up when no job ended for this long")
    args = parser.parse_args()
    jobs = 600 if args.quick else args.jobs
    kills = args.kills if args.kills is not None else max(4, jobs // 400)

    server = RedisServer(args.redis_port).start()
    prepare_database(args.database_url)
    env = ReliabilityEnv(args.database_url, server.url, Path(tempfile.mkdtemp(prefix="jobmonitor-soak-")))
    outage: dict[str, float] = {}

    def restart_redis(soak: Soak) -> None:
        outage["seconds"] = server.restart(down_seconds=1.0)
        print(f"  Redis restarted (unreachable {outage['seconds']:.1f} s; all its data lost)", flush=True)

    try:
        env.start(ABANDONED_AFTER=args.abandoned_after, CHILDREN_IN_FLIGHT=4, MAX_RECOVERIES=5, FLUSH_INTERVAL=0.5)
        soak = Soak(
            env,
            jobs,
            kills=kills,
            redis_loss_at=0.4,
            lose_redis=restart_redis,
            seed=args.seed,
            progress=lambda message: print(f"  {message}", flush=True),
        )
        print(f"soak: {jobs} jobs, 4 workers (2 forking, 2 simple), {kills} kills, one Redis restart", flush=True)
        result = soak.run(timeout=args.timeout, stall_seconds=args.stall)
    finally:
        env.close()
        server.stop()

    print(describe(result))
    figures = {
        "jobs": result.jobs,
        "kinds": dict(result.kinds),
        "statuses": dict(result.statuses),
        "by_kind": {kind: dict(statuses) for kind, statuses in result.by_kind.items()},
        "seconds_to_drain": round(result.seconds_to_drain, 1),
        "jobs_per_second": round(result.jobs_per_second, 1),
        "drained": result.drained,
        "worker_kills": result.kills,
        "workers_exited_by_themselves": result.worker_restarts,
        "redis_restarts": result.redis_losses,
        "redis_unreachable_seconds": round(outage.get("seconds", 0.0), 1),
        "recoveries": dict(result.recoveries),
        "problems": result.problems,
        "abandoned_after": args.abandoned_after,
        "database": sa.make_url(args.database_url).get_backend_name(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "revision": measured,
    }
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "soak.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if result.drained and not result.problems else 1


if __name__ == "__main__":
    sys.exit(main())
