"""The audit trail page: every action on every job (jobs/audit.py), newest first, for people
holding ``jobmonitor.view_audit``; filtered by person, action, job and days in the viewer's zone,
50 entries a page, paged by the last entry shown (a page holds still while new entries are
written)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import request
from flask_admin import expose

from ...errors import InvalidFilter
from ...i18n import N_, gettext
from ...jobs import audit
from ...jobs.control import REGISTRY
from ...records.dialects import keyset_beyond
from ...records.models import audit_table, job_table
from ...state import get_state
from ...timeutil import local_date, parse_day_bound
from ..requests import current_user, is_valid_job_id, request_zone
from .views import _JobViewBase

#: Entries shown on a page.
PAGE_SIZE = 50
#: People offered in the "who" filter (those of the newest entries).
ACTOR_CHOICES = 200
#: How the page names what was done: the actions' own button labels, and the rest.
OTHER_ACTIONS: Mapping[str, str] = {
    audit.PAUSE_ALL: N_("Pause all jobs"),
    audit.RESUME_ALL: N_("Resume all jobs"),
    audit.RETENTION: N_("Delete old jobs"),
    audit.ENABLE_SCHEDULE: N_("Switch a schedule on"),
    audit.DISABLE_SCHEDULE: N_("Switch a schedule off"),
}


def action_label(action: str) -> str:
    """What was done, in the viewer's language."""
    if action in REGISTRY:
        return gettext(REGISTRY[action].look.label)
    return gettext(OTHER_ACTIONS.get(action, action))


#: ``before``: the time and id of the last entry of the previous page (``20261130T134702123456_812``).
_CURSOR = re.compile(r"(\d{8}T\d{12})_(\d{1,18})", re.ASCII)
_CURSOR_TIME = "%Y%m%dT%H%M%S%f"


@dataclass(frozen=True)
class AuditFilters:
    who: str = ""
    action: str = ""
    job: str = ""
    day_from: str = ""  # YYYY-MM-DD, a day of the viewer's zone
    day_to: str = ""
    date_from: datetime | None = None  # naive UTC: the start of ``day_from`` in the viewer's zone
    date_to: datetime | None = None  # naive UTC: the start of the day after ``day_to``
    before: tuple[datetime, int] | None = None  # the page shows the entries older than this one

    def to_args(self, **changes: Any) -> dict[str, str]:
        """The filters as query arguments (without the page's position unless given)."""
        args = {"who": self.who, "action": self.action, "job": self.job, "from": self.day_from, "to": self.day_to}
        args.update({key: str(value) for key, value in changes.items() if value is not None})
        return {key: value for key, value in args.items() if value}

    @property
    def is_filtered(self) -> bool:
        return any((self.who, self.action, self.job, self.day_from, self.day_to))


def cursor_of(row: Any) -> str:
    """The ``before`` value of the page that follows ``row``."""
    return f"{row.created_at.strftime(_CURSOR_TIME)}_{row.id}"


def parse_filters(args: Mapping[str, str]) -> AuditFilters:
    """The page's filters from its query arguments; InvalidFilter for a value that cannot be one."""
    zone = request_zone()
    action = args.get("action", "")
    if action and action not in REGISTRY and action not in OTHER_ACTIONS:
        raise InvalidFilter.not_one_of("action", [*REGISTRY, *OTHER_ACTIONS], action)
    job = args.get("job", "").strip().lower()  # as pasted from anywhere: ids are lower-case
    if job and not is_valid_job_id(job):
        raise InvalidFilter(gettext("%(name)s must be a job id, got %(value)s", name="job", value=repr(job[:40])))
    before = None
    if args.get("before"):
        match = _CURSOR.fullmatch(args["before"])
        try:
            if match is None:
                raise ValueError
            before = (datetime.strptime(match.group(1), _CURSOR_TIME), int(match.group(2)))
        except ValueError:
            raise InvalidFilter(
                gettext("%(name)s is not a position in the audit trail; open it from its first page", name="before")
            ) from None
    who = args.get("who", "")[:255]
    if "\x00" in who:  # no name holds one, and PostgreSQL refuses it in a string
        raise InvalidFilter(
            gettext("%(name)s must be a person's name, got %(value)s", name="who", value=repr(who[:40]))
        )
    date_from = parse_day_bound(args, "from", zone)
    date_to = parse_day_bound(args, "to", zone, end=True)  # "to" is inclusive: the whole day
    if date_from and date_to and date_from >= date_to:  # as the job list says it
        raise InvalidFilter(gettext("from must be on or before to"))
    return AuditFilters(
        who=who,
        action=action,
        job=job,
        # as understood, not as sent: the page's links and form repeat what was applied
        day_from=local_date(date_from, zone).isoformat() if date_from else "",
        day_to=(local_date(date_to, zone) - timedelta(days=1)).isoformat() if date_to else "",
        date_from=date_from,
        date_to=date_to,
        before=before,
    )


