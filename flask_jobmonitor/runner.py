"""The stable name of the function RQ runs for every tracked job: RQ stores
``flask_jobmonitor.runner.run_job`` in each job (jobs/submit.py ``RUNNER_PATH``), so jobs queued
by any release, before or during a rolling restart, run on workers of any other. The function
itself is in worker/runner.py.
"""

from .worker.runner import run_job

__all__ = ["run_job"]
