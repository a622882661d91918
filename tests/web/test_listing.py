"""listing.py: the job list's filters, parsed from the query string, and the page query on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from flask_jobmonitor.errors import InvalidFilter
from flask_jobmonitor.timeutil import utcnow
from flask_jobmonitor.web.listing import (
    DEFAULT_PAGE_SIZE,
    SORTABLE,
    JobPage,
    ListFilters,
    children_progress,
    fetch_page,
    parse_filters,
)

from ..support.databases import recorded_statements
from ..support.rows import add_job
from ..support.users import USERS
from ..support.web import at

# -- parse_filters ---------------------------------------------------------------------------------


def test_no_parameters_give_newest_first_first_page():
    filters = parse_filters({})
    assert filters == ListFilters()
    assert (filters.sort, filters.descending, filters.page, filters.per_page) == ("created", True, 1, DEFAULT_PAGE_SIZE)
    assert not filters.is_filtered


def test_good_values_are_accepted():
    filters = parse_filters(
        {
            "q": "  import products ",
            "type": "import",
            "user": "3",
            "status": "failed",
            "group": "processed",
            "category": "import",
            "from": "2026-03-01",
            "to": "2026-03-31",
            "system": "1",
            "parent": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "sort": "duration",
            "dir": "asc",
            "page": "3",
            "per_page": "100",
        }
    )
    assert filters == ListFilters(
        q="import products",
        type="import",
        user="3",
        status="failed",
        group="processed",
        category="import",
        date_from=datetime(2026, 3, 1),
        date_to=datetime(2026, 4, 1),  # "to" is inclusive: up to the end of that day
        show_system=True,
        parent="0f8fad5b-d9cb-469f-a165-70867728950e",
        sort="duration",
        descending=False,
        page=3,
        per_page=100,
    )
    assert filters.is_filtered


@pytest.mark.parametrize("key", list(SORTABLE))
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_every_sort_key_and_direction_is_accepted(key, direction):
    filters = parse_filters({"sort": key, "dir": direction})
    assert (filters.sort, filters.descending) == (key, direction == "desc")


def test_from_and_to_on_the_same_day_is_that_whole_day():
    filters = parse_filters({"from": "2026-03-02", "to": "2026-03-02"})
    assert (filters.date_from, filters.date_to) == (datetime(2026, 3, 2), datetime(2026, 3, 3))


@pytest.mark.parametrize("value", ["", "0", "off", "false"])
def test_system_jobs_are_asked_for_only_explicitly(value):
    assert parse_filters({"system": value}).show_system is False


def test_filters_survive_a_round_trip_through_query_parameters():
    args = {"q": "x", "status": "running", "from": "2026-03-01", "to": "2026-03-02", "sort": "name", "dir": "asc"}
    filters = parse_filters(args)
    assert parse_filters(filters.to_args()) == filters
    assert filters.to_args(page=2)["page"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"page": "abc"}, "page must be a whole number, got 'abc'"),
        ({"page": "1.5"}, "page must be a whole number, got '1.5'"),
        ({"page": "0"}, "page must be between 1 and 100000, got 0"),
        ({"page": "-3"}, "page must be between 1 and 100000, got -3"),
        ({"page": "100001"}, "page must be between 1 and 100000, got 100001"),
        ({"page": "9" * 40}, "page must be between 1 and 100000"),
        ({"per_page": "lots"}, "per_page must be a whole number, got 'lots'"),
        ({"per_page": "0"}, "per_page must be between 1 and 200, got 0"),
        ({"per_page": "201"}, "per_page must be between 1 and 200, got 201"),
        ({"status": "done"}, "status must be one of queued, running, stopping, paused, waiting, completed, failed"),
        ({"status": "RUNNING"}, "got 'RUNNING'"),
        ({"group": "finished"}, "group must be one of processed, unprocessed; got 'finished'"),
        ({"sort": "id"}, "sort must be one of created, name, type"),
        ({"sort": "name; DROP TABLE jobmonitor_job"}, "sort must be one of"),
        ({"dir": "up"}, "dir must be one of asc, desc; got 'up'"),
        ({"from": "yesterday"}, "from must be a date like 2026-01-31, got 'yesterday'"),
        ({"from": "2026-02-30"}, "from must be a date like 2026-01-31, got '2026-02-30'"),
        ({"to": "31/01/2026"}, "to must be a date like 2026-01-31, got '31/01/2026'"),
        ({"from": "2026-03-05", "to": "2026-03-04"}, "from must be on or before to"),
        ({"q": "x" * 201}, "q is longer than 200 characters"),
        ({"type": "t" * 65}, "type is longer than 64 characters"),
        ({"user": "u" * 65}, "user is longer than 64 characters"),
        ({"category": "c" * 65}, "category is longer than 64 characters"),
        ({"parent": "p" * 37}, "parent is longer than 36 characters"),
        ({"q": "import\x00products"}, "q contains a NUL character"),
        ({"type": "imp\x00"}, "type contains a NUL character"),
        ({"user": "\x003"}, "user contains a NUL character"),
        ({"category": "a\x00"}, "category contains a NUL character"),
        ({"parent": "\x00"}, "parent contains a NUL character"),
    ],
)
def test_malformed_values_raise_invalid_filter_naming_the_parameter(args, message):
    with pytest.raises(InvalidFilter) as raised:
        parse_filters(args)
    assert message in str(raised.value)


def test_q_of_exactly_200_characters_is_accepted():
    assert parse_filters({"q": "x" * 200}).q == "x" * 200


@pytest.mark.parametrize("args", [{"to": "9999-12-31"}, {"from": "9999-12-31", "to": "9999-12-31"}])
def test_a_date_at_the_end_of_the_calendar_is_refused_not_crashing(args):
    # "to" is made exclusive by adding a day, which overflows datetime on the last day of year 9999
    with pytest.raises(InvalidFilter, match="to"):
        parse_filters(args)


# -- fetch_page: filters ---------------------------------------------------------------------------


def page_of(engine: sa.Engine, visible_to: str | None = None, allow_system: bool = False, **args: Any) -> JobPage:
    with engine.connect() as connection:
        return fetch_page(connection, parse_filters(args), visible_to=visible_to, allow_system=allow_system)


def names_of(engine: sa.Engine, **args: Any) -> list[str]:
    return [job.name for job in page_of(engine, **args).jobs]


def ids_of(engine: sa.Engine, visible_to: str | None = None, allow_system: bool = False, **args: Any) -> list[str]:
    return [job.id for job in page_of(engine, visible_to, allow_system, **args).jobs]


@pytest.fixture
def jobs(engine) -> dict[str, str]:
    """A small history: two clerks' jobs of several types and statuses, a child and a system job."""
    ids = {}
    ids["import"] = add_job(
        engine,
        owner="clerk_a",
        name="Import products.csv",
        type="import",
        category="import",
        status="completed",
        params={"args": [], "kwargs": {"profile": "wintersale2026"}},
        created_at=at(0),
        started_at=at(1),
        ended_at=at(5),
    )
    ids["export"] = add_job(
        engine,
        owner="clerk_b",
        name="Export prices",
        type="export",
        category="export",
        status="failed",
        created_at=at(60 * 24 * 3),  # 5 March
        started_at=at(60 * 24 * 3 + 1),
        ended_at=at(60 * 24 * 3 + 2),
    )
    ids["report"] = add_job(
        engine,
        owner="clerk_a",
        name="Nightly report",
        description="totals for the sales team",
        type="report",
        status="running",
        created_at=at(60 * 24 * 5),  # 7 March
        started_at=at(60 * 24 * 5 + 1),
    )
    ids["system"] = add_job(
        engine,
        owner=None,
        name="Delete old jobs",
        type="maintenance",
        category="system",
        status="completed",
        is_system=True,
        created_at=at(60 * 24 * 6),
        ended_at=at(60 * 24 * 6 + 1),
    )
    ids["child"] = add_job(
        engine,
        owner="clerk_a",
        name="Import products.csv part 1",
        type="import",
        category="import",
        status="queued",
        parent_id=ids["import"],
        root_id=ids["import"],
        created_at=at(60 * 24 * 7),
    )
    return ids


