"""Every command through typer's test runner on the local backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import fill, invoke, one_error_line, record

from nanosession import Session, open_store
from nanosession.keys import SUFFIX, storage_name


def file_of(root: Path, key: str) -> Path:
    return root / (storage_name(key) + SUFFIX)


# -- ls ---------------------------------------------------------------------------------
def test_ls_lists_newest_first_as_tab_separated_lines(sample: Path) -> None:
    result = invoke(["ls", str(sample)])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[2] for r in rows] == ["telegram:1", "cli:direct", "old:one"]
    assert rows[0] == ["2026-03-01T14:00:00.123456", "4", "telegram:1", "Weather"]
    assert rows[1][1] == "2" and rows[1][3] == "question 0 of cli:direct"  # preview


def test_ls_limit_pages_and_says_how_many_exist(sample: Path) -> None:
    result = invoke(["ls", str(sample), "--limit", "2"])
    assert [line.split("\t")[2] for line in result.stdout.splitlines()] == [
        "telegram:1", "cli:direct"]
    assert "showing 2 of 3" in result.stderr


def test_ls_json_prefix_and_default_url_from_environment(sample: Path) -> None:
    result = invoke(["ls", "--json", "--prefix", "cli:"], env={"NANOSESSION_URL": str(sample)})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["key"] for d in data] == ["cli:direct"]
    assert data[0]["message_count"] == 2 and data[0]["updated_at"] == "2026-03-01T13:00:00.123456"


def test_ls_on_a_terminal_draws_a_table(sample: Path) -> None:
    result = invoke(["ls", str(sample)], env={"FORCE_COLOR": "1", "COLUMNS": "120"})
    assert "UPDATED" in result.stdout and "\x1b[" in result.stdout  # header, colours
    assert "\t" not in result.stdout


def test_a_corrupt_session_is_marked_in_ls_and_refused_by_show(sample: Path) -> None:
    file_of(sample, "old:one").write_bytes(b"42\n")
    result = invoke(["ls", str(sample), "--json"])
    assert result.exit_code == 0
    bad = {d["key"]: d for d in json.loads(result.stdout)}["old:one"]
    assert bad["error"]
    shown = invoke(["show", str(sample), "old:one"])
    assert shown.exit_code == 1
    line = one_error_line(shown.stderr)
    assert "is corrupt" in line and "nanosession repair" in line


# -- show -------------------------------------------------------------------------------
def test_show_prints_roles_timestamps_tool_calls_and_results(sample: Path) -> None:
    result = invoke(["show", str(sample), "telegram:1"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("#0 user") < out.index("#1 assistant") < out.index("#2 tool ← lookup [c0]")
    assert '→ lookup({"q": "x"})  [c0]' in out
    assert "2026-03-01 14:00:00" in out and "result ✓" in out and "answer 0" in out
    assert "Weather" in out.splitlines()[0]


def test_show_last_and_json_raw_record(sample: Path) -> None:
    last = invoke(["show", str(sample), "telegram:1", "--last", "1"]).stdout
    assert "#3 assistant" in last and "#0 user" not in last and "3 earlier" in last
    raw = json.loads(invoke(["show", str(sample), "telegram:1", "--json"]).stdout)
    stored = open_store(str(sample)).load("telegram:1")
    assert raw["messages"] == list(stored.messages)
    assert raw["metadata"] == {"title": "Weather"} and raw["version"] == stored.version


def test_show_history_is_what_get_history_returns(tmp_path: Path) -> None:
    if not hasattr(Session, "get_history"):
        pytest.fail("Session.get_history is missing (nanosession/session.py not finished)")
    rec = record("k", 0, n=8)
    rec.messages = [{"role": "user", "content": "/reset", "_command": True}, *rec.messages]
    rec.last_consolidated = 1
    fill(str(tmp_path), [rec])
    result = invoke(["show", str(tmp_path), "k", "--history", "--json"])
    assert result.exit_code == 0, result.output
    expected = Session(key="k", messages=list(rec.messages),
                       last_consolidated=1).get_history()
    assert json.loads(result.stdout) == expected
    assert all("timestamp" not in m for m in expected)
    text = invoke(["show", str(tmp_path), "k", "--history"]).stdout
    assert f"get_history sends {len(expected)} of 9 messages" in text


def test_show_key_alone_uses_the_default_url(sample: Path) -> None:
    result = invoke(["show", "cli:direct"], env={"NANOSESSION_URL": str(sample)})
    assert result.exit_code == 0 and "question 0 of cli:direct" in result.stdout


def test_show_unknown_key_is_one_line(sample: Path) -> None:
    result = invoke(["show", str(sample), "nobody"])
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == "error: session 'nobody' not found"


# -- rm ---------------------------------------------------------------------------------
def test_rm_asks_and_keeps_sessions_when_refused(sample: Path) -> None:
    result = invoke(["rm", str(sample), "telegram:1"], input="n\n")
    assert result.exit_code == 1 and "aborted" in result.stderr
    assert file_of(sample, "telegram:1").exists()
    result = invoke(["rm", str(sample), "telegram:1", "old:one"], input="y\n")
    assert result.exit_code == 0 and "deleted telegram:1" in result.stdout
    assert [i.key for i in open_store(str(sample)).list()] == ["cli:direct"]


def test_rm_yes_and_unknown_keys(sample: Path) -> None:
    result = invoke(["rm", "--yes", "ghost", "cli:direct"], env={"NANOSESSION_URL": str(sample)})
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == "error: session 'ghost' not found"
    assert not file_of(sample, "cli:direct").exists()
    bad = invoke(["rm", str(sample), "-y", "\ud800", "old:one"])  # an unencodable key
    assert bad.exit_code == 1 and "not valid Unicode" in one_error_line(bad.stderr)
    assert not file_of(sample, "old:one").exists()


# -- repair -----------------------------------------------------------------------------
def test_repair_dry_run_reports_then_repair_keeps_the_original(sample: Path) -> None:
    path = file_of(sample, "telegram:1")
    original = path.read_bytes() + b"42\n{\"role\": \"user\", \"cont"
    path.write_bytes(original)
    dry = invoke(["repair", str(sample), "--dry-run"])
    assert dry.exit_code == 1, dry.output
    assert "telegram:1: would repair, keeping 4 message(s), dropping 2 line(s)" in dry.stdout
    assert "checked 3 session(s): 1 need repair" in dry.stdout
    assert path.read_bytes() == original
    fixed = invoke(["repair", str(sample), "telegram:1", "--json"])
    assert fixed.exit_code == 0, fixed.output
    (report,) = json.loads(fixed.stdout)
    assert report["repaired"] and report["messages_kept"] == 4 and report["lines_dropped"] == 2
    assert Path(report["backup"]).read_bytes() == original
    assert len(open_store(str(sample)).load("telegram:1").messages) == 4
    again = invoke(["repair", str(sample), "--dry-run"])
    assert again.exit_code == 0 and "0 need repair" in again.stdout


def test_repair_reports_an_unknown_key_and_checks_the_others(sample: Path) -> None:
    result = invoke(["repair", str(sample), "ghost", "telegram:1", "--dry-run"])
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == "error: session 'ghost' not found"
    assert "checked 1 session(s): 0 need repair" in result.stdout


# -- copy -------------------------------------------------------------------------------
def test_copy_is_idempotent_and_verifies(sample: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy"
    first = invoke(["copy", str(sample), str(dst), "--verify", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["copied"] == 3 and report["source_count"] == report["destination_count"] == 3
    assert report["verified_content"] == 3 and report["mismatched"] == [] and report["ok"]
    src, out = open_store(str(sample)), open_store(str(dst))
    for key in ("telegram:1", "cli:direct", "old:one"):
        a, b = src.load(key), out.load(key)
        assert (list(a.messages), a.metadata, a.updated_at, a.created_at) == (
            list(b.messages), b.metadata, b.updated_at, b.created_at)
    again = json.loads(invoke(["copy", str(sample), str(dst), "--json"]).stdout)
    assert again["unchanged"] == 3 and again["copied"] == 0


def test_copy_updates_older_keeps_newer_unless_forced(sample: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy"
    fill(str(dst), [record("telegram:1", 999, n=1), record("cli:direct", 1, n=1)])
    result = invoke(["copy", str(sample), str(dst)])
    assert result.exit_code == 0, result.output
    assert "1 copied, 1 updated, 0 replaced, 0 unchanged, 1 kept-newer, 0 failed" in result.stdout
    assert "kept newer destination copy of telegram:1" in result.stderr
    store = open_store(str(dst))
    assert len(store.load("telegram:1").messages) == 1  # the newer copy survived
    assert len(store.load("cli:direct").messages) == 2  # the older one was brought up to date
    forced = invoke(["copy", str(sample), str(dst), "--force", "--verify"])
    assert forced.exit_code == 0 and "1 replaced" in forced.stdout
    assert len(store.load("telegram:1").messages) == 4


def test_copy_dry_run_writes_nothing(sample: Path, tmp_path: Path) -> None:
    dst = tmp_path / "copy"
    result = invoke(["copy", str(sample), str(dst), "--dry-run"])
    assert result.exit_code == 0 and "would copy: 3 copied" in result.stdout
    assert list(dst.iterdir()) == []


def test_copy_reports_a_corrupt_source_and_copies_the_rest(sample: Path, tmp_path: Path) -> None:
    file_of(sample, "old:one").write_bytes(b"not json\n")
    dst = tmp_path / "copy"
    result = invoke(["copy", str(sample), str(dst), "-j", "2"])
    assert result.exit_code == 1
    assert "2 copied" in result.stdout and "1 failed" in result.stdout
    assert "old:one" in result.stderr and "corrupt" in result.stderr
    assert "missing 1" in result.stdout and "Traceback" not in result.output
    assert sorted(i.key for i in open_store(str(dst)).list()) == ["cli:direct", "telegram:1"]


# -- prune ------------------------------------------------------------------------------
def test_prune_keep_dry_run_then_for_real(sample: Path) -> None:
    dry = invoke(["prune", str(sample), "--keep", "1", "--dry-run"])
    assert dry.exit_code == 0
    assert dry.stdout.splitlines()[:2] == ["would delete cli:direct", "would delete old:one"]
    assert len(open_store(str(sample)).list()) == 3
    refused = invoke(["prune", str(sample), "--keep", "1"], input="n\n")
    assert refused.exit_code == 1 and len(open_store(str(sample)).list()) == 3
    done = invoke(["prune", str(sample), "--keep", "1"], input="y\n")
    assert done.exit_code == 0 and "deleted 2 of 3 session(s)" in done.stdout
    assert [i.key for i in open_store(str(sample)).list()] == ["telegram:1"]


def test_prune_older_than_spares_recent_sessions(tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    now = datetime.now()
    recent = record("recent", 0)
    recent.updated_at = now - timedelta(hours=1)
    old = record("old", 0)
    old.updated_at = now - timedelta(days=40)
    fill(str(tmp_path), [recent, old])
    result = invoke(["prune", str(tmp_path), "--older-than", "30d", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"key": "old", "result": "deleted", "detail": ""}]
    assert [i.key for i in open_store(str(tmp_path)).list()] == ["recent"]


def test_prune_needs_a_criterion_and_a_valid_duration(sample: Path) -> None:
    assert invoke(["prune", str(sample)]).exit_code == 2
    bad = invoke(["prune", str(sample), "--older-than", "30 days"])
    assert bad.exit_code == 2 and "invalid duration" in one_error_line(bad.stderr)


# -- plugins ----------------------------------------------------------------------------
def test_plugins_lists_the_local_backend_with_capabilities() -> None:
    data = json.loads(invoke(["plugins", "--json"]).stdout)
    local = next(b for b in data["backends"] if b["scheme"] == "file")
    assert local["plugin"] == "local" and not local["fallback"]
    assert {"compare_and_swap", "append", "atomic_write"} <= set(local["capabilities"])
    assert any(p["name"] == "local" and p["version"] for p in data["plugins"])
    text = invoke(["plugins"]).stdout
    assert text.splitlines()[0].split("\t")[:2] == ["file", "local"]


# -- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ls", "nosuch://bucket"], "no backend for scheme 'nosuch'"),
        (["ls", "/definitely/not/here"], "does not exist"),
        (["ls", "file://remotehost/x"], "must not name a host"),
        (["show", "/definitely/not/here", "k"], "does not exist"),
        (["ls", "s3://b?x=%zz&&"], "error: "),
        (["ls", "/tmp", "-o", "novalue"], "must look like name=value"),
        (["ls"], "missing URL"),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], needle: str) -> None:
    result = invoke(args)
    assert result.exit_code in (1, 2), result.output
    assert needle in one_error_line(result.stderr)


def test_store_options_reach_open_store(sample: Path) -> None:
    result = invoke(["ls", str(sample), "-o", "wrappers=nope"])
    assert result.exit_code == 1
    assert "unknown wrapper 'nope'" in one_error_line(result.stderr)
    result = invoke(["ls", str(sample), "-o", "colour=blue"])
    assert result.exit_code == 1
    assert "bad options for 'file' backend" in one_error_line(result.stderr)


def test_mistyped_local_path_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    assert invoke(["ls", str(missing)]).exit_code == 1
    assert not missing.exists()


# -- demo -------------------------------------------------------------------------------
def test_demo_runs_the_tour_in_a_fresh_directory(tmp_path: Path) -> None:
    result = invoke(["demo", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "ConflictError: conflict on session 'cli:direct'" in out
    grew = next(line for line in out.splitlines() if "the file grew from" in line)
    before, after = (int(w) for w in grew.replace(",", " ").split() if w.isdigit())
    assert 0 < after - before < before and "appended in place" in grew
    files = list((tmp_path / "demo").glob("*.jsonl"))
    assert len(files) == 3
    cat = out[out.index("6. the file on disk"):]
    shown = file_of(tmp_path / "demo", "telegram:4242").read_text(encoding="utf-8")
    assert all(line in cat for line in shown.splitlines())
    assert "get_history" in out and "Do I need an umbrella" in out


def test_copy_on_a_terminal_shows_a_progress_bar(sample: Path, tmp_path: Path) -> None:
    result = invoke(["copy", str(sample), str(tmp_path / "copy")],
                    env={"FORCE_COLOR": "1", "COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "copying" in result.stderr and "3/3" in result.stderr
    assert len(open_store(str(tmp_path / "copy")).list()) == 3
