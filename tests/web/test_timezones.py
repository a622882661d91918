"""Time zones on the job pages: ``JOBMONITOR_TIMEZONE``, the per-user selector, the list's date
filters as local days (23 and 25 hours long when clocks change), times shown in the viewer's
zone, and the JSON that stays UTC with an offset; on SQLite and PostgreSQL.

The days when clocks change are those of ``tests/support/zones.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_login import current_user

from flask_jobmonitor import ConfigError
from flask_jobmonitor.records.models import notification_table

from ..support.extensions import db, jobmonitor
from ..support.rows import add_job
from ..support.users import USERS, log_in
from ..support.zones import DST_DAYS, DST_IDS


def engine_of(app: Flask) -> sa.Engine:
    with app.app_context():
        return db.engine


def listed_names(app: Flask, who: str = "admin", **args: str) -> list[str]:
    response = log_in(app.test_client(), who).get("/admin/jobs/", query_string={"per_page": 200, **args})
    assert response.status_code == 200, response.get_data(as_text=True)
    return sorted(set(re.findall(r"probe-[a-z-]+", response.get_data(as_text=True))))


@pytest.mark.parametrize(("zone", "day", "start", "end"), DST_DAYS, ids=DST_IDS)
def test_a_day_of_the_list_filter_is_the_local_day_of_the_configured_zone(make_app, zone, day, start, end):
    app = make_app(JOBMONITOR_TIMEZONE=zone)
    engine = engine_of(app)
    second = timedelta(seconds=1)
    for name, created in (
        ("probe-before", start - second),
        ("probe-first", start),
        ("probe-last", end - second),
        ("probe-after", end),
    ):
        add_job(engine, owner="admin", name=name, created_at=created)
    assert (end - start) in (timedelta(hours=23), timedelta(hours=25))

    assert listed_names(app, **{"from": day, "to": day}) == ["probe-first", "probe-last"]
    assert listed_names(app, **{"from": day}) == ["probe-after", "probe-first", "probe-last"]
    assert listed_names(app, to=day) == ["probe-before", "probe-first", "probe-last"]


def test_the_list_filter_keeps_the_days_a_person_typed(make_app):
    app = make_app(JOBMONITOR_TIMEZONE="Europe/Paris")
    page = log_in(app.test_client(), "admin").get("/admin/jobs/?from=2026-03-29&to=2026-03-29").get_data(as_text=True)
    assert 'name="from" value="2026-03-29"' in page
    assert 'name="to" value="2026-03-29"' in page


def _zone_whose_date_is_not_utcs(now: datetime) -> str:
    """Kiritimati (UTC+14) or Pago Pago (UTC-11): at any moment one of them is on another date
    than UTC."""
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        if now.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(zone)).date() != now.date():
            return zone
    raise AssertionError(f"both zones share UTC's date at {now}")  # pragma: no cover


def test_today_and_yesterday_are_the_viewers_days_and_filter_the_list(make_app):
    """The quick links "Today" and "Yesterday" name the viewer's days, not the server's (UTC):
    an admin whose zone is already on tomorrow gets tomorrow's jobs from "Today"."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    zone = _zone_whose_date_is_not_utcs(now)
    app = make_app(JOBMONITOR_TIMEZONE=zone)
    engine = engine_of(app)
    local = ZoneInfo(zone)
    today = now.replace(tzinfo=timezone.utc).astimezone(local).date()
    start_of_today = datetime.combine(today, datetime.min.time(), local).astimezone(timezone.utc).replace(tzinfo=None)
    add_job(engine, owner="admin", name="probe-today", created_at=start_of_today + timedelta(seconds=1))
    add_job(engine, owner="admin", name="probe-yesterday", created_at=start_of_today - timedelta(seconds=1))
    add_job(engine, owner="admin", name="probe-older", created_at=start_of_today - timedelta(days=2))
    client = log_in(app.test_client(), "admin")

    page = client.get("/admin/jobs/?type=general&per_page=20").get_data(as_text=True)
    if datetime.now(local).date() != today:  # pragma: no cover - midnight passed in between
        pytest.skip("the viewer's day changed during the test")
    links = {
        label: (href.replace("&amp;", "&"), day)
        for href, day, label in re.findall(r'<a href="([^"]*)"[^>]*data-jm-day="([0-9-]+)">([^<]+)</a>', page)
    }
    assert links["Today"][1] == today.isoformat() != now.date().isoformat()  # the viewer's day, not UTC's
    assert links["Yesterday"][1] == (today - timedelta(days=1)).isoformat()
    # each link keeps the other filters and opens the first page of that day
    assert "type=general" in links["Today"][0] and "per_page=20" in links["Today"][0]

    page = client.get(links["Today"][0]).get_data(as_text=True)
    assert sorted(set(re.findall(r"probe-[a-z-]+", page))) == ["probe-today"]
    assert f'aria-current="true" data-jm-day="{today.isoformat()}"' in page, "Today is not marked as the current day"
    page = client.get(links["Yesterday"][0]).get_data(as_text=True)
    assert sorted(set(re.findall(r"probe-[a-z-]+", page))) == ["probe-yesterday"]