def test_newest_first_by_default(engine, jobs):
    assert ids_of(engine) == [jobs["report"], jobs["export"], jobs["import"]]


def test_child_jobs_are_left_out_of_the_top_level_unless_asked_for(engine, jobs):
    assert jobs["child"] not in ids_of(engine)
    assert ids_of(engine, children="1") == [jobs["child"], jobs["report"], jobs["export"], jobs["import"]]
    assert parse_filters({"children": "1"}).to_args() == {"children": "1"}


def test_a_search_finds_child_jobs_too(engine, jobs):
    """A pasted job id or a word of a chunk's name finds the child job without ticking the box."""
    assert ids_of(engine, q="import products") == [jobs["child"], jobs["import"]]
    assert ids_of(engine, q=jobs["child"]) == [jobs["child"]]
    assert ids_of(engine, q=jobs["child"][:8]) == [jobs["child"]]


def test_q_matches_words_of_the_name(engine, jobs):
    assert ids_of(engine, children="1", q="import products") == [jobs["child"], jobs["import"]]
    assert ids_of(engine, q="Nightly") == [jobs["report"]]


def test_q_matches_the_beginning_of_a_word(engine, jobs):
    assert ids_of(engine, children="1", q="prod") == [jobs["child"], jobs["import"]]
    assert ids_of(engine, q="expo") == [jobs["export"]]


