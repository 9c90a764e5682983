"""Change tracking for a session's message list.

Saving only what changed (an append of the new messages instead of a rewrite of the
whole file) needs to know, in O(1), whether anything already saved was edited. Python
cannot observe edits of plain dicts, so messages are stored as ``TrackedDict`` /
``TrackedList`` copies whose mutating methods report to the owning ``MessageLog``.
Reads run at full dict/list speed: only writes are intercepted.

Messages are copied when they enter the log: edit them through ``session.messages``,
not through a dict you kept from before ``append``. Loaded messages are the exception
that makes loads cheap: ``restore`` keeps the decoder's dicts and copies each one only
when the log first hands it out.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, SupportsIndex


class _Cell:
    """Shared by the messages adopted between two saves and everything nested in them.

    It refers to its log weakly: log, messages and cell would otherwise form a cycle, and
    a dropped session would wait for the cycle collector (which then runs in the middle
    of whatever allocates next, such as the load of the next session).
    """

    __slots__ = ("log", "saved")

    def __init__(self, log: MessageLog) -> None:
        self.log = weakref.ref(log)
        self.saved = False

    def changed(self) -> None:
        if self.saved and (log := self.log()) is not None:
            log._dirty = True


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


_ADOPTING = threading.Lock()
"""Held while stored messages are adopted or moved: two threads must never both adopt one
message (an edit of the copy that lost would be lost), nor adopt one while it moves."""


class _Stored:
    """Stored messages not yet handed out, kept as the decoder made them (plain, untracked).

    ``raw[i]`` is 1 while the message at index ``i`` is still the decoder's object. Indices
    are stable while any remain: every operation that could move one adopts them all first.
    """

    __slots__ = ("cell", "left", "raw")

    def __init__(self, log: MessageLog, count: int) -> None:
        self.raw = bytearray(b"\x01") * count
        self.left = count
        self.cell = _Cell(log)
        self.cell.saved = True


class MessageLog(list):
    """The ordered messages of a session, knowing what changed since the last save.

    ``saved_count`` messages at the front are the persisted baseline identified by
    ``saved_tag`` (an opaque token the persistence layer chooses). ``dirty`` is set
    when anything inside that baseline was edited, removed, replaced or reordered;
    appending never sets it. ``unchanged_prefix(tag)`` tells a writer how many leading
    messages it may skip.

    Messages adopted between two saves share one cell, so marking them saved is O(1).
    A log filled by ``restore`` keeps the loaded messages as they are and adopts each
    only when it is first handed out (indexing, slicing, iteration): loading a long
    session then costs no copy of messages the agent never looks at.
    """

    __slots__ = ("__weakref__", "_cell", "_dirty", "_saved", "_stored", "_tag")

    def __init__(self, messages: Iterable[Any] = ()) -> None:
        super().__init__()
        self._dirty = False
        self._saved = 0
        self._tag: str | None = None
        self._cell = _Cell(self)
        self._stored: _Stored | None = None
        list.extend(self, [_wrap(m, self._cell) for m in messages])

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
        self._cell.saved = True  # every message adopted since the last save
        self._cell = _Cell(self)
        self._saved = len(self)
        self._dirty = False
        self._tag = tag

    def restore(self, messages: Iterable[Any], tag: str | None) -> None:
        """Replace the contents with a baseline persisted as ``tag``, without copying it.

        ``messages`` must be objects nobody else holds (a decoder's fresh output): the log
        keeps them untouched and hands out a tracked copy of each on first access.
        """
        self.clear()
        list.extend(self, messages)
        if len(self):
            self._stored = _Stored(self, len(self))
        self.mark_saved(tag)

    def snapshot(self) -> list[Any]:
        """A shallow copy for readers that hand nothing out (a save's serialiser): restored
        messages in it may be untracked originals, so it must never reach user code."""
        return list(list.__iter__(self))

    def inherit(self, other: MessageLog) -> None:
        """Take over ``other``'s baseline tag; everything here counts as rewritten."""
        self._tag = other._tag
        self._saved = other._saved
        self._dirty = True

    def _touch(self, index: int) -> None:
        if index < self._saved:
            self._dirty = True

    def _touch_slice(self, index: slice) -> None:
        span = range(*index.indices(len(self)))
        # A negative step reaches below its start: the lowest index it touches counts.
        self._touch(min(span) if span else span.start)

    # -- adoption of restored messages -----------------------------------------
    def _adopt(self, index: Any) -> None:
        """Replace the restored messages ``index`` names by tracked copies."""
        with _ADOPTING:
            stored = self._stored
            if stored is None:
                return
            raw = stored.raw
            if isinstance(index, slice):
                lo, hi, step = index.indices(len(self))
                if step < 0:  # adopt the whole span: cheaper than walking it backwards
                    lo, hi, step = hi + 1, lo + 1, 1
                hi = min(hi, len(raw))  # messages past the restored ones are tracked
                hits: Iterable[int] = _found(raw, lo, max(lo, hi)) if step == 1 else [
                    i for i in range(lo, hi, step) if raw[i]
                ]
            else:
                i = int(index)
                if i < 0:
                    i += len(self)
                hits = (i,) if 0 <= i < len(raw) and raw[i] else ()
            for i in hits:
                list.__setitem__(self, i, _wrap(list.__getitem__(self, i), stored.cell))
                raw[i] = 0
                stored.left -= 1
            if stored.left == 0:
                self._stored = None

    def _adopt_all(self) -> None:
        if self._stored is not None:
            self._adopt(slice(None))

    # -- reads that hand messages out --------------------------------------------
    def __getitem__(self, index: Any) -> Any:
        if self._stored is not None:
            self._adopt(index)
        return list.__getitem__(self, index)

    def __iter__(self) -> Iterator[Any]:
        self._adopt_all()
        return list.__iter__(self)

    def __reversed__(self) -> Iterator[Any]:
        self._adopt_all()
        return list.__reversed__(self)

    def __add__(self, other: Any) -> Any:
        self._adopt_all()
        return list.__add__(self, other)

    def __radd__(self, other: Any) -> Any:
        if not isinstance(other, list):
            return NotImplemented
        self._adopt_all()
        return list.__add__(other, self)

    def __mul__(self, n: SupportsIndex) -> list[Any]:
        self._adopt_all()
        return list.__mul__(self, n)

    __rmul__ = __mul__

    # -- list API ----------------------------------------------------------
    def append(self, message: Any) -> None:
        list.append(self, _wrap(message, self._cell))

    def extend(self, messages: Iterable[Any]) -> None:
        list.extend(self, [_wrap(m, self._cell) for m in messages])

    def __iadd__(self, messages: Iterable[Any]) -> MessageLog:  # type: ignore[override,misc]
        self.extend(messages)
        return self

    def __imul__(self, n: SupportsIndex) -> MessageLog:  # type: ignore[override,misc]
        items = list(self)
        self.clear()
        self.extend(items * int(n))
        return self

    def insert(self, index: SupportsIndex, message: Any) -> None:
        self._adopt_all()
        i = int(index)
        self._touch(i if i >= 0 else max(len(self) + i, 0))
        list.insert(self, index, _wrap(message, self._cell))

    def __setitem__(self, index: Any, value: Any) -> None:
        self._adopt_all()
        if isinstance(index, slice):
            self._touch_slice(index)
            list.__setitem__(self, index, [_wrap(m, self._cell) for m in value])
        else:
            i = int(index)
            self._touch(i if i >= 0 else len(self) + i)
            list.__setitem__(self, index, _wrap(value, self._cell))

    def __delitem__(self, index: Any) -> None:
        self._adopt_all()
        if isinstance(index, slice):
            self._touch_slice(index)
        else:
            i = int(index)
            self._touch(i if i >= 0 else len(self) + i)
        list.__delitem__(self, index)

    def pop(self, index: SupportsIndex = -1) -> Any:
        self._adopt_all()
        i = int(index)
        self._touch(i if i >= 0 else len(self) + i)
        return list.pop(self, index)

    def remove(self, value: Any) -> None:
        self._adopt_all()
        self._touch(list.index(self, value))
        list.remove(self, value)

    def clear(self) -> None:
        self._touch(0)
        with _ADOPTING:  # an adoption under way must not write into the emptied list
            self._stored = None
            list.clear(self)

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._adopt_all()
        self._touch(0)
        list.sort(self, *args, **kwargs)

    def reverse(self) -> None:
        self._adopt_all()
        self._touch(0)
        list.reverse(self)

    def copy(self) -> list[Any]:  # type: ignore[override]
        return copy.deepcopy(self.snapshot())

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(v, memo) for v in list.__iter__(self)]

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (list, (self.snapshot(),))


def _found(raw: bytearray, lo: int, hi: int) -> Iterator[int]:
    """Indices in ``[lo, hi)`` whose flag is set, found at C speed."""
    i = raw.find(1, lo, hi)
    while i >= 0:
        yield i
        i = raw.find(1, i + 1, hi)
