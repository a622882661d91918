"""Every page of the package in the viewer's language, as people meet them with jobs of every
kind on them: no text left in English.

Two checks over the same tour of the pages (list, details of jobs of every status with steps,
subtasks, logs, files and children, statistics and their CSV, queue health during a pause, "My
jobs", a host page with the widget and the bell, error pages, flash messages of actions and bulk
actions, and the JSON people read: refusals, notifications, the page script's words):

* **French and German**: no text of the page is an English text of the catalogue whose
  translation differs (a text rendered without gettext, or a catalogue entry left empty);
* **a pseudo-language** (``en_GB`` with a host catalogue that wraps every text in ⟦ ⟧): once the
  wrapped texts are taken out, every word left is data (names, ids, numbers, times), Flask-Admin's
  own layout or the host's: a text written in the code without gettext shows up here even when
  no catalogue knows it.
"""

from __future__ import annotations

import csv
import html.parser
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask_babel
import pytest
import sqlalchemy as sa
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request

from flask_jobmonitor import i18n
from flask_jobmonitor.records import models
from flask_jobmonitor.state import get_state

from .. import retry_tasks, tasks
from ..support.rows import add_job
from ..support.users import csrf_token, log_in
from ..support.web import enqueue
from ..support.workers import run_worker

POT = Path(i18n.TRANSLATIONS_DIRECTORY) / "flask_jobmonitor.pot"
PSEUDO = "en_GB"
OPEN, CLOSE = "⟦", "⟧"
#: Attributes people read (a tooltip, a screen reader's name, a hint, a confirmation).
READ_ATTRIBUTES = ("title", "aria-label", "placeholder", "data-jm-confirm", "alt")


def _catalogue_ids() -> list[Any]:
    with POT.open("rb") as handle:
        return [message.id for message in read_po(handle) if message.id]


