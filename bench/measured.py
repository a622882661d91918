"""Which code each benchmark measures, the commit a results file measured, and whether a
results file that docs/performance.md quotes is older than the code it measures.

    .venv/bin/python bench/measured.py      # prints the stale results files; exits 1 if any

Rules (checked by ``tests/test_benchmarks_fresh.py`` in the normal suite):

* every results file records ``revision.commit``, the commit it measured, and
  ``revision.dirty``, whether the package had uncommitted changes then (measure committed code:
  commit the change, run the benchmark, commit its results);
* a quoted results file is stale when the last commit that changed the code its benchmark
  measures (``MEASURES``) is not the measured commit or one of its ancestors, when the measured
  commit is not in the history of ``HEAD`` at all, or when it measured uncommitted code.

A results file belongs to the benchmark its name starts with (``list-sqlite-1m.json`` to
``list``). The mapping is kept here only; the before-stop hook in ``../shared`` keeps its own.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCUMENT = ROOT / "docs" / "performance.md"

_PACKAGE = "flask_jobmonitor/"
#: Benchmark -> the files (or folders) whose changes can move its figures.
MEASURES: dict[str, tuple[str, ...]] = {
    "list": tuple(
        _PACKAGE + name
        for name in (
            "web/listing.py",
            "web/search.py",
            "records/dialects.py",  # the list's order and filters per database
            "web/details.py",
            "web/presenters.py",
            "web/api.py",
            "web/actions.py",
            "web/requests.py",
            "web/admin/views.py",
            "web/templates/jobmonitor/list.html",
            "web/templates/jobmonitor/detail.html",
            "web/templates/jobmonitor/_macros.html",
            "records/models.py",
            "records/sqltypes.py",  # the models' column types
            "records/estimates.py",
            "records/live.py",
            "jobs/actions.py",
            "jobs/control.py",  # allowed_actions for every row
            "web/templating.py",  # the templates' helpers: _jm, the script's words
            "i18n.py",  # every label of a row and its times, in the viewer's language
            "timeutil.py",  # dates in the viewer's zone
            "permissions.py",  # every row's actions, the user picker
            "web/admin/menu.py",  # the menu of every page: each entry's access is checked
            "web/admin/audit.py",  # one of those entries (the audit trail's)
        )
    ),
    "stats": tuple(
        _PACKAGE + name
        for name in (
            "stats/figures.py",
            "stats/cache.py",
            "stats/charts.py",
            "records/dialects.py",  # the buckets per database
            "records/models.py",
            "records/sqltypes.py",  # the models' column types
            "web/admin/statistics.py",
            "web/templates/jobmonitor/statistics.html",
            "i18n.py",  # labels, numbers and durations in the viewer's language
            "timeutil.py",  # buckets in the viewer's zone
        )
    ),
    "core": tuple(
        _PACKAGE + name
        for name in (
            "worker/runner.py",
            "worker/process.py",
            "worker/handover.py",
            "worker/ends.py",  # an end written with the next claim
            "worker/context.py",
            "worker/heartbeat.py",
            "events.py",  # the claim, each step's end and each end send a signal
            "jobs/enqueue.py",
            "jobs/submit.py",
            "jobs/rq.py",
            "records/status.py",
            "records/transitions.py",
            "records/dialects.py",  # what each database can do (RETURNING, isolation)
            "records/models.py",
            "records/sqltypes.py",  # the models' column types
            "state.py",  # the worker's Redis connection options (a horse opens one per job)
        )
    ),
    "stop": tuple(
        _PACKAGE + name
        for name in (
            "jobs/control.py",
            "jobs/actions.py",
            "jobs/signals.py",
            "events.py",  # the stop's and the end's signals
            "jobs/rq.py",
            "records/journal.py",
            "worker/context.py",
            "records/status.py",
            "records/transitions.py",
            "records/dialects.py",  # what each database can do (RETURNING, isolation)
        )
    ),
    "children": tuple(
        _PACKAGE + name
        for name in ("jobs/children.py", "jobs/enqueue.py", "jobs/submit.py", "jobs/families.py", "events.py")
    ),
    "metrics": tuple(
        _PACKAGE + name
        for name in (
            "stats/metrics.py",
            "web/metrics.py",
            "stats/figures.py",  # the oldest waiting job per queue
            "records/models.py",
            "records/sqltypes.py",  # the models' column types
            "records/status.py",
            "keys.py",
        )
    ),
    "soak": tuple(
        _PACKAGE + name
        for name in ("worker/process.py", "worker/runner.py", "worker/handover.py", "jobs/maintenance.py", "jobs/rq.py")
    ),
}
# the worker processes of bench_workers.py run the job path bench_core.py measures
MEASURES["workers"] = MEASURES["core"]


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def revision() -> dict[str, Any]:
    """What a benchmark records as the code it measured: the commit, and whether the package
    had uncommitted changes on top of it."""
    return {
        "commit": git("rev-parse", "HEAD").stdout.strip(),
        "dirty": bool(git("status", "--porcelain", "--", _PACKAGE.rstrip("/")).stdout.strip()),
    }


def benchmark_of(results_file: str) -> str:
    return re.split(r"[-_.]", Path(results_file).name, maxsplit=1)[0]


def quoted_results() -> list[str]:
    """The results files docs/performance.md names, in the order it first names them."""
    names = re.findall(r"bench/results/([\w.-]+\.json)", DOCUMENT.read_text())
    return list(dict.fromkeys(names))


@dataclass
class Staleness:
    results_file: str
    reason: str

    def __str__(self) -> str:
        return f"bench/results/{self.results_file}: {self.reason}"


def _is_ancestor(older: str, newer: str) -> bool:
    return git("merge-base", "--is-ancestor", older, newer).returncode == 0


def stale_results() -> list[Staleness]:
    """Every quoted results file that does not describe the code in HEAD (see the module doc)."""
    found = []
    for name in quoted_results():
        path = RESULTS / name
        benchmark = benchmark_of(name)
        if benchmark not in MEASURES:
            found.append(Staleness(name, f"no benchmark {benchmark!r} in bench/measured.py MEASURES"))
            continue
        if not path.exists():
            found.append(Staleness(name, "docs/performance.md quotes it, but it does not exist"))
            continue
        measured = json.loads(path.read_text()).get("revision") or {}
        commit = measured.get("commit")
        if not commit:
            found.append(Staleness(name, "records no commit (revision.commit): re-run its benchmark"))
            continue
        if measured.get("dirty"):
            found.append(Staleness(name, f"measured uncommitted changes on top of {commit[:10]}: re-run it"))
            continue
        if not _is_ancestor(commit, "HEAD"):
            found.append(Staleness(name, f"measured commit {commit[:10]}, which is not in the history of HEAD"))
            continue
        last = git("log", "-1", "--format=%H", "HEAD", "--", *MEASURES[benchmark]).stdout.strip()
        if last and not _is_ancestor(last, commit):
            subject = git("log", "-1", "--format=%h %s", last).stdout.strip()
            found.append(Staleness(name, f"measured {commit[:10]}, but the code it measures changed since: {subject}"))
    return found


def main() -> int:
    stale = stale_results()
    for entry in stale:
        print(entry)
    if not stale:
        print(f"every results file docs/performance.md quotes ({len(quoted_results())}) is current")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
