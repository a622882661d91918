"""Forwarding module: RQ jobs queued before the package was laid out in folders name
``flask_jobmonitor.runner.run_job`` as their function; a worker still runs them. New jobs
name :data:`flask_jobmonitor.jobs.submit.RUNNER_PATH`. Remove once no such job can be left.
"""

from .worker.runner import run_job

__all__ = ["run_job"]
