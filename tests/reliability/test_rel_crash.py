"""Crash consistency: SIGKILL a saving process at random moments (short CI run).

Each round starts a worker that keeps saving one session (appends, in-place edits and
trims that force rewrites) and kills it with SIGKILL; then a fresh store must load the
exact state of the last acknowledged save or of the one in flight. The long run is
``python tests/reliability/crash_harness.py --kills 1000``; figures in docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_harness import Leftovers, Outcome, run, stray_objects, temp_files

Target = tuple[str, dict[str, str]]
FSSPEC_TEMP_BUG = ("FsspecBackend names temp files without a pid and never removes orphans: "
                   "every kill between writing the temp file and the rename leaves one for ever")
S3_PROBE_BUG = ("the S3 plugin's conditional-write probe object ('.nanosession-probe-*') is "
                "left under the prefix when the process dies during the probe")


def _check(outcome: Outcome, kills: int, min_saves: int, *, temp_bug: str = "") -> None:
    assert outcome.violations == []
    assert outcome.kills == kills
    # the run must really have exercised saves of both kinds, not only killed idle workers
    assert outcome.saves_acknowledged >= min_saves
    assert outcome.rewrites_acknowledged >= min_saves // 10
    if temp_bug and outcome.temp_files_left_after_open:
        pytest.xfail(temp_bug)  # data is intact; only the leftover temp files are the bug
    assert outcome.temp_files_left_after_open == 0


def test_local_store_survives_sigkill_at_random_moments(tmp_path: Path) -> None:
    outcome = run(str(tmp_path), kills=30, leftovers=temp_files(tmp_path), seed=7,
                  max_delay=0.15, options={"backend": "local"})
    _check(outcome, 30, 150)


def test_fsspec_file_store_survives_sigkill_at_random_moments(tmp_path: Path) -> None:
    outcome = run(tmp_path.as_uri(), kills=12, leftovers=temp_files(tmp_path), seed=5,
                  max_delay=0.15, options={"backend": "fsspec"})
    _check(outcome, 12, 40, temp_bug=FSSPEC_TEMP_BUG)


def _strays(target: Target) -> Leftovers:
    url, options = target
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    return stray_objects(options["endpoint_url"], bucket, prefix + "/")


def test_s3_store_survives_sigkill_at_random_moments(s3_target: Target) -> None:
    url, options = s3_target
    outcome = run(url, kills=10, options=options, leftovers=_strays(s3_target), seed=11,
                  max_delay=0.4)
    _check(outcome, 10, 20, temp_bug=S3_PROBE_BUG)


def test_fsspec_s3_store_survives_sigkill_at_random_moments(s3fs_target: Target) -> None:
    url, options = s3fs_target
    outcome = run(url, kills=6, options=options, leftovers=_strays(s3fs_target), seed=13,
                  max_delay=0.4)
    _check(outcome, 6, 12)
