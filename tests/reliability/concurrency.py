"""Runs several ``cas_worker.py`` processes against one store and checks the result."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from nanosession import open_store

WORKER = Path(__file__).with_name("cas_worker.py")


def run_writers(
    url: str, keys: list[str], count: int, options: dict[str, str], *, timeout: float = 120
) -> list[dict[str, int]]:
    """One worker per entry of ``keys`` (repeat a key to make writers collide).

    Workers are released together once every one has started and opened its store.
    """
    pairs = [f"{k}={v}" for k, v in options.items()]
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, key, f"w{i}", str(count), *pairs],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i, key in enumerate(keys)
    ]
    try:
        return _release_and_collect(procs, timeout)
    finally:
        for proc in procs:  # a worker that failed must not leave the others waiting
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _release_and_collect(procs: list[subprocess.Popen[str]], timeout: float) -> list[dict]:
    for proc in procs:
        assert proc.stdout is not None and proc.stderr is not None
        if proc.stdout.readline() != "ready\n":
            proc.wait(timeout)
            raise AssertionError(f"worker failed to start: {proc.stderr.read()[-2000:]}")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    stats = []
    for proc in procs:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.close()
        proc.wait(timeout=timeout)
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        assert proc.returncode == 0, err[-2000:]
        stats.append(json.loads(out))
    return stats


def tally(url: str, key: str, options: dict[str, str]) -> Counter[tuple[str, int]]:
    """How many times each (writer, n) message is stored under ``key``."""
    with open_store(url, **options) as store:
        record = store.load(key)
    return Counter((m["writer"], m["n"]) for m in record.messages)


def expected(writers: list[str], count: int) -> Counter[tuple[str, int]]:
    return Counter((w, n) for w in writers for n in range(count))
