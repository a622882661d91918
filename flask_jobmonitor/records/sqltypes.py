"""Column types that mean the same on SQLite, PostgreSQL and MySQL/MariaDB.

Shared by the models and the migrations (which must build the very same columns), so each
type is said once. Rules:

* **Timestamp**: naive UTC ``DATETIME``; on MySQL/MariaDB with microseconds (``DATETIME(6)``),
  since a plain ``DATETIME`` there keeps whole seconds and the lists' keyset order
  ``(created_at, id)`` and every "newer than" comparison need what the other databases keep.
* **LongText**: text with no practical limit. MySQL/MariaDB's ``TEXT`` stops at 64 KiB and
  refuses more in strict mode; a traceback or a log line may be longer, so there it is
  ``MEDIUMTEXT`` (16 MiB).
* **JSONType**: JSON that PostgreSQL can index and search (``JSONB``); JSON text elsewhere
  (MariaDB's ``JSON`` is ``LONGTEXT`` checked by ``JSON_VALID``).
* **BigIntId**: 64-bit ids for the big tables; SQLite only auto-increments an
  ``INTEGER PRIMARY KEY``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from .dialects import MYSQL_DIALECTS

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), *sorted(MYSQL_DIALECTS))
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), *sorted(MYSQL_DIALECTS))
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
