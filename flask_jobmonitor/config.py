"""Every ``JOBMONITOR_*`` setting, its default, and the check that rejects a value that cannot work.

``init_app`` copies the defaults into ``app.config`` with ``setdefault`` (so ``flask config``
style introspection shows them) and then reads them once into a frozen :class:`Settings`.
A bad value fails at start-up with :class:`~flask_jobmonitor.errors.ConfigError` naming the
key, rather than later inside a worker.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from croniter import croniter

from .errors import ConfigError
from .i18n import N_
from .records.status import JobStatus
from .timeutil import as_zone

DEFAULTS: dict[str, Any] = {
    # Redis that RQ uses. Jobs are executed through it; nothing a person sees lives only there.
    "JOBMONITOR_REDIS_URL": "redis://127.0.0.1:6379/0",
    # RQ queue per priority. Workers listen to them in this order: high, then default, then low.
    "JOBMONITOR_QUEUE_NAMES": {"high": "jobmonitor-high", "default": "jobmonitor", "low": "jobmonitor-low"},
    # Folder for input/output files of the default local storage; None: <instance_path>/jobmonitor-files.
    "JOBMONITOR_STORAGE_PATH": None,
    # Most bytes the input files given to one job may hold together (an upload past it is
    # refused with FileTooLarge, a 413, and nothing is stored); None: no limit.
    "JOBMONITOR_MAX_UPLOAD_BYTES": 10 * 1024 * 1024,
    # Seconds between two database writes of a running job's progress, subtasks and logs.
    "JOBMONITOR_FLUSH_INTERVAL": 0.5,
    # Seconds between two looks of a running job at its stop/pause signal (a Redis GET).
    "JOBMONITOR_STOP_CHECK_INTERVAL": 0.25,
    # Seconds without a heartbeat after which a running job counts as abandoned by its worker.
    "JOBMONITOR_ABANDONED_AFTER": 30,
    # How often recovery queues a resumable job again after its worker died, before failing it
    # (pauses for deploys and resumes by people do not count).
    "JOBMONITOR_MAX_RECOVERIES": 3,
    # Children of one root job that may be queued or running at once (fair share of workers).
    "JOBMONITOR_CHILDREN_IN_FLIGHT": 4,
    # On a warm shutdown, seconds a worker waits for a job that cannot pause before giving it up.
    "JOBMONITOR_SHUTDOWN_GRACE": 60,
    # Seconds a running job keeps retrying its writes while the database is unreachable.
    "JOBMONITOR_DB_RETRY_SECONDS": 60,
    # Finished jobs older than this many days are deleted by the daily retention job.
    "JOBMONITOR_RETENTION_DAYS": 90,
    # Entries of the audit trail older than this many days are deleted by the retention job
    # (and `flask jobmonitor cleanup`); None keeps them for ever.
    "JOBMONITOR_AUDIT_RETENTION_DAYS": 400,
    # Cron expression (UTC) of the daily retention job; None switches it off.
    "JOBMONITOR_RETENTION_CRON": "17 3 * * *",
    # Queue health warns when the oldest queued job has waited longer than this (seconds).
    "JOBMONITOR_WAIT_WARNING_SECONDS": 300,
    # Buffered subtasks or log lines that force a write before the interval is up.
    "JOBMONITOR_FLUSH_MAX_ROWS": 2000,
    # RQ timeout of one job run, in seconds; RQ kills a run that takes longer.
    "JOBMONITOR_JOB_TIMEOUT": 24 * 3600,
    # How long RQ keeps its own copy of a finished job; the SQL record is kept regardless.
    "JOBMONITOR_RQ_RESULT_TTL": 3600,
    # Lowest level of log records captured into a job's log.
    "JOBMONITOR_LOG_LEVEL": "INFO",
    # Milliseconds a SQLite writer waits for another writer before "database is locked".
    "JOBMONITOR_SQLITE_BUSY_TIMEOUT_MS": 30000,
    # Callable (user, permission name) -> bool deciding every permission; None: see permissions.py.
    "JOBMONITOR_PERMISSION_CHECKER": None,
    # Role name -> permission names, used when users have roles and no checker is set; None: admin has all.
    "JOBMONITOR_ROLE_PERMISSIONS": None,
    # Flask-Admin menu category of the job pages (looked up in the catalogues, as every label).
    "JOBMONITOR_ADMIN_CATEGORY": N_("Activity"),
    # Seconds between two live refreshes of the list and detail pages.
    "JOBMONITOR_REFRESH_INTERVAL": 3,
    # URL prefix of the JSON endpoints, downloads and static files.
    "JOBMONITOR_URL_PREFIX": "/jobmonitor",
    # Tabs of the job list: job category -> label (an "All" tab comes first).
    "JOBMONITOR_CATEGORIES": {"general": "General", "import": "Imports", "export": "Exports"},
    # Flash "job started" when a job is enqueued during a request.
    "JOBMONITOR_FLASH_ON_ENQUEUE": True,
    # Notify a user of each child job's end too; False: one notification per family, when it ends.
    "JOBMONITOR_NOTIFY_CHILDREN": False,
    # Let people stop and force stop system jobs (scheduled maintenance and the like).
    "JOBMONITOR_SYSTEM_JOBS_STOPPABLE": False,
    # Keep the statistics of closed hours and days in jobmonitor_stats_bucket, so that long
    # ranges stay fast; False computes every page from the jobs themselves.
    "JOBMONITOR_STATS_CACHE": True,
    # Status -> the word people see for it (badges, the status filter, notifications, the JSON's
    # status_label), e.g. {"running": "In progress", "queued": "Pending"}; others keep theirs.
    "JOBMONITOR_STATUS_LABELS": {},
    # Directories of the host's own catalogues for the domain "flask_jobmonitor"
    # (<dir>/<lang>/LC_MESSAGES/flask_jobmonitor.mo), relative to the app's root_path or absolute:
    # a language the package does not ship, or texts renamed in any language (i18n.py).
    "JOBMONITOR_TRANSLATION_DIRECTORIES": [],
    # Hosts whose http(s) URLs are kept whole as "the page where a job was run", e.g.
    # ["shop.example.com"]; any other URL keeps only its path and query (links.py).
    "JOBMONITOR_RUN_AT_HOSTS": [],
    # Time zone the pages show times in and count days and hours in (the list's date filters,
    # the statistics' buckets): an IANA name such as "Europe/Paris". Stored times stay UTC.
    "JOBMONITOR_TIMEZONE": "UTC",
    # Callable () -> zone name, tzinfo or None, called once per request to pick the viewer's own
    # zone (like Flask-Babel's timezone selector); None, or a None answer: JOBMONITOR_TIMEZONE.
    # The same as decorating a function with @jobmonitor.timezone_selector.
    "JOBMONITOR_TIMEZONE_SELECTOR": None,
    # Authorization schemes of machine clients (API tokens): a request whose user the host's
    # request_loader found, with no cookie and one of these schemes, needs no CSRF token.
    "JOBMONITOR_TOKEN_SCHEMES": ["Bearer"],
    # Serve Prometheus metrics at <prefix>/metrics (needs prometheus_client: the extra "metrics")
    # and count job starts and ends for them in Redis (stats/metrics.py).
    "JOBMONITOR_METRICS": False,
    # A secret a scraper sends as "Authorization: Bearer <token>" (at least 16 characters); None:
    # only users holding jobmonitor.view_statistics may read the metrics.
    "JOBMONITOR_METRICS_TOKEN": None,
    # Send the security headers below (and nosniff, X-Frame-Options, Referrer-Policy) on the
    # package's pages, JSON, downloads and static files; a header the host already set is kept.
    "JOBMONITOR_SECURITY_HEADERS": True,
    # Content-Security-Policy of those answers; None sends none. The pages need nothing more:
    # no inline script or style, everything from this site (headers.py).
    "JOBMONITOR_CONTENT_SECURITY_POLICY": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
    ),
}


@dataclass(frozen=True)
class Settings:
    """The validated settings of one app."""

    redis_url: str
    queue_names: Mapping[str, str]
    storage_path: str
    max_upload_bytes: int | None
    flush_interval: float
    abandoned_after: float
    max_recoveries: int
    children_in_flight: int
    shutdown_grace: float
    db_retry_seconds: float
    retention_days: int
    retention_cron: str | None
    audit_retention_days: int | None
    wait_warning_seconds: float
    stop_check_interval: float
    flush_max_rows: int
    job_timeout: int
    rq_result_ttl: int
    log_level: int
    sqlite_busy_timeout_ms: int
    permission_checker: Callable[[Any, str], bool] | None
    role_permissions: Mapping[str, Any] | None
    admin_category: str | None
    refresh_interval: float
    url_prefix: str
    categories: Mapping[str, str]
    flash_on_enqueue: bool
    stats_cache: bool
    status_labels: Mapping[str, str]
    translation_directories: tuple[str, ...]
    notify_children: bool
    system_jobs_stoppable: bool
    run_at_hosts: frozenset[str]
    security_headers: bool
    content_security_policy: str | None
    timezone: tzinfo
    timezone_selector: Callable[[], Any] | None
    metrics: bool = False
    metrics_token: str | None = None
    token_schemes: frozenset[str] = frozenset({"bearer"})

    @property
    def queues_in_priority_order(self) -> list[str]:
        """RQ queue names from the most to the least urgent, as a worker should listen to them."""
        return [self.queue_names["high"], self.queue_names["default"], self.queue_names["low"]]


def apply_defaults(config: dict[str, Any]) -> None:
    """Fill in every setting the host did not set."""
    for key, value in DEFAULTS.items():
        # a copy: an app that changes its queue names must not change every later app's default
        config.setdefault(key, copy.deepcopy(value))


def _positive(key: str, value: Any, kind: Callable[[Any], Any]) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{key} must be a finite number greater than zero, got {value!r}")
    return number


def _log_level(value: Any) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(str(value).upper())
    if not isinstance(level, int):
        raise ConfigError(f"JOBMONITOR_LOG_LEVEL must be a logging level name or number, got {value!r}")
    return level


def _queue_names(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or set(value) != {"high", "default", "low"}:
        raise ConfigError(
            f"JOBMONITOR_QUEUE_NAMES must map exactly 'high', 'default' and 'low' to RQ queue names, got {value!r}"
        )
    names = [value["high"], value["default"], value["low"]]
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != 3:
        raise ConfigError(f"JOBMONITOR_QUEUE_NAMES needs three different non-empty names, got {value!r}")
    return dict(value)


def read_settings(config: Mapping[str, Any], instance_path: str, root_path: str = "") -> Settings:
    """Validate the app's ``JOBMONITOR_*`` values and return them as :class:`Settings`
    (``root_path``: the app's, which relative translation directories start from)."""
    redis_url = config["JOBMONITOR_REDIS_URL"]
    if not isinstance(redis_url, str) or not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"JOBMONITOR_REDIS_URL must be a redis://, rediss:// or unix:// URL, got {redis_url!r}")
    storage_path = config["JOBMONITOR_STORAGE_PATH"] or os.path.join(instance_path, "jobmonitor-files")
    return Settings(
        redis_url=redis_url,
        queue_names=_queue_names(config["JOBMONITOR_QUEUE_NAMES"]),
        storage_path=os.fspath(storage_path),
        max_upload_bytes=_positive_int_or_none("JOBMONITOR_MAX_UPLOAD_BYTES", config["JOBMONITOR_MAX_UPLOAD_BYTES"]),
        flush_interval=_positive("JOBMONITOR_FLUSH_INTERVAL", config["JOBMONITOR_FLUSH_INTERVAL"], float),
        abandoned_after=_positive("JOBMONITOR_ABANDONED_AFTER", config["JOBMONITOR_ABANDONED_AFTER"], float),
        max_recoveries=_non_negative_int("JOBMONITOR_MAX_RECOVERIES", config["JOBMONITOR_MAX_RECOVERIES"]),
        children_in_flight=_positive("JOBMONITOR_CHILDREN_IN_FLIGHT", config["JOBMONITOR_CHILDREN_IN_FLIGHT"], int),
        shutdown_grace=_positive("JOBMONITOR_SHUTDOWN_GRACE", config["JOBMONITOR_SHUTDOWN_GRACE"], float),
        db_retry_seconds=_positive("JOBMONITOR_DB_RETRY_SECONDS", config["JOBMONITOR_DB_RETRY_SECONDS"], float),
        retention_days=_positive("JOBMONITOR_RETENTION_DAYS", config["JOBMONITOR_RETENTION_DAYS"], int),
        retention_cron=_cron_or_none("JOBMONITOR_RETENTION_CRON", config["JOBMONITOR_RETENTION_CRON"]),
        audit_retention_days=_positive_int_or_none(
            "JOBMONITOR_AUDIT_RETENTION_DAYS", config["JOBMONITOR_AUDIT_RETENTION_DAYS"], "days"
        ),
        wait_warning_seconds=_positive(
            "JOBMONITOR_WAIT_WARNING_SECONDS", config["JOBMONITOR_WAIT_WARNING_SECONDS"], float
        ),
        stop_check_interval=_positive(
            "JOBMONITOR_STOP_CHECK_INTERVAL", config["JOBMONITOR_STOP_CHECK_INTERVAL"], float
        ),
        flush_max_rows=_positive("JOBMONITOR_FLUSH_MAX_ROWS", config["JOBMONITOR_FLUSH_MAX_ROWS"], int),
        job_timeout=_positive("JOBMONITOR_JOB_TIMEOUT", config["JOBMONITOR_JOB_TIMEOUT"], int),
        rq_result_ttl=_positive("JOBMONITOR_RQ_RESULT_TTL", config["JOBMONITOR_RQ_RESULT_TTL"], int),
        log_level=_log_level(config["JOBMONITOR_LOG_LEVEL"]),
        sqlite_busy_timeout_ms=_positive(
            "JOBMONITOR_SQLITE_BUSY_TIMEOUT_MS", config["JOBMONITOR_SQLITE_BUSY_TIMEOUT_MS"], int
        ),
        permission_checker=_callable_or_none("JOBMONITOR_PERMISSION_CHECKER", config["JOBMONITOR_PERMISSION_CHECKER"]),
        role_permissions=_mapping_or_none("JOBMONITOR_ROLE_PERMISSIONS", config["JOBMONITOR_ROLE_PERMISSIONS"]),
        admin_category=config["JOBMONITOR_ADMIN_CATEGORY"] or None,
        refresh_interval=_positive("JOBMONITOR_REFRESH_INTERVAL", config["JOBMONITOR_REFRESH_INTERVAL"], float),
        url_prefix=_url_prefix(config["JOBMONITOR_URL_PREFIX"]),
        categories=_mapping_or_none("JOBMONITOR_CATEGORIES", config["JOBMONITOR_CATEGORIES"]) or {},
        flash_on_enqueue=bool(config["JOBMONITOR_FLASH_ON_ENQUEUE"]),
        stats_cache=bool(config["JOBMONITOR_STATS_CACHE"]),
        status_labels=_status_labels(config["JOBMONITOR_STATUS_LABELS"]),
        translation_directories=_directories(
            "JOBMONITOR_TRANSLATION_DIRECTORIES", config["JOBMONITOR_TRANSLATION_DIRECTORIES"], root_path
        ),
        notify_children=_bool("JOBMONITOR_NOTIFY_CHILDREN", config["JOBMONITOR_NOTIFY_CHILDREN"]),
        system_jobs_stoppable=_bool("JOBMONITOR_SYSTEM_JOBS_STOPPABLE", config["JOBMONITOR_SYSTEM_JOBS_STOPPABLE"]),
        run_at_hosts=_host_names("JOBMONITOR_RUN_AT_HOSTS", config["JOBMONITOR_RUN_AT_HOSTS"]),
        security_headers=_bool("JOBMONITOR_SECURITY_HEADERS", config["JOBMONITOR_SECURITY_HEADERS"]),
        metrics=_bool("JOBMONITOR_METRICS", config["JOBMONITOR_METRICS"]),
        metrics_token=_metrics_token(config["JOBMONITOR_METRICS_TOKEN"]),
        token_schemes=_token_schemes(config["JOBMONITOR_TOKEN_SCHEMES"]),
        content_security_policy=_policy_or_none(config["JOBMONITOR_CONTENT_SECURITY_POLICY"]),
        timezone=_zone("JOBMONITOR_TIMEZONE", config["JOBMONITOR_TIMEZONE"]),
        timezone_selector=_selector_or_none("JOBMONITOR_TIMEZONE_SELECTOR", config["JOBMONITOR_TIMEZONE_SELECTOR"]),
    )


