"""Does this S3-compatible server honour conditional writes? Asked once, then remembered.

AWS S3 and current MinIO refuse a ``PUT`` with ``If-None-Match: *`` over an existing object
and a ``PUT``/``DELETE`` whose ``If-Match`` names another ETag (HTTP 412). Older MinIO,
Ceph RGW and other stores may ignore the headers and overwrite: compare-and-swap would
then be a lie. The probe writes a throwaway object under the store's prefix, tries each
condition where it must fail, and removes the object. Results are cached per process for
each (endpoint, bucket): five requests once, not on every open.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError
from loguru import logger

from nanosession_s3.errors import (
    is_conditional_conflict,
    is_precondition_failed,
    s3_errors,
    status_of,
    translate,
)

PROBE_STEM = ".nanosession-probe-"
STALE_PROBE = timedelta(minutes=5)
WRONG_ETAG = '"00000000000000000000000000000000"'


@dataclass(frozen=True)
class Conditions:
    """Which conditional requests the server enforces."""

    create: bool
    update: bool
    delete: bool
    how: str

    @property
    def all(self) -> bool:
        return self.create and self.update and self.delete


ASSUMED = Conditions(True, True, True, "assumed (conditional_writes=assume)")

_cache: dict[tuple[str, str], Conditions] = {}
_locks: dict[tuple[str, str], threading.Lock] = {}
_guard = threading.Lock()


def cached(client: Any, bucket: str, prefix: str) -> Conditions:
    """The probe result for the client's endpoint and ``bucket``, probing on first use."""
    slot = (str(client.meta.endpoint_url), bucket)
    with _guard:
        lock = _locks.setdefault(slot, threading.Lock())
    with lock:
        if slot not in _cache:
            with s3_errors("probe", f"s3://{bucket}/{prefix}"):  # network failures, typed
                _cache[slot] = probe(client, bucket, prefix)
            logger.debug("conditional writes on {} bucket {}: {}", slot[0], bucket, _cache[slot])
        return _cache[slot]


def _refused(call: Callable[[], Any], where: str) -> bool:
    """True when the server refused ``call`` because its condition did not hold."""
    try:
        call()
    except ClientError as exc:
        if is_precondition_failed(exc) or is_conditional_conflict(exc):
            return True
        if status_of(exc) in (400, 501):  # the header itself is not understood
            return False
        raise translate(exc, "probe", where) from exc
    return False


def _accepted(call: Callable[[], Any], where: str) -> bool:
    """True when ``call`` succeeded; False when the server does not understand its header."""
    try:
        call()
    except ClientError as exc:
        if status_of(exc) in (400, 501):
            return False
        raise translate(exc, "probe", where) from exc
    return True


def probe(client: Any, bucket: str, prefix: str) -> Conditions:
    """Test the three conditions on a throwaway object; raise only for real failures."""
    name = f"{prefix}{PROBE_STEM}{uuid.uuid4().hex}"
    where = f"s3://{bucket}/{name}"

    def put(**cond: str) -> Any:
        return client.put_object(Bucket=bucket, Key=name, Body=b"probe", **cond)

    written = False
    try:
        understood = _accepted(lambda: put(IfNoneMatch="*"), where)
        if not understood:
            put()
        written = True
        create = understood and _refused(lambda: put(IfNoneMatch="*"), where)
        update = _refused(lambda: put(IfMatch=WRONG_ETAG), where)
        delete = _refused(
            lambda: client.delete_object(Bucket=bucket, Key=name, IfMatch=WRONG_ETAG), where
        )
    finally:
        if written:
            try:
                client.delete_object(Bucket=bucket, Key=name)
            except Exception as exc:  # never mask the probe's own error; a leftover is harmless
                logger.warning("could not remove probe object {}: {}", where, type(exc).__name__)
    _remove_stale_probes(client, bucket, prefix)
    return Conditions(create, update, delete, "probed")


def _remove_stale_probes(client: Any, bucket: str, prefix: str) -> None:
    """Delete probe objects of processes killed mid-probe (older than any probe in flight)."""
    cutoff = datetime.now(timezone.utc) - STALE_PROBE
    try:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix + PROBE_STEM)
        for obj in listed.get("Contents", ()):
            if obj["LastModified"] < cutoff:
                client.delete_object(Bucket=bucket, Key=obj["Key"])
    except Exception as exc:  # housekeeping only: never fail a store for it
        logger.debug("stale probe cleanup skipped: {}", type(exc).__name__)


def forget() -> None:
    """Drop cached results (after a server upgrade, or between tests)."""
    with _guard:
        _cache.clear()