def test_q_matches_the_description(engine, jobs):
    assert ids_of(engine, q="sales") == [jobs["report"]]


def test_q_matches_a_parameter_value(engine, jobs):
    assert ids_of(engine, q="wintersale2026") == [jobs["import"]]


@pytest.mark.parametrize("length", [8, 13, 36])
def test_q_matches_a_job_id_prefix(engine, jobs, length):
    assert ids_of(engine, q=jobs["export"][:length]) == [jobs["export"]]
    assert ids_of(engine, q=jobs["export"][:length].upper()) == [jobs["export"]]


def test_q_that_matches_nothing_gives_an_empty_page(engine, jobs):
    page = page_of(engine, q="zebra")
    assert page.jobs == [] and not page.has_next
    assert ids_of(engine, q="%") == []
    assert ids_of(engine, q="_") == []


def test_words_a_fulltext_index_leaves_out_are_still_found(engine):
    """MariaDB's FULLTEXT index holds no word shorter than 3 letters and none of InnoDB's stop
    words: those are looked for with LIKE beside the index (search.py). Every database finds
    the same jobs for them, an underscore is no LIKE wildcard, and an indexed word still has to
    start a word."""
    eu = add_job(engine, name="EU tax report", created_at=at(1))
    about = add_job(engine, name="Notes about the move", params={"file": "a_b.csv"}, created_at=at(2))
    axb = add_job(engine, name="Export axb", created_at=at(3))
    assert ids_of(engine, q="eu") == [eu]
    assert ids_of(engine, q="eu tax") == [eu]
    assert ids_of(engine, q="about the") == [about]
    assert ids_of(engine, q="the move") == [about]
    assert axb not in ids_of(engine, q="a_b")  # "_" is no wildcard
    if engine.dialect.name != "postgresql":  # PostgreSQL's parser splits "a_b.csv" its own way
        assert ids_of(engine, q="a_b") == [about]
    assert ids_of(engine, q="ove") == []  # "move" does not start with it


def test_q_of_punctuation_only_does_not_fail(engine, jobs):
    assert ids_of(engine, q="!!! ???") == []


def test_type_filter(engine, jobs):
    assert ids_of(engine, type="export") == [jobs["export"]]
    assert ids_of(engine, children="1", type="import") == [jobs["child"], jobs["import"]]


def test_user_filter(engine, jobs):
    assert ids_of(engine, user=USERS["clerk_b"].id) == [jobs["export"]]
    assert ids_of(engine, user="no-such-user") == []


def test_status_filter(engine, jobs):
    assert ids_of(engine, status="running") == [jobs["report"]]
    assert ids_of(engine, status="cancelled") == []


def test_processed_group_is_the_finished_jobs(engine, jobs):
    assert ids_of(engine, group="processed") == [jobs["export"], jobs["import"]]


def test_unprocessed_group_is_the_active_jobs(engine, jobs):
    assert ids_of(engine, children="1", group="unprocessed") == [jobs["child"], jobs["report"]]


def test_category_filter(engine, jobs):
    assert ids_of(engine, children="1", category="import") == [jobs["child"], jobs["import"]]
    assert ids_of(engine, category="export") == [jobs["export"]]


def test_date_range_includes_whole_days_at_both_ends(engine, jobs):
    assert ids_of(engine, **{"from": "2026-03-05", "to": "2026-03-07"}) == [jobs["report"], jobs["export"]]
    assert ids_of(engine, **{"from": "2026-03-03", "to": "2026-03-04"}) == []
    assert ids_of(engine, **{"to": "2026-03-02"}) == [jobs["import"]]
    assert ids_of(engine, children="1", **{"from": "2026-03-09"}) == [jobs["child"]]


def test_parent_filter_lists_the_children(engine, jobs):
    assert ids_of(engine, parent=jobs["import"]) == [jobs["child"]]
    assert ids_of(engine, parent=jobs["export"]) == []


def test_system_jobs_are_hidden_unless_allowed_and_asked_for(engine, jobs):
    assert jobs["system"] not in ids_of(engine)
    assert jobs["system"] not in ids_of(engine, system="1")
    assert jobs["system"] not in ids_of(engine, allow_system=True)
    assert jobs["system"] in ids_of(engine, allow_system=True, system="1")


