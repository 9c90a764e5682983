"""Long run of the flaky-network test: writers append to one S3 session through faults.

``python tests/reliability/network_run.py --writers 4 --messages 100 --rate 0.2`` starts
moto's S3 server on loopback with a fault-injecting proxy in front, runs the writers
(compare-and-swap, idempotent retries) and checks that every message is stored exactly
once. Prints the faults injected by kind.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid

from concurrency import expected, run_writers, tally
from faultproxy import FAULTS, FaultProxy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--messages", type=int, default=100, help="per writer")
    parser.add_argument("--rate", type=float, default=0.2, help="share of requests faulted")
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"net-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    rng = random.Random(ns.seed)
    proxy = FaultProxy(
        endpoint,
        lambda method, path: rng.choice(FAULTS) if rng.random() < ns.rate else "pass",
        stall_seconds=2.0,
    )
    url, direct = f"s3://{bucket}/net", {"backend": "s3", "endpoint_url": endpoint}
    flaky = {**direct, "endpoint_url": proxy.url, "idempotent": "1", "max_attempts": "6",
             "read_timeout": "1", "connect_timeout": "1", "conditional_writes": "assume"}
    started = time.monotonic()
    try:
        stats = run_writers(url, ["shared"] * ns.writers, ns.messages, flaky, timeout=3600)
        stored = tally(url, "shared", direct)
    finally:
        proxy.stop()
        server.stop()
    want = expected([f"w{i}" for i in range(ns.writers)], ns.messages)
    lost = sum((want - stored).values())
    duplicated = sum((stored - want).values())
    print(f"writers: {ns.writers} x {ns.messages} messages, fault rate {ns.rate}")
    print(f"requests: {proxy.requests}, faults injected: {proxy.faults} "
          f"{dict(sorted(proxy.injected.items()))}")
    print("conflicts retried: {}, storage errors retried: {}, replies lost but saved: {}".format(
        *(sum(s[k] for s in stats) for k in ("conflicts", "storage_errors", "already_saved"))))
    print(f"lost: {lost}, duplicated: {duplicated}, seconds: {time.monotonic() - started:.0f}")
    return 1 if lost or duplicated else 0


if __name__ == "__main__":
    sys.exit(main())
