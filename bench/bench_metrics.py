"""A Prometheus scrape of ``/jobmonitor/metrics`` at 1,000,000 jobs, against what a scrape would
cost done the straightforward way.

    .venv/bin/python bench/bench_metrics.py [--quick] [--rounds 60]

1. Data: the PostgreSQL database ``jobmonitor_bench_list`` that ``bench/bench_list.py`` seeds
   (1,000,000 jobs), prepared as ``bench/bench_stats.py`` does (reused when it holds the rows;
   ``--quick``: 50,000 jobs in ``jobmonitor_bench_stats_quick``). How many jobs are unfinished
   (what the scrape reads from the status index) is printed. The Redis counters are filled as
   if 1,000,000 jobs of 20 types had started and ended (stats/metrics.py's own receivers are not
   used: the counts are written directly, the hashes end the same size).
2. The example app with ``JOBMONITOR_METRICS`` on and a metrics token; each request goes through
   Flask's test client (in process: routing, the token check, the queries, the text format).
3. Rounds alternate, in turn (every other round reversed, so the shared machine's load hits all
   alike): the scrape; baseline A, the straightforward exporter: ``SELECT status, type,
   count(*) FROM jobmonitor_job GROUP BY status, type`` over the whole table (what the gauge
   "jobs by status and type" costs without counters); baseline B, the floor: ``prometheus_client``'s
   ``generate_latest`` of an empty registry behind the same Flask route machinery (a route of the
   bench's own that returns it).
4. Prints median and p95 of each, the scrape's SQL statements with ``EXPLAIN (ANALYZE,
   BUFFERS)``; writes ``bench/results/metrics.json`` (``--quick``: ``metrics-quick.json``).

Target: a scrape under 50 ms p95 at 1,000,000 jobs (Prometheus scrapes every 15 s by default).
See docs/performance.md, "Metrics at 1,000,000 jobs".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from time import perf_counter
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import sqlalchemy as sa  # noqa: E402
from bench_list import DEFAULT_DATABASE_URL, QUICK_ROWS, ensure_database, machine_info, percentile, revision  # noqa: E402
from bench_stats import QUICK_DATABASE_URL, prepare_data  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from redis import Redis  # noqa: E402

from example_app import create_app  # noqa: E402
from flask_jobmonitor.keys import metrics_key  # noqa: E402
from flask_jobmonitor.records.status import ACTIVE_STATUSES  # noqa: E402
from flask_jobmonitor.stats.metrics import RUN_BUCKETS, WAIT_BUCKETS  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/13"
TOKEN = "bench-metrics-token-0123456789"
TARGET_MS = 50.0
TYPES = [f"type{n:02d}" for n in range(20)]


def fill_counters(redis: Redis, default_queue: str, total: int) -> None:
    """Counters as ``total`` jobs of :data:`TYPES` would leave them (every bucket used)."""
    for name in ("started", "ended", "wait", "run"):
        redis.delete(metrics_key(default_queue, name))
    per_type = total // len(TYPES)
    with redis.pipeline(transaction=False) as pipe:
        for job_type in TYPES:
            pipe.hset(metrics_key(default_queue, "started"), job_type, per_type)
            for outcome in ("completed", "failed", "stopped", "cancelled"):
                pipe.hset(metrics_key(default_queue, "ended"), f"{job_type}\x1f{outcome}", per_type // 4)
            for name, bounds in (("wait", WAIT_BUCKETS), ("run", RUN_BUCKETS)):
                for index in range(len(bounds) + 1):
                    pipe.hset(metrics_key(default_queue, name), f"{job_type}\x1f{index}", per_type // (len(bounds) + 1))
                pipe.hset(metrics_key(default_queue, name), f"{job_type}\x1fsum", per_type * 12.5)
        pipe.execute()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 jobs in a database of their own")
    parser.add_argument("--rounds", type=int, default=60)
    arguments = parser.parse_args()
    rows = QUICK_ROWS if arguments.quick else 1_000_000
    database_url = QUICK_DATABASE_URL if arguments.quick else DEFAULT_DATABASE_URL
    ensure_database(database_url)
    engine = sa.create_engine(database_url)
    print(f"data: {rows:,} jobs in {database_url.rsplit('/', 1)[-1]}", flush=True)
    data = prepare_data(engine, rows)
    with engine.connect() as connection:
        unfinished = connection.execute(
            sa.text("SELECT count(*) FROM jobmonitor_job WHERE status = ANY(:statuses)"),
            {"statuses": [status.value for status in ACTIVE_STATUSES]},
        ).scalar_one()
    print(f"  unfinished jobs (read through the status index at each scrape): {unfinished:,}")

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "JOBMONITOR_REDIS_URL": REDIS_URL,
            "SECRET_KEY": "bench-metrics-secret-not-for-any-site",
            "JOBMONITOR_METRICS": True,
            "JOBMONITOR_METRICS_TOKEN": TOKEN,
        }
    )
    default_queue = app.config["JOBMONITOR_QUEUE_NAMES"]["default"]
    fill_counters(Redis.from_url(REDIS_URL), default_queue, rows)

    @app.get("/bench/empty-metrics")
    def empty_metrics() -> Any:
        return generate_latest(CollectorRegistry(auto_describe=False)), 200, {"Content-Type": "text/plain"}

    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        statements.append((statement, parameters))

    def scrape() -> None:
        response = client.get("/jobmonitor/metrics", headers=headers)
        assert response.status_code == 200, response.status_code

    def naive() -> None:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT status, type, count(*) FROM jobmonitor_job GROUP BY status, type")).all()

    def floor() -> None:
        assert client.get("/bench/empty-metrics").status_code == 200

    cases = {"scrape": scrape, "naive GROUP BY over the table": naive, "empty registry (floor)": floor}
    for run in cases.values():  # warm-up: connections, caches
        run()
    times: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for round_number in range(arguments.rounds):
        for name in order if round_number % 2 == 0 else reversed(order):
            start = perf_counter()
            cases[name]()
            times[name].append((perf_counter() - start) * 1000)

    with app.app_context():
        app_engine = app.extensions["jobmonitor"].engine
        sa.event.listen(app_engine, "before_cursor_execute", capture)
        scrape()
        sa.event.remove(app_engine, "before_cursor_execute", capture)
    plans = []
    with engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).scalars().all()
            plans.append({"statement": statement, "plan": plan})
    summary = {
        name: {
            "median_ms": round(statistics.median(values), 2),
            "p95_ms": round(percentile(sorted(values), 95), 2),
        }
        for name, values in times.items()
    }
    for name, figures in summary.items():
        print(f"  {name:32} median {figures['median_ms']:8.2f} ms   p95 {figures['p95_ms']:8.2f} ms")
    scrape_p95 = summary["scrape"]["p95_ms"]
    verdict = "under" if scrape_p95 < TARGET_MS else "OVER"
    print(f"  scrape p95 {scrape_p95:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
    for entry in plans:
        print("\n  " + entry["statement"].replace("\n", " ")[:200])
        for line in entry["plan"]:
            print("    " + line)
    results = {
        "benchmark": "metrics",
        "revision": revision(),
        "machine": machine_info(engine),
        "rows": rows,
        "unfinished_jobs": unfinished,
        "data": data,
        "rounds": arguments.rounds,
        "target_ms": TARGET_MS,
        "cases": summary,
        "plans": plans,
    }
    out = HERE / "results" / ("metrics-quick.json" if arguments.quick else "metrics.json")
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwritten to {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