def test_visible_to_limits_the_page_to_one_users_jobs(engine, jobs):
    clerk_a = USERS["clerk_a"].id
    assert ids_of(engine, children="1", visible_to=clerk_a) == [jobs["child"], jobs["report"], jobs["import"]]
    # asking for another user's jobs does not widen it
    assert ids_of(engine, visible_to=clerk_a, user=USERS["clerk_b"].id) == []
    assert ids_of(engine, visible_to=USERS["auditor"].id) == []


def test_filters_combine(engine, jobs):
    clerk_a = USERS["clerk_a"].id
    assert ids_of(engine, visible_to=clerk_a, type="import", group="processed") == [jobs["import"]]


def test_children_progress_counts_finished_and_all_children(engine, jobs):
    add_job(engine, parent_id=jobs["import"], status="completed", created_at=at(1))
    add_job(engine, parent_id=jobs["import"], status="failed", created_at=at(2))
    add_job(engine, parent_id=jobs["import"], status="running", created_at=at(3))
    with engine.connect() as connection:
        progress = children_progress(connection, [jobs["import"], jobs["export"]])
        assert children_progress(connection, []) == {}
    assert progress == {jobs["import"]: (2, 4)}
    page = page_of(engine)
    assert page.children == {jobs["import"]: (2, 4)}


# -- fetch_page: pagination ------------------------------------------------------------------------


@pytest.fixture
def seven(engine) -> list[str]:
    """Seven jobs, newest first."""
    return [add_job(engine, name=f"job {i}", created_at=at(10 - i)) for i in range(7)]


def test_pages_follow_each_other_without_gaps_or_repeats(engine, seven):
    pages = [page_of(engine, per_page="3", page=str(n)) for n in (1, 2, 3, 4)]
    assert [[j.id for j in p.jobs] for p in pages] == [seven[0:3], seven[3:6], seven[6:7], []]
    assert [p.has_next for p in pages] == [True, True, False, False]
    assert [p.has_previous for p in pages] == [False, True, True, True]
    assert [p.first_index for p in pages[:3]] == [1, 4, 7]


def test_a_full_last_page_has_no_next_page(engine, seven):
    add_job(engine, created_at=at(-100))  # eight jobs: two full pages of four
    assert page_of(engine, per_page="4", page="2").has_next is False
    assert page_of(engine, per_page="4", page="1").has_next is True


def test_pagination_never_counts_the_job_table(engine, seven):
    add_job(engine, parent_id=seven[0], created_at=at(-100))
    with recorded_statements(engine) as statements:
        page = page_of(engine, per_page="3", page="2")
    assert page.has_next
    counts = [s for s in statements if "count(" in s.lower()]
    # the only COUNT is the per-parent one of the page's own rows
    assert all("parent_id IN" in s for s in counts), counts


# -- fetch_page: sorting ---------------------------------------------------------------------------

# name, type, status, owner, run_by_name, created, started, ended, errors, progress
SORT_ROWS = [
    ("alpha", "export", "completed", "clerk_a", "Clara Clerk", 0, 5, 50, 3, 40),
    ("bravo", "import", "failed", "clerk_b", "Carl Clerk", 1, 2, 10, 0, 5),
    ("charlie", "report", "running", "admin", "Ada Admin", 2, 30, None, 7, 12),
    ("delta", "general", "queued", "manager", "Max Manager", 3, None, None, 1, 0),
    ("echo", "mass_edit", "stopped", "auditor", "Audrey Auditor", 4, 20, 21, 5, 7),
    ("foxtrot", "cleanup", "cancelled", "clerk_a", "Zoe Zed", 5, None, 6, 2, 1),
]
SORT_COLUMNS = {
    "created": "created_at",
    "name": "name",
    "type": "type",
    "status": "status",
    "user": "run_by_name",
    "started": "started_at",
    "ended": "ended_at",
    "errors": "error_count",
    "progress": "progress_done",
}


@pytest.fixture
def sortable(engine) -> list[dict[str, Any]]:
    rows = []
    for name, type_, status, owner, user_name, created, started, ended, errors, progress in SORT_ROWS:
        values = {
            "name": name,
            "type": type_,
            "status": status,
            "run_by_name": user_name,
            "created_at": at(created),
            "started_at": None if started is None else at(started),
            "ended_at": None if ended is None else at(ended),
            "status_changed_at": at(max(x for x in (created, started, ended) if x is not None)),
            "error_count": errors,
            "progress_done": progress,
        }
        values["id"] = add_job(engine, owner=owner, **values)
        rows.append(values)
    return rows


