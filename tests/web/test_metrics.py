"""stats/metrics.py and web/metrics.py: what Prometheus reads at /metrics, after real jobs ran on a
real worker, who may read it, and a scrape with Redis or the database gone."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from flask_jobmonitor.errors import ConfigError
from flask_jobmonitor.records.models import job_table
from flask_jobmonitor.stats import metrics as stats_metrics
from flask_jobmonitor.timeutil import utcnow

from .. import tasks
from ..support.rows import add_job, new_job_row
from ..support.web import enqueue
from ..support.workers import run_worker

TOKEN = "scrape-secret-0123456789"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def metrics_app(make_app: Any) -> Any:
    return make_app(JOBMONITOR_METRICS=True, JOBMONITOR_METRICS_TOKEN=TOKEN)


def scrape(app: Any, headers: dict[str, str] = SCRAPER) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    response = app.test_client().get("/jobmonitor/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_jobs_that_ran_are_counted_by_type_and_outcome_with_their_times(metrics_app):
    enqueue(metrics_app, tasks.noop)
    enqueue(metrics_app, tasks.noop)
    enqueue(metrics_app, tasks.fails)
    run_worker(metrics_app)
    waiting = enqueue(metrics_app, tasks.import_rows)
    samples = scrape(metrics_app)
    assert samples[("jobmonitor_jobs_ended_total", (("outcome", "completed"), ("type", "test")))] == 2
    assert samples[("jobmonitor_jobs_ended_total", (("outcome", "failed"), ("type", "test")))] == 1
    assert samples[("jobmonitor_jobs_started_total", (("type", "test"),))] == 3
    assert samples[("jobmonitor_job_run_seconds_count", (("type", "test"),))] == 3
    assert samples[("jobmonitor_job_run_seconds_bucket", (("le", "+Inf"), ("type", "test")))] == 3
    assert samples[("jobmonitor_job_wait_seconds_count", (("type", "test"),))] == 3
    assert samples[("jobmonitor_job_wait_seconds_sum", (("type", "test"),))] >= 0
    # what is true now: the import waits in its queue
    assert samples[("jobmonitor_jobs", (("status", "queued"), ("type", "import")))] == 1
    assert samples[("jobmonitor_jobs", (("status", "running"), ("type", "import")))] == 0  # every type, 0 included
    default_queue = metrics_app.config["JOBMONITOR_QUEUE_NAMES"]["default"]
    assert samples[("jobmonitor_queue_depth", (("queue", default_queue),))] == 1
    assert samples[("jobmonitor_oldest_waiting_seconds", (("queue", default_queue),))] >= 0
    assert samples[("jobmonitor_redis_up", ())] == samples[("jobmonitor_database_up", ())] == 1
    assert samples[("jobmonitor_paused_all", ())] == 0
    assert waiting


def test_a_retried_run_ends_as_a_run_and_the_job_once(metrics_app):
    from .. import retry_tasks

    enqueue(metrics_app, retry_tasks.flaky, fail_times=1)  # fails once, then completes
    run_worker(metrics_app)
    samples = scrape(metrics_app)
    assert samples[("jobmonitor_jobs_started_total", (("type", "test"),))] == 2
    assert samples[("jobmonitor_jobs_ended_total", (("outcome", "retried"), ("type", "test")))] == 1
    assert samples[("jobmonitor_jobs_ended_total", (("outcome", "completed"), ("type", "test")))] == 1
    assert samples[("jobmonitor_job_run_seconds_count", (("type", "test"),))] == 2


def test_buckets_are_cumulative_and_a_second_scrape_reads_the_same_counts(metrics_app):
    enqueue(metrics_app, tasks.noop)
    run_worker(metrics_app)
    first, second = scrape(metrics_app), scrape(metrics_app)
    assert first == {key: value for key, value in second.items() if key in first}
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in first.items()
        if name == "jobmonitor_job_run_seconds_bucket"
    )
    assert [value for _, value in buckets] == sorted(value for _, value in buckets)  # never decreasing
    assert buckets[-1] == (float("inf"), 1)


def test_the_oldest_waiting_job_s_age_is_read_from_its_queue(metrics_app, engine):
    queue = metrics_app.config["JOBMONITOR_QUEUE_NAMES"]["low"]
    old = utcnow().replace(microsecond=0)
    add_job(engine, status="queued", queue_name=queue, created_at=old, enqueued_at=old.replace(year=old.year - 1))
    age = scrape(metrics_app)[("jobmonitor_oldest_waiting_seconds", (("queue", queue),))]
    assert 364 * 86400 < age < 367 * 86400


def test_who_may_read_the_metrics(metrics_app):
    client = metrics_app.test_client()
    anonymous = client.get("/jobmonitor/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert "jobmonitor_" not in anonymous.get_data(as_text=True)
    assert client.get("/jobmonitor/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
    assert client.get("/jobmonitor/metrics", headers={"Authorization": "Bearer token-clerk_a"}).status_code == 403
    assert client.get("/jobmonitor/metrics", headers={"Authorization": "Bearer token-admin"}).status_code == 200


def test_metrics_are_off_unless_switched_on(app):
    assert (
        app.test_client().get("/jobmonitor/metrics", headers={"Authorization": "Bearer token-admin"}).status_code == 404
    )


def test_a_short_token_is_refused_at_start(make_app):
    with pytest.raises(ConfigError, match="JOBMONITOR_METRICS_TOKEN"):
        make_app(JOBMONITOR_METRICS=True, JOBMONITOR_METRICS_TOKEN="short")


def test_without_prometheus_client_switching_metrics_on_is_a_clear_error(make_app, monkeypatch):
    monkeypatch.setattr(stats_metrics, "available", lambda: False)
    with pytest.raises(ConfigError, match="prometheus_client"):
        make_app(JOBMONITOR_METRICS=True)


def test_a_scrape_with_redis_gone_answers_what_the_database_knows(metrics_app, monkeypatch):
    enqueue(metrics_app, tasks.noop)
    with metrics_app.app_context():
        state = tasks.jobmonitor.state()
    monkeypatch.setattr(
        state, "_redis", type(state.redis).from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    )
    samples = scrape(metrics_app)
    assert samples[("jobmonitor_redis_up", ())] == 0
    assert samples[("jobmonitor_database_up", ())] == 1
    assert samples[("jobmonitor_jobs", (("status", "queued"), ("type", "test")))] == 1


def test_a_scrape_with_the_database_gone_answers_what_redis_knows(metrics_app, monkeypatch):
    enqueue(metrics_app, tasks.noop)
    run_worker(metrics_app)
    with metrics_app.app_context():
        engine = tasks.jobmonitor.state().engine

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(engine, "connect", unreachable)
    samples = scrape(metrics_app)
    assert samples[("jobmonitor_database_up", ())] == 0
    assert samples[("jobmonitor_redis_up", ())] == 1
    assert samples[("jobmonitor_jobs_ended_total", (("outcome", "completed"), ("type", "test")))] == 1


def test_a_job_whose_end_cannot_be_counted_still_ends(metrics_app, monkeypatch, engine):
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise stats_metrics.RedisError("Redis went away")

    monkeypatch.setattr(stats_metrics, "_observe", refuse)
    job_id = enqueue(metrics_app, tasks.noop)
    run_worker(metrics_app)
    with engine.connect() as connection:
        status = connection.execute(sa.select(job_table.c.status).where(job_table.c.id == job_id)).scalar_one()
    assert status == "completed"


def test_apps_that_share_a_redis_keep_counters_of_their_own(metrics_app, make_app):
    enqueue(metrics_app, tasks.noop)
    run_worker(metrics_app)
    other = make_app(
        JOBMONITOR_METRICS=True,
        JOBMONITOR_METRICS_TOKEN=TOKEN,
        JOBMONITOR_QUEUE_NAMES={"high": "other-high", "default": "other", "low": "other-low"},
    )
    assert not any(name == "jobmonitor_jobs_ended_total" for name, _ in scrape(other))


# -- the scrape reads indexes, never the whole job table ---------------------------------------------------


def _seed_history(engine: Any, finished: int = 3000) -> None:
    """``finished`` ended jobs and a few unfinished ones, with the planner's statistics."""
    statuses = ["completed"] * finished + ["queued"] * 5 + ["running"] * 3
    rows = [
        new_job_row(
            None, id=f"00000000-0000-4000-8000-{n:012d}", status=status, queue_name="jobmonitor", enqueued_at=utcnow()
        )
        for n, status in enumerate(statuses)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(job_table), rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        analyze = {"sqlite": "ANALYZE", "postgresql": "VACUUM ANALYZE jobmonitor_job"}
        connection.exec_driver_sql(analyze.get(engine.dialect.name, "ANALYZE TABLE jobmonitor_job"))


def _plan_problems(engine: Any, statement: str, parameters: Any, connection: Any = None) -> list[str]:
    """A read of the job table must go through the status index and read nothing whole."""
    from .test_list_plans import explain

    if connection is None:
        with engine.connect() as fresh, fresh.begin():
            return _plan_problems(engine, statement, parameters, fresh)
    plan = explain(connection, statement, parameters)
    if plan.nodes:  # PostgreSQL
        used = {node.get("Index Name") for node in plan.nodes}
        whole = [node for node in plan.nodes if node["Node Type"] == "Seq Scan"]
        return (["reads jobmonitor_job whole"] if whole else []) + (
            []
            if "ix_jobmonitor_job_status_created" in used
            else [f"does not use the status index: {sorted(filter(None, used))}"]
        )
    if "INDEX ix_jobmonitor_job_status_created" not in plan.text:
        return [f"does not use the status index: {plan.text}"]
    return []


def test_a_scrape_reads_the_job_table_through_the_status_index_only(metrics_app):
    from .test_list_plans import captured, dropped

    with metrics_app.app_context():
        engine = tasks.jobmonitor.state().engine
    _seed_history(engine)
    with captured(engine) as statements:
        scrape(metrics_app)
    reads = [(sql, params) for sql, params in statements if "jobmonitor_job" in sql]
    assert len(reads) == 2  # the unfinished jobs by status and type, the oldest waiting per queue
    for sql, params in reads:
        assert _plan_problems(engine, sql, params) == [], sql
    # the check itself: without the index the same reads are caught
    with dropped(engine, "ix_jobmonitor_job_status_created") as connection:
        assert _plan_problems(engine, *reads[0], connection)


def test_the_grafana_dashboard_reads_only_metrics_a_scrape_serves(metrics_app):
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).parents[2] / "docs" / "grafana" / "flask-jobmonitor.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\bjobmonitor_[a-z_]+", expr)}
    enqueue(metrics_app, tasks.noop)
    run_worker(metrics_app)
    served = {name for name, _labels in scrape(metrics_app)}
    assert used and used <= served, sorted(used - served)
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])


