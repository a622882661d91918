"""Security headers of the package's own answers: its admin pages, JSON, downloads and static files.

The pages are built to satisfy a strict Content-Security-Policy (``script-src 'self';
style-src 'self'``): no inline script, no ``on...=`` handler, no ``style=`` attribute, in the
pages and in the HTML parts the live refresh swaps in. Confirm questions are ``data-jm-confirm``
attributes that ``jobmonitor.js`` asks, and a progress bar's width is a ``jm-w-<percent>``
class of ``jobmonitor.css``, so the bar is right at first paint without any script.

Rules kept here:

- Only the package's answers get the headers (the blueprints of its views and of its JSON call
  :func:`add_security_headers`); the host's other pages are the host's business.
- A header the host already set on the answer is kept, never replaced.
- ``X-Frame-Options`` follows the policy's ``frame-ancestors``, so the two never disagree:
  ``'none'`` (or no policy) is DENY, ``'self'`` is SAMEORIGIN, a list of hosts sends none
  (browsers that know CSP obey ``frame-ancestors`` and ignore it anyway).
"""

from __future__ import annotations

from werkzeug.wrappers import Response

from ..config import Settings
from ..state import get_state

#: Sent with every answer: no referrer leaves the site (job ids and filters are in the paths),
#: and no answer is sniffed into another type (a downloaded CSV read as HTML).
FIXED_HEADERS = {
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def security_headers(settings: Settings) -> dict[str, str]:
    """The headers the package's answers carry under ``settings`` (none when switched off)."""
    if not settings.security_headers:
        return {}
    headers = dict(FIXED_HEADERS)
    policy = settings.content_security_policy
    if policy is not None:
        headers["Content-Security-Policy"] = policy
    frame_options = _frame_options(policy)
    if frame_options is not None:
        headers["X-Frame-Options"] = frame_options
    return headers


def add_security_headers(response: Response) -> Response:
    """``after_request`` hook of the package's blueprints: add each header the answer lacks."""
    for name, value in security_headers(get_state().settings).items():
        if name not in response.headers:
            response.headers[name] = value
    return response


def _frame_options(policy: str | None) -> str | None:
    """The X-Frame-Options that says what the policy's ``frame-ancestors`` says."""
    sources = None
    for directive in (policy or "").split(";"):
        name, _, value = directive.strip().partition(" ")
        if name.lower() == "frame-ancestors":
            sources = value.split()
            break
    if sources is None or sources == ["'none'"]:
        return "DENY"
    if sources == ["'self'"]:
        return "SAMEORIGIN"
    return None
