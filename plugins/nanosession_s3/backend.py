"""``S3Backend``: one JSONL object per session, guarded by ETags.

Objects are ``<prefix><base64url key>.jsonl`` in the local backend's format, so a bucket
synced to disk opens with the local backend and the other way round. S3 cannot append:
every save is one full ``PUT``. The version token is the object's ETag; ``create`` writes
with ``If-None-Match: *`` and ``Update(version)`` with ``If-Match``, so of several workers
saving the same loaded version exactly one wins and the others get ``ConflictError``.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from loguru import logger

from nanosession import hookimpl, jsonl
from nanosession.errors import (
    CapabilityError,
    ConflictError,
    NanosessionError,
    SessionNotFoundError,
    StorageError,
)
from nanosession.keys import SUFFIX, key_from_name, storage_name
from nanosession.record import (
    Capabilities,
    PutMode,
    RepairReport,
    SessionInfo,
    SessionRecord,
    Update,
)
from nanosession_s3 import listing, probe
from nanosession_s3.errors import (
    is_conditional_conflict,
    is_not_found,
    is_precondition_failed,
    response_etag,
    s3_errors,
)
from nanosession_s3.options import S3Options, make_client, parse_url

CONTENT_TYPE = "application/x-ndjson"
WRITE_ID = "nanosession-write"
"""User metadata naming each conditional PUT, so a write whose response was lost is
recognised as ours when botocore's retry of it fails the condition."""
T = TypeVar("T")
GONE = ""
"""What a hashed name resolves to when its object was deleted since it was listed (no key
is empty, so this never names a session)."""


_ETAG = re.compile(r"[\x21\x23-\x7e]+")  # printable ASCII without '"': what an ETag holds


def _quoted(key: str, version: str) -> str:
    """``version`` as an If-Match value; a token no ETag can be is a conflict, not a 400."""
    if not _ETAG.fullmatch(version):
        raise ConflictError(key, f"version {version[:40]!r} is not from this backend")
    return f'"{version}"'


