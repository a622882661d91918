"""Who may see and do what with tracked jobs. Every view, JSON endpoint, download and action asks
this module, on the server.

Permissions are names (see :data:`PERMISSIONS`). Whether a user holds one is decided, in order:
1. by ``JOBMONITOR_PERMISSION_CHECKER``, a callable ``(user, name) -> bool``, when configured
   (it then decides everything, including ``jobmonitor.access``);
2. by ``user.has_permission(name)`` when the user object has that method (Flask-Security,
   custom models);
3. by the user's roles (``user.roles``: names or objects with ``.name``) looked up in
   ``JOBMONITOR_ROLE_PERMISSIONS`` (default: role ``admin`` holds every permission).

Without a checker, every authenticated user holds ``jobmonitor.access``: they see the tracker
and their own jobs, and may stop and manage their own jobs. Seeing other people's jobs needs
``jobmonitor.view_all``; stopping them ``jobmonitor.stop``; cancelling, restarting, deleting and
re-prioritising them ``jobmonitor.manage``. Pausing and resuming all jobs for maintenance (the
queue health page, pause_all.py) needs ``jobmonitor.pause_all``. Reading why a job failed beyond
the message meant for people (the exception's text and traceback, failures.py) needs
``jobmonitor.view_tracebacks``. Reading the audit trail (who did what to which jobs, audit.py)
needs ``jobmonitor.view_audit``. Launching a registered task through the JSON API
(``POST <prefix>/api/tasks/<name>/jobs``) needs ``jobmonitor.launch``, or the permission the
task names (``@jobmonitor.task(launch_permission="imports.run")``), checked like any other name.
The schedules page (its list of every schedule, with their next and last runs) needs
``jobmonitor.view_all``; switching a schedule off or on needs ``jobmonitor.manage_schedules``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from flask import current_app, has_request_context
from flask_login import current_user

from .records.models import job_table
from .users import describe_user

ACCESS = "jobmonitor.access"
VIEW_ALL = "jobmonitor.view_all"
STOP = "jobmonitor.stop"
MANAGE = "jobmonitor.manage"
DELETE = "jobmonitor.delete"
VIEW_SYSTEM = "jobmonitor.view_system"
VIEW_STATISTICS = "jobmonitor.view_statistics"
PAUSE_ALL = "jobmonitor.pause_all"
VIEW_TRACEBACKS = "jobmonitor.view_tracebacks"
VIEW_AUDIT = "jobmonitor.view_audit"
LAUNCH = "jobmonitor.launch"
MANAGE_SCHEDULES = "jobmonitor.manage_schedules"

#: Every permission the extension asks about.
PERMISSIONS = (
    ACCESS,
    VIEW_ALL,
    STOP,
    MANAGE,
    DELETE,
    VIEW_SYSTEM,
    VIEW_STATISTICS,
    PAUSE_ALL,
    VIEW_TRACEBACKS,
    VIEW_AUDIT,
    LAUNCH,
    MANAGE_SCHEDULES,
)
#: Default ``JOBMONITOR_ROLE_PERMISSIONS``: admins hold everything, other roles nothing extra.
DEFAULT_ROLE_PERMISSIONS: Mapping[str, Iterable[str]] = {"admin": PERMISSIONS}

PermissionChecker = Callable[[Any, str], bool]


class JobLike(Protocol):
    """What a permission decision needs to know about a job."""

    run_by_id: str | None
    is_system: bool


class JobPermissions:
    """Answers permission questions for one app (``app.extensions["jobmonitor"].permissions``)."""

    def __init__(
        self,
        checker: PermissionChecker | None = None,
        role_permissions: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._checker = checker
        roles = DEFAULT_ROLE_PERMISSIONS if role_permissions is None else role_permissions
        self._role_permissions = {role: frozenset(names) for role, names in roles.items()}

    # -- the current user -------------------------------------------------------------------

    @staticmethod
    def current_user() -> Any:
        """Flask-Login's ``current_user`` when a login manager is set up, else None."""
        if not has_request_context() or not hasattr(current_app, "login_manager"):
            return None
        return current_user._get_current_object()

    @staticmethod
    def is_authenticated(user: Any) -> bool:
        """True for a logged-in user (Flask-Login's ``is_authenticated``)."""
        return bool(user is not None and getattr(user, "is_authenticated", False))

    @staticmethod
    def user_id(user: Any) -> str | None:
        """The id a job stores for ``user`` (None for anonymous)."""
        return describe_user(user)[0]

    # -- permission names -------------------------------------------------------------------

    def has(self, user: Any, permission: str) -> bool:
        """Does ``user`` hold ``permission``? Anonymous users hold none."""
        if not self.is_authenticated(user):
            return False
        if self._checker is not None:
            return bool(self._checker(user, permission))
        if permission == ACCESS:
            return True
        has_permission = getattr(user, "has_permission", None)
        if callable(has_permission):
            return bool(has_permission(permission))
        for role in getattr(user, "roles", None) or ():
            role_name = role if isinstance(role, str) else getattr(role, "name", None)
            if role_name is not None and permission in self._role_permissions.get(role_name, ()):
                return True
        return False

    # -- questions the views ask ------------------------------------------------------------

    def can_access(self, user: Any) -> bool:
        """May ``user`` open the process tracker at all?"""
        return self.has(user, ACCESS)

    def can_view_all(self, user: Any) -> bool:
        """May ``user`` see jobs other people ran?"""
        return self.can_access(user) and self.has(user, VIEW_ALL)

    def can_see_system(self, user: Any) -> bool:
        """May ``user`` see system jobs (retention, schedules)?"""
        return self.can_access(user) and self.has(user, VIEW_SYSTEM)

    def can_view_statistics(self, user: Any) -> bool:
        """May ``user`` open the statistics and queue health pages?"""
        return self.can_access(user) and self.has(user, VIEW_STATISTICS)

    def can_view_audit(self, user: Any) -> bool:
        """May ``user`` read the audit trail: every action on every job, by whom, from where?"""
        return self.can_access(user) and self.has(user, VIEW_AUDIT)

    def can_view_schedules(self, user: Any) -> bool:
        """May ``user`` see every schedule with its next and last run (the schedules page)?"""
        return self.can_access(user) and self.has(user, VIEW_ALL)

    def can_manage_schedules(self, user: Any) -> bool:
        """May ``user`` switch a schedule off or on?"""
        return self.can_view_schedules(user) and self.has(user, MANAGE_SCHEDULES)

    def can_launch(self, user: Any, launch_permission: str | None) -> bool:
        """May ``user`` launch a task whose ``launch_permission`` is this (None:
        ``jobmonitor.launch``) through the JSON API?"""
        return self.can_access(user) and self.has(user, launch_permission or LAUNCH)

    def can_pause_all(self, user: Any) -> bool:
        """May ``user`` pause every job for maintenance, and resume them (queue health page)?"""
        return self.can_access(user) and self.has(user, PAUSE_ALL)

    def is_owner(self, user: Any, job: JobLike) -> bool:
        """Did ``user`` run ``job``?"""
        user_id = self.user_id(user) if self.is_authenticated(user) else None
        return user_id is not None and job.run_by_id == user_id

    def can_view(self, user: Any, job: JobLike) -> bool:
        """May ``user`` see ``job``, its steps, logs and files?"""
        if not self.can_access(user):
            return False
        if job.is_system and not self.can_see_system(user):
            return False
        return self.is_owner(user, job) or self.has(user, VIEW_ALL)

    def list_owner(self, user: Any) -> str | None:
        """The owner a job list shown to ``user`` is limited to: None for someone who may see
        everyone's jobs, else the user's own id (the list's ``visible_to``)."""
        return None if self.can_view_all(user) else self.user_id(user)

    def visible_jobs(self, user: Any) -> sa.ColumnElement[bool]:
        """A SQL condition on the jobs table that holds for the jobs :meth:`can_view` allows:
        the same rule for a query over many jobs (e.g. a host page's "last run")."""
        c = job_table.c
        if not self.can_access(user):
            return sa.false()
        conditions: list[sa.ColumnElement[bool]] = []
        if not self.can_see_system(user):
            conditions.append(c.is_system.is_(False))
        if not self.has(user, VIEW_ALL):
            user_id = self.user_id(user)
            conditions.append(c.run_by_id == user_id if user_id is not None else sa.false())
        return sa.and_(sa.true(), *conditions)

    def can_view_tracebacks(self, user: Any, job: JobLike) -> bool:
        """May ``user`` read the exception text and traceback of ``job``'s failure (failures.py)?"""
        return self.can_view(user, job) and self.has(user, VIEW_TRACEBACKS)

    def can_stop(self, user: Any, job: JobLike) -> bool:
        """May ``user`` stop (or force stop) ``job``?"""
        return self.can_view(user, job) and (self.is_owner(user, job) or self.has(user, STOP))

    def can_manage(self, user: Any, job: JobLike) -> bool:
        """May ``user`` resume, cancel, restart or re-prioritise ``job``?"""
        return self.can_view(user, job) and (self.is_owner(user, job) or self.has(user, MANAGE))

    def can_delete(self, user: Any, job: JobLike) -> bool:
        """May ``user`` delete ``job`` with all its records? Owners may not: history is evidence."""
        return self.can_view(user, job) and self.has(user, DELETE)
