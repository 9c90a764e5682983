"""What a local store directory holds, as the reliability tests compare it."""

from __future__ import annotations

from pathlib import Path


def sessions_dir(root: Path) -> list[str]:
    """The names in ``root``, less the backend's own bookkeeping (``.nanosession*``)."""
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".nanosession"))
