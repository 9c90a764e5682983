"""Local JSONL backend specifics: nanobot files, appends, conflicts, locking, repair."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nanosession import (
    ConflictError,
    CorruptSessionError,
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
    return sorted(p.name for p in root.iterdir())


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