def read_page(connection: sa.Connection, filters: AuditFilters) -> tuple[list[sa.Row[Any]], str | None]:
    """The page's entries, newest first, and the ``before`` of the next (older) page, if any.

    Newest first is (``created_at``, ``id``) descending, and every filter has an index that ends
    with those two (the person's, the action's, the job's; the time's own without one): a page
    is one ordered walk of an index, a day a range of it, and the next page starts where the
    last entry shown was, whatever was written meanwhile."""
    c = audit_table.c
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.who:
        conditions.append(c.actor_name == filters.who)
    if filters.action:
        conditions.append(c.action == filters.action)
    if filters.job:
        conditions.append(c.job_id == filters.job)
    if filters.date_from:
        conditions.append(c.created_at >= filters.date_from)
    if filters.date_to:
        conditions.append(c.created_at < filters.date_to)
    if filters.before is not None:
        at, entry_id = filters.before
        conditions.append(
            keyset_beyond(
                (c.created_at, c.id),
                (sa.literal(at, sa.DateTime), sa.literal(entry_id, sa.BigInteger)),
                descending=True,
                dialect=connection.dialect.name,
            )
        )
    rows = list(
        connection.execute(
            sa.select(audit_table).where(*conditions).order_by(c.created_at.desc(), c.id.desc()).limit(PAGE_SIZE + 1)
        ).all()
    )
    older = cursor_of(rows[PAGE_SIZE - 1]) if len(rows) > PAGE_SIZE else None
    return rows[:PAGE_SIZE], older


def actors(connection: sa.Connection) -> list[str]:
    """The people of the newest entries, for the "who" filter, by name."""
    c = audit_table.c
    newest = sa.select(c.actor_name).where(c.actor_name.is_not(None)).order_by(c.id.desc()).limit(2000).subquery()
    names = connection.execute(sa.select(newest.c.actor_name).distinct().limit(ACTOR_CHOICES)).scalars()
    return sorted(str(name) for name in names)


def existing_jobs(connection: sa.Connection, rows: list[sa.Row[Any]]) -> set[str]:
    """Which of the entries' jobs still exist (the others are shown as deleted, without a link)."""
    ids = {row.job_id for row in rows if row.job_id}
    if not ids:
        return set()
    return set(connection.execute(sa.select(job_table.c.id).where(job_table.c.id.in_(ids))).scalars())


class AuditView(_JobViewBase):
    """Who did what to which jobs, when and from where; kept after the jobs are deleted."""

    def is_accessible(self) -> bool:
        return get_state().permissions.can_view_audit(current_user())

    @expose("/")
    def index(self) -> Any:
        state = get_state()
        choices = [(name, action_label(name)) for name in (*REGISTRY, *OTHER_ACTIONS)]
        try:
            filters = parse_filters(request.args)
        except InvalidFilter as invalid:
            with state.engine.connect() as connection:
                people = actors(connection)
            return self._render(
                "jobmonitor/audit.html",
                status=400,
                error=str(invalid),
                filters=AuditFilters(),
                entries=[],
                older=None,
                existing=set(),
                people=people,
                choices=choices,
                label=action_label,
            )
        with state.engine.connect() as connection:
            entries, older = read_page(connection, filters)
            existing = existing_jobs(connection, entries)
            people = actors(connection)
        return self._render(
            "jobmonitor/audit.html",
            error=None,
            filters=filters,
            entries=entries,
            older=older,
            existing=existing,
            people=people,
            choices=choices,
            label=action_label,
        )
