"""Event-loop lag while four ~2 MB sessions are saved: async API vs the same saves on the loop.

A 1 ms ticker task measures how late each tick wakes up (its lag) while an agent-like
driver saves four 2 MB sessions a few rounds in a row (the sessions are created before
measuring). Workloads:

- ``rewrite``: an in-place edit before each save forces full rewrites (the worst case,
  and what nanobot does on every save);
- ``append``: each round adds an agent turn (8 messages) to every session.

Modes:

- ``async``: ``AsyncSessionManager.save`` of the four sessions concurrently (``gather``);
- ``async-1-worker``: the same with ``max_workers=1`` (less contention for the GIL);
- ``sync-on-loop``: ``SessionManager.save`` called inside the coroutine, as nanobot does;
- ``nanobot-on-loop``: nanobot 0.3.5's own ``SessionManager.save`` (if nanobot is installed).

``idle`` is the ticker alone: the machine's noise floor. The figures include whatever
else the machine runs; compare modes measured in one run.

Run: ``python -m benchmarks.bench_loop_lag``. ``run()`` returns the figures as a dict.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.messages import stream
from benchmarks.systems import add, nanobot_manager
from nanosession import Session, SessionManager
from nanosession.aio import DEFAULT_WORKERS, AsyncSessionManager

TICK = 0.001
SESSIONS = 4
SESSION_BYTES = 2_000_000
ROUNDS = 10
PAUSE = 0.05
TURN = 8  # messages an agent turn adds (user, three tool rounds, reply)
WORKLOADS = ("rewrite", "append")


def messages_of_size(size: int, seed: int) -> list[dict[str, Any]]:
    """Realistic messages (``benchmarks.messages``) adding up to about ``size`` JSON bytes."""
    out: list[dict[str, Any]] = []
    total = 0
    for message in stream(seed):
        out.append(message)
        total += len(json.dumps(message, ensure_ascii=False).encode()) + 1
        if total >= size:
            break
    return out


def percentiles(lags: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of the ticker's lags, in milliseconds."""
    ordered = sorted(lags)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000.0

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99),
            "max_ms": ordered[-1] * 1000.0, "mean_ms": statistics.fmean(ordered) * 1000.0,
            "ticks": len(ordered)}


async def _ticker(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + TICK
        await asyncio.sleep(TICK)
        lags.append(max(0.0, loop.time() - due))


async def _drive(
    mode: str, workload: str, root: Path, payloads: list[list[dict[str, Any]]], rounds: int
) -> dict[str, Any]:
    """Create the sessions (unmeasured), then measure ``rounds`` rounds of saves."""
    if mode.startswith("async"):
        workers = 1 if mode == "async-1-worker" else DEFAULT_WORKERS
        manager: Any = AsyncSessionManager.from_url(str(root), max_workers=workers)
    elif mode == "sync-on-loop":
        manager = SessionManager.from_url(str(root))
    else:
        manager = nanobot_manager(root)
    sessions: list[Any] = []
    for i, payload in enumerate(payloads):
        key = f"bench:{i}"
        session = manager.get_or_create(key) if mode == "nanobot-on-loop" else Session(key=key)
        for message in payload:
            add(session, message)
        sessions.append(session)
    await _save_all(mode, manager, sessions)
    more = stream(seed=99)

    lags: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lags, stop))
    busy = 0.0
    for round_ in range(rounds):
        await asyncio.sleep(PAUSE)  # the agent's other work between two rounds of saves
        for session in sessions:
            if workload == "rewrite":  # an edit forces a full rewrite of every session
                session.messages[0]["content"] = f"edited in round {round_}"
            else:  # a turn of new messages: nanosession appends, nanobot rewrites
                for _ in range(TURN):
                    add(session, next(more))
        start = time.perf_counter()
        await _save_all(mode, manager, sessions)
        busy += time.perf_counter() - start
    await asyncio.sleep(PAUSE)
    stop.set()
    await ticker
    if mode.startswith("async"):
        await manager.aclose()
    return {**percentiles(lags), "saves_s": round(busy, 3)}


async def _save_all(mode: str, manager: Any, sessions: list[Any]) -> None:
    if mode.startswith("async"):
        await asyncio.gather(*(manager.save(s) for s in sessions))
    else:
        for session in sessions:  # on the loop, as nanobot does
            manager.save(session)


async def _idle(seconds: float) -> dict[str, Any]:
    """The ticker alone: the machine's noise floor."""
    lags: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lags, stop))
    await asyncio.sleep(seconds)
    stop.set()
    await ticker
    return {**percentiles(lags), "saves_s": 0.0}


def run(*, rounds: int = ROUNDS, session_bytes: int = SESSION_BYTES) -> dict[str, Any]:
    """Measure every workload and mode; return ``{"config": ..., "results": {name: figures}}``.

    Result names are ``"<workload>/<mode>"`` plus ``"idle"`` (no saves at all).
    """
    payloads = [messages_of_size(session_bytes, seed=11 + i) for i in range(SESSIONS)]
    modes = ["async", "async-1-worker", "sync-on-loop"]
    if importlib.util.find_spec("nanobot") is not None:
        modes.append("nanobot-on-loop")
    results: dict[str, Any] = {"idle": asyncio.run(_idle(0.5))}
    for workload in WORKLOADS:
        for mode in modes:
            with tempfile.TemporaryDirectory(prefix="nanosession-lag-") as tmp:
                results[f"{workload}/{mode}"] = asyncio.run(
                    _drive(mode, workload, Path(tmp), payloads, rounds)
                )
    return {
        "config": {"sessions": SESSIONS, "session_bytes": session_bytes,
                   "messages_per_session": len(payloads[0]), "rounds": rounds,
                   "tick_ms": TICK * 1000, "python": sys.version.split()[0],
                   "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0]},
        "results": results,
    }


def main() -> None:
    figures = run()
    config = figures["config"]
    print(f"{config['sessions']} sessions x {config['session_bytes'] / 1e6:.1f} MB "
          f"({config['messages_per_session']} messages), {config['rounds']} rounds, "
          f"{config['tick_ms']:.0f} ms ticker, Python {config['python']}, "
          f"{config['cpus']} CPUs, load average {config['load_avg']:.1f}")
    print(f"{'workload/mode':<28}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'ticks':>7}{'saves s':>9}")
    for mode, r in figures["results"].items():
        print(f"{mode:<28}{r['p50_ms']:9.2f}{r['p95_ms']:9.2f}{r['p99_ms']:9.2f}"
              f"{r['max_ms']:9.2f}{r['ticks']:7d}{r['saves_s']:9.3f}")


if __name__ == "__main__":
    main()
