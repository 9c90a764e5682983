"""``LocalBackend``: JSONL files in one directory, appended when only new messages came.

Versions are opaque tokens built from the file's inode, size and mtime plus what an
appending writer must know (where committed data ends, how many messages it holds, how
much superseded metadata it carries). A writer locks the file, checks the token against
``fstat`` and only then appends or replaces, so two processes cannot both win.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from loguru import logger

from nanosession import hookimpl, jsonl
from nanosession.errors import (
    ConfigurationError,
    ConflictError,
    InvalidURLError,
    SessionNotFoundError,
    StorageError,
)
from nanosession.keys import MAX_NAME, SUFFIX, key_from_name, legacy_name, storage_name
from nanosession.record import (
    Capabilities,
    PutMode,
    RepairReport,
    SessionInfo,
    SessionRecord,
    Update,
)
from nanosession_local import files
from nanosession_local.index import ListingIndex, Stamp
from nanosession_local.listing import INFO, KEY, NAME, SortedListing

_key_of = functools.lru_cache(maxsize=1 << 16)(key_from_name)  # pure: listings repeat names
T = TypeVar("T")
HEAD = 16384
TAIL = 16384
SHORT_TAIL = 4096
COMPACT_MIN_WASTE = 65536


@dataclass(frozen=True)
class Token:
    """What a version token encodes. ``count`` is -1 when the file may not be appended to."""

    legacy: bool
    ino: int
    size: int
    mtime_ns: int
    end: int
    count: int
    waste: int
    last_meta: int

    def encode(self) -> str:
        fields = (self.ino, self.size, self.mtime_ns, self.end, self.count + 1, self.waste,
                  self.last_meta)
        return ("L" if self.legacy else "F") + ".".join(f"{f:x}" for f in fields)

    @classmethod
    def decode(cls, version: str) -> Token | None:
        try:
            kind, rest = version[0], version[1:]
            ino, size, mtime, end, count, waste, last = (int(p, 16) for p in rest.split("."))
        except (IndexError, ValueError):
            return None
        if kind not in "LF":
            return None
        return cls(kind == "L", ino, size, mtime, end, count - 1, waste, last)

    def matches(self, st: os.stat_result) -> bool:
        return (self.ino, self.size, self.mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)


def _token(st: os.stat_result, parsed: jsonl.Parsed, *, legacy: bool = False) -> Token:
    return Token(legacy, st.st_ino, st.st_size, st.st_mtime_ns, parsed.committed_end,
                 parsed.count, parsed.waste, parsed.last_meta_size)


_STAT_AT = os.stat in os.supports_dir_fd and os.listdir in os.supports_fd
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_stamp_of = attrgetter("st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")


def _is_session_file(name: str) -> bool:
    return name.endswith(SUFFIX) and not name.startswith(".")


def _mtime(mtime_ns: int) -> datetime:
    return datetime.fromtimestamp(mtime_ns / 1e9)


class LocalBackend:
    """Storage hooks over a directory of ``<base64url key>.jsonl`` files."""

    name = "local"

    def __init__(self, root: Path, *, create: bool = True) -> None:
        self.root = root
        if create:
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create session directory {root}: {exc}") from exc
        elif not root.is_dir():
            raise ConfigurationError(f"session directory {root} does not exist")
        files.remove_orphans(root)
        self._index = ListingIndex(root, self._read_name)
        self._sorted = SortedListing()
        self._listing = threading.Lock()  # guards _index and _sorted: listings may run
        # in several threads at once
        self.capabilities = Capabilities(
            compare_and_swap=files.HAS_LOCKS,
            exclusive_create=True,
            atomic_write=True,
            append=True,
            ranged_reads=True,
            durable=True,
            notes="" if files.HAS_LOCKS else "no advisory locks on this platform",
        )

    @classmethod
    def from_url(cls, url: str, *, create: Any = True) -> LocalBackend:
        if url.startswith("file:"):
            parts = urlsplit(url)
            if parts.netloc not in ("", "localhost"):
                raise InvalidURLError(f"file URL must not name a host: {url!r}")
            path = unquote(parts.path)
            if not path:
                raise InvalidURLError(f"file URL has no path: {url!r}")
        else:
            path = url
        if isinstance(create, str):
            create = create.lower() not in ("0", "false", "no")
        return cls(Path(path).expanduser(), create=bool(create))

    # -- paths ----------------------------------------------------------------
    def path(self, key: str) -> Path:
        return self.root / (storage_name(key) + SUFFIX)

    def _legacy_path(self, key: str) -> Path | None:
        """Where nanobot v0.2.0 kept ``key``; ``None`` for keys it could not have stored."""
        stem = legacy_name(key)
        if (
            not stem
            or stem == storage_name(key)
            or "\x00" in stem
            or len(stem.encode("utf-8")) > MAX_NAME
            or stem.startswith(".")
        ):
            return None
        return self.root / (stem + SUFFIX)

    def _read(self, path: Path, key: str) -> tuple[jsonl.Parsed, os.stat_result] | None:
        with files.locked(path, exclusive=False) as held:
            if held is None:
                return None
            fd, st = held
            data = _read_fd(fd, st.st_size)
        return jsonl.decode(data, key, mtime=_mtime(st.st_mtime_ns)), st

    def _find_legacy(self, key: str) -> tuple[Path, jsonl.Parsed, os.stat_result] | None:
        """nanobot v0.2.0's lossy-named file, if it really holds ``key``."""
        path = self._legacy_path(key)
        found = self._read(path, key) if path else None
        if found is None or path is None:
            return None
        parsed, st = found
        if parsed.record.key != key:
            return None  # another key that maps to the same lossy name
        return path, parsed, st

    # -- hooks ----------------------------------------------------------------
    @hookimpl
    def nanosession_load(self, key: str) -> SessionRecord | None:
        found = self._read(self.path(key), key)
        legacy = found is None
        if found is None:
            old = self._find_legacy(key)
            if old is None:
                return None
            found = old[1:]
        parsed, st = found
        return jsonl.loaded(parsed, key, _token(st, parsed, legacy=legacy).encode())

    @hookimpl
    def nanosession_save(
        self, record: SessionRecord, mode: PutMode, unchanged: int, durable: bool
    ) -> str:
        key = record.key
        path = self.path(key)
        if mode == "create":
            if self._find_legacy(key) is not None:
                raise ConflictError(key, "it already exists (nanobot v0.2.0 file)")
            st = files.create_exclusively(path, jsonl.encode(record), durable=durable)
            if st is None:
                raise ConflictError(key, "it already exists")
            return self._fresh_token(st, record).encode()
        if mode == "overwrite":
            data = jsonl.encode(record)
            with files.locked(path, exclusive=True):
                st = files.replace_atomically(path, data, durable=durable)
            self._drop_legacy(key)
            return self._fresh_token(st, record).encode()
        assert isinstance(mode, Update)
        token = Token.decode(mode.version)
        if token is None:
            raise ConflictError(key, f"version {mode.version!r} is not from this backend")
        if token.legacy:
            return self._migrate(record, token, durable)
        with files.locked(path, exclusive=True) as held:
            if held is None:
                raise ConflictError(key, "it was deleted")
            fd, st = held
            if not token.matches(st):
                raise ConflictError(key)
            if self._can_append(token, record, unchanged):
                return self._append(fd, path, token, record, unchanged, durable).encode()
            st = files.replace_atomically(path, jsonl.encode(record), durable=durable)
        return self._fresh_token(st, record).encode()

    @hookimpl
    def nanosession_delete(self, key: str, mode: PutMode) -> bool:
        deleted = self._delete(key, mode)
        if deleted:
            legacy = self._legacy_path(key)
            with self._listing:
                for name in (self.path(key).name, *([legacy.name] if legacy else [])):
                    self._index.forget(name)
                    self._sorted.forget(name)
        return deleted

    def _delete(self, key: str, mode: PutMode) -> bool:
        path = self.path(key)
        if isinstance(mode, Update):
            token = Token.decode(mode.version)
            if token is None:
                raise ConflictError(key, f"version {mode.version!r} is not from this backend")
            target = self._legacy_path(key) if token.legacy else path
            with files.locked(target, exclusive=True) if target else nullcontext() as held:
                if held is None or not token.matches(held[1]):
                    raise ConflictError(key, "it changed or was deleted")
                os.unlink(target)  # type: ignore[arg-type]
            if not token.legacy:
                self._drop_legacy(key)
            return True
        deleted = False
        with files.locked(path, exclusive=True) as held:
            if held is not None:
                os.unlink(path)
                deleted = True
        return self._drop_legacy(key) or deleted

    @hookimpl
    def nanosession_list(self, prefix: str, limit: int | None, details: bool) -> list[SessionInfo]:
        stamps = self._stamps()
        if not details:  # the storage's modification time orders a listing without details
            found = []
            for name, stamp in stamps.items():
                key = _key_of(name[: -len(SUFFIX)])
                named = key is not None
                if key is None:  # hashed or nanobot v0.2.0 name: the key is inside
                    with self._listing:
                        key = self._index.describe(name, stamp)[1].key
                found.append((-stamp[2], name, key, named, stamp))
            found.sort()
            shown = _shown(((k, n, named, (k, n, s)) for _, n, k, named, s in found), stamps,
                           prefix)
            return [
                SessionInfo(key=key, updated_at=_mtime(stamp[2]), size=stamp[1],
                            location=self._index.location(name))
                for key, name, stamp in islice(shown, limit)
            ]
        # The stored updated_at orders a detailed listing, so every entry is described
        # (and kept sorted between calls while the files are unchanged) before the
        # newest are picked.
        with self._listing:
            order = self._sorted.update(stamps, self._index.describe)
            self._index.retain(stamps)
            self._index.flush()
            if not prefix and not self._sorted.unnamed:
                return [entry[INFO] for entry in order[:limit]]
            shown = _shown(
                ((entry[INFO].key if entry[KEY] is None else entry[KEY], entry[NAME],
                  entry[KEY] is not None, entry[INFO]) for entry in order),
                stamps, prefix,
            )
            return list(islice(shown, limit))

    def _stamps(self) -> dict[str, Stamp]:
        """Every session file's name and identity stamp: one ``stat()`` each.

        ``stat`` relative to an open directory skips building and resolving a path per
        file, which makes the pass a fifth faster than ``DirEntry.stat()``.
        """
        stamps = {}
        if not _STAT_AT:  # Windows
            for entry in os.scandir(self.root):
                if _is_session_file(entry.name):
                    with suppress(OSError):
                        stamps[entry.name] = _stamp_of(entry.stat())
            return stamps
        fd = os.open(self.root, os.O_RDONLY | _DIRECTORY)
        try:
            stat = os.stat
            for name in os.listdir(fd):
                if _is_session_file(name):
                    try:
                        stamps[name] = _stamp_of(stat(name, dir_fd=fd))
                    except OSError:  # deleted meanwhile
                        continue
        finally:
            os.close(fd)
        return stamps

    @hookimpl
    def nanosession_repair(self, key: str, dry_run: bool) -> RepairReport:
        path = self.path(key)
        legacy = None
        if not path.exists():
            old = self._find_legacy(key)
            legacy = old[0] if old else None
            if legacy is None:
                raise SessionNotFoundError(key)
        source = legacy or path
        with files.locked(source, exclusive=True) as held:
            if held is None:
                raise SessionNotFoundError(key)
            fd, st = held
            data = _read_fd(fd, st.st_size)
            parsed = jsonl.decode(data, key, mtime=_mtime(st.st_mtime_ns))
            findings = parsed.problems + parsed.notices
            if parsed.record.key != key:
                findings.append(f"file named for {key[:80]!r} holds {parsed.record.key[:80]!r}")
                parsed.record.key = key
            if legacy is not None:
                findings.append("stored under a nanobot v0.2.0 file name")
            record = parsed.record
            report = RepairReport(key, tuple(findings), len(record.messages), parsed.dropped)
            if not findings or dry_run:
                return report
            backup = _keep_copy(source)
            files.replace_atomically(path, jsonl.encode(record), durable=True)
            if legacy is not None:
                os.unlink(legacy)
        logger.warning("repaired session {}: {} problem(s), original kept at {}",
                       key[:80], len(findings), backup)
        return RepairReport(key, tuple(findings), len(record.messages), parsed.dropped,
                            repaired=True, backup=str(backup))

    @hookimpl
    def nanosession_close(self) -> None:
        with self._listing:
            self._index.flush(force=True)
        files.remove_orphans(self.root)

    # -- helpers ----------------------------------------------------------------
    def _fresh_token(self, st: os.stat_result, record: SessionRecord) -> Token:
        meta = len(jsonl.meta_line(record, len(record.messages)))
        return Token(False, st.st_ino, st.st_size, st.st_mtime_ns, st.st_size,
                     len(record.messages), 0, meta)

    @staticmethod
    def _can_append(token: Token, record: SessionRecord, unchanged: int) -> bool:
        if token.count < 0 or unchanged != token.count or unchanged > len(record.messages):
            return False
        payload = token.end - token.waste
        return token.waste + token.last_meta <= max(COMPACT_MIN_WASTE, payload)

    def _append(
        self, fd: int, path: Path, token: Token, record: SessionRecord, unchanged: int,
        durable: bool,
    ) -> Token:
        meta = jsonl.meta_line(record, len(record.messages))
        data = jsonl.message_lines(record.messages[unchanged:]) + meta
        try:
            if token.size != token.end:
                os.ftruncate(fd, token.end)  # remains of an append a crash cut short
            os.lseek(fd, token.end, os.SEEK_SET)
            files.write_all(fd, data)
            if durable:
                os.fsync(fd)
        except BaseException:
            # Leave the committed state exactly as it was, mtime included, so the caller's
            # version still matches and a retry (say, after freeing disk space) succeeds.
            with suppress(OSError, NotImplementedError):
                os.ftruncate(fd, token.end)
                os.utime(fd, ns=(os.fstat(fd).st_atime_ns, token.mtime_ns))
            raise
        st = os.fstat(fd)
        return Token(False, st.st_ino, st.st_size, st.st_mtime_ns, st.st_size,
                     len(record.messages), token.waste + token.last_meta, len(meta))

    def _migrate(self, record: SessionRecord, token: Token, durable: bool) -> str:
        """Save a session read from a nanobot v0.2.0 file under its proper name."""
        key = record.key
        legacy = self._legacy_path(key)
        with files.locked(legacy, exclusive=True) if legacy else nullcontext() as held:
            if held is None or not token.matches(held[1]):
                raise ConflictError(key, "it changed or was deleted")
            st = files.create_exclusively(self.path(key), jsonl.encode(record), durable=durable)
            if st is None:
                raise ConflictError(key, "it was saved under its new name meanwhile")
            os.unlink(legacy)  # type: ignore[arg-type]
        return self._fresh_token(st, record).encode()

    def _drop_legacy(self, key: str) -> bool:
        old = self._find_legacy(key)
        if old is None:
            return False
        old[0].unlink(missing_ok=True)
        return True

    def _read_name(self, name: str, stamp: Stamp) -> tuple[SessionInfo, str | None]:
        """The listing entry of the file ``name`` from the file, and the key its name
        encodes (``None``: hashed or nanobot v0.2.0 names, whose key only the file knows)."""
        stem = name[: -len(SUFFIX)]
        key = _key_of(stem)
        return self._read_info(self._index.location(name), key or stem, stamp), key

    def _read_info(self, path: str, key: str, stamp: Stamp) -> SessionInfo:
        """A listing entry from the file's head and tail; the whole file only when its
        metadata line is longer than the window (a key of tens of KiB)."""
        size, mtime = stamp[1], _mtime(stamp[2])
        whole = size <= HEAD + TAIL
        while True:
            try:
                fd = os.open(path, os.O_RDONLY | files.CLOEXEC)
                try:  # positioned reads: no buffered file object per listed file
                    head = _read_fd(fd, size) if whole else files.read_at(fd, HEAD, 0)
                    tail = b""
                    if not whole and jsonl.may_have_appends(head):
                        # The commit record of the last append ends the file: a short
                        # read finds it, unless a crash left lines behind it.
                        tail = files.read_at(fd, SHORT_TAIL, size - SHORT_TAIL)
                        if not jsonl.has_metadata(tail):
                            tail = files.read_at(fd, TAIL, size - TAIL)
                finally:
                    os.close(fd)
            except OSError as exc:
                return SessionInfo(key=key, updated_at=mtime, location=path,
                                   error=f"unreadable: {exc.strerror}")
            info = jsonl.info(key, head, tail, whole=whole, size=size, mtime=mtime,
                              location=path)
            if whole or not info.error:
                return info
            whole = True


def _shown(
    entries: Iterable[tuple[str, str, bool, T]], stamps: dict[str, Stamp], prefix: str
) -> Iterator[T]:
    """The payloads of ``entries`` (in listing order: key, file name, whether the name
    encodes the key, payload) that a listing under ``prefix`` shows.

    A file whose name does not encode its key is listed under the key stored inside,
    unless the file a load of that key reads first exists, and only once.
    """
    seen: set[str] = set()
    for key, name, named, payload in entries:
        if not key.startswith(prefix):
            continue
        if not named:
            home = storage_name(key) + SUFFIX
            if (home != name and home in stamps) or key in seen:
                continue
            seen.add(key)
        yield payload


def _read_fd(fd: int, size: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, max(size, 65536))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _keep_copy(path: Path) -> Path:
    """Keep the original bytes beside the file before it is replaced (hard link if possible)."""
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
    backup = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)
    return backup

