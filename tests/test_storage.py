"""Local file storage: generated keys only, no way out of the root, atomic writes."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from flask_jobmonitor import StorageError
from flask_jobmonitor.storage import LocalStorage, Storage

from .support.storage import files_under

JOB_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(str(tmp_path / "root"))


class BrokenStream(io.RawIOBase):
    """Yields some bytes, then fails like a dropped upload."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls > 1:
            raise OSError("connection reset while reading the upload")
        buffer[:4] = b"half"
        return 4


def test_local_storage_satisfies_the_storage_protocol(storage):
    assert isinstance(storage, Storage)


@pytest.mark.parametrize(
    "data", [b"a,b\n1,2\n", bytearray(b"a,b\n1,2\n"), memoryview(b"a,b\n1,2\n"), io.BytesIO(b"a,b\n1,2\n")]
)
def test_save_stores_bytes_and_file_objects_and_returns_key_and_size(storage, data):
    key, size = storage.save(JOB_ID, data)

    assert size == 8
    assert key.startswith(f"{JOB_ID}/")
    with storage.open(key) as handle:
        assert handle.read() == b"a,b\n1,2\n"


def test_save_generates_a_new_key_each_time(storage):
    first, _ = storage.save(JOB_ID, b"x")
    second, _ = storage.save(JOB_ID, b"x")

    assert first != second


def test_save_leaves_no_part_files(storage):
    storage.save(JOB_ID, b"one")
    storage.save(JOB_ID, io.BytesIO(b"two" * 100_000))

    names = [p.name for p in files_under(storage.root)]
    assert len(names) == 2
    assert not [n for n in names if n.endswith(".part")]


def test_failed_save_leaves_neither_the_file_nor_a_part_file(storage):
    with pytest.raises(OSError, match="connection reset"):
        storage.save(JOB_ID, io.BufferedReader(BrokenStream()))

    assert files_under(storage.root) == []


def test_save_for_a_malformed_job_id_raises_and_writes_nothing(storage, tmp_path):
    with pytest.raises(StorageError):
        storage.save("../../escaped", b"x")

    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../../etc/passwd",
        "/etc/passwd",
        f"{JOB_ID}/../../outside",
        f"{JOB_ID}/" + "A" * 32,
        f"{JOB_ID}/" + "0" * 31,
        f"{JOB_ID}/" + "0" * 32 + "/extra",
        f"{JOB_ID}/" + "0" * 32 + "\n",
        f"{JOB_ID}\\" + "0" * 32,
        "0" * 32,
    ],
    ids=repr,
)
@pytest.mark.parametrize("method", ["open", "delete", "iter_chunks"])
def test_malformed_or_traversing_key_is_refused(storage, key, method):
    with pytest.raises(StorageError, match="malformed storage key"):
        result = getattr(storage, method)(key)
        list(result)  # iter_chunks is lazy


@pytest.mark.parametrize("job_id", ["..", "../" + JOB_ID[3:], "", JOB_ID + "/x", JOB_ID.upper()])
def test_delete_job_with_a_malformed_id_is_refused(storage, job_id):
    with pytest.raises(StorageError, match="malformed job id"):
        storage.delete_job(job_id)


def test_delete_removes_one_file_and_ignores_a_missing_one(storage):
    kept, _ = storage.save(JOB_ID, b"kept")
    gone, _ = storage.save(JOB_ID, b"gone")

    storage.delete(gone)
    storage.delete(gone)

    with pytest.raises(FileNotFoundError):
        storage.open(gone)
    assert storage.open(kept).read() == b"kept"


def test_delete_job_removes_only_that_jobs_files(storage):
    other_job = str(uuid.uuid4())
    storage.save(JOB_ID, b"a")
    storage.save(JOB_ID, b"b")
    other_key, _ = storage.save(other_job, b"other")

    storage.delete_job(JOB_ID)

    assert not (Path(storage.root) / JOB_ID).exists()
    assert [p.name for p in files_under(storage.root)] == [other_key.split("/")[1]]


def test_delete_job_without_files_is_not_an_error(storage):
    storage.delete_job(JOB_ID)


def test_iter_chunks_streams_the_whole_file(storage):
    data = bytes(range(256)) * 9000  # > 2 MiB: several chunks
    key, size = storage.save(JOB_ID, io.BytesIO(data))

    chunks = list(storage.iter_chunks(key))

    assert size == len(data)
    assert len(chunks) == 3
    assert b"".join(chunks) == data


def test_storage_root_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert LocalStorage("relative").root == str(tmp_path / "relative")
