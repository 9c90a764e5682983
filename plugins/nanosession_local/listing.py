"""``SortedListing``: a directory's detailed listing, kept sorted from one call to the next.

An agent lists its sessions about once a second while few of them change. Describing and
sorting 10,000 entries on every call costs more than the ``stat()`` calls that prove the
files unchanged, so the sorted result is kept beside the stamps it was built from: an
unchanged directory is answered as it stands, and a changed, new or removed file moves
only its own entry. Nothing is trusted that a stamp does not vouch for, so the listing
can be no staler than the stamps (see ``index``).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable

from nanosession.record import SessionInfo
from nanosession_local.index import Described, Stamp

Entry = tuple[float, int, str, SessionInfo, str | None]
"""One listed file: ``(rank, newer, name, info, key)``. Tuples of this shape sort in listing
order: ``rank`` is minus the stored updated_at timestamp, ``newer`` minus the file's mtime
in ns (the newest file first among equal ranks), and the unique ``name`` breaks ties, so
``info`` is never compared. ``key`` is the key the file name encodes, or ``None`` when only
the file knows it (hashed and nanobot v0.2.0 names). Plain tuples: 10,000 of them are
built per listing in a new process, and a named tuple costs a Python call each."""

NAME, INFO, KEY = 2, 3, 4


Describe = Callable[[str, Stamp], Described]
"""``describe(name, stamp)``: the file's sort rank, entry and the key its name encodes."""

REBUILD_SHARE = 8
"""Past 1/8 of the entries changed, one sort of everything beats moving them one by one."""


class SortedListing:
    """Every session file's ``Entry``, in listing order, valid for the stamps it was built from."""

    def __init__(self) -> None:
        self._stamps: dict[str, Stamp | None] = {}
        self._entries: dict[str, Entry] = {}
        self._order: list[Entry] = []
        self._unnamed: set[str] = set()

    @property
    def unnamed(self) -> bool:
        """Whether any listed file's name does not encode its key."""
        return bool(self._unnamed)

    def update(self, stamps: dict[str, Stamp], describe: Describe) -> list[Entry]:
        """The entries for the files ``stamps`` names (each with its current stamp), sorted.

        ``stamps`` is kept (callers hand over a fresh dict), and the returned list is
        shared: callers read both, never change them.
        """
        old = self._stamps
        if stamps == old:  # one C-level comparison: the common once-a-second case
            return self._order
        changed = [name for name, stamp in stamps.items() if old.get(name) != stamp]
        gone = self._entries.keys() - stamps.keys()
        entries = self._entries
        if len(changed) + len(gone) > len(entries) // REBUILD_SHARE:
            for name in gone:
                self._drop(name)
            for name in changed:
                self._add(name, stamps[name], describe)
            self._order = sorted(entries.values())
        else:
            order = self._order
            for name in (*gone, *changed):
                stale = self._drop(name)
                if stale is not None:
                    del order[bisect_left(order, stale)]
            for name in changed:
                insort(order, self._add(name, stamps[name], describe))
        retry = [n for n in changed if (entries[n][INFO].error or "").startswith("unreadable")]
        # A passing read error: a stamp no file has makes the next call describe it again.
        self._stamps = {**stamps, **dict.fromkeys(retry)} if retry else stamps
        return self._order

    def forget(self, name: str) -> None:
        """Drop a deleted file's entry now (the next ``update`` would notice it anyway)."""
        stale = self._drop(name)
        if stale is not None:
            del self._order[bisect_left(self._order, stale)]
            self._stamps.pop(name, None)

    def _add(self, name: str, stamp: Stamp, describe: Describe) -> Entry:
        rank, info, key = describe(name, stamp)
        self._entries[name] = entry = (rank, -stamp[2], name, info, key)
        if key is None:
            self._unnamed.add(name)
        return entry

    def _drop(self, name: str) -> Entry | None:
        self._unnamed.discard(name)
        return self._entries.pop(name, None)
