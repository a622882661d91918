from flask_jobmonitor import JobStatus
from flask_jobmonitor.records.models import Job

from .support.extensions import db, jobmonitor
from .support.workers import run_worker
from .tasks import import_rows


def test_import_job_runs_end_to_end(app, worker_class):
    job = jobmonitor.enqueue(import_rows, bad_every=3, files={"rows.csv": b"a\nb\nc\nd\ne\nf\n"}, user=("7", "Ann"))
    run_worker(app, worker_class)
    row = db.session.get(Job, job.id)
    assert row.status == JobStatus.COMPLETED, row.error_message
    assert [s.status for s in row.steps] == ["completed"] * 3
    assert {f.kind for f in row.files} == {"input", "output", "error_report"}
    assert row.error_count == 2
