"""Translations: every text a person reads goes through this module.

The rules:

* **Flask-Babel is optional**, as for Flask-Admin. When it is installed and the host initialised
  it (``Babel(app, locale_selector=...)``), texts follow the host's locale (``get_locale()``);
  without it, or outside a request (a worker, the CLI), they are English.
* **One catalogue domain**, ``flask_jobmonitor``: the package's catalogues
  (``flask_jobmonitor/translations/<lang>/LC_MESSAGES/flask_jobmonitor.po``) come first, then
  the host's ``JOBMONITOR_TRANSLATION_DIRECTORIES`` in their order, each overriding the ones
  before. A host adds a language, or renames a text in every language (a status "Finished"
  instead of "Completed", even in English), with a catalogue of its own.
* **Placeholders are named** (``%(name)s``) as in Flask-Babel, so a translation may move them;
  ``ngettext`` gives ``num`` and picks the plural form of the locale ("1 job" / "3 jobs").
* **Texts of tables** (status words, action labels) are marked with :func:`N_` where they are
  defined, for the extraction, and translated with :func:`gettext` where they are shown: a
  table of lazy strings would leak untranslated objects into JSON.
* **Numbers and dates** are formatted for the locale with Babel (installed with Flask-Babel);
  without it, in English.

``install`` (called by ``JobMonitor.init_app``) keeps the domain of an app in
``app.extensions[I18N_KEY]``. When Flask-Babel is installed but the host never called
``Babel(app)``, Flask-Admin's own layout raises ``KeyError: 'babel'`` on every page; ``install``
then initialises Flask-Babel with its defaults (English, UTC) so that every page works, and a
``Babel(app, ...)`` of the host, before or after, decides instead (docs/developers.md).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from flask import Flask, current_app, g, has_request_context

try:  # optional dependency: flask-babel (and Babel with it)
    import flask_babel
    from babel import Locale
    from babel import dates as babel_dates
    from babel import numbers as babel_numbers
except ImportError:  # pragma: no cover - exercised by the packaging test without the extra
    flask_babel = None

log = logging.getLogger(__name__)

I18N_KEY = "jobmonitor_i18n"
#: Where a request keeps its translations and locale (``flask.g``).
_CACHE_KEY = "_jobmonitor_catalogue"
DOMAIN = "flask_jobmonitor"
#: The package's catalogues.
TRANSLATIONS_DIRECTORY = os.path.join(os.path.dirname(__file__), "translations")
#: The languages the package ships (English is the source language).
LANGUAGES = ("en", "fr", "de")


def N_(text: str) -> str:
    """Mark ``text`` for the extraction without translating it (it is translated where shown)."""
    return text


def N_plural(singular: str, plural: str) -> tuple[str, str]:
    """Mark a text with its plural form for the extraction (translated by :func:`ngettext` where shown)."""
    return (singular, plural)


def install(app: Flask, host_directories: Iterable[str] = ()) -> None:
    """Give ``app`` the package's catalogue domain, with the host's directories after it."""
    directories = [TRANSLATIONS_DIRECTORY, *host_directories]
    if flask_babel is None:
        app.extensions[I18N_KEY] = None
        return
    if "babel" not in app.extensions:
        log.info(
            "flask-babel is installed but Babel(app) was not called before JobMonitor.init_app: "
            "initialising it with its defaults (English, UTC); Babel(app, ...) chooses instead"
        )
        flask_babel.Babel(app)
    app.extensions[I18N_KEY] = flask_babel.Domain(directories, domain=DOMAIN)


class _Catalogue(NamedTuple):
    """What a request translates and formats with: Flask-Babel's translations and locale, and
    the locale's number symbols (read once: Babel's own formatting parses its pattern per call)."""

    translations: Any
    locale: Any
    group: str
    decimal: str


def _catalogue() -> _Catalogue | None:
    """The request's :class:`_Catalogue` when texts can be translated here (a request of an app
    whose Flask-Babel is initialised), else None: English.

    Kept in ``g`` for the locale Flask-Babel resolved (its ``babel_locale``), so that a page of
    50 rows does not ask Flask-Babel again for every label (tens of microseconds each), while a
    ``force_locale`` or ``refresh`` within the request still changes the language: the cache is
    used only while Flask-Babel's resolved locale is the very object it was made for.
    """
    if flask_babel is None or not has_request_context():
        return None
    request_globals = g._get_current_object()
    cached = request_globals.__dict__.get(_CACHE_KEY)
    if cached is not None:
        resolved = getattr(request_globals.__dict__.get("_flask_babel"), "babel_locale", None)
        if cached.locale is resolved:
            return cached
    extensions = current_app.extensions
    domain = extensions.get(I18N_KEY) if "babel" in extensions else None
    if domain is None:
        return None
    locale = flask_babel.get_locale()
    cached = _Catalogue(
        domain.get_translations(),
        locale,
        babel_numbers.get_group_symbol(locale),
        babel_numbers.get_decimal_symbol(locale),
    )
    setattr(request_globals, _CACHE_KEY, cached)
    return cached


def translate(text: str) -> str:
    """``text`` in the request's language, placeholders left as they are."""
    catalogue = _catalogue()
    return str(catalogue.translations.ugettext(text)) if catalogue is not None else text


