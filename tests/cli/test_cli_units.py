"""The pieces under the commands: durations, URL/key splitting, copy and prune decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import fill, record

from nanosession import SessionInfo, open_store
from nanosession.cli.copy import COPIED, KEPT_NEWER, UPDATED, copy_one
from nanosession.cli.durations import parse_duration
from nanosession.cli.prune import CHANGED, DELETED, delete_unchanged, select
from nanosession.cli.stores import UsageProblem, parse_options, url_and_keys


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("2w", 1209600),
     ("1d12h", 129600), (" 2H ", 7200)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "d", "30 days", "1y", "-5d", "0d", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_options_and_default_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_options(["endpoint_url=http://h:1/?a=b", "region="]) == {
        "endpoint_url": "http://h:1/?a=b", "region": ""}
    with pytest.raises(UsageProblem):
        parse_options(["=x"])
    monkeypatch.delenv("NANOSESSION_URL", raising=False)
    assert url_and_keys(["s3://b/p", "k"], need_keys=True) == ("s3://b/p", ["k"])
    with pytest.raises(UsageProblem, match="missing KEY"):
        url_and_keys(["s3://b/p"], need_keys=True)
    monkeypatch.setenv("NANOSESSION_URL", "s3://env/p")
    assert url_and_keys(["telegram:1", "a/b"], need_keys=True) == (
        "s3://env/p", ["telegram:1", "a/b"])
    assert url_and_keys([str(tmp_path), "k"], need_keys=True) == (str(tmp_path), ["k"])
    assert url_and_keys([], need_keys=False) == ("s3://env/p", [])


def test_copy_decides_by_updated_at(tmp_path: Path) -> None:
    src, dst = open_store(str(tmp_path / "a")), open_store(str(tmp_path / "b"))
    fill(src.url, [record("new", 10), record("old", 10)])
    fill(dst.url, [record("old", 5, n=1)])
    assert copy_one(src, dst, "new", known_absent=True, force=False, dry_run=False).action == COPIED
    assert copy_one(src, dst, "old", known_absent=False, force=False,
                    dry_run=False).action == UPDATED
    assert len(dst.load("old").messages) == 4


def test_copy_of_a_session_created_at_the_destination_meanwhile(tmp_path: Path) -> None:
    src, dst = open_store(str(tmp_path / "a")), open_store(str(tmp_path / "b"))
    fill(src.url, [record("k", 10)])
    fill(dst.url, [record("k", 20, n=1)])  # appeared after the destination was listed
    outcome = copy_one(src, dst, "k", known_absent=True, force=False, dry_run=False)
    assert outcome.action == KEPT_NEWER
    assert len(dst.load("k").messages) == 1


def test_select_by_age_and_count() -> None:
    now = datetime(2026, 3, 10)
    infos = [SessionInfo(key=f"k{d}", updated_at=now - timedelta(days=d)) for d in (1, 5, 40, 90)]
    broken = SessionInfo(key="bad", updated_at=now - timedelta(days=99), error="corrupt")
    doomed, unreadable = select([*infos, broken], older_than=timedelta(days=30), keep=None,
                                now=now)
    assert [i.key for i in doomed] == ["k40", "k90"] and unreadable == [broken]
    doomed, _ = select(infos, older_than=None, keep=3, now=now)
    assert [i.key for i in doomed] == ["k90"]
    doomed, _ = select(infos, older_than=timedelta(days=2), keep=3, now=now)
    assert [i.key for i in doomed] == ["k90"]  # both criteria must hold


def test_prune_never_deletes_a_session_updated_after_listing(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    fill(str(tmp_path), [record("a", 0), record("b", 0)])
    listed = {i.key: i for i in store.list()}
    seen = store.load("b").version
    for key in ("a", "b"):
        current = store.load(key)
        current.messages = [*current.messages, {"role": "user", "content": "still here"}]
        current.updated_at = datetime.now()
        store.save(current)
    assert delete_unchanged(store, listed["a"])[0] == CHANGED
    stale = replace(listed["b"], version=seen)  # the version a listing would have carried
    assert delete_unchanged(store, stale)[0] == CHANGED
    assert {i.key for i in store.list()} == {"a", "b"}
    assert delete_unchanged(store, store.list(prefix="a")[0])[0] == DELETED
    assert [i.key for i in store.list()] == ["b"]
