"""Run the benchmark suite: ``python -m benchmarks.run [--quick]``.

Measures nanosession and nanobot 0.3.5's ``SessionManager`` in the same process on the
same machine, prints a table with ratios and targets, writes
``benchmarks/results/latest.json`` and the chart ``docs/img/save_cost.png``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python benchmarks/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger

from benchmarks import bench_local, report
from benchmarks.chart import save_cost_chart

ROOT = Path(__file__).resolve().parent.parent
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "lengths": [100, 250, 500, 1000, 2000, 3000, 5000, 7500, 10000],
        "repeat": 15,
        "list_sessions": 10000,
        "list_repeat": 5,
        "life": 2000,
    },
    "quick": {
        "lengths": [100, 2000, 10000],
        "repeat": 5,
        "list_sessions": 1000,
        "list_repeat": 3,
        "life": 2000,
    },
}
EXTERNAL = {  # suites other engineers own: run them when they exist
    "s3": "benchmarks.bench_s3",
    "loop_lag": "benchmarks.bench_loop_lag",
}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in ("nanosession", "nanobot-ai", "msgspec", "pluggy", "matplotlib"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": versions,
    }


def _step(label: str, fn: Any, *args: Any) -> Any:
    started = time.perf_counter()
    print(f"  {label} ...", end="", flush=True)
    result = fn(*args)
    print(f" {time.perf_counter() - started:.1f}s", flush=True)
    return result


def run_local(profile: dict[str, Any], work: Path) -> dict[str, Any]:
    """Every local benchmark, each in its own directory under ``work``."""
    return {
        "save_curve": _step("save after one new message", bench_local.save_curve,
                            work / "save", profile["lengths"], profile["repeat"]),
        "turn": _step("realistic turn", bench_local.turn, work / "turn", 2000,
                      profile["repeat"]),
        "load": _step("load and get_history", bench_local.load_and_history, work / "load",
                      2000, profile["repeat"]),
        "listing": _step("list_sessions", bench_local.listing, work / "list",
                         profile["list_sessions"], 200, profile["list_repeat"]),
        "life": _step("bytes over a session's life", bench_local.life_bytes, work / "life",
                      profile["life"]),
    }


def run_external() -> dict[str, Any]:
    """The S3 and event-loop suites, or a note saying why they did not run."""
    out: dict[str, Any] = {}
    for name, module in EXTERNAL.items():
        try:
            suite = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            out[name] = {"skipped": "not available yet"}
            print(f"  {name}: skipped: not available yet")
            continue
        out[name] = _step(name, suite.run)
    return out


def _print_external(results: dict[str, Any]) -> None:
    for name, figures in results.items():
        print(f"\n{name}:")
        for key, value in figures.items():
            print(f"  {key}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run (about 2 minutes)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/latest.json")
    parser.add_argument("--chart", type=Path, default=None,
                        help="PNG to draw (default: docs/img/save_cost.png; with --quick, "
                        "benchmarks/results/save_cost_quick.png, so docs keep the full run)")
    args = parser.parse_args(argv)
    if args.chart is None:
        args.chart = ROOT / ("benchmarks/results/save_cost_quick.png" if args.quick
                             else "docs/img/save_cost.png")
    logger.remove()  # nanobot logs to stderr by default; keep the measured writes ours alone
    profile_name = "quick" if args.quick else "full"
    profile = PROFILES[profile_name]
    info = machine()
    print(f"nanosession benchmarks ({profile_name}) on {info['cpus']} CPUs, "
          f"Python {info['python']}, nanobot-ai {info['versions']['nanobot-ai']}, "
          f"msgspec {info['versions']['msgspec']}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nanosession-bench-") as tmp:
        local = run_local(profile, Path(tmp))
    external = run_external()
    info["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    table_rows = report.rows(local)
    print()
    print(report.table(table_rows))
    _print_external(external)
    listing = local["listing"]
    print(f"\nchecks: same messages loaded by both = {local['load']['same_messages']}; "
          f"listing keys identical = {listing['same_keys']}, titles {listing['same_titles']}"
          f"/{listing['sessions']}, previews {listing['same_previews']}/{listing['sessions']}, "
          f"new processes listed all = {listing.get('process_listed_all')}")
    chart = save_cost_chart(local["save_curve"], args.chart)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "profile": profile_name,
        "settings": profile,
        "machine": info,
        "seconds": time.perf_counter() - started,
        "local": local,
        "external": external,
        "rows": [r.as_dict() for r in table_rows],
    }, indent=2))
    print(f"\nwrote {args.output} and {chart} in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
