"""``FsspecBackend``: the local backend's JSONL files on any fsspec filesystem.

Same file names (``keys.storage_name`` + ``.jsonl``) and format (``nanosession.jsonl``) as
the local backend, so a directory copied between backends reads the same. Remote
protocols cannot append safely (fsspec emulates or ignores it), so every save writes the
whole file, the way ``protocols.Protocol`` says is safest on that filesystem.

Versions are content hashes: every protocol can give them (no trust in coarse FTP/SFTP
mtimes), they are the same for every client, and ``Update(version)`` is checked by reading
the stored bytes again just before writing. Between processes that check is racy (see
``Capabilities.compare_and_swap``); inside one process a lock per store directory makes
it exact.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import datetime, timezone
from typing import Any

from loguru import logger

from nanosession import hookimpl, jsonl
from nanosession.errors import (
    CapabilityError,
    ConflictError,
    SessionNotFoundError,
)
from nanosession.keys import SUFFIX, key_from_name, legacy_name, storage_name
from nanosession.record import PutMode, RepairReport, SessionInfo, SessionRecord, Update
from nanosession_fsspec.protocols import Protocol, protocol_for, protocol_name

HEAD = 16384
TAIL = 16384
TMP_SUFFIX = ".tmp"
LEGACY_MAX = 255 - len(SUFFIX)
STALE_TEMP_SECONDS = 3600
_WRITER = f"{socket.gethostname().replace('.', '_')}-{os.getpid()}"


def _orphaned(temp_name: str) -> bool:
    """Whether a temp file was written by a process of this host that no longer runs."""
    writer = temp_name.rsplit(".", 3)[-3] if temp_name.count(".") >= 4 else ""
    host, _, pid = writer.rpartition("-")
    if host != _WRITER.rpartition("-")[0] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
_FRESH, _LEGACY = "H", "L"

_locks: dict[tuple[str, str], threading.RLock] = {}
_locks_guard = threading.Lock()


def _lock_for(protocol: str, root: str) -> threading.RLock:
    """One lock per store directory, shared by every store of this process on it."""
    with _locks_guard:
        return _locks.setdefault((protocol, root), threading.RLock())


def version_of(data: bytes, *, legacy: bool = False) -> str:
    """The version token of stored bytes (``L``: under a nanobot v0.2.0 file name)."""
    return (_LEGACY if legacy else _FRESH) + hashlib.blake2b(data, digest_size=16).hexdigest()


class FsspecBackend:
    """Storage hooks over a directory (or object prefix) of an fsspec filesystem."""

    name = "fsspec"

    def __init__(self, fs: Any, root: str, *, create: bool = True, strict: bool = False) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.protocol: Protocol = protocol_for(fs)
        self.capabilities = self.protocol.capabilities
        self.strict = strict
        self._lock = _lock_for(protocol_name(fs), self.root)
        self._reading: AbstractContextManager[Any] = (
            self._lock if self.protocol.serial else nullcontext()
        )
        if create:
            with suppress(FileExistsError):
                fs.makedirs(self.root or "/", exist_ok=True)
        logger.debug("fsspec store on {}://{} ({})", protocol_name(fs), self.root,
                     type(fs).__name__)
        try:
            self._remove_stale_temps()
        except Exception as exc:  # opening must not fail because of cleanup
            logger.debug("temp file cleanup on {} skipped: {!r}", self.root, exc)

    # -- paths ----------------------------------------------------------------
    def _join(self, name: str) -> str:
        return f"{self.root}/{name}"

    def path(self, key: str) -> str:
        return self._join(storage_name(key) + SUFFIX)

    def _legacy_path(self, key: str) -> str | None:
        stem = legacy_name(key)
        if (not stem or stem == storage_name(key) or len(stem.encode()) > LEGACY_MAX
                or not self._addressable(stem)):
            return None  # not a name nanobot could have written, or one this protocol can't
        return self._join(stem + SUFFIX)

    def _addressable(self, name: str) -> bool:
        """Whether the protocol can carry ``name`` (FTP commands and URLs cannot carry
        control characters; webdav4 puts names in URLs unescaped)."""
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            return False
        return not (protocol_name(self.fs) == "webdav" and any(c in name for c in "#%"))

    # -- raw I/O ----------------------------------------------------------------
    def _read(self, path: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(path))
        except (FileNotFoundError, IsADirectoryError):
            return None

    def _read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``start:end`` of a file, fetching no more than that from the server."""
        proto = protocol_name(self.fs)
        if proto == "sftp":  # sshfs's cat_file ignores start/end and reads it all
            with self.fs.open(path, "rb") as f:
                f.seek(start)
                return bytes(f.read(end - start))
        if proto == "webdav":  # webdav4's files ask for open-ended ranges (bytes=N-)
            response = self.fs.client.request(
                "GET", self.fs._strip_protocol(path),
                headers={"Range": f"bytes={start}-{end - 1}"},
            )
            data = bytes(response.content)
            return data if response.status_code == 206 else data[start:end]
        return bytes(self.fs.cat_file(path, start=start, end=end))

    def _exists(self, path: str) -> bool:
        self.fs.invalidate_cache(self.root)
        return bool(self.fs.exists(path))

    def _create(self, key: str, path: str, data: bytes) -> None:
        """Write a new file; ``ConflictError`` if one is there (atomically where possible)."""
        how = self.protocol.create
        try:
            if how == "xb":
                self._write_exclusive(path, data)
            elif how == "put-create":
                self.fs.pipe_file(path, data, mode="create")
            elif self._exists(path):
                raise FileExistsError(path)
            else:
                self._replace(path, data)
        except FileExistsError:
            raise ConflictError(key, "it already exists") from None
        finally:
            self.fs.invalidate_cache(self.root)

    def _write_exclusive(self, path: str, data: bytes) -> None:
        created = False
        try:
            with self.fs.open(path, "xb") as f:
                created = True
                f.write(data)
        except FileExistsError:
            raise
        except Exception:
            if created:  # never leave a half-written file we created
                with suppress(Exception):
                    self.fs.rm_file(path)
            elif self._exists(path):  # SFTP v3 reports EEXIST as a generic failure
                raise FileExistsError(path) from None
            raise

    def _replace(self, path: str, data: bytes) -> None:
        """Replace the whole file: temp name + rename where that is atomic, else one PUT."""
        if self.protocol.replace == "put":
            self.fs.pipe_file(path, data)
        else:
            name = path.rsplit("/", 1)[-1]
            tmp = self._join(f".{name}.{_WRITER}.{secrets.token_hex(6)}{TMP_SUFFIX}")
            self.fs.pipe_file(tmp, data)
            try:
                self._rename(tmp, path)
            except BaseException:
                with suppress(Exception):
                    self.fs.rm_file(tmp)
                raise
        self.fs.invalidate_cache(self.root)

    def _rename(self, src: str, dst: str) -> None:
        client = getattr(self.fs, "client", None)
        if protocol_name(self.fs) == "webdav" and client is not None:
            # webdav4's fs.mv is copy + delete; a MOVE is one server-side request.
            strip: Callable[[str], str] = self.fs._strip_protocol
            client.move(strip(src), strip(dst), overwrite=True)
        else:
            self.fs.mv(src, dst)

    def _remove(self, path: str) -> bool:
        if not self._exists(path):
            return False
        with suppress(FileNotFoundError):
            self.fs.rm_file(path)
        self.fs.invalidate_cache(self.root)
        return True

    def _find_legacy(self, key: str) -> tuple[str, bytes, jsonl.Parsed] | None:
        """nanobot v0.2.0's lossy-named file, if it really holds ``key``."""
        path = self._legacy_path(key)
        data = self._read(path) if path else None
        if path is None or data is None:
            return None
        parsed = jsonl.decode(data, key)
        if parsed.record.key != key:
            return None  # another key that maps to the same lossy name
        return path, data, parsed

    def _require(self, mode: PutMode) -> None:
        caps = self.capabilities
        if not self.strict:
            return
        if isinstance(mode, Update) and not caps.compare_and_swap:
            raise CapabilityError(f"{protocol_name(self.fs)}:// cannot compare-and-swap "
                                  "atomically (opened with strict=True)")
        if mode == "create" and not caps.exclusive_create:
            raise CapabilityError(f"{protocol_name(self.fs)}:// cannot create exclusively "
                                  "(opened with strict=True)")

    def _check(self, key: str, path: str, version: str) -> None:
        """``ConflictError`` unless the file at ``path`` still hashes to ``version``."""
        current = self._read(path)
        if current is None:
            raise ConflictError(key, "it was deleted")
        if version_of(current, legacy=version.startswith(_LEGACY)) != version:
            raise ConflictError(key)

    # -- hooks ----------------------------------------------------------------
    @hookimpl
    def nanosession_load(self, key: str) -> SessionRecord | None:
        with self._reading:
            return self._load(key)

    def _load(self, key: str) -> SessionRecord | None:
        data = self._read(self.path(key))
        legacy = data is None
        if data is None:
            found = self._find_legacy(key)
            if found is None:
                return None
            data, parsed = found[1], found[2]
        else:
            parsed = jsonl.decode(data, key)
        return jsonl.loaded(parsed, key, version_of(data, legacy=legacy))

    @hookimpl
    def nanosession_save(self, record: SessionRecord, mode: PutMode) -> str:
        key = record.key
        path = self.path(key)
        self._require(mode)
        data = jsonl.encode(record)
        with self._lock:
            if mode == "create":
                if self._find_legacy(key) is not None:
                    raise ConflictError(key, "it already exists (nanobot v0.2.0 file)")
                self._create(key, path, data)
            elif mode == "overwrite":
                self._replace(path, data)
                self._drop_legacy(key)
            else:
                assert isinstance(mode, Update)
                version = mode.version
                if not version.startswith((_FRESH, _LEGACY)):
                    raise ConflictError(key, f"version {version!r} is not from this backend")
                legacy = self._legacy_path(key) if version.startswith(_LEGACY) else None
                if legacy is not None:  # read from a nanobot v0.2.0 name: move it
                    self._check(key, legacy, version)
                    self._create(key, path, data)
                    self._remove(legacy)
                else:
                    self._check(key, path, version)
                    self._replace(path, data)
        return version_of(data)

    @hookimpl
    def nanosession_delete(self, key: str, mode: PutMode) -> bool:
        path = self.path(key)
        with self._lock:
            if isinstance(mode, Update):
                self._require(mode)
                legacy = mode.version.startswith(_LEGACY)
                target = (self._legacy_path(key) if legacy else path) or path
                self._check(key, target, mode.version)
                self.fs.rm_file(target)
                self.fs.invalidate_cache(self.root)
                if not legacy:
                    self._drop_legacy(key)
                return True
            deleted = self._remove(path)
            return self._drop_legacy(key) or deleted

    @hookimpl
    def nanosession_list(self, prefix: str, limit: int | None, details: bool) -> list[SessionInfo]:
        with self._reading:
            return self._list(prefix, limit, details)

    def _list(self, prefix: str, limit: int | None, details: bool) -> list[SessionInfo]:
        self.fs.invalidate_cache(self.root)  # another writer's files must show at once
        try:
            listing = self.fs.ls(self.root or "/", detail=True)
        except FileNotFoundError:
            return []
        named: dict[str, dict[str, Any]] = {}
        found: dict[str, SessionInfo] = {}
        for entry in listing:
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") != "file" or name.startswith(".") or not name.endswith(SUFFIX):
                continue
            key = key_from_name(name[: -len(SUFFIX)])
            if key is None:  # hashed or nanobot v0.2.0 name: the key is inside
                info = self._describe(name[: -len(SUFFIX)], entry)
                if info.key.startswith(prefix):
                    found.setdefault(info.key, info)
            elif key.startswith(prefix):
                named[key] = entry
        for key in found.keys() & named.keys():
            del found[key]  # the proper name wins over a legacy copy
        ranked = [(k, e, _mtime(e)) for k, e in named.items()]
        ranked += [(k, None, i.updated_at) for k, i in found.items()]
        ranked.sort(key=lambda t: _stamp(t[2]))
        if limit is not None:
            ranked = ranked[:limit]
        out = []
        for key, entry, mtime in ranked:
            if entry is None:
                out.append(found[key])
            elif details:
                out.append(self._describe(key, entry))
            else:
                out.append(SessionInfo(key=key, updated_at=mtime, size=entry.get("size"),
                                       location=str(entry["name"])))
        if details:
            out.sort(key=lambda i: _stamp(i.updated_at))
        return out

    @hookimpl
    def nanosession_repair(self, key: str, dry_run: bool) -> RepairReport:
        path = self.path(key)
        with self._lock:
            source = path
            data = self._read(path)
            if data is None:
                found = self._find_legacy(key)
                if found is None:
                    raise SessionNotFoundError(key)
                source, data = found[0], found[1]
            parsed = jsonl.decode(data, key)
            findings = parsed.problems + parsed.notices
            if parsed.record.key != key:
                findings.append(f"file named for {key[:80]!r} holds {parsed.record.key[:80]!r}")
                parsed.record.key = key
            if source != path:
                findings.append("stored under a nanobot v0.2.0 file name")
            record = parsed.record
            report = RepairReport(key, tuple(findings), len(record.messages), parsed.dropped)
            if not findings or dry_run:
                return report
            stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
            backup = f"{source}.corrupt-{stamp}"
            self.fs.pipe_file(backup, data)  # the original bytes, before anything changes
            self._replace(path, jsonl.encode(record))
            if source != path:
                self._remove(source)
        logger.warning("repaired session {}: {} problem(s), original kept at {}",
                       key[:80], len(findings), backup)
        return RepairReport(key, tuple(findings), len(record.messages), parsed.dropped,
                            repaired=True, backup=backup)

    @hookimpl
    def nanosession_close(self) -> None:
        try:
            self._remove_stale_temps()
        except Exception as exc:  # closing must not fail because the server is gone
            logger.debug("temp file cleanup on {} skipped: {!r}", self.root, exc)
        self.fs.invalidate_cache()

    def _remove_stale_temps(self) -> None:
        """Delete temp files a crashed writer left: at once when that writer was a process
        of this host that is gone, else once they are too old to be in flight."""
        now = datetime.now()
        self.fs.invalidate_cache(self.root)
        for entry in self.fs.ls(self.root or "/", detail=True):
            name = str(entry["name"]).rsplit("/", 1)[-1]
            if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
                continue
            mtime = _mtime(entry)
            old = mtime is not None and (now - mtime).total_seconds() > STALE_TEMP_SECONDS
            if old or _orphaned(name):
                with suppress(FileNotFoundError):
                    self.fs.rm_file(str(entry["name"]))
                logger.debug("removed stale temp file {}", name)

    # -- helpers ----------------------------------------------------------------
    def _drop_legacy(self, key: str) -> bool:
        found = self._find_legacy(key)
        return self._remove(found[0]) if found else False

    def _describe(self, key: str, entry: dict[str, Any]) -> SessionInfo:
        """A listing entry from at most HEAD + TAIL bytes (ranged reads)."""
        path = str(entry["name"])
        size = entry.get("size")
        mtime = _mtime(entry)
        whole = not isinstance(size, int) or size <= HEAD + TAIL
        try:
            if whole:
                head, tail = self._read(path) or b"", b""
            else:
                head = self._read_range(path, 0, HEAD)
                # Only nanosession appends leave later metadata lines, and never to a file
                # whose metadata line does not count messages (nanobot's): no tail read.
                tail = (self._read_range(path, size - TAIL, size)
                        if jsonl.may_have_appends(head) else b"")
        except Exception as exc:  # a listing never fails because one entry is bad
            logger.debug("cannot read {}: {!r}", path, exc)
            return SessionInfo(key=key, updated_at=mtime, location=path,
                               error=f"unreadable: {type(exc).__name__}")
        if not isinstance(size, int):
            size = len(head)
        info = jsonl.info(key, head, tail, whole=whole, size=size, mtime=mtime, location=path)
        if info.error and not whole:  # a metadata line longer than the window (huge key)
            return self._describe(key, {**entry, "size": None})
        return info


_MTIME_FIELDS = ("mtime", "LastModified", "last_modified", "modified", "modify", "updated",
                 "created")


def _mtime(entry: dict[str, Any]) -> datetime | None:
    """Modification time from a listing entry, whatever the protocol calls it."""
    for name in _MTIME_FIELDS:
        value = entry.get(name)
        if value is None:
            continue
        if isinstance(value, datetime):
            stamp = value
        elif isinstance(value, (int, float)):
            stamp = datetime.fromtimestamp(value, tz=timezone.utc)
        elif isinstance(value, str):
            stamp = _parse_stamp(value)
            if stamp is None:
                continue
        else:
            continue
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone().replace(tzinfo=None)
        return stamp
    return None


def _parse_stamp(value: str) -> datetime | None:
    """ISO-8601, or FTP MLSD's ``YYYYMMDDHHMMSS[.fff]`` (always UTC)."""
    digits = value.split(".", 1)[0]
    if len(digits) == 14 and digits.isdigit():
        return datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    return jsonl.parse_time(value)


def _stamp(when: datetime | None) -> float:
    """Sort key: newest first, unknown times last."""
    return -when.timestamp() if when is not None else float("inf")
