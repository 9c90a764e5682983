"""Listing at scale: object listings for keys and times, ranged GETs only for details.

``ListObjectsV2`` returns 1,000 names a page with their size, ETag and LastModified, so a
listing without details costs ceil(N / 1000) requests. Names are the base64url of the key,
so a key prefix narrows the object-name prefix to its whole 3-byte groups. Details (title,
preview, created_at, message count) come from one ranged GET of the first 32 KiB of each
listed object, plus one of the last 16 KiB when the object is larger, run in a bounded
thread pool: the metadata line is first in every object nanosession writes, and last in
files the local backend appended to, so head and tail hold everything a listing shows.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from nanosession import jsonl, jsonlib
from nanosession.keys import HASHED_PREFIX, MAX_KEY_BYTES, SUFFIX, storage_name
from nanosession.record import SessionInfo
from nanosession_s3.errors import code_of, is_not_found, is_precondition_failed, translate

HEAD_BYTES = 16384
TAIL_BYTES = 16384
FIRST_LINE_CAP = 8 * MAX_KEY_BYTES
"""How far to read for a hashed name's metadata line (a key of up to 64 KiB, escaped)."""
ATTEMPTS = 3


@dataclass(frozen=True)
class Listed:
    """One session object from a listing page."""

    name: str
    stem: str
    modified: datetime
    size: int
    etag: str


def name_prefixes(root: str, key_prefix: str) -> list[str]:
    """Object-name prefixes that together hold every session whose key starts with
    ``key_prefix``: base64 of its whole 3-byte groups, plus hashed names (``~``)."""
    raw = key_prefix.encode("utf-8", "surrogatepass")
    whole = len(raw) // 3 * 3
    if whole == 0:
        return [root]
    return [root + base64.urlsafe_b64encode(raw[:whole]).decode("ascii"), root + HASHED_PREFIX]


def scan(client: Any, bucket: str, root: str, key_prefix: str) -> Iterator[Listed]:
    """Every ``*.jsonl`` object directly under ``root`` that may hold a matching key."""
    paginator = client.get_paginator("list_objects_v2")
    for prefix in name_prefixes(root, key_prefix):
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for obj in page.get("Contents", ()):
                name = obj["Key"]
                if not name.endswith(SUFFIX):
                    continue  # backups (.corrupt-...), probe objects, foreign files
                yield Listed(name, name[len(root):-len(SUFFIX)], obj["LastModified"],
                             int(obj.get("Size", 0)), str(obj.get("ETag", "")).strip('"'))


def is_hashed(stem: str) -> bool:
    return stem.startswith(HASHED_PREFIX)


def _get(client: Any, bucket: str, name: str, byte_range: str, **cond: str) -> dict[str, Any]:
    return client.get_object(Bucket=bucket, Key=name, Range=byte_range, **cond)


def _total(response: dict[str, Any], got: int) -> int:
    """The object's full size from ``Content-Range: bytes a-b/total``."""
    _, _, total = str(response.get("ContentRange", "")).rpartition("/")
    return int(total) if total.isdigit() else got


def hashed_key(client: Any, bucket: str, item: Listed) -> str | None:
    """The key stored in a hashed-name object, if it really hashes to that name."""
    end = HEAD_BYTES
    while True:
        response = _get(client, bucket, item.name, f"bytes=0-{end - 1}")
        data = response["Body"].read()
        line, newline, _ = data.partition(b"\n")
        if newline or len(data) >= _total(response, len(data)) or end >= FIRST_LINE_CAP:
            break
        end *= 4
    try:
        meta = jsonlib.loads(line)
    except jsonlib.DecodeErrors:
        return None
    key = meta.get("key") if isinstance(meta, dict) else None
    if isinstance(key, str) and key and storage_name(key) == item.stem:
        return key
    return None


def describe(client: Any, bucket: str, key: str, item: Listed, url: str) -> SessionInfo | None:
    """A detailed entry from a bounded read of ``item``; ``None`` if it vanished meanwhile."""
    if item.size == 0:
        return jsonl.info(key, b"", b"", whole=True, size=0, mtime=item.modified,
                          version=item.etag, location=url)
    try:
        for _ in range(ATTEMPTS):
            found = _read_ends(client, bucket, key, item, url)
            if found is not None:
                return _checked(found, key)
        return SessionInfo(key=key, updated_at=item.modified, size=item.size, location=url,
                           error="the object kept changing while it was listed")
    except ClientError as exc:
        if is_not_found(exc):
            return None
        if code_of(exc) == "InvalidRange":  # emptied since it was listed
            return jsonl.info(key, b"", b"", whole=True, size=0, mtime=item.modified,
                              location=url)
        error = str(translate(exc, "read", url))
    except BotoCoreError as exc:
        error = str(translate(exc, "read", url))
    return SessionInfo(key=key, updated_at=item.modified, size=item.size, location=url,
                       error=f"unreadable: {error}")


def _read_ends(client: Any, bucket: str, key: str, item: Listed, url: str) -> SessionInfo | None:
    """Head (and tail) of one version of the object; ``None`` if it changed in between."""
    first = _get(client, bucket, item.name, f"bytes=0-{HEAD_BYTES + TAIL_BYTES - 1}")
    head = first["Body"].read()
    size = _total(first, len(head))
    etag = str(first.get("ETag", "")).strip('"')
    modified = first.get("LastModified", item.modified)
    if size <= len(head) or not jsonl.may_have_appends(head):  # nanobot wrote it: no tail
        return jsonl.info(key, head, b"", whole=size <= len(head), size=size, mtime=modified,
                          version=etag, location=url)
    try:
        last = _get(client, bucket, item.name, f"bytes=-{TAIL_BYTES}", IfMatch=f'"{etag}"')
    except ClientError as exc:
        if is_precondition_failed(exc):
            return None
        raise
    return jsonl.info(key, head, last["Body"].read(), whole=False, size=size, mtime=modified,
                      version=etag, location=url)


def _checked(info: SessionInfo, key: str) -> SessionInfo:
    """Keep the key the name says; flag an object that holds another session."""
    if info.key == key:
        return info
    problem = f"object holds session {info.key[:80]!r}"
    return dataclasses.replace(info, key=key, error="; ".join(filter(None, [info.error, problem])))
