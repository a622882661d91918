"""``GET <prefix>/metrics``: the Prometheus metrics of stats/metrics.py, in Prometheus' text format.

Rules: it answers 404 unless ``JOBMONITOR_METRICS`` is on. A scraper sends
``Authorization: Bearer <JOBMONITOR_METRICS_TOKEN>`` (compared in constant time); otherwise
the user Flask-Login finds (a session, or the host's ``request_loader``) must hold
``jobmonitor.view_statistics``, as for the queue health page. Anyone else gets 401 (with
``WWW-Authenticate``) or 403 and not a single figure. Each scrape builds its own registry: the
host's global ``prometheus_client`` registry is left alone (register
:class:`~flask_jobmonitor.stats.metrics.JobMonitorCollector` there to serve both at one URL).
"""

from __future__ import annotations

import hmac

from flask import Response, abort, request

from ..i18n import gettext
from ..state import get_state
from ..stats.metrics import JobMonitorCollector
from .requests import current_user

try:
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder
except ImportError:  # optional dependency (extra "metrics"): the view answers 404 without it
    CollectorRegistry = None  # type: ignore[assignment,misc]


def metrics() -> Response:
    state = get_state()
    if not state.settings.metrics or CollectorRegistry is None:
        abort(404)
    if not _token_matches(state.settings.metrics_token):
        permissions = state.permissions
        user = current_user()
        if not permissions.can_view_statistics(user):
            if permissions.is_authenticated(user):
                abort(403, description=gettext("you may not read the metrics"))
            refused = Response(gettext("send the metrics token, or log in") + "\n", status=401, mimetype="text/plain")
            refused.headers["WWW-Authenticate"] = 'Bearer realm="jobmonitor metrics"'
            abort(refused)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobMonitorCollector(state.app))
    # the format the scraper asks for (Accept): Prometheus' text format, or OpenMetrics
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encoder(registry), mimetype=None)
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    return response


def _token_matches(token: str | None) -> bool:
    if token is None:
        return False
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())