def translate_plural(singular: str, plural: str, num: int) -> str:
    """The form of ``singular``/``plural`` that fits ``num`` in the request's language,
    placeholders left as they are."""
    catalogue = _catalogue()
    if catalogue is not None:
        return str(catalogue.translations.ungettext(singular, plural, num))
    return singular if num == 1 else plural


def gettext(text: str, **variables: Any) -> str:
    """``text`` in the request's language, ``%(name)s`` placeholders filled from ``variables``."""
    translated = translate(text)
    return fill(translated, text, variables) if variables else translated


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """The form of ``singular``/``plural`` that fits ``num`` in the request's language;
    ``%(num)s`` is ``num`` formatted for the locale."""
    variables.setdefault("num", format_number(num))
    return fill(translate_plural(singular, plural, num), singular if num == 1 else plural, variables)


def fill(translated: Any, source: Any, variables: dict[str, Any]) -> Any:
    """``translated % variables``; a translation whose placeholders do not fit (a host's
    catalogue with a misspelt name or a stray ``%``) is logged and ``source`` (the text it
    translates) filled instead: never an error on the page. Both may be markup, escaped alike
    (templating.py)."""
    try:
        return translated % variables
    except (KeyError, ValueError, TypeError) as error:
        log.warning(
            "the translation %r of %r does not fit its placeholders (%r); the source text is shown",
            str(translated),
            str(source),
            error,
        )
        return source % variables


def lazy_gettext(text: str) -> Any:
    """``text`` translated each time it is shown (a Flask-Admin menu name, made once at setup);
    ``text`` itself without Flask-Babel."""
    if flask_babel is None:
        return text
    return flask_babel.LazyString(gettext, text)


def locale_name() -> str:
    """The request's language as a BCP 47 tag for the page and its script (``en``, ``fr``,
    ``de-CH``)."""
    locale = _locale()
    return str(locale).replace("_", "-") if locale is not None else "en"


def _locale() -> Any:
    catalogue = _catalogue()
    return catalogue.locale if catalogue is not None else None


def format_number(number: float) -> str:
    """``1234567`` -> ``1,234,567`` (``1 234 567`` in French, ``1.234.567`` in German)."""
    catalogue = _catalogue()
    if catalogue is None:
        return f"{number:,}"
    if isinstance(number, int):  # the common case, without Babel's pattern machinery
        return f"{number:,}".replace(",", catalogue.group)
    return str(babel_numbers.format_decimal(number, locale=catalogue.locale))


def decimal_symbol() -> str:
    """The decimal separator of the request's locale (``.``, ``,``)."""
    catalogue = _catalogue()
    return "." if catalogue is None else catalogue.decimal


def format_file_size(size: int) -> str:
    """``1536`` -> ``1.5 KB`` (``1,5 Ko`` in French), ``10485760`` -> ``10 MB``: binary
    multiples as file managers show them, three significant digits; the units are texts."""
    for unit, factor in ((N_("%(size)s GB"), 1024**3), (N_("%(size)s MB"), 1024**2), (N_("%(size)s KB"), 1024)):
        if size >= factor:
            return gettext(unit, size=f"{size / factor:.3g}".replace(".", decimal_symbol()))
    return ngettext("%(num)s byte", "%(num)s bytes", size)


