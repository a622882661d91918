"""The job list's cost of a change, measured apart from the machine: two commits of the package
serve the same requests on the same data, in alternating processes.

    .venv/bin/python bench/compare_list.py [--before 27a6052] [--after HEAD] [--runs 2] [--requests 40]

``bench/bench_list.py`` compares our pages with a plain ``ModelView`` in the same run, which says
how the page stands on this machine, but not what one change cost: on the project's machines the
same request's time moves by a factor of two between hours (and by 50 % between two requests of
one minute), more than most changes cost. This script checks out ``--before`` and ``--after`` in
temporary git worktrees, then starts one process per run and commit, alternating (before, after,
before, after, ...), each building ``example_app`` from its own checkout on the database
``bench_list.py`` seeded (PostgreSQL, 1,000,000 jobs; run that first) and timing ``--requests``
requests of each case after 5 unmeasured ones, through Flask's test client. Flask-Babel is
initialised in both, as the example app initialises it since issue 17 (before it, Flask-Admin
ran its own labels through a no-op when Flask-Babel was not installed).

It prints each run's medians and the median of the runs per commit, and writes
``bench/results/list-compare.json`` (``revision`` is the ``--after`` commit, so the file goes
stale with the list's code, bench/measured.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from measured import revision

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
#: (role, user id, url): the admin (role admin, every job) and user 23 (role clerk, own jobs).
CASES = [
    ("admin", "1", "/admin/jobs/"),
    ("admin", "1", "/admin/jobs/?sort=name"),
    ("user", "23", "/admin/jobs/"),
    ("user", "23", "/admin/jobs/?sort=name"),
    ("user", "23", "/admin/jobs/?sort=status"),
]
#: Runs in the checkout it measures: its own bench_list.build_app and login, its own package.
MEASURE = """
import json, statistics, sys, time
root, requests, cases = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
sys.path[:0] = [root + "/bench", root]
import bench_list, flask_jobmonitor
assert flask_jobmonitor.__file__.startswith(root), flask_jobmonitor.__file__
app, _view = bench_list.build_app(bench_list.DEFAULT_DATABASE_URL)
if "babel" not in app.extensions:
    from flask_babel import Babel
    Babel(app)
clients, out = {}, []
for role, user, url in cases:
    if user not in clients:
        clients[user] = app.test_client()
        bench_list.login(clients[user], user)
    client = clients[user]
    for _ in range(5):
        client.get(url)
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    out.append({"role": role, "url": url, "median_ms": statistics.median(times), "min_ms": min(times)})
print(json.dumps(out))
"""


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def measure(checkout: Path, requests: int) -> list[dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    cases = json.dumps(CASES)
    output = subprocess.run(
        [str(PYTHON), "-c", MEASURE, str(checkout), str(requests), cases],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return list(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="27a6052", help="the commit before the change (default: before issue 17)")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--runs", type=int, default=2, help="processes per commit, alternating (default 2)")
    parser.add_argument("--requests", type=int, default=40, help="measured requests per case and run (default 40)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "list-compare.json")
    args = parser.parse_args()
    commits = {"before": git("rev-parse", args.before), "after": git("rev-parse", args.after)}
    if commits["after"] != revision()["commit"]:
        sys.exit("--after must be HEAD: the results file records HEAD as the code it measured")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="jm-compare-") as tmp:
        checkouts = {}
        for side, commit in commits.items():
            checkouts[side] = Path(tmp) / side
            git("worktree", "add", "--detach", str(checkouts[side]), commit)
        try:
            runs: dict[str, list[list[dict[str, Any]]]] = {"before": [], "after": []}
            for number in range(args.runs):
                for side in ("before", "after"):
                    result = measure(checkouts[side], args.requests)
                    runs[side].append(result)
                    shown = ", ".join(f"{r['role']} {r['url']} {r['median_ms']:.1f}" for r in result)
                    print(f"run {number + 1} {side} ({commits[side][:7]}): {shown}", flush=True)
        finally:
            for checkout in checkouts.values():
                git("worktree", "remove", "--force", str(checkout))
    cases = []
    print(f"\n{'role':6} {'request':28} {'before':>8} {'after':>8} {'change':>8}")
    for index, (role, _user, url) in enumerate(CASES):
        before = statistics.median(run[index]["median_ms"] for run in runs["before"])
        after = statistics.median(run[index]["median_ms"] for run in runs["after"])
        cases.append(
            {
                "role": role,
                "url": url,
                "before_ms": before,
                "after_ms": after,
                "before_runs_ms": [run[index]["median_ms"] for run in runs["before"]],
                "after_runs_ms": [run[index]["median_ms"] for run in runs["after"]],
            }
        )
        print(f"{role:6} {url:28} {before:8.1f} {after:8.1f} {after - before:+8.1f}")
    result = {
        "benchmark": "list-compare",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "before": commits["before"],
        "after": commits["after"],
        "runs": args.runs,
        "requests": args.requests,
        "load_average": os.getloadavg(),
        "revision": revision(),
        "cases": cases,
        "wall_seconds": round(time.time() - started, 1),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
