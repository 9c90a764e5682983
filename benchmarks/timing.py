"""Measuring helpers: wall-clock medians and bytes handed to ``write()``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

_IO = Path("/proc/self/io")


def median_ms(samples: list[float]) -> float:
    """Median of samples in seconds, as milliseconds."""
    return statistics.median(samples) * 1000.0


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def written_bytes() -> int | None:
    """Bytes this process has passed to write()-family calls (Linux ``wchar``), if known.

    Counting at the system-call boundary measures both systems the same way, whatever
    their file handling (appends, temp files, renames).
    """
    try:
        for line in _IO.read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None
