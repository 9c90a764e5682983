"""Change tracking for a session's message list.

Saving only what changed (an append of the new messages instead of a rewrite of the
whole file) needs to know, in O(1), whether anything already saved was edited. Python
cannot observe edits of plain dicts, so messages are stored as ``TrackedDict`` /
``TrackedList`` copies whose mutating methods report to the owning ``MessageLog``.
Reads run at full dict/list speed: only writes are intercepted.

Messages are copied when they enter the log: edit them through ``session.messages``,
not through a dict you kept from before ``append``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, SupportsIndex


class _Cell:
    """Shared by one root message and everything nested in it."""

    __slots__ = ("log", "saved")

    def __init__(self, log: MessageLog | None) -> None:
        self.log = log
        self.saved = False

    def changed(self) -> None:
        if self.saved and self.log is not None:
            self.log._dirty = True


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _wrap(value: Any, cell: _Cell) -> Any:
    kind = type(value)
    if kind is dict or kind is TrackedDict:
        out = TrackedDict(value)  # a C-level copy; only containers inside need wrapping
        out._cell = cell
        for k, v in dict.items(value):
            if type(v) not in _SCALARS:
                dict.__setitem__(out, k, _wrap(v, cell))
        return out
    if kind is list or kind is TrackedList or kind is tuple:
        items = TrackedList([v if type(v) in _SCALARS else _wrap(v, cell) for v in value])
        items._cell = cell
        return items
    if isinstance(value, dict):  # other mappings: keep JSON semantics
        return _wrap(dict(value), cell)
    return value


class TrackedDict(dict):
    """A dict that reports writes to its message's cell."""

    __slots__ = ("_cell",)
    _cell: _Cell

    def __setitem__(self, key: Any, value: Any) -> None:
        self._cell.changed()
        dict.__setitem__(self, key, _wrap(value, self._cell))

    def __delitem__(self, key: Any) -> None:
        self._cell.changed()
        dict.__delitem__(self, key)

    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._cell.changed()
        for k, v in dict(*args, **kwargs).items():
            dict.__setitem__(self, k, _wrap(v, self._cell))

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def pop(self, *args: Any) -> Any:
        self._cell.changed()
        return dict.pop(self, *args)

    def popitem(self) -> tuple[Any, Any]:
        self._cell.changed()
        return dict.popitem(self)

    def clear(self) -> None:
        self._cell.changed()
        dict.clear(self)

    def copy(self) -> dict[Any, Any]:  # type: ignore[override]
        return copy.deepcopy(self)

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        return {k: copy.deepcopy(v, memo) for k, v in dict.items(self)}

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (dict, (dict(self),))


class TrackedList(list):
    """A list nested inside a message that reports writes to the message's cell."""

    __slots__ = ("_cell",)
    _cell: _Cell

    def _changed(self) -> None:
        self._cell.changed()

    def __setitem__(self, index: Any, value: Any) -> None:
        self._changed()
        if isinstance(index, slice):
            list.__setitem__(self, index, [_wrap(v, self._cell) for v in value])
        else:
            list.__setitem__(self, index, _wrap(value, self._cell))

    def __delitem__(self, index: Any) -> None:
        self._changed()
        list.__delitem__(self, index)

    def __iadd__(self, other: Iterable[Any]) -> TrackedList:  # type: ignore[override,misc]
        self.extend(other)
        return self

    def __imul__(self, n: SupportsIndex) -> TrackedList:  # type: ignore[override,misc]
        self._changed()
        list.__imul__(self, n)
        return self

    def append(self, value: Any) -> None:
        self._changed()
        list.append(self, _wrap(value, self._cell))

    def extend(self, values: Iterable[Any]) -> None:
        self._changed()
        list.extend(self, [_wrap(v, self._cell) for v in values])

    def insert(self, index: SupportsIndex, value: Any) -> None:
        self._changed()
        list.insert(self, index, _wrap(value, self._cell))

    def pop(self, index: SupportsIndex = -1) -> Any:
        self._changed()
        return list.pop(self, index)

    def remove(self, value: Any) -> None:
        self._changed()
        list.remove(self, value)

    def clear(self) -> None:
        self._changed()
        list.clear(self)

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        list.sort(self, *args, **kwargs)

    def reverse(self) -> None:
        self._changed()
        list.reverse(self)

    def copy(self) -> list[Any]:  # type: ignore[override]
        return copy.deepcopy(self)

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(v, memo) for v in list.__iter__(self)]

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (list, (list(self),))


