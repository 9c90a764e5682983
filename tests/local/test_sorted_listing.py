"""The long-lived listing moves only what changed, and still equals a listing built afresh.

``SortedListing`` keeps the sorted entries between calls and patches them by stamp. Any
sequence of new, changed, removed and unreadable files must leave it exactly where a
fresh sort of freshly described files would be; and through the backend, a store that has
listed all along must list what a newly opened store lists.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from nanosession_local.index import Described, Stamp, rank_of
from nanosession_local.listing import SortedListing

from nanosession import SessionRecord, Update, open_store
from nanosession.record import SessionInfo

T0 = datetime(2026, 3, 1, 12, 0)


class Files:
    """A fake directory: file name -> (stamp, updated_at, readable)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[Stamp, datetime | None, bool]] = {}
        self.reads: list[str] = []
        self.tick = 0

    def stamp(self) -> Stamp:
        self.tick += 1
        return (self.tick, self.tick * 7, 10**18 + self.tick % 5, self.tick)

    def describe(self, name: str, stamp: Stamp) -> Described:
        self.reads.append(name)
        _, updated, readable = self.files[name]
        info = SessionInfo(key=name, updated_at=updated,
                           error=None if readable else "unreadable: busy")
        return rank_of(info), info, None if name.startswith("~") else name

    def expected(self) -> list[str]:
        """Names in listing order, sorted from scratch."""
        rows = []
        for name, (stamp, updated, _) in self.files.items():
            rank = -updated.timestamp() if updated is not None else float("inf")
            rows.append((rank, -stamp[2], name))
        return [name for _, _, name in sorted(rows)]


ops = st.lists(
    st.tuples(
        st.sampled_from(["write", "remove", "unreadable"]),
        st.integers(min_value=0, max_value=30),  # which file
        st.one_of(st.none(), st.integers(min_value=0, max_value=5)),  # updated_at, in days
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(ops, min_size=1, max_size=6))
def test_patched_listing_equals_a_fresh_sort(batches: list[list[tuple[str, int, int]]]) -> None:
    fake = Files()
    listing = SortedListing()
    for batch in batches:
        for op, which, days in batch:
            name = f"{'~' if which % 7 == 0 else ''}f{which}.jsonl"
            updated = None if days is None else T0 + timedelta(days=days)
            if op == "remove":
                fake.files.pop(name, None)
            else:
                fake.files[name] = (fake.stamp(), updated, op == "write")
        stamps = {name: stamp for name, (stamp, _, _) in fake.files.items()}
        fake.reads.clear()
        order = listing.update(stamps, fake.describe)
        assert [entry[2] for entry in order] == fake.expected()
        assert listing.unnamed == any(name.startswith("~") for name in stamps)
        # Unchanged files are never described again; unreadable ones are, next time.
        retry = {n for n, (_, _, readable) in fake.files.items() if not readable}
        fake.reads.clear()
        assert [entry[2] for entry in listing.update(dict(stamps), fake.describe)] == (
            fake.expected())
        assert set(fake.reads) == retry


def _fields(infos: list[SessionInfo]) -> list[tuple[object, ...]]:
    return [(i.key, i.updated_at, i.created_at, i.title, i.preview, i.message_count, i.size,
             i.location, i.error) for i in infos]


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["append", "rewrite", "delete", "create"]),
                                st.integers(min_value=0, max_value=11),
                                st.integers(min_value=0, max_value=40)),
                      min_size=1, max_size=25))
def test_a_store_that_lists_all_along_lists_what_a_new_store_lists(
    tmp_path_factory: object, steps: list[tuple[str, int, int]]
) -> None:
    root = Path(tmp_path_factory.mktemp("listing"))  # type: ignore[attr-defined]
    writer, watcher = open_store(str(root)), open_store(str(root))
    for i in range(12):
        writer.save(SessionRecord(f"s{i}", [{"role": "user", "content": f"hello {i}"}],
                                  {"title": f"t{i}"}, T0, T0 + timedelta(hours=i)))
    watcher.list()
    for op, which, hours in steps:
        key = f"s{which}"
        record = writer.get(key)
        if op == "delete":
            writer.delete(key)
        elif record is None:
            writer.save(SessionRecord(key, [{"role": "user", "content": "new"}], {}, T0, T0))
        elif op == "append":
            record.messages = [*record.messages, {"role": "assistant", "content": "more"}]
            record.updated_at = T0 + timedelta(hours=hours)
            writer.save(record, mode=Update(record.version), unchanged=len(record.messages) - 1)
        else:
            record.metadata = {"title": f"renamed {hours}"}
            record.updated_at = T0 - timedelta(hours=hours)
            writer.save(record, mode=Update(record.version))
        if hours % 3 == 0:  # sometimes a listing between writes, sometimes several writes
            assert _fields(watcher.list()) == _fields(open_store(str(root)).list())
    assert _fields(watcher.list()) == _fields(open_store(str(root)).list())
    assert _fields(watcher.list(prefix="s1")) == _fields(open_store(str(root)).list(prefix="s1"))
    assert [i.key for i in watcher.list(limit=3)] == [i.key for i in watcher.list()[:3]]
    os.utime(root)  # the directory itself changing means nothing on its own
    assert _fields(watcher.list()) == _fields(open_store(str(root)).list())


def test_listings_in_several_threads_while_sessions_change(tmp_path: Path) -> None:

    store = open_store(str(tmp_path))
    for i in range(80):
        store.save(SessionRecord(f"s{i}", [{"role": "user", "content": f"q{i}"}], {}, T0,
                                 T0 + timedelta(minutes=i)))
    legacy = {"_type": "metadata", "key": "old:1", "created_at": "2026-01-01T00:00:00",
              "updated_at": "2026-01-01T00:00:00", "metadata": {}}
    (tmp_path / "old_1.jsonl").write_text(json.dumps(legacy) + "\n")  # a v0.2.0 name
    errors: list[BaseException] = []
    stop = threading.Event()

    def lister(details: bool) -> None:
        try:
            while not stop.is_set():
                store.list(details=details, prefix="s" if details else "")
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=lister, args=(n % 3 != 0,)) for n in range(6)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads inside the listing's bookkeeping
    try:
        for t in threads:
            t.start()
        writer = open_store(str(tmp_path))
        for i in range(60):
            record = writer.load(f"s{i % 80}")
            record.updated_at = T0 + timedelta(days=1, minutes=i)
            writer.save(record, mode=Update(record.version))
            if i % 20 == 0:
                writer.delete(f"s{79 - i // 20}")
                store.delete(f"s{78 - i // 20}")  # deletes through the listing store too
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(interval)
    assert errors == []
    assert _fields(store.list()) == _fields(open_store(str(tmp_path)).list())
    assert "old:1" in {i.key for i in store.list(details=False)}
