"""Where job files live. The default keeps them in a local folder; any object with the same
methods (S3, a shared volume, a database) can replace it.

Keys are generated here (``<job id>/<random hex>``), never taken from a request or from the
file's own name, so a filename like ``../../etc/passwd`` is only ever a label in the database.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from typing import IO, Protocol, runtime_checkable

from .errors import StorageError

_KEY_PATTERN = re.compile(r"^[0-9a-f-]{36}/[0-9a-f]{32}$")
_CHUNK = 1024 * 1024


@runtime_checkable
class Storage(Protocol):
    """What the extension needs from a file store."""

    def save(self, job_id: str, data: bytes | IO[bytes]) -> tuple[str, int]:
        """Store ``data`` for ``job_id``; return the generated key and the size in bytes."""

    def open(self, key: str) -> IO[bytes]:
        """Open a stored file for reading."""

    def delete(self, key: str) -> None:
        """Remove a stored file; a missing file is not an error."""

    def delete_job(self, job_id: str) -> None:
        """Remove every file stored for ``job_id``."""


def job_of(storage: object, key: str) -> str | None:
    """The job ``key`` was saved for, if the storage can tell (an optional ``job_of(key)``
    method; :class:`LocalStorage` reads it off the key), else None. A restart's inputs are its
    original's keys, so a job's store may hold files that other jobs still refer to."""
    method = getattr(storage, "job_of", None)
    return method(key) if callable(method) else None


class LocalStorage:
    """Files in ``root/<job id>/<random hex>``. Suits one machine or a shared mount."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def _path(self, key: str) -> str:
        if not isinstance(key, str) or not _KEY_PATTERN.fullmatch(key):
            raise StorageError(f"malformed storage key {key!r}")
        return os.path.join(self.root, *key.split("/"))

    def save(self, job_id: str, data: bytes | IO[bytes]) -> tuple[str, int]:
        """Write ``data`` under a new random key; the write is atomic (temp file, then rename)."""
        key = f"{job_id}/{secrets.token_hex(16)}"
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = path + ".part"
        try:
            with open(temporary, "wb") as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, _CHUNK)
                size = out.tell()
            os.replace(temporary, path)
        except BaseException:
            # a source that fails half-way leaves nothing behind
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
            raise
        return key, size

    def open(self, key: str) -> IO[bytes]:
        """Open the file stored under ``key`` for binary reading."""
        return open(self._path(key), "rb")

    def delete(self, key: str) -> None:
        """Delete one stored file, ignoring one that is already gone."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._path(key))

    def job_of(self, key: str) -> str | None:
        """The job whose folder holds ``key`` (None for a malformed key)."""
        return key.partition("/")[0] if isinstance(key, str) and _KEY_PATTERN.fullmatch(key) else None

    def delete_job(self, job_id: str) -> None:
        """Delete the folder of one job."""
        if not re.fullmatch(r"[0-9a-f-]{36}", job_id):
            raise StorageError(f"malformed job id {job_id!r}")
        shutil.rmtree(os.path.join(self.root, job_id), ignore_errors=True)

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        """Yield the stored file in 1 MiB chunks (for streaming downloads)."""
        with self.open(key) as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk
