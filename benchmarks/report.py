"""Turning raw benchmark numbers into the comparison table (rows, ratios, targets)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Row:
    """One line of the table. ``ratio`` is nanobot / nanosession: above 1 means we win.

    Rows in unit ``x`` are already ratios of one system to itself: no cross ratio.
    """

    name: str
    unit: str
    nanobot: float | None
    nanosession: float | None
    target: str = "no regression (>= 1x)"
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.unit == "x" or not self.nanobot or not self.nanosession:
            return None
        return self.nanobot / self.nanosession

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def _speedup(name: str, unit: str, nanobot: float, ours: float, need: float = 1.0,
             target: str | None = None) -> Row:
    row = Row(name, unit, nanobot, ours, target or f">= {need:g}x faster")
    row.met = row.ratio is not None and row.ratio >= need
    return row


def rows(results: dict[str, Any]) -> list[Row]:
    """The table from the runner's raw results (missing sections are left out)."""
    out: list[Row] = []
    curve = results.get("save_curve")
    if curve:
        pairs = zip(curve["nanobot"], curve["nanosession"], strict=True)
        by_length = dict(zip(curve["lengths"], pairs, strict=True))
        for length, (theirs, ours) in by_length.items():
            need = 50.0 if length == 2000 else 1.0
            target = ">= 50x faster" if length == 2000 else None
            out.append(_speedup(f"save after 1 new message @ {length:,} msgs", "ms", theirs,
                                ours, need, target))
        if 100 in by_length and 10000 in by_length:
            small, big = by_length[100][1], by_length[10000][1]
            out.append(Row("nanosession save @ 10,000 / @ 100", "x", by_length[10000][0]
                           / by_length[100][0], big / small, "nanosession <= 2x",
                           big <= 2 * small))
    turn = results.get("turn")
    if turn:
        out.append(_speedup(f"turn: user + 3 tool rounds + reply ({turn['saves_per_turn']} saves)"
                            f" @ {turn['length']:,}", "ms", turn["nanobot"], turn["nanosession"]))
    load = results.get("load")
    if load:
        n = f"{load['length']:,}"
        out.append(_speedup(f"load {n} msgs (msgspec)", "ms", load["nanobot_load"],
                            load["nanosession_load"], 2.0))
        out.append(_speedup(f"load {n} msgs (stdlib json)", "ms", load["nanobot_load"],
                            load["nanosession_load_stdlib"]))
        out.append(_speedup(f"get_history(120) on {n} msgs", "ms", load["nanobot_history"],
                            load["nanosession_history"]))
    listing = results.get("listing")
    if listing:
        n = f"{listing['sessions']:,} x {listing['messages_each']}"
        out.append(_speedup(f"list_sessions {n} msgs (long-lived store)", "ms",
                            listing["nanobot"], listing["nanosession"], 10.0))
        if "nanosession_one_changed" in listing:
            out.append(_speedup(f"list_sessions {n} msgs (long-lived, 1 session changed)",
                                "ms", listing["nanobot"], listing["nanosession_one_changed"],
                                10.0))
        if "nanosession_process" in listing:
            out.append(_speedup(f"list_sessions {n} msgs (new process, both; index file)",
                                "ms", listing.get("nanobot_process", listing["nanobot"]),
                                listing["nanosession_process"], 10.0))
        out.append(_speedup(f"list_sessions {n} msgs (store reopened in-process)", "ms",
                            listing["nanobot"], listing["nanosession_cold"]))
        if "nanosession_first" in listing:
            out.append(_speedup(f"list_sessions {n} msgs (first ever: no index, 1 sample)",
                                "ms", listing["nanobot"], listing["nanosession_first"]))
        if "stat_floor" in listing:
            out.append(Row("  ... floor: scandir + one stat() per file", "ms", None,
                           listing["stat_floor"], "-"))
    life = results.get("life")
    if life and life.get("nanosession_written") is not None:
        n = f"{life['length']:,}"
        out.append(_speedup(f"bytes written over a {n}-msg life", "MB",
                            life["nanobot_written"] / 1e6, life["nanosession_written"] / 1e6))
        ours = life["nanosession_written"] / life["nanosession_final_size"]
        theirs = life["nanobot_written"] / life["nanobot_final_size"]
        out.append(Row("  ... as a multiple of the final file size", "x", theirs, ours,
                       "nanosession <= 3x", ours <= 3.0))
        out.append(_speedup(f"wall time of that {n}-save life", "s", life["nanobot_seconds"],
                            life["nanosession_seconds"]))
    return out


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


def table(table_rows: list[Row]) -> str:
    """A plain-text table, also valid Markdown."""
    head = "| benchmark | unit | nanobot 0.3.5 | nanosession | ratio | target | met |"
    lines = [head, "|---|---|---:|---:|---:|---|---|"]
    for r in table_rows:
        ratio = f"{r.ratio:,.1f}x" if r.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        lines.append(f"| {r.name} | {r.unit} | {_num(r.nanobot)} | {_num(r.nanosession)} | "
                     f"{ratio} | {r.target} | {met} |")
    return "\n".join(lines)
