"""``Mapped``: a read-only sequence that transforms items only when they are read.

A wrapper hands the backend ``Mapped(record.messages, encode)`` instead of an encoded copy:
a backend that appends writes only ``messages[unchanged:]``, and slicing stays lazy, so an
append of one message costs one encoding, not one per message of the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, overload

T = TypeVar("T")


class Mapped(Sequence[T]):
    """``fn(index, source[index])`` for each item read, computed once and cached."""

    def __init__(
        self,
        source: Sequence[Any],
        fn: Callable[[int, Any], T],
        indices: range | None = None,
        cache: dict[int, T] | None = None,
    ) -> None:
        self._source = source
        self._fn = fn
        self._indices = range(len(source)) if indices is None else indices
        self._cache: dict[int, T] = {} if cache is None else cache  # shared with slices

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Mapped[T]: ...
    def __getitem__(self, index: int | slice) -> T | Mapped[T]:
        if isinstance(index, slice):
            return Mapped(self._source, self._fn, self._indices[index], self._cache)
        return self._item(self._indices[index])  # IndexError and negative indices as a list

    def __iter__(self) -> Iterator[T]:
        for i in self._indices:
            yield self._item(i)

    def _item(self, i: int) -> T:
        try:
            return self._cache[i]
        except KeyError:
            value = self._cache[i] = self._fn(i, self._source[i])
            return value

    def __repr__(self) -> str:
        return f"<Mapped {len(self)} of {len(self._source)} items, {len(self._cache)} computed>"
