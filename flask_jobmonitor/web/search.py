"""The job list's search box: which jobs a typed text finds, and the full-text indexes behind it.

A search finds a job whose id starts with the text (4 to 36 hex digits and dashes), or whose
name, description or parameters have a word starting with every word typed (``prod`` finds
"Import products.csv"; ``duct`` does not). The databases split words slightly differently:
PostgreSQL's parser keeps ``products.csv`` as one word, so ``csv`` finds it on SQLite only.

* PostgreSQL: a GIN index over ``to_tsvector('simple', name || description || params)``
  (``models.SEARCH_INDEX_DDL``), queried with prefix terms.
* SQLite: the FTS5 table ``jobmonitor_job_search`` holds the same text, one row per job,
  kept in step with the job table by triggers (``models.SQLITE_SEARCH_DDL``) in the same
  transaction as the job's own insert, update or delete.
* MySQL/MariaDB: InnoDB's FULLTEXT index over a stored generated column of the same text
  (``models.MYSQL_SEARCH_DDL``), queried in boolean mode with prefix terms. InnoDB splits words
  on punctuation, so ``csv`` finds ``products.csv`` there as on SQLite. It indexes no word shorter
  than ``innodb_ft_min_token_size`` (3 by default) and none of its stop words (``the``, ``for``,
  ``with``..., or the server's own list), both read from the server: such a typed word is looked
  for with ``LIKE`` in the same text instead, which matches any part of a word and, typed alone,
  reads every job. A typed prefix of a stop word (``wit``) does not find it.
* A SQLite built without FTS5 (rare: Python's own builds have it), or not yet migrated to
  revision 0003, falls back to ``LIKE`` over the three columns, which reads the whole table
  for a word that few jobs contain and matches any part of a word; the first such search of a
  process logs a warning saying so.

Every typed character is data: words are quoted before they reach either query language.
"""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import match

from ..records.dialects import is_mysql
from ..records.models import DOCS_PER_MS, FTS_TABLE, KEY_TABLE, job_table, search_document

log = logging.getLogger("flask_jobmonitor.search")  # the name hosts configured before the move to web/
_warned = False  # the LIKE fall-back is logged once per process
_ID_PREFIX = re.compile(r"^[0-9a-f]{4,8}(-[0-9a-f]{0,12}){0,4}$")


def _words(q: str) -> list[str]:
    return [word for word in q.split() if any(ch.isalnum() for ch in word)]


def _tsquery(q: str) -> str:
    """A prefix query for PostgreSQL's ``to_tsquery``: every word typed must start a word of the
    job. Words are split on spaces only and quoted, so ``products.csv`` is looked up as the one
    token PostgreSQL's parser makes of it, and ``products`` also finds ``products.csv``."""
    tokens = [token.replace("'", "").replace("\\", "").replace(":", "") for token in q.lower().split()]
    return " & ".join(f"'{token}':*" for token in tokens if token.strip("&|!()<>*"))


def fts5_query(q: str, facets: Mapping[str, str] | None = None) -> str:
    """An FTS5 query: each typed word a quoted phrase whose last token is a prefix, all required,
    and the filters' facet terms (see :func:`facet_terms`) in the ``facets`` column."""
    words = ['"{}" *'.format(word.replace('"', '""')) for word in _words(q)]
    if not words:
        return ""
    return " AND ".join([*words, *(f"facets:{term}" for term in facet_terms(facets or {}))])


def facet_terms(facets: Mapping[str, str]) -> list[str]:
    """The tokens models.SQLITE_SEARCH_DDL writes for filter values: ``s0``/``s1`` for
    ``is_system``, and ``t``, ``c``, ``u`` + the hex of the UTF-8 bytes of type, category, user."""
    terms = []
    for key, value in sorted(facets.items()):
        terms.append(f"s{value}" if key == "s" else key + value.encode().hex())
    return terms


def _postgres(q: str) -> sa.ColumnElement[bool] | None:
    query = _tsquery(q)
    return search_document().op("@@")(sa.func.to_tsquery("simple", query)) if query else None


