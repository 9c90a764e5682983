"""Count the HTTP requests and bytes a client really sends, from botocore's own events.

Used by the tests and ``benchmarks/bench_s3.py`` so request figures are measured, not
assumed; also handy in production to see what a workload costs::

    counter = RequestCounter.attach(store.backend.client)
    store.list()
    counter.requests  # {"ListObjectsV2": 1, "GetObject": 12}
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class RequestCounter:
    """Per-operation counts of HTTP attempts (retries included) and payload bytes: bodies
    sent (before aws-chunked framing) and response bodies received."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        self._client: Any = None

    @classmethod
    def attach(cls, client: Any) -> RequestCounter:
        """Start counting on ``client`` (until ``detach``)."""
        counter = cls()
        counter._client = client
        client.meta.events.register("before-send.s3", counter._before_send)
        client.meta.events.register("needs-retry.s3", counter._after_attempt)
        return counter

    def detach(self) -> None:
        if self._client is not None:
            self._client.meta.events.unregister("before-send.s3", self._before_send)
            self._client.meta.events.unregister("needs-retry.s3", self._after_attempt)
            self._client = None

    def reset(self) -> None:
        with self._lock:
            for counter in (self.requests, self.sent, self.received, self.statuses):
                counter.clear()

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def _before_send(self, event_name: str, request: Any, **_: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        headers = request.headers
        length = headers.get("X-Amz-Decoded-Content-Length") or headers.get("Content-Length")
        body = request.body
        size = int(length or (len(body) if isinstance(body, (bytes, bytearray)) else 0))
        with self._lock:
            self.requests[op] += 1
            self.sent[op] += size

    def _after_attempt(self, event_name: str, response: Any = None, **_: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        http = response[0] if isinstance(response, tuple) and response else None
        if http is None:
            return
        # A HEAD response names the object's size but carries no body.
        size = 0 if op == "HeadObject" else int(http.headers.get("content-length") or 0)
        with self._lock:
            self.received[op] += size
            self.statuses[(op, int(http.status_code))] += 1
