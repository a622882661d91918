"""The process tracker's pages in a host's Flask-Admin menu: the job list, "My jobs", statistics,
queue health, the schedules and the audit trail, under the configured category."""

from __future__ import annotations

from flask_admin import Admin

from ...config import Settings
from ...i18n import N_, lazy_gettext
from .audit import AuditView
from .schedules import SchedulesView
from .statistics import QueueHealthView, StatisticsView
from .views import JobDashboardView, JobListView


def add_admin_views(admin: Admin, settings: Settings) -> None:
    """Add the job list ("Process tracker") and "My jobs" to ``admin`` under the configured category."""
    category = lazy_gettext(settings.admin_category) if settings.admin_category else settings.admin_category
    admin.add_view(
        JobListView(name=lazy_gettext(N_("Process tracker")), endpoint="jobmonitor_jobs", url="jobs", category=category)
    )
    admin.add_view(
        JobDashboardView(
            name=lazy_gettext(N_("My jobs")), endpoint="jobmonitor_dashboard", url="my-jobs", category=category
        )
    )
    admin.add_view(
        StatisticsView(
            name=lazy_gettext(N_("Job statistics")),
            endpoint="jobmonitor_statistics",
            url="job-statistics",
            category=category,
        )
    )
    admin.add_view(
        QueueHealthView(
            name=lazy_gettext(N_("Queue health")), endpoint="jobmonitor_queues", url="queues", category=category
        )
    )
    admin.add_view(
        SchedulesView(
            name=lazy_gettext(N_("Schedules")), endpoint="jobmonitor_schedules", url="job-schedules", category=category
        )
    )
    admin.add_view(
        AuditView(name=lazy_gettext(N_("Audit trail")), endpoint="jobmonitor_audit", url="job-audit", category=category)
    )


__all__ = [
    "AuditView",
    "JobDashboardView",
    "JobListView",
    "QueueHealthView",
    "SchedulesView",
    "StatisticsView",
    "add_admin_views",
]