def expected_order(rows: list[dict[str, Any]], column: str, descending: bool) -> list[str]:
    """Rows by ``column`` (ties by id, like the page), jobs without a value last in both directions."""
    present = sorted((r for r in rows if r[column] is not None), key=lambda r: (r[column], r["id"]))
    missing = sorted((r for r in rows if r[column] is None), key=lambda r: r["id"])
    if descending:
        present.reverse()
        missing.reverse()
    return [r["name"] for r in present + missing]


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("key", list(SORT_COLUMNS))
def test_sort_by_column_in_both_directions(engine, sortable, key, direction):
    expected = expected_order(sortable, SORT_COLUMNS[key], direction == "desc")
    assert names_of(engine, sort=key, dir=direction) == expected


def sortable_finished(engine) -> list[dict[str, Any]]:
    """Finished jobs with distinct waits (start - creation) and durations (end - start)."""
    rows = []
    for i, (wait, duration) in enumerate([(5, 1), (1, 30), (30, 8), (12, 4), (2, 16)]):
        created = at(i * 100)
        started, ended = at(i * 100 + wait), at(i * 100 + wait + duration)
        name = f"waited {wait} ran {duration}"
        job_id = add_job(
            engine,
            name=name,
            status="completed",
            created_at=created,
            started_at=started,
            ended_at=ended,
            status_changed_at=ended,
        )
        rows.append({"id": job_id, "name": name, "waiting": wait, "duration": duration})
    return rows


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("key", ["waiting", "duration"])
def test_sort_by_waiting_and_duration_of_finished_jobs(engine, key, direction):
    rows = sortable_finished(engine)
    assert names_of(engine, sort=key, dir=direction) == expected_order(rows, key, direction == "desc")


def test_sort_by_duration_counts_a_running_job_until_now_like_the_page_shows(engine):
    now = utcnow()
    add_job(
        engine,
        name="running for 2 h",
        status="running",
        created_at=at(-121, now),
        started_at=at(-120, now),  # running for two hours
        status_changed_at=at(-120, now),  # set when a worker claimed it
    )
    add_job(
        engine,
        name="ran 10 min",
        status="completed",
        created_at=at(-300, now),
        started_at=at(-300, now),
        ended_at=at(-290, now),  # ran ten minutes
        status_changed_at=at(-290, now),
    )
    assert names_of(engine, sort="duration", dir="desc") == ["running for 2 h", "ran 10 min"]


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sort_by_duration_puts_jobs_that_never_started_last(engine, direction):
    # like "started" and "ended": a job without the value comes last whichever way the list is sorted
    rows = sortable_finished(engine)
    add_job(engine, name="queued, never ran", status="queued", created_at=at(1000), status_changed_at=at(1000))
    names = names_of(engine, sort="duration", dir=direction)
    assert names[-1] == "queued, never ran"
    assert names[:-1] == expected_order(rows, "duration", direction == "desc")


def test_sort_by_waiting_counts_a_queued_job_until_now_like_the_page_shows(engine):
    now = utcnow()
    add_job(engine, name="queued for 2 h", status="queued", created_at=at(-120, now))
    add_job(
        engine,
        name="waited 10 min",
        status="completed",
        created_at=at(-300, now),
        started_at=at(-290, now),  # waited ten minutes
        ended_at=at(-280, now),
        status_changed_at=at(-280, now),
    )
    assert names_of(engine, sort="waiting", dir="desc") == ["queued for 2 h", "waited 10 min"]


# -- fetch_page: cursors, windows, search order ------------------------------------------------


def walk_pages(engine: sa.Engine, visible_to: str | None = None, allow_system: bool = False, **args: Any):
    """Every page from the first by the "next" links, then back by the "previous" links."""
    forward = [page_of(engine, visible_to, allow_system, **args)]
    while forward[-1].next_args() is not None:
        forward.append(page_of(engine, visible_to, allow_system, **forward[-1].next_args()))
    backward = [forward[-1]]
    while backward[-1].previous_args() is not None:
        backward.append(page_of(engine, visible_to, allow_system, **backward[-1].previous_args()))
    return forward, backward


