"""The servers the tests use, read from the environment once.

Redis comes from ``JOBMONITOR_TEST_REDIS_URL`` (default: database 15 on 127.0.0.1:6379); the
reliability tests use ``JOBMONITOR_TEST_RELIABILITY_REDIS_URL`` (default: database 14 of the
same server) and the browser tests ``JOBMONITOR_BROWSER_REDIS_URL`` (default: database 13).
PostgreSQL is ``JOBMONITOR_TEST_DATABASE_URL`` (default: the ``jobmonitor_test`` database on
127.0.0.1:5432); ``JOBMONITOR_REQUIRE_POSTGRES=1`` turns a missing server into a failure.
MariaDB (or MySQL) is ``JOBMONITOR_TEST_MARIADB_URL`` (default: ``jobmonitor_test`` on
127.0.0.1:3306 as root, no password); ``JOBMONITOR_REQUIRE_MARIADB=1`` likewise.
"""

from __future__ import annotations

import os

REDIS_URL = os.environ.get("JOBMONITOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BROWSER_REDIS_URL = os.environ.get("JOBMONITOR_BROWSER_REDIS_URL", "redis://127.0.0.1:6379/13")
POSTGRES_URL = os.environ.get(
    "JOBMONITOR_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/jobmonitor_test"
)
REQUIRE_POSTGRES = os.environ.get("JOBMONITOR_REQUIRE_POSTGRES") == "1"
MARIADB_URL = os.environ.get(
    "JOBMONITOR_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/jobmonitor_test?charset=utf8mb4"
)
REQUIRE_MARIADB = os.environ.get("JOBMONITOR_REQUIRE_MARIADB") == "1"


def reliability_redis_url(redis_url: str) -> str:
    """The Redis database of the reliability tests: ``JOBMONITOR_TEST_RELIABILITY_REDIS_URL``,
    else database 14 of ``redis_url``'s server."""
    configured = os.environ.get("JOBMONITOR_TEST_RELIABILITY_REDIS_URL")
    if configured:
        return configured
    base, _, _database = redis_url.rpartition("/")
    return f"{base}/14"
