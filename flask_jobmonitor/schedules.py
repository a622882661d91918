"""The stable name of the schedules' launcher: rq-scheduler stores
``flask_jobmonitor.schedules.launch_scheduled`` in each entry (jobs/schedules.py
``LAUNCHER_PATH``), so entries written by any release launch on workers of any other. The
function itself is in jobs/schedules.py.
"""

from .jobs.schedules import launch_scheduled

__all__ = ["launch_scheduled"]
