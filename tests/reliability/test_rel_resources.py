"""Resource faults on the local backend: disk full, read-only and permission denied.

Every failed save must raise ``StorageError``, leave the stored file byte-for-byte as it
was (no temp file either) and leave the in-memory session as it was (not marked saved),
so the same ``save`` succeeds once the fault is gone.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nanosession_local import files
from storedir import sessions_dir

from nanosession import Session, SessionManager, StorageError, open_store

KEY = "telegram:42"
Fault = Callable[[], None]


def _mount(target: Path, *options: str) -> None:
    subprocess.run(["mount", *options, target], check=True, capture_output=True)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs (needs root / CAP_SYS_ADMIN; skipped otherwise)."""
    target = tmp_path / "tiny"
    target.mkdir()
    try:
        _mount(target, "-t", "tmpfs", "-o", "size=256k", "tmpfs")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {exc}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", target], check=False)


def _fill(directory: Path) -> Path:
    """Take every free block of the file system holding ``directory``."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _started(root: Path) -> tuple[SessionManager, Session, bytes, str]:
    manager = SessionManager.from_url(str(root), backend="local")
    session = manager.get_or_create(KEY)
    for i in range(6):
        session.add_message("user" if i % 2 == 0 else "assistant", f"turn {i} " + "x" * 500)
    manager.save(session)
    path = manager.store.backend.path(KEY)  # type: ignore[attr-defined]
    return manager, session, path.read_bytes(), session.messages.saved_tag or ""


def _check_failed_save(
    manager: SessionManager, session: Session, before: bytes, tag: str, root: Path
) -> None:
    snapshot = [dict(m) for m in session.messages]
    with pytest.raises(StorageError):
        manager.save(session)
    path = manager.store.backend.path(KEY)  # type: ignore[attr-defined]
    assert path.read_bytes() == before  # the stored session is intact
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
    assert [dict(m) for m in session.messages] == snapshot  # nothing dropped in memory
    assert session.messages.saved_tag == tag  # and not marked saved


def _check_retry(manager: SessionManager, session: Session, root: Path) -> None:
    manager.save(session)  # the same call succeeds once the fault is gone
    stored = open_store(str(root), backend="local").load(KEY)
    assert list(stored.messages) == [dict(m) for m in session.messages]


def _append(session: Session) -> None:
    session.add_message("user", "new " + "y" * 20_000)  # more than a page: cannot fit slack


def _rewrite(session: Session) -> None:
    session.messages[0]["content"] = "edited " + "z" * 20_000


@pytest.mark.parametrize("change", [_append, _rewrite], ids=["append", "rewrite"])
def test_disk_full_on_a_real_tmpfs(tiny_fs: Path, change: Callable[[Session], None]) -> None:
    manager, session, before, tag = _started(tiny_fs)
    filler = _fill(tiny_fs)
    change(session)
    _check_failed_save(manager, session, before, tag, tiny_fs)
    filler.unlink()
    _check_retry(manager, session, tiny_fs)


def test_disk_full_on_create_leaves_nothing(tiny_fs: Path) -> None:
    filler = _fill(tiny_fs)
    manager = SessionManager.from_url(str(tiny_fs), backend="local")
    session = manager.get_or_create(KEY)
    _append(session)
    with pytest.raises(StorageError):
        manager.save(session)
    assert sessions_dir(tiny_fs) == ["filler"]
    filler.unlink()
    _check_retry(manager, session, tiny_fs)


@pytest.mark.parametrize("change", [_append, _rewrite], ids=["append", "rewrite"])
def test_read_only_remount(tiny_fs: Path, change: Callable[[Session], None]) -> None:
    manager, session, before, tag = _started(tiny_fs)
    _mount(tiny_fs, "-o", "remount,ro")
    change(session)
    _check_failed_save(manager, session, before, tag, tiny_fs)
    assert open_store(str(tiny_fs), backend="local", create=False).load(KEY)  # still readable
    _mount(tiny_fs, "-o", "remount,rw")
    _check_retry(manager, session, tiny_fs)


@pytest.mark.parametrize("written", [0, 1, 700, 4095])
@pytest.mark.parametrize("change", [_append, _rewrite], ids=["append", "rewrite"])
def test_disk_full_after_n_bytes_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: int,
    change: Callable[[Session], None],
) -> None:
    """ENOSPC after a partial write, at chosen offsets (the real tmpfs picks its own)."""
    manager, session, before, tag = _started(tmp_path)
    real_write_all = files.write_all

    def full_disk(fd: int, data: bytes) -> None:
        real_write_all(fd, data[:written])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "write_all", full_disk)
    change(session)
    _check_failed_save(manager, session, before, tag, tmp_path)
    monkeypatch.setattr(files, "write_all", real_write_all)
    _check_retry(manager, session, tmp_path)


def test_a_failed_append_keeps_the_version_so_the_retry_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: undoing a failed append must not change the version the caller holds."""
    manager, session, _, _ = _started(tmp_path)

    def full_disk(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(files, "write_all", full_disk)
        _append(session)
        with pytest.raises(StorageError):
            manager.save(session)
    manager.save(session)


def _save_as_nobody(root: Path) -> str:
    """In a forked child that dropped to uid/gid 65534, add a message and save it."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            manager = SessionManager.from_url(str(root), backend="local")
            session = manager.get_or_create(KEY)
            session.add_message("user", "from an unprivileged process")
            try:
                manager.save(session)
                result = "saved"
            except StorageError as exc:
                result = f"StorageError {exc}"
            result += f"|{len(session.messages)}|{session.messages.saved_tag is not None}"
            os.write(write, result.encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, answer
    return answer


def test_permission_denied_for_a_real_unprivileged_user() -> None:
    """A process running as ``nobody`` may read the sessions directory but not write it."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    root = Path(tempfile.mkdtemp(prefix="ns-perm-"))
    try:
        root.chmod(0o755)
        manager, _, before, _ = _started(root)
        path = manager.store.backend.path(KEY)  # type: ignore[attr-defined]
        path.chmod(0o644)
        error, count, tagged = _save_as_nobody(root).split("|")
        assert error.startswith("StorageError") and "ermission denied" in error
        assert (count, tagged) == ("7", "True")  # 6 loaded + 1 added, still the loaded tag
        assert path.read_bytes() == before
        assert sessions_dir(root) == [path.name]
    finally:
        shutil.rmtree(root)
