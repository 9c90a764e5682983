"""Local JSONL backend specifics: nanobot files, appends, conflicts, locking, repair."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from nanosession_local.backend import LocalBackend
from nanosession_local.index import FORMAT, INDEX_NAME, MIN_ENTRIES

from nanosession import (
    ConflictError,
    CorruptSessionError,
    SessionInfo,
    SessionNotFoundError,
    SessionRecord,
    Store,
    Update,
    open_store,
)
from nanosession.errors import ConfigurationError, InvalidURLError
from nanosession.keys import storage_name

FIXTURES = Path(__file__).parent.parent / "fixtures"
KEYS = {"telegram:12345": 7, "slack:C01:T_2": 3, "cli:direct": 2}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(str(tmp_path))


def files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name != INDEX_NAME)


@pytest.mark.parametrize("release", ["nanobot-v0.2.0", "nanobot-v0.3.5"])
def test_reads_real_nanobot_files(tmp_path: Path, release: str) -> None:
    for f in (FIXTURES / release).iterdir():
        shutil.copy(f, tmp_path)
    store = open_store(str(tmp_path))
    for key, count in KEYS.items():
        rec = store.load(key)
        assert rec.key == key and len(rec.messages) == count
    tg = store.load("telegram:12345")
    assert tg.last_consolidated == 2 and tg.metadata == {"title": "Reading notes"}
    assert tg.messages[1]["tool_calls"][0]["id"] == "call_1"
    listed = {i.key: i for i in store.list()}
    assert set(listed) == set(KEYS)
    assert listed["telegram:12345"].title == "Reading notes"
    assert listed["slack:C01:T_2"].preview == "thanks — joining now"


def test_saving_a_v020_session_migrates_it_to_its_exact_name(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "nanobot-v0.2.0" / "slack_C01_T_2.jsonl", tmp_path)
    store = open_store(str(tmp_path))
    rec = store.load("slack:C01:T_2")
    rec.messages = [*rec.messages, {"role": "user", "content": "more"}]
    store.save(rec)
    assert files(tmp_path) == [storage_name("slack:C01:T_2") + ".jsonl"]
    assert len(store.load("slack:C01:T_2").messages) == 4
    # the lossy name is shared by other keys: they must not pick this file up
    assert store.get("slack_C01_T_2") is None and store.get("slack:C01_T_2") is None
    assert store.delete("slack:C01:T_2") is True and files(tmp_path) == []


def test_delete_removes_the_legacy_copy_too(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "nanobot-v0.2.0" / "cli_direct.jsonl", tmp_path)
    shutil.copy(FIXTURES / "nanobot-v0.3.5" / "Y2xpOmRpcmVjdA.jsonl", tmp_path)
    store = open_store(str(tmp_path))
    assert [i.key for i in store.list()] == ["cli:direct"]  # one entry, not two
    assert store.delete("cli:direct") is True
    assert files(tmp_path) == [] and store.get("cli:direct") is None


def test_append_writes_only_the_new_lines(store: Store, tmp_path: Path) -> None:
    big = [{"role": "tool", "content": "x" * 1000, "tool_call_id": str(i)} for i in range(200)]
    v = store.save(SessionRecord("k", big))
    path = tmp_path / (storage_name("k") + ".jsonl")
    before = path.read_bytes()
    rec = store.load("k")
    rec.messages = [*rec.messages, {"role": "user", "content": "new"}]
    store.save(rec, mode=Update(v), unchanged=200)
    after = path.read_bytes()
    assert after.startswith(before)  # appended, not rewritten
    assert len(after) - len(before) < 400
    assert os.stat(path).st_ino == os.stat(path).st_ino
    assert len(store.load("k").messages) == 201


def test_edits_and_nanobot_files_are_rewritten_atomically(store: Store, tmp_path: Path) -> None:
    v = store.save(SessionRecord("k", [{"role": "user", "content": "a"}]))
    path = tmp_path / (storage_name("k") + ".jsonl")
    ino = path.stat().st_ino
    rec = store.load("k")
    rec.messages = [{"role": "user", "content": "edited"}]
    store.save(rec, mode=Update(v), unchanged=0)
    assert path.stat().st_ino != ino  # a new file replaced the old one
    assert len(path.read_bytes().splitlines()) == 2
    assert store.load("k").messages == [{"role": "user", "content": "edited"}]


def test_crash_remains_are_ignored_then_truncated(store: Store, tmp_path: Path) -> None:
    v = store.save(SessionRecord("k", [{"role": "user", "content": "a"}]))
    path = tmp_path / (storage_name("k") + ".jsonl")
    with path.open("ab") as f:  # an append cut short: a message line, no commit record
        f.write(b'{"role":"user","content":"half"}\n{"role":"assi')
    rec = store.load("k")
    assert [m["content"] for m in rec.messages] == ["a"]
    rec.messages = [*rec.messages, {"role": "user", "content": "b"}]
    store.save(rec, mode=Update(rec.version), unchanged=1)  # type: ignore[arg-type]
    assert b"half" not in path.read_bytes()
    assert [m["content"] for m in store.load("k").messages] == ["a", "b"]
    with pytest.raises(ConflictError):
        store.save(rec, mode=Update(v))


def test_compaction_bounds_superseded_metadata(store: Store, tmp_path: Path) -> None:
    meta = {"blob": "m" * 20_000}
    rec = SessionRecord("k", [], meta)
    store.save(rec)
    for i in range(30):
        rec.messages = [*rec.messages, {"role": "user", "content": str(i)}]
        store.save(rec, mode=Update(rec.version), unchanged=i)  # type: ignore[arg-type]
    size = (tmp_path / (storage_name("k") + ".jsonl")).stat().st_size
    assert size < 4 * 20_200  # without compaction: 31 metadata lines of 20 KB each
    assert len(store.load("k").messages) == 30


def test_two_stores_on_one_directory_conflict(tmp_path: Path) -> None:
    a, b = open_store(str(tmp_path)), open_store(f"file://{tmp_path}")
    a.save(SessionRecord("k", [{"role": "user", "content": "0"}]))
    ra, rb = a.load("k"), b.load("k")
    ra.messages = [*ra.messages, {"role": "user", "content": "A"}]
    rb.messages = [*rb.messages, {"role": "user", "content": "B"}]
    a.save(ra, unchanged=1)
    with pytest.raises(ConflictError) as info:
        b.save(rb, unchanged=1)
    assert info.value.key == "k"
    with pytest.raises(ConflictError):
        b.delete("k", version=rb.version)
    with pytest.raises(ConflictError):
        b.save(SessionRecord("k"))  # create over an existing session
    assert [m["content"] for m in b.load("k").messages] == ["0", "A"]


def test_corrupt_file_is_never_loaded_as_empty(store: Store, tmp_path: Path) -> None:
    store.save(SessionRecord("k", [{"role": "user", "content": "keep me"}]))
    path = tmp_path / (storage_name("k") + ".jsonl")
    original = path.read_bytes()
    path.write_bytes(original + b"42\n")
    with pytest.raises(CorruptSessionError, match="line 3: a JSON int"):
        store.load("k")
    report = store.repair("k", dry_run=True)
    assert not report.repaired and path.read_bytes() == original + b"42\n"
    report = store.repair("k")
    assert report.repaired and report.messages_kept == 1 and report.lines_dropped == 1
    assert Path(report.backup).read_bytes() == original + b"42\n"  # type: ignore[arg-type]
    assert store.load("k").messages == [{"role": "user", "content": "keep me"}]
    assert [i.key for i in store.list()] == ["k"]  # the backup is not listed


def test_repair_of_missing_metadata_and_wrong_key(store: Store, tmp_path: Path) -> None:
    path = tmp_path / (storage_name("k") + ".jsonl")
    path.write_text(json.dumps({"role": "user", "content": "orphan"}) + "\n")
    with pytest.raises(SessionNotFoundError):
        store.repair("other")
    report = store.repair("k")
    assert "no metadata line" in report.problems
    rec = store.load("k")
    assert rec.key == "k" and rec.messages == [{"role": "user", "content": "orphan"}]


def test_listing_survives_corrupt_and_unreadable_entries(store: Store, tmp_path: Path) -> None:
    store.save(SessionRecord("good", [{"role": "user", "content": "x"}]))
    (tmp_path / (storage_name("bad") + ".jsonl")).write_bytes(b"\x00\xff garbage\n")
    (tmp_path / "notes.txt").write_text("not a session")
    listed = {i.key: i for i in store.list()}
    assert set(listed) == {"good", "bad"}
    assert listed["bad"].error and listed["good"].error is None
    assert [i.key for i in store.list(details=False)] and store.list(limit=1).__len__() == 1
    assert [i.key for i in store.list(prefix="go")] == ["good"]


def test_bad_urls_and_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidURLError):
        open_store("file://somehost/x")
    with pytest.raises(ConfigurationError):
        open_store(str(tmp_path / "absent"), create=False)
    open_store(str(tmp_path / "made" / "here"))
    assert (tmp_path / "made" / "here").is_dir()


def test_orphaned_temp_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    orphan = tmp_path / ".x.jsonl.999999999.deadbeef.tmp"
    orphan.write_bytes(b"partial")
    mine = tmp_path / f".x.jsonl.{os.getpid()}.cafebabe.tmp"
    mine.write_bytes(b"in flight")
    open_store(str(tmp_path))
    assert not orphan.exists() and mine.exists()


def _session(key: str, day: int) -> SessionRecord:
    stamp = datetime(2026, 3, day, 12, 0)
    return SessionRecord(key, [{"role": "user", "content": f"on day {day}"}],
                         created_at=stamp, updated_at=stamp)


def test_detailed_listing_orders_by_stored_updated_at_across_all_files(
    store: Store, tmp_path: Path
) -> None:
    for day, key in enumerate(["old", "mid", "new"], 1):
        store.save(_session(key, day))
    for seconds, key in enumerate(["new", "mid", "old"]):  # a bulk copy reversed the mtimes
        os.utime(store.backend.path(key), (1_000_000 + seconds,) * 2)  # type: ignore[attr-defined]
    assert [i.key for i in store.list(limit=1)] == ["new"]
    assert [i.key for i in store.list()] == ["new", "mid", "old"]
    assert [i.key for i in store.list(limit=2, prefix="")] == ["new", "mid"]
    # Without details the storage's modification time orders the entries.
    assert [i.key for i in store.list(details=False, limit=1)] == ["old"]


def _fields(infos: list[SessionInfo]) -> list[tuple[object, ...]]:
    return [(i.key, i.updated_at, i.created_at, i.title, i.preview, i.message_count, i.size,
             i.location, i.error) for i in infos]


def test_a_fresh_store_lists_from_the_index_and_never_from_a_stale_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(str(tmp_path))
    for i in range(MIN_ENTRIES):
        store.save(_session(f"s{i}", 1 + i % 28))
    first = store.list()
    assert (tmp_path / INDEX_NAME).is_file()
    reads: list[str] = []
    real = LocalBackend._read_info

    def counted(self: LocalBackend, path: str, key: str, st: os.stat_result) -> SessionInfo:
        reads.append(key)
        return real(self, path, key, st)

    monkeypatch.setattr(LocalBackend, "_read_info", counted)
    assert _fields(open_store(str(tmp_path)).list()) == _fields(first) and reads == []
    rec = store.load("s5")
    rec.messages.append({"role": "assistant", "content": "later"})
    rec.updated_at = datetime(2026, 4, 1)
    store.save(rec, mode=Update(rec.version))  # an append: same inode, new size
    listed = open_store(str(tmp_path)).list()
    assert reads == ["s5"]  # only the changed file was read again
    assert listed[0].key == "s5" and listed[0].message_count == 2
    assert store.list(limit=1)[0].key == "s5"


def test_a_corrupt_or_foreign_index_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    for i in range(MIN_ENTRIES):
        store.save(_session(f"s{i}", 1 + i % 28))
    expected = _fields(store.list())
    index = tmp_path / INDEX_NAME
    rows = json.loads(index.read_bytes())["entries"]
    bad_keys = {name: [*row[:4], 42, *row[5:]] for name, row in rows.items()}
    bad_times = {name: [*row[:5], "", *row[6:]] for name, row in rows.items()}
    bad_ranks = {name: [*row[:11], "soon"] for name, row in rows.items()}
    old_format = json.dumps({"format": FORMAT - 1, "entries": rows})
    for damaged in (b"\x00{not json", b"[1, 2]", old_format, *(  # stamps match, rest wrong
            json.dumps({"format": FORMAT, "entries": bad})
            for bad in (bad_keys, bad_times, bad_ranks))):
        index.write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode())
        assert _fields(open_store(str(tmp_path)).list()) == expected
        assert json.loads(index.read_bytes())["format"] == FORMAT  # rewritten whole
        assert _fields(open_store(str(tmp_path)).list()) == expected


def test_the_index_file_goes_when_few_sessions_remain(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    for i in range(MIN_ENTRIES):
        store.save(_session(f"s{i}", 1))
    store.list()
    assert (tmp_path / INDEX_NAME).is_file()
    store.delete("s0")
    assert not (tmp_path / INDEX_NAME).exists()
    assert len(store.list()) == MIN_ENTRIES - 1 and not (tmp_path / INDEX_NAME).exists()


def _big(n: int) -> list[dict[str, str]]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i} " + "x" * 400}
            for i in range(n)]


def test_listing_reads_the_tail_only_where_appends_can_have_left_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nanosession_local.files as local_files

    meta = {"_type": "metadata", "key": "nb:1", "created_at": "2026-01-01T00:00:00",
            "updated_at": "2026-01-02T00:00:00", "metadata": {"title": "from nanobot"},
            "last_consolidated": 0}
    lines = [json.dumps(meta, ensure_ascii=False)] + [json.dumps(m) for m in _big(200)]
    (tmp_path / (storage_name("nb:1") + ".jsonl")).write_text("\n".join(lines) + "\n")
    store = open_store(str(tmp_path))
    store.save(SessionRecord("ns:1", _big(200)))
    appended = store.load("ns:1")
    appended.messages = [*appended.messages, {"role": "user", "content": "later"}]
    appended.metadata = {"title": "appended"}
    store.save(appended, mode=Update(appended.version), unchanged=200)
    reads: list[tuple[str, int]] = []
    real = local_files.read_at

    def counted(fd: int, size: int, offset: int) -> bytes:
        reads.append((os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1], size))
        return real(fd, size, offset)

    monkeypatch.setattr(local_files, "read_at", counted)
    infos = {i.key: i for i in open_store(str(tmp_path)).list()}
    assert infos["nb:1"].title == "from nanobot" and infos["ns:1"].title == "appended"
    assert infos["ns:1"].message_count == 201
    by_file: dict[str, list[int]] = {}
    for name, size in reads:
        by_file.setdefault(name, []).append(size)
    assert by_file[storage_name("nb:1") + ".jsonl"] == [16384]  # the head alone
    assert by_file[storage_name("ns:1") + ".jsonl"] == [16384, 4096]  # head, short tail


def test_the_index_file_is_rewritten_in_batches_and_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(str(tmp_path))
    for i in range(MIN_ENTRIES * 2):
        store.save(_session(f"s{i}", 1 + i % 28))
    store.list()
    index = tmp_path / INDEX_NAME
    written = index.read_bytes()
    rec = store.load("s3")
    rec.updated_at = datetime(2026, 5, 1)
    store.save(rec, mode=Update(rec.version))
    assert store.list()[0].key == "s3"
    assert index.read_bytes() == written  # one changed row: not worth 128 rows rewritten
    reads: list[str] = []
    real = LocalBackend._read_info

    def counted(self: LocalBackend, path: str, key: str, stamp: tuple[int, ...]) -> SessionInfo:
        reads.append(key)
        return real(self, path, key, stamp)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalBackend, "_read_info", counted)
    assert _fields(open_store(str(tmp_path)).list()) == _fields(store.list())
    assert reads == ["s3"]  # the stale row was not used: that file alone was read again
    store.close()
    assert index.read_bytes() != written
    reads.clear()
    assert open_store(str(tmp_path)).list()[0].key == "s3" and reads == []
