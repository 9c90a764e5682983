"""Conformance suite for nanosession backends: prove a plugin correct and resilient.

Needs pytest and hypothesis (``pip install nanosession[test]``). Usage::

    import pytest
    from nanosession import open_store
    from nanosession.testing import StoreTests

    class TestMyBackend(StoreTests):
        known_failures = {"test_racing_creates_have_exactly_one_winner": "why"}  # strict xfail

        @pytest.fixture
        def store(self, tmp_path):                  # a fresh, empty store per test
            with open_store(f"mine://{tmp_path}") as s:
                yield s

        def raw_read(self, store, key): ...         # optional: stored bytes or None
        def raw_write(self, store, key, data): ...  # optional: plant (corrupt) bytes
        def raw_names(self, store): ...             # optional: every name under the root

Tests of a guarantee the backend does not claim in ``Capabilities`` are skipped with the
reason shown; tests needing an unimplemented raw helper are skipped likewise. Topic mixins
(``RoundTripTests``, ``ConflictTests``, ...) can be subclassed alone; ``requires`` gates
extra tests a plugin adds on its capabilities.
"""

# ruff: noqa: E402
from __future__ import annotations

import pytest

# Suite assertions explain their failures like a test module's (rewrite before importing).
pytest.register_assert_rewrite(
    *(f"{__name__}.{m}" for m in ("base", "conflicts", "inputs", "listing", "repair",
                                  "resilience", "roundtrip", "sessions", "suite"))
)

from nanosession.testing.base import ConformanceBase, assert_same_record, requires
from nanosession.testing.conflicts import ConflictTests
from nanosession.testing.inputs import HOSTILE_KEYS, InputTests
from nanosession.testing.listing import ListingTests
from nanosession.testing.repair import RepairTests
from nanosession.testing.resilience import ResilienceTests
from nanosession.testing.roundtrip import RoundTripTests
from nanosession.testing.sessions import SAMPLES, records
from nanosession.testing.suite import StoreTests

__all__ = [
    "ConflictTests",
    "ConformanceBase",
    "HOSTILE_KEYS",
    "InputTests",
    "ListingTests",
    "RepairTests",
    "ResilienceTests",
    "RoundTripTests",
    "SAMPLES",
    "StoreTests",
    "assert_same_record",
    "records",
    "requires",
]