#: InnoDB's default stop words (``INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD``): words its
#: FULLTEXT index does not hold unless the server names a stop-word table of its own.
MYSQL_STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "an",
        "are",
        "as",
        "at",
        "be",
        "by",
        "com",
        "de",
        "en",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "la",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "who",
        "will",
        "with",
        "und",
        "www",
    ]
)
_MYSQL_WORD = re.compile(r"\w+")


def _fulltext_settings(connection: sa.Connection) -> tuple[int, frozenset[str]]:
    """The server's shortest indexed word and its stop words (asked once per connection):
    ``innodb_ft_min_token_size``, and InnoDB's default list, the server's own stop-word table,
    or none when stop words are off."""
    info = connection.connection.info
    if "jobmonitor_fulltext" not in info:
        shortest, enabled, own = connection.exec_driver_sql(
            "SELECT @@innodb_ft_min_token_size, @@innodb_ft_enable_stopword, @@innodb_ft_server_stopword_table"
        ).one()
        words: frozenset[str] = frozenset()
        if enabled and own:
            schema, _, table = str(own).partition("/")
            rows = connection.exec_driver_sql(f"SELECT value FROM `{schema}`.`{table}`").scalars()
            words = frozenset(str(word).lower() for word in rows)
        elif enabled:
            words = MYSQL_STOP_WORDS
        info["jobmonitor_fulltext"] = (int(shortest), words)
    settings: tuple[int, frozenset[str]] = info["jobmonitor_fulltext"]
    return settings


def _mysql(connection: sa.Connection, q: str) -> sa.ColumnElement[bool] | None:
    """Every typed word starts a word of the job: InnoDB's FULLTEXT index for the words it
    holds, ``LIKE`` for the short words and stop words it leaves out (see the module docstring)."""
    shortest, stop_words = _fulltext_settings(connection)
    words = [word for typed in q.lower().split() for word in _MYSQL_WORD.findall(typed)]
    indexed = [w for w in words if len(w) >= shortest and w not in stop_words]
    unindexed = [w for w in words if w not in indexed]
    text: sa.ColumnElement[str] = sa.literal_column("search_text")
    conditions: list[sa.ColumnElement[bool]] = []
    if indexed:
        conditions.append(match(text, against=" ".join(f"+{w}*" for w in indexed)).in_boolean_mode())
    conditions += [text.like("%" + w.replace("_", "!_") + "%", escape="!") for w in unindexed]
    return sa.and_(*conditions) if conditions else None


def _id_prefix(q: str) -> sa.ColumnElement[bool] | None:
    lowered = q.lower()
    if not _ID_PREFIX.match(lowered):
        return None
    # a range on the primary key instead of LIKE, so any collation can use the index
    return sa.and_(job_table.c.id >= lowered, job_table.c.id < lowered + "\uffff")


def _like(q: str) -> sa.ColumnElement[bool]:
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    c = job_table.c
    return sa.or_(
        c.name.ilike(pattern, escape="\\"),
        c.description.ilike(pattern, escape="\\"),
        sa.cast(c.params, sa.Text).ilike(pattern, escape="\\"),
    )


def has_fts(connection: sa.Connection) -> bool:
    """Whether ``connection`` is SQLite with the search tables (asked once per connection)."""
    if connection.dialect.name != "sqlite":
        return False
    info = connection.connection.info
    if "jobmonitor_fts" not in info:
        found = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FTS_TABLE,)
        ).first()
        info["jobmonitor_fts"] = found is not None
    return bool(info["jobmonitor_fts"])


def condition(connection: sa.Connection, q: str) -> sa.ColumnElement[bool]:
    """The WHERE condition of a search for ``q`` where the database answers it in a WHERE
    clause: PostgreSQL, MySQL/MariaDB, and SQLite without the search tables (``LIKE``). SQLite with them walks
    FTS5 instead (:func:`newest_matches`)."""
    global _warned
    if connection.dialect.name != "postgresql" and not is_mysql(connection.dialect) and not _warned:
        _warned = True
        log.warning(
            "the job list searches with LIKE, which reads every job: this %s database has no FTS5 "
            "search tables (run `flask jobmonitor migrate`; see docs/developers.md, Search on SQLite)",
            connection.dialect.name,
        )
    conditions = [c for c in (_id_prefix(q),) if c is not None]
    if connection.dialect.name == "postgresql":
        words = _postgres(q)
    elif is_mysql(connection.dialect):
        words = _mysql(connection, q)
    else:
        words = _like(q)
    if words is not None:
        conditions.append(words)
    return sa.or_(*conditions) if conditions else sa.false()


