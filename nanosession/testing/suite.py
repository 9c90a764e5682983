"""``StoreTests``: every conformance test in one class for a backend's tests to subclass."""

from __future__ import annotations

from nanosession.testing.conflicts import ConflictTests
from nanosession.testing.inputs import InputTests
from nanosession.testing.listing import ListingTests
from nanosession.testing.repair import RepairTests
from nanosession.testing.resilience import ResilienceTests
from nanosession.testing.roundtrip import RoundTripTests


class StoreTests(
    RoundTripTests, ConflictTests, ListingTests, RepairTests, ResilienceTests, InputTests
):
    """The whole storage conformance suite. Subclass it and provide a ``store`` fixture."""
