"""The process tracker's pages in a host's Flask-Admin menu: the job list, "My jobs", statistics
and queue health, under the configured category."""

from __future__ import annotations

from flask_admin import Admin

from ...config import Settings
from .statistics import QueueHealthView, StatisticsView
from .views import JobDashboardView, JobListView


def add_admin_views(admin: Admin, settings: Settings) -> None:
    """Add the job list ("Process tracker") and "My jobs" to ``admin`` under the configured category."""
    category = settings.admin_category
    admin.add_view(JobListView(name="Process tracker", endpoint="jobmonitor_jobs", url="jobs", category=category))
    admin.add_view(JobDashboardView(name="My jobs", endpoint="jobmonitor_dashboard", url="my-jobs", category=category))
    admin.add_view(
        StatisticsView(name="Job statistics", endpoint="jobmonitor_statistics", url="job-statistics", category=category)
    )
    admin.add_view(QueueHealthView(name="Queue health", endpoint="jobmonitor_queues", url="queues", category=category))


__all__ = ["JobDashboardView", "JobListView", "QueueHealthView", "StatisticsView", "add_admin_views"]