def test_without_a_zone_the_days_are_utc_days(make_app):
    app = make_app()
    engine = engine_of(app)
    add_job(engine, owner="admin", name="probe-late", created_at=datetime(2026, 3, 28, 23, 30))
    add_job(engine, owner="admin", name="probe-early", created_at=datetime(2026, 3, 29, 0, 30))
    assert listed_names(app, **{"from": "2026-03-29", "to": "2026-03-29"}) == ["probe-early"]


def test_the_detail_page_shows_times_in_the_configured_zone(make_app):
    app = make_app(JOBMONITOR_TIMEZONE="Asia/Tokyo")
    job_id = add_job(engine_of(app), owner="admin", name="probe-tokyo", created_at=datetime(2026, 1, 15, 10, 0, 0))
    page = log_in(app.test_client(), "admin").get(f"/admin/jobs/{job_id}/").get_data(as_text=True)
    created = re.search(r"<th>Created</th><td>(<time[^>]*>[^<]*</time>)", page)
    assert created is not None, page
    assert 'data-utc="2026-01-15T10:00:00Z"' in created.group(1)
    assert ">2026-01-15 19:00:00 JST</time>" in created.group(1)


def test_a_setting_that_names_no_zone_is_refused_at_start_up_naming_the_setting(make_app):
    with pytest.raises(ConfigError, match=r"JOBMONITOR_TIMEZONE.*Mars/Olympus"):
        make_app(JOBMONITOR_TIMEZONE="Mars/Olympus")


# -- the per-user zone -----------------------------------------------------------------------------

USER_ZONES = {USERS["clerk_a"].id: "America/New_York", USERS["clerk_b"].id: "Asia/Tokyo"}


def zone_of_user() -> str | None:
    """A host's selector: the zone in the user's profile (None: the app's default)."""
    return USER_ZONES.get(getattr(current_user, "id", None))


def created_text(app: Flask, who: str, job_id: str) -> str:
    page = log_in(app.test_client(), who).get(f"/admin/jobs/{job_id}/").get_data(as_text=True)
    found = re.search(r"<th>Created</th><td><time[^>]*>([^<]*)</time>", page)
    assert found is not None, page
    return found.group(1)


def two_users_jobs(app: Flask) -> tuple[str, str, str]:
    engine = engine_of(app)
    at = datetime(2026, 7, 1, 12, 0, 0)
    return (
        add_job(engine, owner="clerk_a", created_at=at),
        add_job(engine, owner="clerk_b", created_at=at),
        add_job(engine, owner="admin", created_at=at),
    )


def test_the_selector_setting_gives_each_user_their_own_zone(make_app):
    app = make_app(JOBMONITOR_TIMEZONE="Europe/Paris", JOBMONITOR_TIMEZONE_SELECTOR=zone_of_user)
    a_job, b_job, admin_job = two_users_jobs(app)
    assert created_text(app, "clerk_a", a_job) == "2026-07-01 08:00:00 EDT"
    assert created_text(app, "clerk_b", b_job) == "2026-07-01 21:00:00 JST"
    assert created_text(app, "admin", admin_job) == "2026-07-01 14:00:00 CEST"  # None: the default


