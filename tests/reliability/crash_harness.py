"""Crash-consistency harness: SIGKILL a saving process at random moments, then check.

After every kill a fresh store must load the session without error, holding exactly the
state of the last acknowledged save or of the one in flight (never a mix, never less),
and no temp file may outlive the next store open. ``run`` is used by the CI test; the
long run is ``python tests/reliability/crash_harness.py --kills 1000`` (add ``--s3`` to
run against a moto S3 server started here).

Saves use ``fsync=False``: SIGKILL is a process crash, the page cache survives it, so
durability against power loss is not what this measures.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crash_worker import apply_step, is_rewrite

WORKER = Path(__file__).with_name("crash_worker.py")
READY_TIMEOUT = 60.0


@dataclass
class Outcome:
    """What a run did and found; ``violations`` and the temp files left must be zero."""

    kills: int = 0
    saves_acknowledged: int = 0
    rewrites_acknowledged: int = 0
    in_flight_committed: int = 0
    kills_leaving_temp_files: int = 0
    temp_files_left_after_open: int = 0  # distinct ones, over the whole run
    final_seq: int = -1
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)


class Model:
    """The expected session, replayed step by step as the stored sequence advances."""

    def __init__(self) -> None:
        self.seq = -1
        self.messages: list[dict[str, Any]] = []
        self.metadata: dict[str, Any] = {}

    def advance(self, seq: int) -> None:
        while self.seq < seq:
            self.seq += 1
            apply_step(self.messages, self.metadata, self.seq)


Leftovers = Callable[[], list[str]]


def temp_files(directory: Path) -> Leftovers:
    """Temp files in a store directory."""
    return lambda: [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def stray_objects(endpoint: str, bucket: str, prefix: str) -> Leftovers:
    """Objects under an S3 prefix that are not sessions (temp or probe objects)."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

    def found() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        names = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        return [name for name in names if not name.endswith(".jsonl")]

    return found


def _one_round(
    url: str, key: str, options: dict[str, str], delay: float
) -> tuple[int | None, list[int], int | None, str]:
    """Start a worker, kill it ``delay`` s after it is ready; (ready seq, acks, rc, stderr)."""
    args = [sys.executable, str(WORKER), url, key, *(f"{k}={v}" for k, v in options.items())]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(READY_TIMEOUT, proc.kill)
    watchdog.start()
    assert proc.stdout is not None and proc.stderr is not None
    try:
        first = proc.stdout.readline()
        if first.startswith("ready "):
            time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=READY_TIMEOUT)
        # read through the file objects: readline may have buffered acks already
        # (communicate() would skip them); the child is dead, so both reach EOF
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        watchdog.cancel()
        proc.stdout.close()
        proc.stderr.close()
    ready = int(first.split()[1]) if first.startswith("ready ") else None
    acks = [int(line.split()[1]) for line in out.splitlines() if line.startswith("ack ")]
    return ready, acks, proc.returncode, err


def run(
    url: str,
    *,
    kills: int,
    key: str = "crash:session/1",
    options: dict[str, str] | None = None,
    leftovers: Leftovers | None = None,
    seed: int = 0,
    max_delay: float = 0.25,
) -> Outcome:
    """Kill ``kills`` workers saving ``key`` at ``url``; ``leftovers`` finds temp files."""
    from nanosession import NanosessionError, open_store

    options = options or {}
    rng = random.Random(seed)
    model = Model()
    out = Outcome()
    stale: set[str] = set()  # temp files that survived a store open
    started = time.monotonic()
    for round_no in range(kills):
        ready, acks, rc, err = _one_round(url, key, options, rng.uniform(0, max_delay))
        out.kills += 1
        where = f"round {round_no}"
        if rc != -signal.SIGKILL:
            out.violations.append(f"{where}: worker ended by itself (rc={rc}): {err[-400:]}")
        if ready is None:
            out.violations.append(f"{where}: worker never became ready: {err[-400:]}")
            break
        if ready != model.seq:
            out.violations.append(f"{where}: worker loaded seq {ready}, expected {model.seq}")
        out.saves_acknowledged += len(acks)
        out.rewrites_acknowledged += sum(map(is_rewrite, acks))
        acked = acks[-1] if acks else ready
        if set(leftovers() if leftovers is not None else ()) - stale:
            out.kills_leaving_temp_files += 1  # this kill left a new one
        try:
            with open_store(url, **options) as store:
                record = store.get(key)
                listed = [info.key for info in store.list(details=False)]
        except NanosessionError as exc:
            out.violations.append(f"{where}: load failed after kill: {exc!r}")
            break
        stale.update(leftovers() if leftovers is not None else ())
        if listed != ([key] if record is not None else []):
            out.violations.append(f"{where}: listing shows {listed}")
        stored = record.metadata.get("seq", -1) if record is not None else -1
        if stored not in (acked, acked + 1):
            out.violations.append(f"{where}: stored seq {stored}, last acknowledged {acked}")
            break
        out.in_flight_committed += stored == acked + 1
        model.advance(stored)
        if record is not None and (
            list(record.messages) != model.messages or record.metadata != model.metadata
        ):
            out.violations.append(f"{where}: content differs from the replay at seq {stored}")
            break
    out.temp_files_left_after_open = len(stale)
    out.final_seq = model.seq
    out.seconds = round(time.monotonic() - started, 1)
    return out


def _moto(stack: Any) -> tuple[str, dict[str, str], Leftovers]:
    """Start moto's S3 server on loopback and a bucket; return (url, options, leftovers)."""
    import os
    import uuid

    import boto3
    from moto.server import ThreadedMotoServer

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stack.callback(server.stop)
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"crash-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    return (f"s3://{bucket}/sessions", {"endpoint_url": endpoint},
            stray_objects(endpoint, bucket, "sessions/"))


def main() -> int:
    import contextlib
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=0.25,
                        help="kill within this many seconds after the worker is ready")
    parser.add_argument("--s3", action="store_true", help="run against a local moto server")
    parser.add_argument("--backend", choices=("native", "fsspec"), default="native",
                        help="the plugin to store with (fsspec: its file:// or s3fs path)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    ns = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if ns.s3:
            url, options, leftovers = _moto(stack)
        else:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url, options, leftovers = directory.as_uri(), {}, temp_files(directory)
        options["backend"] = "fsspec" if ns.backend == "fsspec" else "s3" if ns.s3 else "local"
        outcome = run(url, kills=ns.kills, options=options, leftovers=leftovers,
                      seed=ns.seed, max_delay=ns.max_delay)
    if ns.json:
        print(json.dumps(asdict(outcome), indent=2))
    else:
        for name, value in asdict(outcome).items():
            print(f"{name}: {value}")
    return 1 if outcome.violations or outcome.temp_files_left_after_open else 0


if __name__ == "__main__":
    sys.exit(main())
