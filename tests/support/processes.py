"""Processes seen through /proc: whether one still runs, and its children (worker subprocesses
and their work horses, which RQ puts in process groups of their own)."""

from __future__ import annotations

from pathlib import Path


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, start time) of a process, None if it does not exist."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (2nd field) is in parentheses and may hold spaces
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def process_alive(pid: int, start: int | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, given ``start``, is still the same process."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X") and (start is None or stat[3] == start)


def process_group(pid: int) -> int | None:
    """The process group of ``pid`` (None if it does not exist)."""
    stat = _stat(pid)
    return None if stat is None else stat[2]


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (None if it does not exist): with the pid,
    it tells a process from a later one that got the same pid."""
    stat = _stat(pid)
    return None if stat is None else stat[3]


def children_of(pid: int) -> list[int]:
    """Living child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pid and stat[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found