def test_a_stopped_and_resumed_job_counts_two_runs_each_with_its_own_wait_and_time(metrics_app):
    """The time a job sat stopped counts in neither run (its record keeps its first start)."""
    from datetime import timedelta
    from types import SimpleNamespace

    base = utcnow().replace(microsecond=0)
    job = SimpleNamespace(type="report", created_at=base, enqueued_at=base, started_at=None, ended_at=None)

    def run(enqueued: int, claimed: int, ended: int, outcome: str) -> None:
        job.enqueued_at = base + timedelta(seconds=enqueued)
        job.status_changed_at = base + timedelta(seconds=claimed)
        job.started_at = job.started_at or job.status_changed_at  # the record keeps the first start
        stats_metrics._started(metrics_app, job_id="j-1", job=job, attempt=1)
        job.ended_at = base + timedelta(seconds=ended)
        stats_metrics._ended(metrics_app, job_id="j-1", job=job, outcome=outcome)

    run(enqueued=0, claimed=5, ended=15, outcome="stopped")
    run(enqueued=3600, claimed=3603, ended=3610, outcome="completed")  # resumed an hour later
    samples = scrape(metrics_app)
    wait, ran = (("type", "report"),), (("type", "report"),)
    assert samples[("jobmonitor_job_wait_seconds_count", wait)] == 2
    assert samples[("jobmonitor_job_wait_seconds_sum", wait)] == 5 + 3
    assert samples[("jobmonitor_job_run_seconds_count", ran)] == 2
    assert samples[("jobmonitor_job_run_seconds_sum", ran)] == 10 + 7
    assert samples[("jobmonitor_job_run_seconds_bucket", (("le", "15.0"), ("type", "report")))] == 2
    # a cancel of the stopped job (it was not running) ends it once more, with no run to time
    job.ended_at = base + timedelta(seconds=4000)
    stats_metrics._ended(metrics_app, job_id="j-1", job=job, outcome="cancelled")
    assert scrape(metrics_app)[("jobmonitor_job_run_seconds_count", ran)] == 2


def test_an_openmetrics_scraper_gets_openmetrics(metrics_app):
    response = metrics_app.test_client().get(
        "/jobmonitor/metrics", headers={**SCRAPER, "Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.get_data(as_text=True).rstrip().endswith("# EOF")