def test_the_selector_decorator_gives_each_user_their_own_zone(make_app, monkeypatch):
    monkeypatch.setattr(jobmonitor, "timezone_selector_func", None)
    assert jobmonitor.timezone_selector(zone_of_user) is zone_of_user
    app = make_app()
    a_job, _, admin_job = two_users_jobs(app)
    assert created_text(app, "clerk_a", a_job) == "2026-07-01 08:00:00 EDT"
    assert created_text(app, "admin", admin_job) == "2026-07-01 12:00:00 UTC"


def test_the_selector_setting_comes_before_the_decorator(make_app, monkeypatch):
    monkeypatch.setattr(jobmonitor, "timezone_selector_func", lambda: "Asia/Tokyo")
    app = make_app(JOBMONITOR_TIMEZONE_SELECTOR=lambda: "America/New_York")
    a_job, _, _ = two_users_jobs(app)
    assert created_text(app, "clerk_a", a_job) == "2026-07-01 08:00:00 EDT"


@pytest.mark.parametrize("answer", ["Mars/Olympus", "", 42, ["Europe/Paris"]], ids=repr)
def test_a_selector_answer_that_names_no_zone_is_logged_and_the_default_used(make_app, caplog, answer):
    app = make_app(JOBMONITOR_TIMEZONE="Europe/Paris", JOBMONITOR_TIMEZONE_SELECTOR=lambda: answer)
    a_job, _, _ = two_users_jobs(app)
    with caplog.at_level(logging.WARNING, logger="flask_jobmonitor"):
        assert created_text(app, "clerk_a", a_job) == "2026-07-01 14:00:00 CEST"
        response = log_in(app.test_client(), "clerk_a").get("/admin/jobs/?from=2026-07-01")
    assert response.status_code == 200
    messages = [record.getMessage() for record in caplog.records]
    assert any("no time zone" in message and repr(answer) in message for message in messages), messages


def test_the_selector_filters_the_list_by_the_users_own_days(make_app):
    app = make_app(JOBMONITOR_TIMEZONE_SELECTOR=zone_of_user)
    engine = engine_of(app)
    # 03:30 UTC on March 2nd is still March 1st in New York, already March 2nd in Tokyo
    add_job(engine, owner="clerk_a", name="probe-a", created_at=datetime(2026, 3, 2, 3, 30))
    add_job(engine, owner="clerk_b", name="probe-b", created_at=datetime(2026, 3, 2, 3, 30))
    assert listed_names(app, "clerk_a", **{"from": "2026-03-01", "to": "2026-03-01"}) == ["probe-a"]
    assert listed_names(app, "clerk_b", **{"from": "2026-03-01", "to": "2026-03-01"}) == []
    assert listed_names(app, "clerk_b", **{"from": "2026-03-02", "to": "2026-03-02"}) == ["probe-b"]


# -- the JSON stays UTC ----------------------------------------------------------------------------


