"""POSIX file primitives: per-file locks that survive atomic replaces, atomic writes."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so no compare-and-swap guarantee
    fcntl = None  # type: ignore[assignment]

HAS_LOCKS = fcntl is not None
TMP_SUFFIX = ".tmp"


@contextmanager
def locked(path: Path, *, exclusive: bool) -> Iterator[tuple[int, os.stat_result] | None]:
    """Open and lock the file at ``path``; ``None`` if there is none.

    Writers replace files by rename, so a lock on an inode that is no longer at ``path``
    protects nothing: after locking, check that the path still names the locked inode and
    start again if not.
    """
    while True:
        try:
            fd = os.open(path, (os.O_RDWR if exclusive else os.O_RDONLY) | CLOEXEC)
        except FileNotFoundError:
            yield None
            return
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            st = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev):
                yield fd, st
                return
        finally:
            os.close(fd)


CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def read_at(fd: int, size: int, offset: int) -> bytes:
    """Up to ``size`` bytes at ``offset`` (fewer only at the end of the file)."""
    if _pread is not None:
        return _pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows: no pread
    return os.read(fd, size)


_pread = getattr(os, "pread", None)


def tmp_path(path: Path) -> Path:
    """A unique temp name beside ``path``; the pid lets cleanup spot orphans."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | CLOEXEC)
    except OSError:  # platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(path: Path, data: bytes, *, durable: bool) -> tuple[Path, os.stat_result]:
    """Write ``data`` to a new temp file beside ``path``; return it and its stat."""
    tmp = tmp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | CLOEXEC, 0o600)
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp, st


def replace_atomically(path: Path, data: bytes, *, durable: bool) -> os.stat_result:
    """All-or-nothing replace: temp file in the same directory, then ``os.replace``."""
    tmp, st = write_temp(path, data, durable=durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
    return st


def create_exclusively(path: Path, data: bytes, *, durable: bool) -> os.stat_result | None:
    """Atomically create ``path`` with ``data`` unless it exists (then ``None``).

    ``os.link`` fails if the target exists, so the complete file appears at once or not
    at all, and a racing creator cannot be overwritten.
    """
    tmp, _ = write_temp(path, data, durable=durable)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return None
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        fsync_dir(path.parent)
    return os.stat(path)


def remove_orphans(directory: Path) -> int:
    """Delete temp files left by processes that no longer run; return how many."""
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
            continue
        parts = name.rsplit(".", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            os.unlink(entry.path)
            removed += 1
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours, or the platform cannot tell
        return True
    return True