@pytest.fixture
def crowd(engine) -> list[str]:
    """23 jobs, several created in the same millisecond (and two at the same microsecond), some
    system jobs; returned newest first by (created_at, id) as the list orders them."""
    rows = []
    for n in range(23):
        created = at(n // 4) + timedelta(microseconds=(n % 4 == 3) * 500)  # ties within a minute and a ms
        job_id = add_job(engine, name=f"Import invoices {n}", is_system=n % 5 == 0, created_at=created)
        rows.append((created, job_id))
    return [job_id for _created, job_id in sorted(rows, reverse=True)]


@pytest.mark.parametrize("system", ["", "1"])
@pytest.mark.parametrize("q", ["", "invoices"])
def test_next_and_previous_links_visit_every_job_once_in_both_directions(engine, crowd, q, system):
    ordinary = ordinary_jobs(engine)
    expected = [i for i in crowd if system or i in ordinary]
    forward, backward = walk_pages(engine, allow_system=True, per_page="4", q=q, system=system)
    assert [job.id for page in forward for job in page.jobs] == expected
    assert [job.id for page in reversed(backward) for job in page.jobs] == expected
    assert all(len(page.jobs) == 4 for page in forward[:-1])
    assert forward[0].has_previous is False and forward[-1].has_next is False


def ordinary_jobs(engine: sa.Engine) -> set[str]:
    """Ids of the jobs that are not system jobs (what the list shows unless asked for more)."""
    from flask_jobmonitor.records.models import job_table

    with engine.connect() as connection:
        return set(connection.execute(sa.select(job_table.c.id).where(job_table.c.is_system.is_(False))).scalars())


@pytest.mark.parametrize("q", ["", "invoices"])
def test_oldest_first_pages_are_the_same_jobs_in_reverse(engine, crowd, q):
    ordinary = ordinary_jobs(engine)
    visible = [i for i in crowd if i in ordinary]
    forward, _backward = walk_pages(engine, per_page="5", q=q, sort="created", dir="asc")
    assert [job.id for page in forward for job in page.jobs] == list(reversed(visible))
    assert forward[0].labels == ("First", "Previous", "Next", "Last")


@pytest.mark.parametrize("q", ["", "invoices"])
def test_the_last_page_link_gives_the_oldest_jobs_and_a_way_back(engine, crowd, q):
    ordinary = ordinary_jobs(engine)
    visible = [i for i in crowd if i in ordinary]
    first = page_of(engine, per_page="4", q=q)
    assert first.labels == ("Newest", "Newer", "Older", "Oldest")
    last = page_of(engine, **first.last_args())
    assert [job.id for job in last.jobs] == visible[-4:]
    assert last.has_next is False and last.has_previous is True
    newer = page_of(engine, **last.previous_args())
    assert [job.id for job in newer.jobs] == visible[-8:-4]


def test_a_cursor_of_a_deleted_job_still_pages_from_its_place(engine, crowd):
    from flask_jobmonitor.records.models import job_table

    ordinary = ordinary_jobs(engine)
    visible = [i for i in crowd if i in ordinary]
    second = page_of(engine, **page_of(engine, per_page="4").next_args())
    cursor = page_of(engine, per_page="4").next_args()
    with engine.begin() as connection:
        connection.execute(sa.delete(job_table).where(job_table.c.id == visible[3]))  # the cursor's own job
    again = page_of(engine, **cursor)
    assert [job.id for job in again.jobs] == [job.id for job in second.jobs]


def test_own_jobs_page_by_cursor_too(engine, crowd):
    mine = len(ordinary_jobs(engine))
    theirs = add_job(engine, owner="clerk_b", name="Import invoices of Carl", created_at=at(2))
    forward, _ = walk_pages(engine, visible_to=USERS["clerk_a"].id, per_page="3", q="invoices")
    assert theirs not in {job.id for page in forward for job in page.jobs}
    assert sum(len(page.jobs) for page in forward) == mine


def test_a_search_lists_matches_in_the_exact_order_of_the_list(engine, crowd):
    # SQLite reads FTS5 matches by document number (creation order to the millisecond) and
    # sorts the last millisecond it reached: the order equals the plain list's
    add_job(engine, name="Export prices", created_at=at(3))
    plain = [job.id for job in page_of(engine, per_page="200").jobs if job.name.startswith("Import")]
    assert [job.id for job in page_of(engine, per_page="200", q="invoices").jobs] == plain
    for size in ("1", "2", "3", "7"):
        forward, _ = walk_pages(engine, per_page=size, q="invoices")
        assert [job.id for page in forward for job in page.jobs] == plain


def test_a_search_combined_with_each_filter_finds_the_same_jobs_as_the_filter(engine, jobs):
    for args in ({"type": "import"}, {"category": "import"}, {"user": USERS["clerk_a"].id}, {"status": "queued"}):
        with_search = {job.id for job in page_of(engine, q="import", **args).jobs}
        # a search looks through child jobs too (a pasted id or file name finds a chunk job)
        filtered = {job.id for job in page_of(engine, children="1", **args).jobs if "Import" in job.name}
        assert with_search == filtered, args
    assert page_of(engine, q="import", type="export").jobs == []


def test_the_search_index_follows_renames_and_deletes(engine, jobs):
    from flask_jobmonitor.records.models import job_table

    with engine.begin() as connection:
        connection.execute(sa.update(job_table).where(job_table.c.id == jobs["export"]).values(name="Export tariffs"))
        connection.execute(sa.delete(job_table).where(job_table.c.id == jobs["report"]))
    assert names_of(engine, q="tariffs") == ["Export tariffs"]
    assert names_of(engine, q="prices") == []
    assert names_of(engine, q="nightly") == []
    with engine.begin() as connection:  # a status change leaves the search as it was
        connection.execute(sa.update(job_table).where(job_table.c.id == jobs["export"]).values(status="completed"))
    assert names_of(engine, q="tariffs") == ["Export tariffs"]


def test_a_sort_orders_the_newest_window_and_says_so(engine, crowd, monkeypatch):
    from flask_jobmonitor.web import listing

    monkeypatch.setattr(listing, "SORT_WINDOW", 6)
    ordinary = ordinary_jobs(engine)
    visible = [i for i in crowd if i in ordinary]
    page = page_of(engine, sort="name", dir="asc", per_page="4")
    assert page.window == 6
    assert {job.id for job in page.jobs} <= set(visible[:6])
    second = page_of(engine, **page.next_args())
    assert len(second.jobs) == 2 and second.has_next is False
    assert page_of(engine, sort="name", page="3", per_page="4").jobs == []
    monkeypatch.setattr(listing, "SORT_WINDOW", 1000)
    assert page_of(engine, sort="name").window is None  # every matching job was sorted


@pytest.mark.parametrize("first_read", [1, 2, 2000])
def test_a_sqlite_search_reads_a_bounded_number_of_matches_and_older_goes_on(engine, crowd, monkeypatch, first_read):
    from flask_jobmonitor.web import search

    monkeypatch.setattr(search, "SEARCH_WINDOW", 3)
    monkeypatch.setattr(search, "FIRST_READ", first_read)
    rare = {add_job(engine, name=f"Import invoices {n}", status="failed", created_at=at(n)) for n in (0.5, 1.5)}
    page = page_of(engine, q="invoices", status="failed", per_page="4")  # FTS5 cannot check the status
    if engine.dialect.name != "sqlite":
        assert page.searched is None  # the GIN index and the planner need no window
        assert {job.id for job in page.jobs} == rare
        return
    assert page.searched == 3 and page.has_next  # the newest 3 matches (and their milliseconds) are not failed
    assert page.jobs == []
    forward, _ = walk_pages(engine, q="invoices", status="failed", per_page="4")
    found = [job.id for p in forward for job in p.jobs]
    assert set(found) == rare and len(found) == 2  # every page went on from where the last one stopped
    assert forward[-1].has_next is False
    assert page_of(engine, q="invoices", per_page="2").searched is None  # the page was full within the window


# -- cursors and windows: bad input ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"after": "yesterday"}, "after is not a position in the job list"),
        ({"before": "20261301T000000.000000_abc"}, "before is not a position in the job list"),
        ({"after": "20261101T000000.000000_a'b"}, "after is not a position"),
        ({"after": "20261101T000000.000000_" + "a" * 37}, "after is not a position"),
        ({"after": "20261101T000000.000000_ab", "before": "20261101T000000.000000_ab"}, "cannot be combined"),
        ({"after": "20261101T000000.000000_ab", "page": "2"}, "page cannot be combined"),
        ({"last": "1", "sort": "name"}, "by creation time, not by name"),
    ],
)
def test_tampered_or_contradictory_positions_are_refused(args, message):
    with pytest.raises(InvalidFilter, match=message):
        parse_filters(args)