# -- SQLite: FTS5 matches in creation order --------------------------------------------------


def document_bound(moment: datetime) -> int:
    """The first document number of jobs created at ``moment``'s millisecond (naive UTC),
    within SQLite's 64-bit integers (years ~1691 to ~2248 fit; a date beyond bounds nothing)."""
    millisecond = calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000
    return max(_SMALLEST, min(_LARGEST, millisecond * DOCS_PER_MS))


_SMALLEST, _LARGEST = -(2**63) + DOCS_PER_MS, 2**63 - 1 - DOCS_PER_MS


@dataclass
class Matches:
    """The rows :func:`newest_matches` found. ``resume`` is set when the walk stopped at
    ``SEARCH_WINDOW`` matches before it had enough rows: the position (creation time, id) where
    a next page goes on searching."""

    rows: list[Any]
    resume: tuple[datetime, str] | None = None


def newest_matches(
    connection: sa.Connection,
    q: str,
    conditions: Sequence[sa.ColumnElement[bool]],
    columns: Sequence[str],
    *,
    facets: Mapping[str, str],
    descending: bool,
    limit: int,
    offset: int = 0,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    bounded: bool = True,
) -> Matches:
    """``columns`` of the jobs matching ``q`` and ``conditions``, newest (or oldest) first by
    ``(created_at, id)``, rows ``offset`` to ``offset + limit``: SQLite with the search tables.

    FTS5 hands out matches in document-number order, which is creation order to the
    millisecond (models.DOCS_PER_MS), so the walk stops once it has enough rows; the jobs of
    the last millisecond it reached are all read and the rows sorted exactly. The walk reads at
    most ``SEARCH_WINDOW`` matches of the words and facets (``resume`` says where it stopped,
    unless not ``bounded``): a condition FTS5 cannot check (status, dates...) that few matches
    meet does not read every match. ``created_from`` / ``created_before`` bound the document
    numbers.
    """
    match = fts5_query(q, facets)
    wanted = offset + limit
    rows: list[Any] = []
    resume = None
    if match:
        low = document_bound(created_from) if created_from else None
        high = document_bound(created_before) + DOCS_PER_MS if created_before else None
        found: list[Any] = []
        # Read FIRST_READ matches, then the rest of SEARCH_WINDOW: a frequent word fills a page
        # from the first few, and finding the SEARCH_WINDOW-th match costs a walk of them all.
        # Each stage ends at the edge of a millisecond, so a millisecond is read whole or not at all.
        frontier = high if descending else low
        reached = None
        first = min(FIRST_READ, SEARCH_WINDOW)
        stages = [first, SEARCH_WINDOW - first] if bounded else [None]
        for size in [stage for stage in stages if stage != 0]:
            start, end = (low, frontier) if descending else (frontier, high)
            bound = _window_bound(connection, match, descending, start, end, size) if size else None
            if bound is not None:
                edge = bound // DOCS_PER_MS * DOCS_PER_MS
                if descending:
                    start = edge if start is None else max(edge, start)
                else:
                    end = edge + DOCS_PER_MS if end is None else min(edge + DOCS_PER_MS, end)
            found += _walk(connection, match, conditions, columns, descending, wanted - len(found), start, end)
            frontier = start if descending else end
            reached = frontier if bound is not None else None
            if bound is None or len(found) >= wanted:
                break
        if reached is not None and len(found) < wanted:
            resume = _resume_at(reached, descending)
        if len(found) == wanted:  # read the rest of the last millisecond reached
            last = found[-1].docid
            edge = last // DOCS_PER_MS * DOCS_PER_MS
            if descending:
                rest = (edge if low is None else max(edge, low), last)
            else:
                rest = (last + 1, edge + DOCS_PER_MS if high is None else min(edge + DOCS_PER_MS, high))
            found += _walk(connection, match, conditions, columns, descending, None, *rest)
        rows = found
    prefix = _id_prefix(q)
    if prefix is not None:
        # the few jobs whose id starts so, read by the primary key (an ORDER BY here would make
        # SQLite walk the newest-first index instead), sorted below with the matches; past a
        # walk that stopped early they wait for the next page, as the words' matches do
        c = job_table.c
        extra = sa.select(*(c[name] for name in columns)).where(prefix, *conditions).limit(MAX_ID_MATCHES)
        seen = {row.id for row in rows}
        for row in connection.execute(extra):
            walked = resume is None or ((row.created_at, row.id) > resume) == descending
            if row.id not in seen and walked:
                rows.append(row)
    rows.sort(key=lambda row: (row.created_at, row.id), reverse=descending)
    return Matches(rows[offset:wanted], resume)


