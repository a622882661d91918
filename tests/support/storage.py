"""Files the package stored for jobs, as the tests look for them on disk."""

from __future__ import annotations

from pathlib import Path


def files_under(root: str | Path) -> list[Path]:
    """Every file below ``root`` (an absent folder has none)."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file())