@pytest.fixture(scope="module")
def pseudo_directory(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A host catalogue for ``en_GB`` that wraps every text of the package in ⟦ ⟧."""
    root = tmp_path_factory.mktemp("pseudo-translations")
    with POT.open("rb") as handle:
        catalog = read_po(handle, locale=PSEUDO)
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            message.string = tuple(OPEN + form + CLOSE for form in message.id)
        else:
            message.string = OPEN + message.id + CLOSE
    target = root / PSEUDO / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / f"{i18n.DOMAIN}.mo").open("wb") as handle:
        write_mo(handle, catalog)
    return str(root)


@pytest.fixture
def babel_app(make_app, pseudo_directory: str) -> Flask:
    """The web tests' host with Flask-Babel choosing the language from the request's
    Accept-Language (as a host's locale selector would), and the pseudo catalogue."""
    app = make_app(JOBMONITOR_TRANSLATION_DIRECTORIES=[pseudo_directory])
    flask_babel.Babel(
        app, locale_selector=lambda: request.accept_languages.best_match(["en", "fr", "de", PSEUDO]) or "en"
    )
    return app


def _build_jobs(app: Flask) -> dict[str, str]:
    """Jobs of every kind a person meets: run by real workers where the page shows their work."""
    with app.app_context():
        engine = get_state(app).engine
    jobs = {
        "import": enqueue(
            app,
            tasks.import_rows,
            "admin",
            files={"rows.csv": b"a,1\nb,2\nc,3\nd,4\n"},
            bad_every=2,
            name="Zeta import",
        ),
        "failed": enqueue(app, tasks.fails, "admin", message="Zeta went wrong", name="Zeta failure"),
        "logs": enqueue(app, tasks.logs_everything, "admin", name="Zeta logs"),
        "parent": enqueue(app, tasks.spawns_children, "admin", count=2, name="Zeta parent"),
        "retrying": enqueue(app, retry_tasks.fails_then_waits, "admin", name="Zeta retry"),
        "retried to the end": enqueue(app, retry_tasks.flaky, "admin", fail_times=9, name="Zeta retried"),
    }
    run_worker(app)
    jobs["delayed"] = enqueue(app, tasks.noop, "admin", name="Zeta later", delay=3600)
    jobs["running"] = add_job(
        engine,
        owner="admin",
        name="Zeta running",
        status="running",
        started_at=models_now(),
        step_count=3,
        current_step=2,
        progress_done=5,
        progress_total=10,
        error_count=2,
        warning_count=1,
    )
    jobs["stopped"] = add_job(
        engine,
        owner="admin",
        name="Zeta stopped",
        status="stopped",
        started_at=models_now(),
        ended_at=models_now(),
        stop_forced=True,
        stop_requested_at=models_now(),
    )
    jobs["queued"] = add_job(engine, owner="admin", name="Zeta queued", low_priority=True)
    jobs["system"] = add_job(engine, owner=None, name="Zeta system", is_system=True, status="completed")
    jobs["clerk"] = add_job(engine, owner="clerk_a", name="Zeta clerk", status="running", started_at=models_now())
    return jobs


def models_now() -> Any:
    from flask_jobmonitor.timeutil import utcnow

    return utcnow()


def _tour(app: Flask, language: str, jobs: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    """(what, kind, body) of every page and JSON answer a person reads, in ``language``; kind is
    "html", "json" or "text"."""
    headers = {"Accept-Language": language}
    admin = log_in(app.test_client(), "admin")
    admin.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    clerk = log_in(app.test_client(), "clerk_a")
    clerk.environ_base["HTTP_ACCEPT_LANGUAGE"] = language

    def page(client: Any, url: str, expected: int = 200) -> str:
        response = client.get(url, headers=headers)
        assert response.status_code == expected, (url, response.status_code)
        return response.get_data(as_text=True)

    yield "list", "html", page(admin, "/admin/jobs/?children=1&system=1")
    yield "list sorted by name", "html", page(admin, "/admin/jobs/?sort=name")
    yield "list searched", "html", page(admin, "/admin/jobs/?q=Zeta")
    yield "list with a refused filter", "html", page(admin, "/admin/jobs/?from=2026-03-05&to=2026-03-01", 400)
    yield "list of an unknown user", "html", page(admin, "/admin/jobs/?user=nobody", 400)
    yield "list of one's own jobs", "html", page(clerk, "/admin/jobs/")
    yield "list, second page", "html", page(admin, "/admin/jobs/?per_page=10&page=2")
    for name, job_id in jobs.items():
        yield f"detail of {name}", "html", page(admin, f"/admin/jobs/{job_id}/")
        yield f"JSON of {name}", "json", page(admin, f"/jobmonitor/api/jobs/{job_id}")
    yield "detail, log filtered", "html", page(admin, f"/admin/jobs/{jobs['logs']}/?log_level=warning")
    yield "detail, subtasks filtered", "html", page(admin, f"/admin/jobs/{jobs['import']}/?subtask_status=error")
    yield "statistics", "html", page(admin, "/admin/job-statistics/?granularity=hour&from=" + _today(app))
    yield "statistics per day", "html", page(admin, "/admin/job-statistics/")
    yield "statistics refused", "html", page(admin, "/admin/job-statistics/?from=2026-03-05&to=2026-03-01", 400)
    header = next(csv.reader(io.StringIO(page(admin, "/admin/job-statistics/?format=csv"))))
    yield "statistics CSV header", "text", "\n".join(header)
    yield "queue health", "html", page(admin, "/admin/queues/")
    yield "audit trail", "html", page(admin, "/admin/job-audit/")
    yield "audit trail refused", "html", page(admin, "/admin/job-audit/?action=x", 400)
    yield "schedules", "html", page(admin, "/admin/job-schedules/")
    yield "my jobs", "html", page(admin, "/admin/my-jobs/")
    yield "host page", "html", page(clerk, "/_test/page")
    yield "rows of the live list", "json", page(admin, f"/admin/jobs/rows?ids={jobs['running']},{jobs['parent']}")
    yield "notifications", "json", page(admin, "/jobmonitor/api/notifications")
    yield "404 page", "html", page(clerk, f"/admin/jobs/{jobs['import']}/", 404)
    yield "403 page", "html", page(clerk, "/admin/job-statistics/", 403)
    yield "400 page", "html", page(admin, f"/admin/jobs/{jobs['running']}/?log_page=x", 400)
    yield "JSON 404", "json", page(admin, "/jobmonitor/api/jobs/00000000-0000-0000-0000-000000000000", 404)
    token = csrf_token(admin)
    refused = admin.post(
        f"/jobmonitor/api/jobs/{jobs['import']}/stop", headers={**headers, "X-CSRFToken": token}, json={}
    )
    yield "JSON refusal", "json", refused.get_data(as_text=True)
    done = admin.post(
        f"/admin/jobs/{jobs['clerk']}/action",
        data={"action": "stop", "csrf_token": token},
        headers=headers,
        follow_redirects=True,
    )
    yield "flash of an action", "html", done.get_data(as_text=True)
    bulk = admin.post(
        "/admin/jobs/bulk",
        data={"action": "cancel", "scope": "selected", "ids": list(jobs.values()), "csrf_token": token},
        headers=headers,
        follow_redirects=True,
    )
    yield "flash of a bulk action", "html", bulk.get_data(as_text=True)
    paused = admin.post(
        "/admin/queues/pause",
        data={"csrf_token": token, "next": "/admin/queues/"},
        headers=headers,
        follow_redirects=True,
    )
    try:
        yield "queue health during a pause (flash, banner)", "html", paused.get_data(as_text=True)
        yield "list during a pause", "html", page(admin, "/admin/jobs/")
    finally:
        resumed = admin.post(
            "/admin/queues/resume",
            data={"csrf_token": token, "next": "/admin/queues/"},
            headers=headers,
            follow_redirects=True,
        )
    yield "flash of the resume", "html", resumed.get_data(as_text=True)


def _today(app: Flask) -> str:
    return models_now().date().isoformat()


class _Texts(html.parser.HTMLParser):
    """The texts of a page a person reads: text nodes (not scripts or styles, nor <code>: ids,
    workers' and queues' names, commands) and the attributes of READ_ATTRIBUTES; the page
    script's words from its JSON block."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0
        self._json = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "style", "code"):
            self._skip += 1
            self._json = values.get("id") == "jm-texts"
        for name in READ_ATTRIBUTES:
            if values.get(name):
                self.texts.append(str(values[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code"):
            self._skip -= 1
            self._json = False

    def handle_data(self, data: str) -> None:
        if self._json:
            self.texts.extend(_json_texts(json.loads(data)))
        elif not self._skip and data.strip():
            self.texts.append(data)


#: The keys of a JSON answer whose texts a person reads (the others are for code: names of
#: actions, statuses, ids).
READ_KEYS = {"message", "error", "status_label"}


def _json_texts(value: Any) -> list[str]:
    """Every text of a JSON answer meant for a person (the markup of its parts parsed as HTML)."""
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            if isinstance(item, str):
                if key in ("html", "children_html") or item.lstrip().startswith("<"):
                    found.extend(_html_texts(item))
                elif key in READ_KEYS:
                    found.append(item)
            elif key == "html" and isinstance(item, dict):
                found.extend(text for part in item.values() for text in _html_texts(part))
            else:
                found.extend(_json_texts(item))
        return found
    if isinstance(value, list):
        return [text for item in value for text in _json_texts(item)]
    return []


def _html_texts(markup: str) -> list[str]:
    parser = _Texts()
    parser.feed(markup)
    return parser.texts


def _texts(kind: str, body: str) -> list[str]:
    if kind == "html":
        return _html_texts(body)
    if kind == "json":
        return _json_texts(json.loads(body))
    return [body]


#: Placeholders that always hold a number.
NUMBERS = {"num", "count", "done", "total", "first", "last", "limit", "days", "minutes", "hours", "number"}


def _pattern(text: str) -> re.Pattern[str]:
    """A catalogue text as a pattern of whole rendered texts: a number's placeholder matches a
    number, any other anything."""
    pattern = r"\s*"
    for literal, name in re.findall(r"(.*?)(?:%\((\w+)\)s|$)", text, re.DOTALL):
        pattern += re.escape(literal)
        if name:
            pattern += r"[\d\s.,\u202f\u00a0]+" if name in NUMBERS else r".+?"
    return re.compile(pattern + r"\s*", re.DOTALL)


@pytest.mark.parametrize("language", ["fr", "de"])
def test_every_page_speaks_french_and_german_with_no_english_text_left(babel_app, language):
    jobs = _build_jobs(babel_app)
    with POT.open("rb") as handle:
        english = read_po(handle)
    path = Path(i18n.TRANSLATIONS_DIRECTORY) / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
    with path.open("rb") as handle:
        translated = {message.id: message.string for message in read_po(handle) if message.id}
    # a text whose translation is itself ("Worker", "Type") cannot be told apart: left out; short
    # words that are also data or Flask-Admin's own ("All") are left out too
    untranslated = []
    for message in english:
        if not message.id:
            continue
        forms = message.id if isinstance(message.id, tuple) else (message.id,)
        own = translated[message.id]
        own = own if isinstance(own, tuple) else (own,)
        untranslated.extend(
            form for form in forms if form not in own and len(re.sub(r"%\(\w+\)s|[\W\d_]", "", form)) > 3
        )
    patterns = [(text, _pattern(text)) for text in untranslated]
    layout = set(_html_texts(_admin_start_page(babel_app, language)))  # Flask-Admin's words ("Start")
    seen_pages = 0
    for what, kind, body in _tour(babel_app, language, jobs):
        seen_pages += 1
        for text in _texts(kind, body):
            if text in layout:
                continue
            for english_text, pattern in patterns:
                assert not pattern.fullmatch(text), f"{what}: {text!r} is English ({english_text!r}) in {language}"
    assert seen_pages > 30


#: Columns that hold the package's own names for things (shown through the catalogues).
ENUMERATIONS = {"status", "event", "kind", "level", "granularity"}


def _data_words(app: Flask) -> set[str]:
    """Every word stored in the job tables (names, ids, types, messages, file and step names, the
    lines operators' actions write into a job's log, ...), and the host's own words: its task
    types, queue names and category labels (JOBMONITOR_CATEGORIES, the host's texts)."""
    state = get_state(app)
    words: set[str] = {"T", "Z"}  # ISO 8601 times in titles
    for text in [*state.settings.categories.values(), *state.settings.queue_names.values()]:
        words.update(re.findall(r"[^\W\d_]+", text))
    words.update(task.type for task in state.tasks)
    for schedule in state.extension.schedules.values():  # identifiers of code, shown in <code>
        words.update(re.findall(r"[^\W\d_]+", f"{schedule.name} {schedule.task}"))
    with app.app_context():
        engine = get_state(app).engine
    with engine.connect() as connection:
        for table in models.Base.metadata.sorted_tables:
            # the columns of the package's own words (statuses, events, kinds) are not data
            columns = [column for column in table.c if column.name not in ENUMERATIONS]
            for row in connection.execute(sa.select(*columns)):
                for value in row:
                    if isinstance(value, (str, dict, list)):
                        words.update(
                            re.findall(r"[^\W\d_]+", json.dumps(value) if not isinstance(value, str) else value)
                        )
    return words


def _admin_start_page(app: Flask, language: str) -> str:
    client = log_in(app.test_client(), "admin")
    return client.get("/admin/", headers={"Accept-Language": language}).get_data(as_text=True)


def _layout_words(app: Flask) -> set[str]:
    """The words of Flask-Admin's own layout and the host's menu (the admin's start page)."""
    words: set[str] = set()
    for text in _html_texts(_admin_start_page(app, PSEUDO)):
        if OPEN not in text:
            words.update(re.findall(r"[^\W\d_]+", text))
    return words


#: Words that are neither data nor texts: zone abbreviations, units of a duration ("1h 02m 05s"),
#: technical names people see as such.
NOT_TEXTS = {"UTC", "GMT", "h", "m", "s", "RQ", "CSV", "rq", "suspend"}


def test_every_page_text_goes_through_the_catalogues(babel_app):
    """In the pseudo-language, every text of the package is wrapped in ⟦ ⟧; what is left must be
    data, the layout's or the host's."""
    jobs = _build_jobs(babel_app)
    pages = list(_tour(babel_app, PSEUDO, jobs))
    allowed = _data_words(babel_app) | _layout_words(babel_app) | NOT_TEXTS
    missing: dict[str, set[str]] = {}
    for what, kind, body in pages:
        text = "\n".join(_texts(kind, body))
        while True:  # a wrapped text may hold another one (a summary in a sentence)
            unwrapped = re.sub(rf"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}", " ", text)
            if unwrapped == text:
                break
            text = unwrapped
        assert OPEN not in text and CLOSE not in text, f"{what}: a wrapped text split by markup: {text!r}"
        left = {word for word in re.findall(r"[^\W\d_]+", text) if word not in allowed}
        if left:
            missing[what] = left
    assert not missing, f"texts shown without gettext: {missing}"
