"""The commands against S3: moto's server over real HTTP on loopback, in-process and as a
subprocess, including a 1,000-session migration killed half-way and resumed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import fill, invoke, one_error_line, record, run_cli

from nanosession import SessionRecord, open_store
from nanosession.cli.copy import same_session

UNREACHABLE = ["-o", "endpoint_url=http://127.0.0.1:1", "-o", "max_attempts=1",
               "-o", "connect_timeout=1", "-o", "read_timeout=1"]


def test_commands_on_s3_through_the_runner(
    sample: Path, moto_endpoint: str, s3_bucket: str
) -> None:
    url = f"s3://{s3_bucket}/sessions"
    ep = f"endpoint_url={moto_endpoint}"
    copied = invoke(["copy", str(sample), url, "-d", ep, "--verify", "--json"])
    assert copied.exit_code == 0, copied.output
    assert json.loads(copied.stdout)["copied"] == 3
    listed = invoke(["ls", url, "-o", ep])
    assert listed.exit_code == 0, listed.output
    assert [line.split("\t")[2] for line in listed.stdout.splitlines()] == [
        "telegram:1", "cli:direct", "old:one"]
    shown = invoke(["show", f"{url}?{ep}", "telegram:1", "--json"])  # options in the URL
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["messages"] == list(
        open_store(str(sample)).load("telegram:1").messages)
    checked = invoke(["repair", url, "-o", ep, "--dry-run"])
    assert checked.exit_code == 0 and "checked 3 session(s): 0 need repair" in checked.stdout
    pruned = invoke(["prune", url, "-o", ep, "--keep", "2", "--yes"])
    assert pruned.exit_code == 0 and "deleted old:one" in pruned.stdout
    removed = invoke(["rm", url, "-o", ep, "--yes", "cli:direct", "ghost"])
    assert removed.exit_code == 1 and "ghost" in one_error_line(removed.stderr)
    left = json.loads(invoke(["ls", url, "-o", ep, "--json"]).stdout)
    assert [d["key"] for d in left] == ["telegram:1"]
    missing = invoke(["show", url, "-o", ep, "old:one"])
    assert missing.exit_code == 1
    assert one_error_line(missing.stderr) == "error: session 'old:one' not found"


def test_commands_on_s3_in_a_subprocess(
    sample: Path, moto_endpoint: str, s3_bucket: str
) -> None:
    env = {"NANOSESSION_URL": f"s3://{s3_bucket}/p?endpoint_url={moto_endpoint}"}
    copied = run_cli("copy", str(sample), env["NANOSESSION_URL"])
    assert copied.returncode == 0, copied.stderr
    assert "verify: source 3, destination 3, missing 0" in copied.stdout
    listed = run_cli("ls", "--limit", "1", env=env)
    assert listed.returncode == 0, listed.stderr
    # with --limit the store picks the most recently written; copies land in any order
    assert listed.stdout.split("\t")[2] in {"telegram:1", "cli:direct", "old:one"}
    assert len(listed.stdout.splitlines()) == 1 and "showing 1 of 3" in listed.stderr
    shown = run_cli("show", "cli:direct", env=env)
    assert shown.returncode == 0 and "question 0 of cli:direct" in shown.stdout


@pytest.mark.parametrize("args", [["ls"], ["show", "some:key"], ["prune", "--keep", "1", "-y"]])
def test_unreachable_endpoint_is_one_line(args: list[str]) -> None:
    cmd, *rest = args
    started = time.monotonic()
    result = invoke([cmd, "s3://bucket/p", *rest, *UNREACHABLE])
    assert result.exit_code == 1, result.output
    one_error_line(result.stderr)
    assert time.monotonic() - started < 20
    proc = run_cli(cmd, "s3://bucket/p", *rest, *UNREACHABLE, timeout=60)
    assert proc.returncode == 1
    one_error_line(proc.stderr)


def test_bad_bucket_names_and_missing_buckets_are_one_line(moto_endpoint: str) -> None:
    bad = invoke(["ls", "s3://Bad_Bucket/p", "-o", f"endpoint_url={moto_endpoint}"])
    assert bad.exit_code == 1 and "invalid bucket name" in one_error_line(bad.stderr)
    gone = invoke(["ls", "s3://no-such-bucket-here/p", "-o", f"endpoint_url={moto_endpoint}"])
    assert gone.exit_code == 1 and "does not exist" in one_error_line(gone.stderr)


def _thousand(root: Path) -> list[SessionRecord]:
    odd = ["ünïcode:ключ", "with space/and/slashes", "x" * 300, "tab\tkey", "?&=#%"]
    keys = [f"user:{i:04d}" for i in range(1000 - len(odd))] + odd
    records = []
    for i, key in enumerate(keys):
        r = record(key, i % 500, n=1 + i % 9, title=f"session {i}" if i % 3 else None)
        r.last_consolidated = i % 2
        records.append(r)
    fill(str(root), records)
    return records


def _count(url: str, endpoint: str) -> int:
    with open_store(url, endpoint_url=endpoint) as store:
        return len(store.list(details=False))


def test_thousand_sessions_local_to_s3_killed_half_way_resumed_and_back(
    tmp_path: Path, moto_endpoint: str, s3_bucket: str
) -> None:
    src, back = tmp_path / "laptop", tmp_path / "back"
    records = _thousand(src)
    url = f"s3://{s3_bucket}/migrated"
    ep = f"endpoint_url={moto_endpoint}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanosession.cli", "copy", str(src), url, "-d", ep, "-j", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _count(url, moto_endpoint) >= 400:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the copy finished before it could be killed"
    landed = _count(url, moto_endpoint)
    assert 400 <= landed < 1000

    resumed = run_cli("copy", str(src), url, "-d", ep, "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["unchanged"] >= landed and report["copied"] + report["unchanged"] == 1000
    assert report["failed"] == 0 and report["missing"] == []
    assert report["source_count"] == report["destination_count"] == 1000

    home = run_cli("copy", url, str(back), "-s", ep, "--json")
    assert home.returncode == 0, home.stderr
    report = json.loads(home.stdout)
    assert report["copied"] == 1000 and report["destination_count"] == 1000
    with open_store(str(back)) as store:  # laptop -> S3 -> laptop changed nothing
        assert all(same_session(r, store.load(r.key)) for r in records)


def test_ctrl_c_stops_a_copy_cleanly_and_a_rerun_finishes_it(
    tmp_path: Path, moto_endpoint: str, s3_bucket: str
) -> None:
    src = tmp_path / "laptop"
    fill(str(src), [record(f"k{i:03d}", i) for i in range(300)])
    url = f"s3://{s3_bucket}/ctrl-c"
    ep = f"endpoint_url={moto_endpoint}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanosession.cli", "copy", str(src), url, "-d", ep, "-j", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _count(url, moto_endpoint) >= 30:
                proc.send_signal(signal.SIGINT)
                break
            time.sleep(0.05)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert one_error_line(err) == "error: interrupted"
    assert 30 <= _count(url, moto_endpoint) < 300
    rerun = run_cli("copy", str(src), url, "-d", ep, "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["destination_count"] == 300
