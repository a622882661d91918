"""The catalogues and the way a host turns languages on, renames texts and adds its own.

* the catalogue check of the test command: extracting the texts again (``pybabel extract``
  through ``scripts/translations``) finds none missing from the template or from a language,
  every French and German entry is translated with the same placeholders, and the ``.mo``
  files the package loads are compiled from the ``.po`` files as they are;
* Flask-Babel set up as hosts do: initialised before the package, after it, or never (the trap
  of Flask-Admin's ``KeyError: 'babel'``), and not installed at all;
* a host's own catalogue renaming a status everywhere people read it, and its own labels
  (``JOBMONITOR_STATUS_LABELS``) translated through it;
* plural forms and numbers of the locale.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import flask_babel
import pytest
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import Flask, request

from flask_jobmonitor import i18n
from flask_jobmonitor.errors import ConfigError

from ..support.apps import WEB_HOST, build_app
from ..support.databases import dispose_engines
from ..support.rows import add_job
from ..support.users import csrf_token, log_in

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = Path(i18n.TRANSLATIONS_DIRECTORY)
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _catalog(path: Path):
    with path.open("rb") as handle:
        return read_po(handle)


def _po(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"


def test_extracting_the_texts_again_finds_none_missing_from_the_catalogues(tmp_path):
    fresh = tmp_path / "fresh.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "translations"), "extract", str(fresh)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYBABEL": str(pybabel)},
    )
    extracted = {message.id for message in _catalog(fresh) if message.id}
    template = {message.id for message in _catalog(TRANSLATIONS / f"{i18n.DOMAIN}.pot") if message.id}
    assert extracted - template == set(), "texts missing from the template: run scripts/translations extract"
    assert template - extracted == set(), "texts no longer used in the template: run scripts/translations extract"
    for language in i18n.LANGUAGES:
        known = {message.id for message in _catalog(_po(language)) if message.id}
        assert extracted - known == set(), f"texts missing from {language}: run scripts/translations update"
    assert len(extracted) > 300


@pytest.mark.parametrize("language", ["fr", "de", "en"])
def test_every_entry_is_translated_with_the_same_placeholders(language):
    catalog = _catalog(_po(language))
    for message in catalog:
        if not message.id:
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(forms), f"{language}: {message.id!r} is not translated"
        assert not message.fuzzy, f"{language}: {message.id!r} is fuzzy"
        assert not list(message.check(catalog)), f"{language}: {message.id!r}: {list(message.check(catalog))}"
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for form in forms:
            # a % that is neither a placeholder nor %% would break the formatting
            assert "%" not in PLACEHOLDER.sub("", form).replace("%%", ""), f"{language}: {message.id!r} -> {form!r}"
            found = set(PLACEHOLDER.findall(form))
            # a plural form may leave the count out ("a job you may not open"), nothing else
            assert found <= expected and expected - found <= {"num"}, f"{language}: {message.id!r} -> {form!r}"
            if not isinstance(message.id, tuple):
                assert found == expected, f"{language}: {message.id!r} -> {form!r}"


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_the_mo_files_are_compiled_from_the_po_files_as_they_are(language):
    source = {message.id: message.string for message in _catalog(_po(language)) if message.id}
    with _po(language).with_suffix(".mo").open("rb") as handle:
        compiled = {_hashable(message.id): _hashable(message.string) for message in read_mo(handle) if message.id}
    assert compiled == source, f"run scripts/translations compile ({language})"


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _french_or_not() -> str:
    return request.accept_languages.best_match(["en", "fr", "de"]) or "en"


@pytest.fixture
def make(database_url, redis_url, tmp_path):
    """Build a host app (the web tests' host) with more options; cleaned up afterwards."""
    built: list[Flask] = []

    def build(**options) -> Flask:
        app = build_app(database_url, redis_url, str(tmp_path / "files"), **{**WEB_HOST, **options})
        built.append(app)
        return app

    yield build
    for app in built:
        dispose_engines(app)


def _page(app: Flask, url: str, language: str = "fr", who: str = "admin") -> tuple[int, str]:
    client = log_in(app.test_client(), who)
    response = client.get(url, headers={"Accept-Language": language})
    return response.status_code, html.unescape(response.get_data(as_text=True))


def test_a_host_that_never_initialises_flask_babel_still_gets_every_page(make, engine_for):
    """flask-babel installed, ``Babel(app)`` never called: Flask-Admin's layout would raise
    KeyError: 'babel' on every page; the package initialises Flask-Babel with its defaults."""
    app = make()
    assert "babel" in app.extensions
    add_job(engine_for(app), owner="admin", status="completed", name="Import")
    for url in (
        "/admin/",
        "/admin/jobs/",
        "/admin/job-statistics/",
        "/admin/queues/",
        "/admin/my-jobs/",
        "/admin/job-audit/",
    ):
        status, _page_text = _page(app, url, "fr")
        assert status == 200, url
    assert "Completed" in _page(app, "/admin/jobs/")[1]  # the defaults: English


@pytest.mark.parametrize("order", ["before", "after"])
def test_the_hosts_locale_selector_decides_whether_babel_comes_before_or_after(make, engine_for, order):
    if order == "before":
        app = make(locale_selector=_french_or_not)
    else:
        app = make()
        flask_babel.Babel(app, locale_selector=_french_or_not)
    add_job(engine_for(app), owner="admin", status="completed", name="Import")
    status, page = _page(app, "/admin/jobs/", "fr")
    assert status == 200
    assert "Terminée" in page and "Suivi des tâches" in page  # the badge and the menu
    assert "Abgeschlossen" in _page(app, "/admin/jobs/", "de")[1]
    assert "Completed" in _page(app, "/admin/jobs/", "en")[1]


def test_without_flask_babel_everything_is_english(monkeypatch):
    """The package's texts without Flask-Babel (the packaging test renders the pages of a wheel
    installed without the extra, so without Flask-Babel at all)."""
    monkeypatch.setattr(i18n, "flask_babel", None)
    app = Flask("no_babel")
    i18n.install(app)
    assert app.extensions[i18n.I18N_KEY] is None and "babel" not in app.extensions
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert i18n.gettext("Job “%(name)s” started.", name="Import") == "Job “Import” started."
        assert i18n.ngettext("%(num)s step", "%(num)s steps", 1234) == "1,234 steps"
        assert i18n.ngettext("%(num)s step", "%(num)s steps", 1) == "1 step"
        assert i18n.format_ago(150) == "2 min. ago"
        assert i18n.format_ago(3 * 86400) == "3 days ago"
        assert i18n.locale_name() == "en"
        assert i18n.format_file_size(1536) == "1.5 KB"


def _host_catalogue(root: Path, language: str, entries: dict[str, str]) -> str:
    """A host's catalogue of the domain flask_jobmonitor for ``language``."""
    from babel.messages.catalog import Catalog

    catalog = Catalog(locale=language, domain=i18n.DOMAIN)
    for msgid, msgstr in entries.items():
        catalog.add(msgid, msgstr)
    target = root / language / "LC_MESSAGES"
    target.mkdir(parents=True, exist_ok=True)
    with (target / f"{i18n.DOMAIN}.mo").open("wb") as handle:
        write_mo(handle, catalog)
    return str(root)


def test_a_hosts_catalogue_renames_a_status_everywhere_people_read_it(make, engine_for, tmp_path):
    directory = _host_catalogue(
        tmp_path / "host", "en", {"Completed": "Finished", "already completed": "already finished"}
    )
    app = make(JOBMONITOR_TRANSLATION_DIRECTORIES=[directory], locale_selector=_french_or_not)
    engine = engine_for(app)
    job_id = add_job(engine, owner="admin", status="completed", name="Import")
    page = _page(app, "/admin/jobs/", "en")[1]
    assert 'data-jm="status-label">Finished<' in page  # the badge
    assert '<option value="completed" >Finished</option>' in page or ">Finished</option>" in page  # the filter
    assert "Completed" not in page
    assert _page(app, f"/admin/jobs/{job_id}/", "en")[1].count("Finished") >= 1
    client = log_in(app.test_client(), "admin")
    detail = client.get(f"/jobmonitor/api/jobs/{job_id}", headers={"Accept-Language": "en"}).get_json()
    assert detail["status_label"] == "Finished"
    bulk = client.post(
        "/jobmonitor/api/jobs/bulk",
        json={"action": "stop", "ids": [job_id]},
        headers={"Accept-Language": "en", "X-CSRFToken": csrf_token(client)},
    ).get_json()
    assert "already finished" in bulk["message"]
    assert "Terminée" in _page(app, "/admin/jobs/", "fr")[1]  # other languages keep the package's


def test_the_apps_own_status_labels_are_translated_through_its_catalogue(make, engine_for, tmp_path):
    directory = _host_catalogue(tmp_path / "host", "fr", {"In Progress": "En traitement"})
    app = make(
        JOBMONITOR_TRANSLATION_DIRECTORIES=[directory],
        JOBMONITOR_STATUS_LABELS={"running": "In Progress"},
        locale_selector=_french_or_not,
    )
    add_job(engine_for(app), owner="admin", status="running", name="Import")
    assert 'data-jm="status-label">In Progress<' in _page(app, "/admin/jobs/", "en")[1]
    assert 'data-jm="status-label">En traitement<' in _page(app, "/admin/jobs/", "fr")[1]


def test_a_translation_directory_that_does_not_exist_is_a_config_error(make, tmp_path):
    with pytest.raises(ConfigError, match=r"JOBMONITOR_TRANSLATION_DIRECTORIES: .*missing is not a directory"):
        make(JOBMONITOR_TRANSLATION_DIRECTORIES=[str(tmp_path / "missing")])
    with pytest.raises(ConfigError, match="must be a list of directories"):
        make(JOBMONITOR_TRANSLATION_DIRECTORIES="translations")


@pytest.mark.parametrize(
    ("language", "counts"),
    [
        # French: 0 and 1 are singular; German and English: 1 only
        ("fr", {0: "0 étape", 1: "1 étape", 2: "2 étapes", 1234: "1\u202f234 étapes"}),
        ("de", {0: "0 Schritte", 1: "1 Schritt", 2: "2 Schritte", 1234: "1.234 Schritte"}),
        ("en", {0: "0 steps", 1: "1 step", 2: "2 steps", 1234: "1,234 steps"}),
    ],
)
def test_plural_forms_and_numbers_follow_the_locale(make, language, counts):
    app = make(locale_selector=_french_or_not)
    with app.test_request_context(headers={"Accept-Language": language}):
        for count, text in counts.items():
            assert i18n.ngettext("%(num)s step", "%(num)s steps", count) == text


@pytest.fixture
def engine_for():
    from ..support.extensions import db

    def engine(app: Flask):
        with app.app_context():
            return db.engine

    return engine


LOCALES = ["fr", "de", "es", "it", "nl", "pl", "pt_BR", "ru", "ja", "zh", "ko", "ar", "he", "hi", "tr", "sv", "cs"]


@pytest.mark.parametrize("language", LOCALES)
def test_times_are_written_as_babel_writes_them_in_every_locale(language):
    """i18n's parsed-once templates of the locales' date and time patterns (a list writes a
    hundred times) against Babel's own format_datetime and format_time, over a year of times."""
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from babel import dates

    app = Flask("times")
    flask_babel.Babel(app, locale_selector=lambda: language)
    i18n.install(app)
    with app.test_request_context():
        locale = flask_babel.get_locale()
        for step in range(0, 400):
            value = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(
                hours=23 * step, minutes=7 * step, seconds=step
            )
            local = value.astimezone(ZoneInfo("America/New_York"))
            zone = local.strftime("%Z")
            assert i18n.format_local_time(local) == f"{dates.format_datetime(local, 'medium', locale=locale)} {zone}"
            assert (
                i18n.format_local_time(local, "%H:%M") == f"{dates.format_time(local, 'short', locale=locale)} {zone}"
            )


@pytest.mark.parametrize(
    ("seconds", "english"),
    [
        (5, "just now"),
        (45, "45 sec. ago"),
        (150, "2 min. ago"),
        (7300, "2 hr. ago"),
        (90_000, "1 day ago"),
        (3 * 86400, "3 days ago"),
        (8 * 86400, "1 wk. ago"),
        (35 * 86400, "1 mo. ago"),
        (400 * 86400, "1 yr. ago"),
    ],
)
def test_how_long_ago_takes_the_largest_unit_that_fits_with_or_without_babel(seconds, english, monkeypatch):
    """The same rule as the page script (the largest unit that fits once, counted down): Babel's
    words for English are the words of the fallback without Babel."""
    app = Flask("ago")
    flask_babel.Babel(app)
    i18n.install(app)
    with app.test_request_context():
        assert i18n.format_ago(seconds) == english
    monkeypatch.setattr(i18n, "flask_babel", None)
    with Flask("no_babel").test_request_context():
        assert i18n.format_ago(seconds) == english


def test_a_host_translation_whose_placeholders_do_not_fit_shows_the_source_text(make, engine_for, tmp_path, caplog):
    """A host's catalogue with a misspelt placeholder or a stray % is logged, never a 500."""
    directory = _host_catalogue(
        tmp_path / "host",
        "fr",
        {"Select %(name)s": "Choisir %(nom)s", "Download %(filename)s": "Télécharger 100 % de %(filename)s"},
    )
    app = make(JOBMONITOR_TRANSLATION_DIRECTORIES=[directory], locale_selector=_french_or_not)
    add_job(engine_for(app), owner="admin", status="completed", name="Import")
    status, page = _page(app, "/admin/jobs/", "fr")
    assert status == 200
    assert 'aria-label="Select Import"' in page
    assert any("does not fit its placeholders" in record.getMessage() for record in caplog.records)
