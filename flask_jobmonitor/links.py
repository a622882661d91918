"""Where the package sends a browser or points a link: the one check for each.

Two rules, kept here and nowhere else:

* A redirect to a ``next`` or "come back to" value given by the request follows it only if it
  is a path of this site (:func:`same_site_path`). The value is read as a browser would read a
  ``Location`` header: browsers drop tabs and line breaks and read ``\\`` as ``/``, so
  ``/\\t/evil.example`` and ``/\\evil.example`` both mean ``//evil.example``, another site.
  Anything that is not plainly ``/path?query`` is refused: control and invisible characters,
  backslashes, a scheme or a host, a path that starts with ``//`` once percent-decoded.
* "The page where a job was run" (``Job.run_at_url``) is stored as a path of this site, or as an
  http(s) URL only when its host is one of ``JOBMONITOR_RUN_AT_HOSTS``
  (:func:`run_at_link`). The host of an absolute URL is otherwise dropped, because in a request
  it comes from the ``Host`` and ``Referer`` headers, which the sender chooses. A page shows the
  link only if it passes the same check again (:func:`shown_run_at_link`), so rows stored by an
  older version cannot put a ``javascript:`` link on a page.

No Flask here: the functions take plain values, so the worker side (``enqueue``) and the web
side use the same code.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import UnsafeLink

#: Longest ``next`` or run-at value followed or stored (``Job.run_at_url`` is a 2048 column).
MAX_LENGTH = 2048

#: Unicode categories that never belong in a link a person or a redirect follows: controls,
#: invisible formatting (zero-width, bidi overrides), separators (non-breaking and other spaces),
#: unassigned and private-use characters.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def same_site_path(value: str | None, default: str) -> str:
    """``value`` if it is a path of this site (``/...``, never ``//host``), else ``default``.

    The one check for every ``next`` and "return to" value the package or the example app
    follows after a login, an action or a bulk action (see the module docstring).
    """
    if isinstance(value, str) and _is_same_site_path(value):
        return value
    return default


def _is_same_site_path(value: str) -> bool:
    if not value.startswith("/") or len(value) > MAX_LENGTH or not _plain(value):
        return False
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return False
    # decoded (as a server behind a proxy, or a later redirect, may read it): still one leading /
    path = parts.path
    for _ in range(3):
        if path.startswith("//") or not _plain(path):
            return False
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    else:
        return False  # encoded more than three times over: nobody's real path
    return True


def _plain(text: str) -> bool:
    """No backslash, no control, invisible or space character of any alphabet (but the plain
    space, which browsers keep inside a path), and nothing that reads as ``\\`` or ``//`` once
    compatibility characters (the fullwidth solidus and reverse solidus) are folded."""
    if "\\" in text or any(ch != " " and unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in text):
        return False
    folded = unicodedata.normalize("NFKC", text)
    return "\\" not in folded and not folded.startswith("//")


def run_at_link(value: str | None, allowed_hosts: Collection[str]) -> str | None:
    """The form of ``value`` kept as "the page where it was run", or None for no value.

    A path of this site is kept; an http(s) URL whose host is in ``allowed_hosts`` is kept as it
    is; any other http(s) URL keeps only its path and query (its host may come from the sender's
    ``Host`` header). Raises :class:`UnsafeLink` for anything else: another scheme
    (``javascript:``, ``data:``), a path that leaves the site, control characters.
    """
    if not value:
        return None
    if not isinstance(value, str) or not _plain(value):
        raise UnsafeLink("the page where a job was run must be a path of this site or an http(s) URL")
    if value.startswith("/"):
        if not _is_same_site_path(value):
            raise UnsafeLink("the page where a job was run must be a path of this site, not another site's")
        return value[:MAX_LENGTH]
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise UnsafeLink("the page where a job was run is not a URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise UnsafeLink("the page where a job was run must be a path of this site or an http(s) URL")
    if _host_allowed(host, allowed_hosts) and parts.username is None and len(value) <= MAX_LENGTH:
        return value  # never with a user name or password in it: kept whole, it would be shown
    path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    if not _is_same_site_path(path):
        raise UnsafeLink("the page where a job was run must be a path of this site, not another site's")
    return path[:MAX_LENGTH]


def shown_run_at_link(value: str | None, allowed_hosts: Collection[str]) -> str | None:
    """``value`` if a page may show it as a link (a path of this site, or an http(s) URL of an
    allowed host, exactly as stored), else None."""
    try:
        return value if value and run_at_link(value, allowed_hosts) == value else None
    except UnsafeLink:
        return None


def _host_allowed(host: str, allowed_hosts: Collection[str]) -> bool:
    return host.lower().rstrip(".") in allowed_hosts