#: Schemes a browser sends by itself (from its cache, or single sign-on): never a token's.
AMBIENT_SCHEMES = frozenset({"basic", "digest", "negotiate", "ntlm"})


def _token_schemes(value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ConfigError(f"JOBMONITOR_TOKEN_SCHEMES must be a list of scheme names such as ['Bearer'], got {value!r}")
    schemes = frozenset(str(scheme).lower() for scheme in value)
    if any(not scheme.isalnum() for scheme in schemes) or schemes & AMBIENT_SCHEMES:
        raise ConfigError(
            "JOBMONITOR_TOKEN_SCHEMES names Authorization schemes of API tokens (letters and digits); "
            f"{', '.join(sorted(AMBIENT_SCHEMES))} are sent by browsers on their own and cannot be one, got {value!r}"
        )
    return schemes


def _metrics_token(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) < 16 or value != value.strip():
        raise ConfigError(
            "JOBMONITOR_METRICS_TOKEN must be a secret of at least 16 characters (no spaces around), or None"
        )
    return value


def _bool(key: str, value: Any) -> bool:
    """True or False only: a string such as "false" from an environment variable would be true."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be True or False, got {value!r}")
    return value


def _non_negative_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} must be a whole number of at least 0, got {value!r}")
    return value


def _positive_int_or_none(key: str, value: Any, unit: str = "bytes") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a whole number of {unit} greater than zero, or None, got {value!r}")
    return value


def _cron_or_none(key: str, value: Any) -> str | None:
    if not value:
        return None
    if not isinstance(value, str) or not croniter.is_valid(value):
        raise ConfigError(f"{key} must be a cron expression like '17 3 * * *' or None, got {value!r}")
    return value


def _callable_or_none(key: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise ConfigError(f"{key} must be a callable (user, permission) -> bool or None, got {value!r}")
    return value


def _zone(key: str, value: Any) -> tzinfo:
    """An IANA zone name (or a tzinfo), checked against the machine's zone database now rather
    than on the first page view."""
    try:
        return as_zone(value)
    except ValueError as error:
        raise ConfigError(f"{key}: {error}") from None


def _selector_or_none(key: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise ConfigError(f"{key} must be a callable () -> zone name, tzinfo or None, or None; got {value!r}")
    return value


def _mapping_or_none(key: str, value: Any) -> Any:
    if value is not None and not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping or None, got {value!r}")
    return None if value is None else dict(value)


def _status_labels(value: Any) -> Mapping[str, str]:
    key = "JOBMONITOR_STATUS_LABELS"
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must map statuses to labels, e.g. {{'running': 'In progress'}}, got {value!r}")
    known = [status.value for status in JobStatus]
    unknown = [status for status in value if status not in known]
    if unknown:
        raise ConfigError(f"{key} names unknown statuses {unknown!r}; the statuses are {', '.join(known)}")
    for status, label in value.items():
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"{key}[{status!r}] must be a non-empty text, got {label!r}")
    return {status: label.strip() for status, label in value.items()}


def _directories(key: str, value: Any, root_path: str) -> tuple[str, ...]:
    """Existing directories, relative ones taken from ``root_path``."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Collection):
        raise ConfigError(f"{key} must be a list of directories, e.g. ['translations'], got {value!r}")
    found = []
    for entry in value:
        if not isinstance(entry, (str, os.PathLike)) or not str(entry).strip():
            raise ConfigError(f"{key} must hold directory paths, got {entry!r}")
        path = os.path.join(root_path, os.fspath(entry))
        if not os.path.isdir(path):
            raise ConfigError(f"{key}: {path} is not a directory")
        found.append(path)
    return tuple(found)


def _host_names(key: str, value: Any) -> frozenset[str]:
    """Bare host names (``shop.example.com``), lower case: no scheme, port, path or wildcard."""
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, Collection):
        raise ConfigError(f"{key} must be a list of host names, e.g. ['shop.example.com'], got {value!r}")
    for host in value:
        if not isinstance(host, str) or not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", host):
            raise ConfigError(f"{key} must hold bare host names such as 'shop.example.com', got {host!r}")
    return frozenset(host.lower() for host in value)


def _policy_or_none(value: Any) -> str | None:
    """A Content-Security-Policy header value: one line of ``directive value; ...``, or None."""
    key = "JOBMONITOR_CONTENT_SECURITY_POLICY"
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(f"{key} must be one line such as \"default-src 'self'\", or None, got {value!r}")
    return value.strip()


def _url_prefix(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/") or value.endswith("/"):
        raise ConfigError(f"JOBMONITOR_URL_PREFIX must start with / and not end with /, got {value!r}")
    return value