class S3Backend:
    """Storage hooks over the objects under one ``s3://bucket/prefix``."""

    name = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str, opts: S3Options) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.opts = opts
        self._owns_client = opts.client is None
        self._conditions: probe.Conditions | None = None
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._hashed: dict[str, str] = {}  # hashed stem -> key (a name's key never changes)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Backend:
        bucket, prefix = parse_url(url)
        opts = S3Options.parse(options)
        return cls(make_client(opts), bucket, prefix, opts)

    def __repr__(self) -> str:
        return f"<S3Backend s3://{self.bucket}/{self.prefix}>"

    # -- names ------------------------------------------------------------------------
    def object_name(self, key: str) -> str:
        """The object holding ``key``: always directly under the prefix."""
        return f"{self.prefix}{storage_name(key)}{SUFFIX}"

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{name}"

    # -- capabilities -----------------------------------------------------------------
    def conditions(self) -> probe.Conditions:
        """What the server enforces: probed once per endpoint and bucket, or assumed."""
        if self._conditions is None:
            if self.opts.conditional_writes == "assume":
                self._conditions = probe.ASSUMED
            else:
                self._conditions = probe.cached(self.client, self.bucket, self.prefix)
        return self._conditions

    @property
    def capabilities(self) -> Capabilities:
        """Honest guarantees: compare-and-swap only where the server enforces conditions."""
        try:
            cond = self.conditions()
        except NanosessionError as exc:
            cond, note = probe.Conditions(False, False, False, "unknown"), (
                f"conditional writes not probed yet ({type(exc).__name__})")
        else:
            note = f"conditional writes {cond.how}"
            if not cond.all:
                note += "; the server ignores some conditions: " + ", ".join(
                    name for name, ok in (("If-None-Match on PUT", cond.create),
                                          ("If-Match on PUT", cond.update),
                                          ("If-Match on DELETE", cond.delete)) if not ok)
        return Capabilities(
            compare_and_swap=cond.update and cond.delete,
            exclusive_create=cond.create,
            atomic_write=True,
            append=False,
            ranged_reads=True,
            durable=True,
            notes=note,
        )

    def _unenforced(self, what: str, key: str) -> None:
        """A condition the server would ignore: refuse, or warn once and check by reading."""
        if self.opts.on_unsupported == "error":
            raise CapabilityError(
                f"s3://{self.bucket} does not enforce {what} (probed); refusing the "
                f"conditional write of {key[:80]!r}. Open the store with on_unsupported=warn "
                "to accept racy check-then-write, or save with mode='overwrite'"
            )
        with self._lock:
            first = what not in self._warned
            self._warned.add(what)
        if first:
            logger.warning("s3://{} does not enforce {}: writes are check-then-write, "
                           "racing workers can overwrite each other", self.bucket, what)

    # -- requests ---------------------------------------------------------------------
    def _head(self, name: str) -> dict[str, Any] | None:
        """One HEAD of ``name``; ``None`` when it does not exist."""
        with s3_errors("head", self.url(name), self.opts.max_attempts):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                if is_not_found(exc):
                    return None
                raise

    def _etag(self, name: str) -> str | None:
        """The current version of ``name``, ``None`` when it does not exist."""
        head = self._head(name)
        return response_etag(head) if head is not None else None

    def _delete(self, name: str, **cond: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=name, **cond)

    def _put(self, name: str, data: bytes, write_id: str | None = None, **cond: str) -> str:
        response = self.client.put_object(
            Bucket=self.bucket, Key=name, Body=data, ContentType=CONTENT_TYPE,
            Metadata={WRITE_ID: write_id} if write_id else {}, **self.opts.write_args(), **cond,
        )
        return response_etag(response)

    def _landed(self, name: str, write_id: str) -> str | None:
        """After a failed condition: the ETag if the stored object is this very write (its
        response was lost and botocore's retry then failed the condition), else ``None``."""
        head = self._head(name)
        if head is None or head.get("Metadata", {}).get(WRITE_ID) != write_id:
            return None
        return response_etag(head)

    def _write(self, key: str, name: str, data: bytes, mode: PutMode) -> str:
        """One PUT under ``mode``: the condition enforced by the server or checked first."""
        where = self.url(name)
        if mode == "overwrite":
            with s3_errors("save", where, self.opts.max_attempts):
                return self._put(name, data)
        expected = mode.version if isinstance(mode, Update) else None
        cond = self.conditions()
        if not (cond.update if expected is not None else cond.create):
            self._unenforced("If-None-Match on PUT" if expected is None else "If-Match on PUT",
                             key)
            if self._etag(name) != expected:
                raise _conflict(key, expected)
            with s3_errors("save", where, self.opts.max_attempts):
                return self._put(name, data)
        header = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": _quoted(key, expected)}
        write_id = uuid.uuid4().hex
        with s3_errors("save", where, self.opts.max_attempts):
            for attempt in (1, 2):
                try:
                    return self._put(name, data, write_id, **header)
                except ClientError as exc:
                    failed = is_precondition_failed(exc) or (
                        expected is not None and is_not_found(exc))
                    if not failed and not is_conditional_conflict(exc):
                        raise
                    if failed:
                        landed = self._landed(name, write_id)
                        if landed is not None:
                            return landed
                        if _retried(exc):  # an earlier attempt may have landed, then lost
                            raise StorageError(  # its reply and been saved over meanwhile
                                f"save of {key[:80]!r}: outcome unknown (a retried conditional "
                                "PUT failed its condition); reload and check before re-applying"
                            ) from exc
                    elif attempt == 1 and self._etag(name) == expected:
                        continue  # a racing conditional write (409) did not land: retry once
                break
        raise _conflict(key, expected)

    # -- hooks ------------------------------------------------------------------------
    @hookimpl
    def nanosession_load(self, key: str) -> SessionRecord | None:
        name = self.object_name(key)
        found = self._read(name)
        if found is None:
            return None
        data, etag, modified = found
        parsed = jsonl.decode(data, key, mtime=modified)
        return jsonl.loaded(parsed, key, etag)

    @hookimpl
    def nanosession_save(self, record: SessionRecord, mode: PutMode) -> str:
        data = jsonl.encode(record)  # SerializationError here: nothing was sent
        return self._write(record.key, self.object_name(record.key), data, mode)

    @hookimpl
    def nanosession_delete(self, key: str, mode: PutMode) -> bool:
        name = self.object_name(key)
        where = self.url(name)
        if not isinstance(mode, Update):
            if self._etag(name) is None:
                return False
            with s3_errors("delete", where, self.opts.max_attempts):
                self._delete(name)
            return True
        enforced = self.conditions().delete
        if not enforced:
            self._unenforced("If-Match on DELETE", key)
            if self._etag(name) != mode.version:
                raise ConflictError(key, "it changed or was deleted")
        with s3_errors("delete", where, self.opts.max_attempts):
            try:
                self._delete(name, **({"IfMatch": _quoted(key, mode.version)} if enforced else {}))
            except ClientError as exc:
                if is_precondition_failed(exc) or is_not_found(exc) or is_conditional_conflict(exc):
                    raise ConflictError(key, "it changed or was deleted") from None
                raise
        return True

    @hookimpl
    def nanosession_list(self, prefix: str, limit: int | None, details: bool) -> list[SessionInfo]:
        with s3_errors("list", self.url(self.prefix), self.opts.max_attempts):
            items = list(listing.scan(self.client, self.bucket, self.prefix, prefix))
        named: list[tuple[str, listing.Listed]] = []
        hashed: list[listing.Listed] = []
        foreign = 0
        for item in items:
            key = key_from_name(item.stem)
            if key is not None:
                named.append((key, item))
            elif listing.is_hashed(item.stem):
                hashed.append(item)
            else:
                foreign += 1
        if foreign:
            logger.warning("{} object(s) under {} have names nanosession does not write "
                           "(nanobot v0.2.0 files?); import them with `nanosession copy`",
                           foreign, self.url(self.prefix))
        unknown: set[str] = set()
        for item, key in zip(hashed, self._map(self._hashed_key, hashed), strict=True):
            if key == GONE:
                continue
            if key is None:
                unknown.add(item.stem)
            named.append((key or item.stem, item))
        chosen = sorted(
            ((k, item) for k, item in named if k.startswith(prefix)),
            key=lambda pair: pair[1].modified, reverse=True,
        )[:limit]
        if not details:
            return [
                SessionInfo(key=k, updated_at=item.modified, size=item.size, version=item.etag,
                            location=self.url(item.name),
                            error="no readable session key" if item.stem in unknown else None)
                for k, item in chosen
            ]
        infos = self._map(
            lambda pair: listing.describe(self.client, self.bucket, pair[0], pair[1],
                                          self.url(pair[1].name)),
            chosen,
        )
        return sorted((i for i in infos if i is not None), key=_newest_first)

    @hookimpl
    def nanosession_repair(self, key: str, dry_run: bool) -> RepairReport:
        name = self.object_name(key)
        found = self._read(name)
        if found is None:
            raise SessionNotFoundError(key)
        data, etag, modified = found
        parsed = jsonl.decode(data, key, mtime=modified)
        findings = parsed.problems + parsed.notices
        if parsed.record.key != key:
            findings.append(f"object named for {key[:80]!r} holds {parsed.record.key[:80]!r}")
            parsed.record.key = key
        record = parsed.record
        report = RepairReport(key, tuple(findings), len(record.messages), parsed.dropped)
        if not findings or dry_run:
            return report
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        backup = f"{name}.corrupt-{stamp}"
        self._write(key, backup, data, "overwrite")  # the original bytes, before any change
        self._write(key, name, jsonl.encode(record), Update(etag))
        logger.warning("repaired session {}: {} problem(s), original kept at {}",
                       key[:80], len(findings), self.url(backup))
        return RepairReport(key, tuple(findings), len(record.messages), parsed.dropped,
                            repaired=True, backup=self.url(backup))

    @hookimpl
    def nanosession_close(self) -> None:
        if self._owns_client:
            self.client.close()

    # -- helpers ----------------------------------------------------------------------
    def _read(self, name: str) -> tuple[bytes, str, datetime] | None:
        """``(bytes, etag, last_modified)`` of one GET, ``None`` when absent."""
        where = self.url(name)
        with s3_errors("load", where, self.opts.max_attempts):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                if is_not_found(exc):
                    return None
                raise
            data = response["Body"].read()
        return data, response_etag(response), response["LastModified"]

    def _hashed_key(self, item: listing.Listed) -> str | None:
        known = self._hashed.get(item.stem)
        if known is None:
            with s3_errors("list", self.url(item.name), self.opts.max_attempts):
                try:
                    known = listing.hashed_key(self.client, self.bucket, item)
                except ClientError as exc:
                    if is_not_found(exc):
                        return GONE
                    raise
            if known is not None:
                self._hashed[item.stem] = known
        return known

    def _map(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        """``fn`` over ``items`` with at most ``list_concurrency`` requests in flight."""
        if len(items) <= 1:
            return [fn(i) for i in items]
        workers = min(self.opts.list_concurrency, len(items))
        with ThreadPoolExecutor(workers, thread_name_prefix="nanosession-s3") as pool:
            return list(pool.map(fn, items))


def _conflict(key: str, expected: str | None) -> ConflictError:
    if expected is None:
        return ConflictError(key, "it already exists")
    return ConflictError(key, "the stored copy changed (or was deleted)")


def _newest_first(info: SessionInfo) -> float:
    stamp = info.updated_at
    return -stamp.timestamp() if stamp is not None else float("inf")


def _retried(exc: ClientError) -> bool:
    """Whether botocore sent the request more than once before this error came back."""
    return bool(exc.response.get("ResponseMetadata", {}).get("RetryAttempts"))
