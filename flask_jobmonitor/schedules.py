"""Forwarding module: rq-scheduler entries written before the package was laid out in folders
name ``flask_jobmonitor.schedules.launch_scheduled``; until ``flask jobmonitor scheduler``
rewrites them, they still launch. New entries name
:data:`flask_jobmonitor.jobs.schedules.LAUNCHER_PATH`.
"""

from .jobs.schedules import launch_scheduled

__all__ = ["launch_scheduled"]
