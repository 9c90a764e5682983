"""What every conformance test class shares: the subclass contract, gates and helpers.

A backend's test class provides a ``store`` fixture and, optionally, raw helpers that
read and write its medium directly. Capability gates and ``known_failures`` turn into
visible skips and strict xfails, so an unclaimed guarantee is never silently "passed".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, ClassVar, TypeVar

import pytest

from nanosession.record import Capabilities, SessionRecord
from nanosession.store import Store

F = TypeVar("F", bound=Callable[..., Any])
_REQUIRES = "_nanosession_requires"
CAPABILITY_NAMES = frozenset(f.name for f in fields(Capabilities) if f.type in (bool, "bool"))


def requires(*capabilities: str) -> Callable[[F], F]:
    """Run the decorated test only when the store claims every named capability.

    Otherwise the test is skipped with the reason shown ("backend does not claim ...").
    Apply it outermost (above ``@given`` or ``parametrize``).
    """
    unknown = set(capabilities) - CAPABILITY_NAMES
    if unknown:
        known = sorted(CAPABILITY_NAMES)
        raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {known}")

    def mark(test: F) -> F:
        setattr(test, _REQUIRES, (*getattr(test, _REQUIRES, ()), *capabilities))
        return test

    return mark


class ConformanceBase:
    """Base of every conformance test mixin; see ``nanosession.testing`` for usage.

    Subclasses outside ``nanosession.testing`` are collected by pytest; the mixins here are
    not (``__test__``), so importing ``StoreTests`` into a test module runs nothing by itself.
    """

    __test__ = False
    known_failures: ClassVar[Mapping[str, str]] = {}
    """Test name (``"test_x"`` for every parameter, ``"test_x[param]"`` for one) -> reason:
    the test is marked ``xfail(strict=True)``, so it shows as a known limitation and an
    unexpected pass is reported as a failure."""
    raw_format: ClassVar[str | None] = "jsonl"
    """What ``raw_read``/``raw_write`` bytes are. Tests that plant corruption by editing
    JSONL lines need ``"jsonl"``; set ``None`` for other media and they are skipped."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("nanosession.testing"):
            return
        if "__test__" not in cls.__dict__:
            cls.__test__ = True
        unknown = [
            name for name in cls.known_failures
            if not (name.startswith("test_") and callable(getattr(cls, name.split("[")[0], None)))
        ]
        if unknown:
            raise TypeError(f"{cls.__name__}.known_failures names no test of the suite: {unknown}")

    # -- what a backend's test class provides ---------------------------------------------
    @pytest.fixture
    def store(self) -> Store:
        """A fresh, empty ``Store`` for each test; subclasses must override this fixture."""
        pytest.fail(f"{type(self).__name__} must define a `store` fixture yielding a fresh Store")

    def raw_read(self, store: Store, key: str) -> bytes | None:
        """The bytes stored for ``key`` on the medium, ``None`` if there are none."""
        raise NotImplementedError

    def raw_write(self, store: Store, key: str, data: bytes) -> None:
        """Put ``data`` on the medium where ``key``'s session lives (to plant corruption)."""
        raise NotImplementedError

    def raw_names(self, store: Store) -> list[str]:
        """Every object or file name under the store's root, temp files and backups included."""
        raise NotImplementedError

    # -- gates ----------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _conformance_gates(self, request: pytest.FixtureRequest) -> None:
        """Apply ``known_failures`` as strict xfails and skip tests of unclaimed capabilities."""
        node = request.node
        reason = self.known_failures.get(node.name) or self.known_failures.get(
            getattr(node, "originalname", node.name)
        )
        if reason:
            node.add_marker(pytest.mark.xfail(reason=reason, strict=True))
        needed = getattr(request.function, _REQUIRES, ())
        if needed:
            caps = request.getfixturevalue("store").capabilities
            missing = [name for name in needed if not getattr(caps, name)]
            if missing:
                pytest.skip(f"backend does not claim {', '.join(missing)}")

    # -- helpers for the tests --------------------------------------------------------------
    def read_raw(self, store: Store, key: str) -> bytes | None:
        """``raw_read``, skipping the test when the subclass does not implement it."""
        return self._raw(self.raw_read, store, key)

    def write_raw(self, store: Store, key: str, data: bytes) -> None:
        """``raw_write``, skipping the test when the subclass does not implement it."""
        self._raw(self.raw_write, store, key, data)

    def names(self, store: Store) -> set[str]:
        """``raw_names`` as a set, skipping the test when the subclass does not implement it."""
        return set(self._raw(self.raw_names, store))

    def names_if_known(self, store: Store) -> set[str] | None:
        """``raw_names`` as a set, or ``None`` when the subclass does not implement it."""
        try:
            return set(self.raw_names(store))
        except NotImplementedError:
            return None

    def jsonl_lines(self, store: Store, key: str) -> list[bytes]:
        """The stored JSONL lines of ``key`` (without newlines); skips unless raw JSONL."""
        if self.raw_format != "jsonl":
            pytest.skip(f"raw_format is {self.raw_format!r}, not 'jsonl': cannot edit lines")
        data = self.read_raw(store, key)
        assert data is not None, f"raw_read found nothing for saved session {key!r}"
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        try:
            ok = any(json.loads(line).get("_type") == "metadata" for line in lines)
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            pytest.fail("raw_read did not return nanosession JSONL; set raw_format = None")
        return lines

    def _raw(self, method: Callable[..., Any], *args: Any) -> Any:
        try:
            return method(*args)
        except NotImplementedError:
            pytest.skip(f"{type(self).__name__} does not implement {method.__name__}")


def same_record(got: SessionRecord, want: SessionRecord) -> bool:
    """Whether ``got`` holds exactly what ``want`` held (no assertion, so no costly diff)."""
    return (
        got.key == want.key
        and list(got.messages) == list(want.messages)
        and got.metadata == want.metadata
        and got.last_consolidated == want.last_consolidated
        and all(
            getattr(got, n) == getattr(want, n)
            and getattr(got, n).utcoffset() == getattr(want, n).utcoffset()
            for n in ("created_at", "updated_at")
        )
        and all(got.extra.get(k) == v for k, v in want.extra.items())
    )


def assert_same_record(got: SessionRecord, want: SessionRecord) -> None:
    """``got`` holds exactly what ``want`` held: key, messages, metadata, times, extras."""
    assert got.key == want.key
    assert list(got.messages) == list(want.messages)
    assert got.metadata == want.metadata
    assert got.last_consolidated == want.last_consolidated
    for name in ("created_at", "updated_at"):
        stored, original = getattr(got, name), getattr(want, name)
        assert stored == original, name
        assert stored.utcoffset() == original.utcoffset(), f"{name} lost its UTC offset"
    for name, value in want.extra.items():
        assert got.extra.get(name) == value, f"extra field {name!r} did not round-trip"
