"""Requests and bytes per operation of the S3 backend, measured against moto over HTTP.

``python -m benchmarks.bench_s3 [--sessions N]`` starts moto's ``ThreadedMotoServer`` on
127.0.0.1 (port 0), fills a bucket and counts every HTTP request each store operation
sends, with botocore's own events (``RequestCounter``), so the figures in ``docs/s3.md``
are measured, not assumed. Times are loopback times against moto: they show the shape
(requests in parallel, pages), not what AWS would take.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python benchmarks/bench_s3.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nanosession_s3.metrics import RequestCounter

from benchmarks.messages import take
from nanosession import SessionRecord, Store, Update, jsonl, open_store

CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench",
               "region": "us-east-1"}
T0 = datetime(2026, 1, 1, 9, 0, 0)


def _figures(counter: RequestCounter, times: list[float]) -> dict[str, Any]:
    return {
        "requests": dict(sorted(counter.requests.items())),
        "total_requests": counter.total,
        "bytes_sent": sum(counter.sent.values()),
        "bytes_received": sum(counter.received.values()),
        "ms_median": round(statistics.median(times) * 1000, 2),
    }


def measure(store: Store, action: Callable[[], Any], repeat: int = 1,
            prepare: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Requests and bytes of the first ``action`` run; median time over ``repeat`` runs.

    ``prepare`` runs before each ``action``, uncounted and untimed."""
    client = store.backend.client  # type: ignore[attr-defined]
    times: list[float] = []
    first: RequestCounter | None = None
    for _ in range(repeat):
        if prepare is not None:
            prepare()
        counter = RequestCounter.attach(client)
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
        counter.detach()
        first = first or counter
    assert first is not None
    return _figures(first, times)


def _plant(client: Any, bucket: str, store: Store, n: int, per_session: int) -> None:
    """``n`` sessions written as the backend writes them, 16 at a time (not measured)."""
    messages = take(per_session)
    backend: Any = store.backend

    def put(i: int) -> None:
        record = SessionRecord(f"user:{i:06d}", messages, {"title": f"chat {i}"}, T0,
                               T0 + timedelta(seconds=i))
        client.put_object(Bucket=bucket, Key=backend.object_name(record.key),
                          Body=jsonl.encode(record))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(n)))


def run(n_sessions: int = 2000, messages_per_session: int = 20, previews: int = 20,
        large_messages: int = 2000, repeat: int = 3) -> dict[str, Any]:
    """Start moto over HTTP, fill a bucket, and measure each operation's requests and bytes."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")
        client.create_bucket(Bucket="bench")
        url = f"s3://bench/sessions?endpoint_url={endpoint}"
        out: dict[str, Any] = {"server": "moto ThreadedMotoServer, HTTP on 127.0.0.1"}
        with open_store(url, **CREDENTIALS) as store:
            out["probe (once per process and bucket)"] = measure(
                store, lambda: store.capabilities)
            _plant(client, "bench", store, n_sessions, messages_per_session)
            out.update(_operations(store, messages_per_session, previews, large_messages,
                                   repeat))
            listed = len(store.list(details=False))
            pages = out["list keys only (details=False)"]["requests"].get("ListObjectsV2", 0)
            out["sessions in the bucket"] = listed
            out["list pages: ceil(N/1000) expected, measured"] = (math.ceil(listed / 1000), pages)
        return out
    finally:
        server.stop()


def _operations(store: Store, per_session: int, previews: int, large: int,
                repeat: int) -> dict[str, Any]:
    messages = take(per_session)
    big = SessionRecord("bench:large", take(large), {"title": "large"}, T0, T0)
    record = SessionRecord("bench:one", messages, {"title": "one"}, T0, T0)
    out: dict[str, Any] = {}
    counter = [0]

    def fresh_key() -> None:
        counter[0] += 1
        record.key = f"bench:new:{counter[0]}"
        record.version = None

    out["save new session (create)"] = measure(
        store, lambda: store.save(record), repeat, prepare=fresh_key)
    version = store.save(SessionRecord("bench:upd", messages, {}, T0, T0))
    state = {"version": version, "n": 0}

    def update() -> None:
        state["n"] += 1
        upd = SessionRecord("bench:upd", [*messages, {"role": "user", "content": state["n"]}],
                            {}, T0, T0)
        state["version"] = store.save(upd, mode=Update(state["version"]))

    out["save update (compare-and-swap)"] = measure(store, update, repeat)
    stale = version

    def conflict() -> None:
        try:
            store.save(SessionRecord("bench:upd", messages, {}, T0, T0), mode=Update(stale))
        except Exception as exc:  # ConflictError expected
            assert type(exc).__name__ == "ConflictError", exc

    out["stale save (ConflictError)"] = measure(store, conflict, repeat)
    out["load"] = measure(store, lambda: store.load("bench:upd"), repeat)
    store.save(big)
    out[f"load large session ({large} messages)"] = measure(
        store, lambda: store.load("bench:large"), repeat)
    out[f"save large session ({large} messages)"] = measure(
        store, lambda: store.save(big, mode="overwrite"), repeat)
    out["list keys only (details=False)"] = measure(
        store, lambda: store.list(details=False), repeat)
    out[f"list newest {previews} with previews"] = measure(
        store, lambda: store.list(limit=previews), repeat)
    out["list 1 large session with details"] = measure(
        store, lambda: store.list("bench:large", limit=1), repeat)

    def recreate() -> None:
        state["del"] = store.save(SessionRecord("bench:del", messages, {}, T0, T0),
                                  mode="overwrite")

    out["delete with version"] = measure(
        store, lambda: store.delete("bench:del", version=state["del"]), repeat,
        prepare=recreate)
    out["delete without version"] = measure(
        store, lambda: store.delete("bench:del"), repeat, prepare=recreate)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--previews", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args(argv)
    figures = run(n_sessions=args.sessions, previews=args.previews, repeat=args.repeat)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{'operation':46} {'requests':42} {'sent':>10} {'received':>10} {'ms':>8}")
    for name, value in figures.items():
        if isinstance(value, dict):
            ops = ", ".join(f"{op} {n}" for op, n in value["requests"].items())
            print(f"{name:46} {ops:42} {value['bytes_sent']:>10} "
                  f"{value['bytes_received']:>10} {value['ms_median']:>8}")
        else:
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