def timestamps(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Every (key, value) of ``value`` whose key ends in ``_at`` or is ``now``, at any depth."""
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in timestamps(v, k)]
    if isinstance(value, list):
        return [found for v in value for found in timestamps(v, key)]
    return [(key, value)] if (key.endswith("_at") or key == "now") and value is not None else []


def test_every_time_of_the_json_answers_is_utc_with_an_offset_whatever_the_zone(make_app):
    app = make_app(JOBMONITOR_TIMEZONE="Asia/Tokyo", JOBMONITOR_TIMEZONE_SELECTOR=zone_of_user)
    engine = engine_of(app)
    created = datetime(2026, 1, 15, 10, 0, 0)
    job_id = add_job(
        engine,
        owner="clerk_a",
        status="failed",
        created_at=created,
        enqueued_at=created,
        started_at=created + timedelta(seconds=5),
        ended_at=created + timedelta(seconds=65),
    )
    with engine.begin() as connection:
        connection.execute(
            sa.insert(notification_table).values(
                user_id=USERS["clerk_a"].id, job_id=job_id, event="failed", created_at=created + timedelta(seconds=65)
            )
        )
    client = log_in(app.test_client(), "clerk_a")
    answers: list[Callable[[], Any]] = [
        lambda: client.get(f"/jobmonitor/api/jobs/{job_id}").get_json(),
        lambda: client.get(f"/jobmonitor/api/jobs?ids={job_id}").get_json(),
        lambda: client.get("/jobmonitor/api/notifications").get_json(),
        lambda: client.get(f"/admin/jobs/rows?ids={job_id}").get_json(),
    ]
    seen: list[tuple[str, str]] = []
    for answer in answers:
        seen += timestamps(answer())
    assert {key for key, _ in seen} >= {"created_at", "started_at", "ended_at", "failed_at", "now"}
    for key, value in seen:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        assert moment.utcoffset() == timedelta(0), (key, value)
    assert ("created_at", "2026-01-15T10:00:00Z") in seen


# -- with Flask-Babel --------------------------------------------------------------------------------


def test_flask_babels_timezone_selector_is_used_when_the_app_sets_none_of_ours(make_app):
    flask_babel = pytest.importorskip("flask_babel", exc_type=ImportError)
    app = make_app(JOBMONITOR_TIMEZONE="Europe/Paris")
    flask_babel.Babel(app, timezone_selector=lambda: "Asia/Tokyo")
    a_job, _, _ = two_users_jobs(app)
    assert created_text(app, "clerk_a", a_job) == "2026-07-01 21:00:00 JST"


@pytest.mark.parametrize("answer", [None, "Mars/Olympus_Mons", "raises"])
def test_flask_babels_selector_without_a_zone_leaves_the_setting_and_never_breaks_a_page(make_app, answer, caplog):
    """None is no choice (Flask-Babel's get_timezone() would say its own default, UTC); a name
    no zone database knows, or a selector that raises, is logged and the setting used."""
    flask_babel = pytest.importorskip("flask_babel", exc_type=ImportError)

    def selector():
        if answer == "raises":
            raise RuntimeError("the profile service is down")
        return answer

    app = make_app(JOBMONITOR_TIMEZONE="Europe/Paris")
    flask_babel.Babel(app, timezone_selector=selector)
    a_job, _, _ = two_users_jobs(app)
    assert created_text(app, "clerk_a", a_job) == "2026-07-01 14:00:00 CEST"
    if answer is not None:
        assert any("using Europe/Paris" in record.getMessage() for record in caplog.records)


def test_flask_babels_default_zone_alone_does_not_replace_the_setting(make_app):
    flask_babel = pytest.importorskip("flask_babel", exc_type=ImportError)
    app = make_app(JOBMONITOR_TIMEZONE="Europe/Paris", BABEL_DEFAULT_TIMEZONE="Asia/Tokyo")
    flask_babel.Babel(app)
    a_job, _, _ = two_users_jobs(app)
    assert created_text(app, "clerk_a", a_job) == "2026-07-01 14:00:00 CEST"


def test_the_queue_health_chart_labels_its_minutes_in_the_viewers_zone(make_app):
    app = make_app(JOBMONITOR_TIMEZONE="Asia/Tokyo")
    now = datetime.now(timezone.utc)
    page = log_in(app.test_client(), "admin").get("/admin/queues/").get_data(as_text=True)
    minutes = [now - timedelta(minutes=n) for n in range(-2, 62)]  # the chart's hour, give or take
    in_tokyo = {f">{m.astimezone(ZoneInfo('Asia/Tokyo')):%H:%M}</text>" for m in minutes}
    in_utc = {f">{m:%H:%M}</text>" for m in minutes}  # Tokyo is 9 hours from UTC: no overlap
    assert sum(label in page for label in in_tokyo) >= 5  # the axis names every sixth minute
    assert not any(label in page for label in in_utc)
