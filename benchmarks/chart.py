"""The save-cost chart for docs/performance.md (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_cost_chart(curve: dict[str, Any], path: Path) -> Path:
    """Plot one save's cost against session length for both systems (log-log) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    for name, style in (("nanobot", "o-"), ("nanosession", "s-")):
        ax.plot(curve["lengths"], curve[name], style, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("messages in the session")
    ax.set_ylabel("one save after one new message (ms, median)")
    ax.set_title("Save cost against session length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
