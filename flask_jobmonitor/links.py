"""Where the package sends a browser: the one check, kept here and nowhere else.

* A redirect to a ``next`` or "come back to" value given by the request follows it only if it
  is a path of this site (:func:`same_site_path`). The value is read as a browser would read a
  ``Location`` header: browsers drop tabs and line breaks and read ``\\`` as ``/``, so
  ``/\\t/evil.example`` and ``/\\evil.example`` both mean ``//evil.example``, another site.
  Anything that is not plainly ``/path?query`` is refused: control and invisible characters,
  backslashes, a scheme or a host, a path that starts with ``//`` once percent-decoded.

No Flask here: the functions take plain values.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

#: Longest ``next`` value followed.
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
