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
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any
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
from nanosession_local.index import ListingIndex

_key_of = functools.lru_cache(maxsize=1 << 16)(key_from_name)  # pure: listings repeat names
HEAD = 16384
TAIL = 16384
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


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime)


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
        self._index = ListingIndex(root, self._read_info)
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
        return jsonl.decode(data, key, mtime=_mtime(st)), st

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
            for name in (self.path(key).name, *([legacy.name] if legacy else [])):
                self._index.forget(name)
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
        found: list[tuple[str, os.DirEntry[str], os.stat_result]] = []
        unnamed: list[tuple[os.DirEntry[str], os.stat_result]] = []
        names: list[str] = []
        for entry in os.scandir(self.root):
            name = entry.name
            if not name.endswith(SUFFIX) or name.startswith("."):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            names.append(name)
            key = _key_of(name[: -len(SUFFIX)])
            if key is None:
                unnamed.append((entry, st))  # hashed or nanobot v0.2.0 name: key is inside
            elif key.startswith(prefix):
                found.append((key, entry, st))
        if unnamed:  # listed under the key stored inside, unless a file is named for it
            taken = {key for key, _, _ in found}
            inside: dict[str, tuple[str, os.DirEntry[str], os.stat_result]] = {}
            for entry, st in unnamed:
                _, info = self._describe(entry, entry.name[: -len(SUFFIX)], st)
                if info.key.startswith(prefix) and info.key not in taken:
                    inside[info.key] = (info.key, entry, st)
            found += inside.values()
        if not details:  # the storage's modification time orders a listing without details
            found.sort(key=lambda item: item[2].st_mtime_ns, reverse=True)
            return [
                SessionInfo(key=k, updated_at=_mtime(st), size=st.st_size, location=e.path)
                for k, e, st in found[:limit]
            ]
        # The stored updated_at orders a detailed listing, so every entry is described
        # (from the index while files are unchanged) before the newest are picked.
        describe = self._index.describe
        described = []
        for key, entry, st in found:
            rank, info = describe(entry.name, entry.path, key, st)
            described.append((rank, -st.st_mtime_ns, info))  # ties: newest file first
        self._index.retain(names)
        self._index.flush()
        described.sort(key=_by_rank)
        return [item[2] for item in described[:limit]]

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
            parsed = jsonl.decode(data, key, mtime=_mtime(st))
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

    def _describe(
        self, entry: os.DirEntry[str], key: str, st: os.stat_result
    ) -> tuple[float, SessionInfo]:
        """Sort rank and listing entry: from the index, else from the file's head and tail.

        (``key`` follows from the name: the name's key, or the one stored inside.)
        """
        return self._index.describe(entry.name, entry.path, key, st)

    def _read_info(self, path: str, key: str, st: os.stat_result) -> SessionInfo:
        """A listing entry from the file's head and tail; the whole file only when its
        metadata line is longer than the window (a key of tens of KiB)."""
        whole = st.st_size <= HEAD + TAIL
        while True:
            try:
                with open(path, "rb") as f:
                    head = f.read() if whole else f.read(HEAD)
                    tail = b""
                    if not whole:
                        f.seek(st.st_size - TAIL)
                        tail = f.read(TAIL)
            except OSError as exc:
                return SessionInfo(key=key, updated_at=_mtime(st), location=path,
                                   error=f"unreadable: {exc.strerror}")
            info = jsonl.info(key, head, tail, whole=whole, size=st.st_size,
                              mtime=_mtime(st), location=path)
            if whole or not info.error:
                return info
            whole = True


_by_rank = itemgetter(0, 1)


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