#: The units of "2 min. ago", largest first: Babel's (format_timedelta), and the page script's.
AGO_UNITS = (
    ("year", 365 * 86400),
    ("month", 30 * 86400),
    ("week", 7 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
    ("second", 1),
)
_ENGLISH_UNITS = {"year": "yr.", "month": "mo.", "week": "wk.", "hour": "hr.", "minute": "min.", "second": "sec."}


def format_ago(seconds: float) -> str:
    """How long ago, short: ``just now``, ``5 sec. ago``, ``2 min. ago``, ``3 days ago``: the
    largest unit of :data:`AGO_UNITS` that fits once, counted down (the page script keeps it
    fresh by the same rule, in the browser's Intl.RelativeTimeFormat: the same CLDR words)."""
    seconds = max(0, int(seconds))
    if seconds < 10:
        return gettext("just now")
    unit, size = next((unit, size) for unit, size in AGO_UNITS if seconds >= size)
    count = seconds // size
    locale = _locale()
    if locale is not None:
        return _ago_text(locale, count, unit, size)
    if unit == "day":
        return f"{count} day ago" if count == 1 else f"{count} days ago"
    return f"{count} {_ENGLISH_UNITS[unit]} ago"


@functools.lru_cache(maxsize=1024)
def _ago_text(locale: Any, count: int, unit: str, size: int) -> str:
    """Babel's words for ``count`` ``unit`` ago (kept: a list writes the same few many times)."""
    return str(
        babel_dates.format_timedelta(
            timedelta(seconds=-count * size), add_direction=True, format="short", threshold=1, locale=locale
        )
    )


def format_local_time(value: datetime, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """``value`` (aware, already in the viewer's zone) as the request's language writes a date
    and time, with the zone's abbreviation: ISO 8601's order in English (``2026-03-29 10:00:00
    CEST``: one reading for every English-speaking country), the locale's medium format
    elsewhere (``29 mars 2026, 10:00:00 CEST``). ``fmt`` "%H:%M" asks for the time alone (the
    locale's short time)."""
    locale = _locale()
    zone = value.strftime("%Z")
    if locale is None or locale.language == "en":
        return f"{value.strftime(fmt)} {zone}".rstrip()
    time_only = fmt == "%H:%M"
    template = _datetime_template(locale, time_only)
    if template is not None:
        text = template.render(value)
    elif time_only:
        text = babel_dates.format_time(value, "short", locale=locale)
    else:
        text = babel_dates.format_datetime(value, "medium", locale=locale)
    return f"{text} {zone}".rstrip()


class _DatetimeTemplate(NamedTuple):
    """A locale's date and time pattern, parsed once, for the fields most patterns use: Babel's
    ``format_datetime`` parses and walks its pattern on every call (about a tenth of a
    millisecond: a list of 50 jobs writes 100 times). ``tests/web/test_translations.py``
    compares both on many locales."""

    format: str
    months: tuple[str, ...]
    am_pm: tuple[str, str]

    def render(self, value: datetime) -> str:
        hour12 = value.hour % 12 or 12
        return self.format % {
            "d": value.day,
            "dd": f"{value.day:02d}",
            "M": value.month,
            "MM": f"{value.month:02d}",
            "MMM": self.months[value.month - 1],
            "y": value.year,
            "yyyy": f"{value.year:04d}",
            "H": value.hour,
            "HH": f"{value.hour:02d}",
            "h": hour12,
            "hh": f"{hour12:02d}",
            "m": value.minute,
            "mm": f"{value.minute:02d}",
            "s": value.second,
            "ss": f"{value.second:02d}",
            "a": self.am_pm[value.hour >= 12],
        }


_TEMPLATE_FIELDS = frozenset(
    {"d", "dd", "M", "MM", "MMM", "y", "yyyy", "H", "HH", "h", "hh", "m", "mm", "s", "ss", "a"}
)


@functools.lru_cache(maxsize=64)
def _datetime_template(locale: Any, time_only: bool) -> _DatetimeTemplate | None:
    """The medium date and time (or the short time) of ``locale`` as a template, or None when
    its pattern has a field :class:`_DatetimeTemplate` does not fill (Babel then writes it)."""
    time = babel_dates.get_time_format("short" if time_only else "medium", locale).pattern
    if time_only:
        pattern = time
    else:
        date = babel_dates.get_date_format("medium", locale).pattern
        pattern = str(babel_dates.get_datetime_format("medium", locale)).replace("{1}", date).replace("{0}", time)
    template = str(babel_dates.parse_pattern(pattern).format)  # "%(d)s %(MMM)s %(y)s"
    if not set(re.findall(r"%\((\w+)\)s", template)) <= _TEMPLATE_FIELDS:
        return None
    months = locale.months["format"]["abbreviated"]
    periods = locale.day_periods["format"]["abbreviated"]
    return _DatetimeTemplate(template, tuple(months[number] for number in range(1, 13)), (periods["am"], periods["pm"]))


def language_name(code: str) -> str:
    """``fr`` -> ``Français``: a language named in itself, for a language switch."""
    if flask_babel is None:
        return code
    return str(Locale.parse(code).get_display_name(code)).capitalize()
