"""The public conformance suite on the local JSONL backend, and the suite's own machinery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nanosession import Store, open_store
from nanosession.testing import StoreTests

pytest_plugins = ["pytester"]


class TestLocalConformance(StoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        with open_store(str(tmp_path / "sessions")) as s:
            yield s

    def raw_read(self, store: Store, key: str) -> bytes | None:
        path = store.backend.path(key)  # type: ignore[attr-defined]
        return path.read_bytes() if path.exists() else None

    def raw_write(self, store: Store, key: str, data: bytes) -> None:
        store.backend.path(key).write_bytes(data)  # type: ignore[attr-defined]

    def raw_names(self, store: Store) -> list[str]:
        return [p.name for p in store.backend.root.iterdir()]  # type: ignore[attr-defined]


# -- the suite's own machinery, run in an inner pytest session ----------------------------
INNER = '''
import pytest
from nanosession import Capabilities, hookimpl, open_store
from nanosession.testing import StoreTests


class Reversed:
    """A wrapper that breaks listing order, to have a test that genuinely fails."""

    @hookimpl(wrapper=True)
    def nanosession_list(self, prefix, limit, details):
        return list(reversed(list((yield))))


class TestPlain(StoreTests):
    CLAIMS = Capabilities()
    known_failures = {
        "test_newest_first": "listing order is broken on purpose",
        "test_missing_session": "claimed broken but works",
        "test_sample_round_trips[empty]": "one parameter claimed broken",
    }

    @pytest.fixture
    def store(self, tmp_path):
        with open_store(str(tmp_path), wrappers=[Reversed()]) as s:
            s.backend.capabilities = self.CLAIMS
            yield s
'''


def _inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=INNER)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-v", "-rsxX", *args)


def test_base_classes_are_not_collected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_only_import="from nanosession.testing import *  # noqa: F403\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def _skip_reasons(pytester: pytest.Pytester, source: str, selection: str) -> dict[str, str]:
    """Run the selected inner tests; map each skipped test's name to its skip reason."""
    pytester.makepyfile(test_inner=source)
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-k", selection)
    return {
        r.nodeid.split("::")[-1]: r.longrepr[2]  # type: ignore[index]
        for r in reprec.getreports("pytest_runtest_logreport")
        if r.skipped
    }


def test_unclaimed_capabilities_and_helpers_skip_with_reasons(pytester: pytest.Pytester) -> None:
    reasons = _skip_reasons(pytester, INNER, "racing_updates or racing_creates or "
                            "no_temp_files or dry_run_reports and garbage")
    assert reasons == {
        "test_racing_updates_have_exactly_one_winner[rewrite]":
            "Skipped: backend does not claim compare_and_swap",
        "test_racing_updates_have_exactly_one_winner[append]":
            "Skipped: backend does not claim compare_and_swap",
        "test_racing_creates_have_exactly_one_winner":
            "Skipped: backend does not claim exclusive_create",
        "test_no_temp_files_pile_up": "Skipped: TestPlain does not implement raw_names",
        "test_dry_run_reports_and_changes_nothing[garbage_line]":
            "Skipped: TestPlain does not implement raw_read",
    }


def test_line_editing_tests_skip_for_other_raw_formats(pytester: pytest.Pytester) -> None:
    opaque = INNER + """

class TestOpaque(TestPlain):
    raw_format = None

    def raw_read(self, store, key):
        return b"opaque"

    def raw_write(self, store, key, data):
        pass
"""
    reasons = _skip_reasons(pytester, opaque, "TestOpaque and repair_keeps and garbage")
    assert reasons == {"test_repair_keeps_every_intact_message[garbage_line]":
                       "Skipped: raw_format is None, not 'jsonl': cannot edit lines"}


def test_known_failures_are_strict_xfails(pytester: pytest.Pytester) -> None:
    result = _inner(pytester, "-k", "test_newest_first or test_missing_session or "
                    "test_sample_round_trips and (empty or unicode)")
    result.assert_outcomes(xfailed=1, failed=2, passed=1)
    result.stdout.fnmatch_lines([
        "*TestPlain.test_missing_session*",
        "?XPASS(strict)? claimed broken but works",
        "*TestPlain.test_sample_round_trips?empty?*",
        "?XPASS(strict)? one parameter claimed broken",
        "XFAIL*test_newest_first - listing order is broken on purpose",
    ])


def test_property_tests_run_for_several_backends_in_one_session(
    pytester: pytest.Pytester,
) -> None:
    """Hypothesis refuses one @given test run by two classes unless the suite allows it."""
    pytester.makepyfile(test_inner=INNER + "\n\nclass TestPlainAgain(TestPlain):\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "arbitrary_sessions")
    result.assert_outcomes(passed=2)


def test_known_failures_must_name_a_test() -> None:
    with pytest.raises(TypeError, match="test_no_such_thing"):
        type("TestTypo", (StoreTests,), {"known_failures": {"test_no_such_thing": "typo"}})


def test_repair_keeps_the_original_bytes(tmp_path: Path) -> None:
    """Local specifics behind the suite's generic check: the backup holds the planted bytes."""
    from nanosession import SessionRecord

    store = open_store(str(tmp_path))
    store.save(SessionRecord("k", [{"role": "user", "content": "a"}]))
    path = store.backend.path("k")  # type: ignore[attr-defined]
    damaged = path.read_bytes() + b"42\n"
    path.write_bytes(damaged)
    report = store.repair("k")
    assert report.backup and Path(report.backup).read_bytes() == damaged