#: How many matches a SQLite search reads first, before it looks further (see newest_matches).
FIRST_READ = 2_000
#: Jobs an id prefix finds at most (a 4-digit prefix matches one id in 65,536).
MAX_ID_MATCHES = 10_000
#: How many matches of the words (and facets) a SQLite search reads at most (see newest_matches).
SEARCH_WINDOW = 20_000


def _window_bound(
    connection: sa.Connection, match: str, descending: bool, low: int | None, high: int | None, size: int
) -> int | None:
    """The document number of the ``size``-th match in the walk's direction, if there are that many."""
    bounds, params = _bounds(low, high)
    order = "DESC" if descending else "ASC"
    statement = (
        f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :match{bounds} "
        f"ORDER BY rowid {order} LIMIT 1 OFFSET :window"
    )
    found = connection.execute(sa.text(statement), {"match": match, "window": size, **params}).first()
    return None if found is None else int(found[0])


def _resume_at(frontier: int, descending: bool) -> tuple[datetime, str]:
    """A list position just past the millisecond edge ``frontier`` where a capped walk stopped:
    every match on the near side of it was read, none beyond it."""
    if descending:  # the walk read [frontier, ...): go on with the jobs created before it
        return _EPOCH + timedelta(milliseconds=frontier // DOCS_PER_MS), "0"
    # the walk read [..., frontier): go on with the jobs created in or after its millisecond
    return _EPOCH + timedelta(milliseconds=frontier // DOCS_PER_MS) - timedelta(microseconds=1), "z"


_EPOCH = datetime(1970, 1, 1)


def _bounds(low: int | None, high: int | None, table: str = FTS_TABLE) -> tuple[str, dict[str, int]]:
    parts, params = "", {}
    if low is not None:
        parts += f" AND {table}.rowid >= :low"
        params["low"] = low
    if high is not None:
        parts += f" AND {table}.rowid < :high"
        params["high"] = high
    return parts, params


def _walk(
    connection: sa.Connection,
    match: str,
    conditions: Sequence[sa.ColumnElement[bool]],
    columns: Sequence[str],
    descending: bool,
    limit: int | None,
    low: int | None,
    high: int | None,
) -> list[Any]:
    """Matching jobs in document-number order (FTS5 drives the loop: no sort)."""
    fts = sa.table(FTS_TABLE, sa.column("rowid", sa.Integer))
    key = sa.table(KEY_TABLE, sa.column("docid", sa.Integer), sa.column("job_id", sa.String))
    c = job_table.c
    where: list[Any] = [sa.text(f"{FTS_TABLE} MATCH :match").bindparams(match=match), *conditions]
    if low is not None:
        where.append(fts.c.rowid >= low)
    if high is not None:
        where.append(fts.c.rowid < high)
    query = (
        sa.select(*(c[name] for name in columns), fts.c.rowid.label("docid"))
        .select_from(fts.join(key, key.c.docid == fts.c.rowid).join(job_table, c.id == key.c.job_id))
        .where(*where)
        .order_by(fts.c.rowid.desc() if descending else fts.c.rowid.asc())
    )
    if limit is not None:
        query = query.limit(limit)
    return list(connection.execute(query))