def test_a_cursor_round_trips_through_the_query_string(engine, crowd):
    page = page_of(engine, per_page="4")
    args = page.next_args()
    assert parse_filters({k: str(v) for k, v in args.items()}).after.id == page.jobs[-1].id


def test_sqlite_without_the_search_tables_falls_back_to_like_and_says_so(tmp_path, monkeypatch, caplog):
    from flask_jobmonitor.records.models import SQLITE_SEARCH_DROP, Base
    from flask_jobmonitor.web import search

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as connection:
            for statement in SQLITE_SEARCH_DROP:  # a SQLite without FTS5, or not yet migrated
                connection.exec_driver_sql(statement)
        add_job(engine, name="Import products.csv", created_at=at(0))
        add_job(engine, name="Export prices", created_at=at(1))
        monkeypatch.setattr(search, "_warned", False)
        with caplog.at_level("WARNING", logger="flask_jobmonitor.search"):
            assert names_of(engine, q="duct") == ["Import products.csv"]  # LIKE: any part of a word
            assert names_of(engine, q="prices") == ["Export prices"]
        warnings = [r.getMessage() for r in caplog.records if r.name == "flask_jobmonitor.search"]
        assert len(warnings) == 1 and "reads every job" in warnings[0]
    finally:
        engine.dispose()