class MessageLog(list):
    """The ordered messages of a session, knowing what changed since the last save.

    ``saved_count`` messages at the front are the persisted baseline identified by
    ``saved_tag`` (an opaque token the persistence layer chooses). ``dirty`` is set
    when anything inside that baseline was edited, removed, replaced or reordered;
    appending never sets it. ``unchanged_prefix(tag)`` tells a writer how many leading
    messages it may skip.
    """

    __slots__ = ("_dirty", "_saved", "_tag")

    def __init__(self, messages: Iterable[Any] = ()) -> None:
        super().__init__()
        self._dirty = False
        self._saved = 0
        self._tag: str | None = None
        list.extend(self, [self._adopt(m) for m in messages])

    # -- bookkeeping -------------------------------------------------------
    @property
    def saved_tag(self) -> str | None:
        return self._tag

    @property
    def saved_count(self) -> int:
        return self._saved

    @property
    def dirty(self) -> bool:
        return self._dirty

    def unchanged_prefix(self, tag: str | None) -> int:
        """How many leading messages equal the baseline saved under ``tag`` (0 if unsure)."""
        if tag is None or tag != self._tag or self._dirty:
            return 0
        return self._saved

    def mark_saved(self, tag: str | None) -> None:
        """Declare the current contents the persisted baseline named ``tag``."""
        start = 0 if self._dirty else self._saved
        for message in list.__iter__(self[start:]) if start else list.__iter__(self):
            cell = getattr(message, "_cell", None)
            if cell is not None:
                cell.saved = True
        self._saved = len(self)
        self._dirty = False
        self._tag = tag

    def inherit(self, other: MessageLog) -> None:
        """Take over ``other``'s baseline tag; everything here counts as rewritten."""
        self._tag = other._tag
        self._saved = other._saved
        self._dirty = True

    def _adopt(self, message: Any) -> Any:
        return _wrap(message, _Cell(self))

    def _touch(self, index: int) -> None:
        if index < self._saved:
            self._dirty = True

    def _touch_slice(self, index: slice) -> None:
        span = range(*index.indices(len(self)))
        # A negative step reaches below its start: the lowest index it touches counts.
        self._touch(min(span) if span else span.start)

    # -- list API ----------------------------------------------------------
    def append(self, message: Any) -> None:
        list.append(self, self._adopt(message))

    def extend(self, messages: Iterable[Any]) -> None:
        list.extend(self, [self._adopt(m) for m in messages])

    def __iadd__(self, messages: Iterable[Any]) -> MessageLog:  # type: ignore[override,misc]
        self.extend(messages)
        return self

    def __imul__(self, n: SupportsIndex) -> MessageLog:  # type: ignore[override,misc]
        items = list(self)
        self.clear()
        self.extend(items * int(n))
        return self

    def insert(self, index: SupportsIndex, message: Any) -> None:
        i = int(index)
        self._touch(i if i >= 0 else max(len(self) + i, 0))
        list.insert(self, index, self._adopt(message))

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            self._touch_slice(index)
            list.__setitem__(self, index, [self._adopt(m) for m in value])
        else:
            i = int(index)
            self._touch(i if i >= 0 else len(self) + i)
            list.__setitem__(self, index, self._adopt(value))

    def __delitem__(self, index: Any) -> None:
        if isinstance(index, slice):
            self._touch_slice(index)
        else:
            i = int(index)
            self._touch(i if i >= 0 else len(self) + i)
        list.__delitem__(self, index)

    def pop(self, index: SupportsIndex = -1) -> Any:
        i = int(index)
        self._touch(i if i >= 0 else len(self) + i)
        return list.pop(self, index)

    def remove(self, value: Any) -> None:
        self._touch(self.index(value))
        list.remove(self, value)

    def clear(self) -> None:
        self._touch(0)
        list.clear(self)

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._touch(0)
        list.sort(self, *args, **kwargs)

    def reverse(self) -> None:
        self._touch(0)
        list.reverse(self)

    def copy(self) -> list[Any]:  # type: ignore[override]
        return copy.deepcopy(list(self))

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(v, memo) for v in list.__iter__(self)]

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (list, (list(self),))