@pytest.mark.parametrize(("window", "first_read"), [(1, 1), (2, 1), (3, 2), (4, 4), (50, 2)])
def test_pages_of_a_capped_search_add_up_to_the_whole_list_without_gaps_or_repeats(
    engine, monkeypatch, window, first_read
):
    # jobs crowded into few milliseconds, some failed: walking "Older" through capped searches
    # must give exactly the failed matches, in the list's order
    from flask_jobmonitor.web import search

    for n in range(30):
        created = at(n // 7) + timedelta(microseconds=(n % 3) * 100)  # 7 a minute, 3 per microsecond
        add_job(engine, name=f"Import invoices {n}", status="failed" if n % 4 == 0 else "completed", created_at=created)
    expected = [job.id for job in page_of(engine, status="failed", per_page="200").jobs]
    monkeypatch.setattr(search, "SEARCH_WINDOW", window)
    monkeypatch.setattr(search, "FIRST_READ", first_read)
    for size in ("1", "2", "5"):
        forward, _backward = walk_pages(engine, q="invoices", status="failed", per_page=size)
        assert [job.id for page in forward for job in page.jobs] == expected
        assert len(forward) < 80  # it always moved on


def test_jobs_created_in_the_last_half_millisecond_of_a_second_are_not_skipped(engine):
    # SQLite's strftime('%s') rounds .9995 s and above up to the next second: the search's
    # document numbers read the seconds alone, as Python's document_bound does
    stamps = [datetime(2026, 3, 2, 12, 0, 0, 999_700), datetime(2026, 3, 2, 12, 0, 1, 200_000)]
    stamps += [datetime(2026, 3, 2, 12, 0, 1, 500_000), datetime(2026, 3, 2, 12, 0, 1, 999_999)]
    for n, created in enumerate(stamps):
        add_job(engine, name=f"Import invoices {n}", created_at=created)
    expected = [job.id for job in page_of(engine, per_page="10").jobs]
    for size in ("1", "2", "3"):
        forward, backward = walk_pages(engine, q="invoices", per_page=size)
        assert [job.id for page in forward for job in page.jobs] == expected
        assert [job.id for page in reversed(backward) for job in page.jobs] == expected


@pytest.mark.parametrize("q", ["", "invoices"])
def test_a_page_beside_the_end_of_the_list_has_no_link_past_it(engine, crowd, q):
    newest = page_of(engine, per_page="3", q=q).jobs[0]
    beyond_newest = f"{(newest.created_at + timedelta(days=1)):%Y%m%dT%H%M%S.%f}_{newest.id}"
    page = page_of(engine, per_page="3", q=q, after=beyond_newest)
    assert len(page.jobs) == 3 and page.has_previous is False and page.previous_args() is None
    oldest = page_of(engine, per_page="3", q=q, last="1").jobs[-1]
    before_oldest = f"{(oldest.created_at - timedelta(days=1)):%Y%m%dT%H%M%S.%f}_{oldest.id}"
    page = page_of(engine, per_page="3", q=q, before=before_oldest)
    assert len(page.jobs) == 3 and page.has_next is False and page.next_args() is None


@pytest.mark.parametrize(
    "args",
    [
        {"to": "2300-01-01"},
        {"from": "1600-01-01"},
        {"from": "0001-01-01", "to": "9999-12-30"},
        {"after": "25000101T000000.000000_ab"},
        {"before": "16000101T000000.000000_ab"},
    ],
)
def test_a_search_with_a_date_far_from_now_answers_not_crashes(engine, crowd, args):
    page = page_of(engine, q="invoices", **args)
    assert isinstance(page.jobs, list)


def test_the_all_matching_bulk_scope_reads_past_a_capped_search(engine, crowd, monkeypatch):
    from flask_jobmonitor.web import search
    from flask_jobmonitor.web.listing import matching_ids

    monkeypatch.setattr(search, "SEARCH_WINDOW", 1)
    monkeypatch.setattr(search, "FIRST_READ", 1)
    with engine.connect() as connection:
        filters = parse_filters({"q": "invoices"})
        ids = matching_ids(connection, filters, visible_to=None, allow_system=False, limit=1000)
    assert set(ids) == ordinary_jobs(engine)
