"""``ListingIndex``: listing entries remembered per file, in memory and in a hidden file.

Reading a head and a tail of 10,000 files costs far more than one ``stat()`` each, so
entries are kept, keyed by file name, beside the file's identity stamp (inode, size,
mtime and ctime in nanoseconds). An entry is used only while all four still match: every
write changes the size (append) or the inode (atomic replace), and ctime catches the rest,
so an entry cannot go stale. In directories of ``MIN_ENTRIES`` sessions or more the entries
also live in ``.nanosession-index`` (hidden: listings and nanobot's ``*.jsonl`` glob skip
it), so a freshly started process lists without reading every session. That file is
rewritten atomically, only when something changed; several processes may race on it (the
last writer wins, and every entry is validated anyway), and a missing, foreign or corrupt
index is ignored and rebuilt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger

from nanosession import jsonlib
from nanosession.record import SessionInfo
from nanosession_local import files

INDEX_NAME = ".nanosession-index"
FORMAT = 2
MIN_ENTRIES = 64  # below this, reading every head and tail takes milliseconds: no file
STALE_SHARE = 64  # the file is rewritten once 1/64 of its rows changed ...
WRITE_EVERY = 30.0  # ... or this many seconds after the last write, or on close
Stamp = tuple[int, int, int, int]  # st_ino, st_size, st_mtime_ns, st_ctime_ns
Described = tuple[float, SessionInfo, "str | None"]
"""(sort rank: minus the stored updated_at timestamp, listing entry, the key the file's name
encodes or ``None`` when only the file knows it)."""
Read = Callable[[str, Stamp], tuple[SessionInfo, "str | None"]]
"""``read(name, stamp)``: the entry from the file itself, and the key its name encodes."""
ROW = 13  # stamp (4 fields), the SessionInfo fields stat cannot give, rank, the name's key
# Rows are tuples: the garbage collector stops tracking tuples of plain values, so 10,000
# remembered rows do not slow every later collection in the process (lists would).
Row = tuple[Any, ...]


def rank_of(info: SessionInfo) -> float:
    """Sort rank: minus the stored updated_at as a timestamp (no time sorts last)."""
    stamp = info.updated_at
    return -stamp.timestamp() if stamp is not None else float("inf")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _row(stamp: Stamp, described: Described) -> Row:
    rank, info, named = described
    return (*stamp, info.key, _iso(info.updated_at), _iso(info.created_at), info.title,
            info.preview, info.message_count, info.error, rank, named)


def _from_row(row: Row, size: int, location: str) -> Described:
    """The entry a row stores, filled the way ``copy`` and ``pickle`` fill a ``SessionInfo``.

    The frozen dataclass ``__init__`` costs three times as much, which shows at 10,000
    entries per listing; the fields are the same either way. The rank is stored too
    (``datetime.timestamp()`` of a naive time asks the C library for the local offset),
    and so is the key the name encodes (decoding and checking it costs more than the rest).
    """
    _, _, _, _, key, updated, created, title, preview, count, error, rank, named = row
    if (type(key) is not str or type(title) not in _TEXT or type(preview) not in _TEXT
            or type(error) not in _TEXT or type(count) not in _COUNT
            or type(rank) is not float or type(named) not in _TEXT):
        raise TypeError("malformed index row")
    info = object.__new__(SessionInfo)
    info.__dict__.update(
        key=key, updated_at=_time(updated), created_at=_time(created), title=title,
        preview=preview, message_count=count, size=size, version=None, location=location,
        error=error,
    )
    return rank, info, named


_TEXT = (str, type(None))
_COUNT = (int, type(None))


def _time(value: str | None) -> datetime | None:
    """Raises ``TypeError`` or ``ValueError`` for what no row of ours holds."""
    return None if value is None else datetime.fromisoformat(value)


class ListingIndex:
    """Listing entries by file name, valid while the file's stamp is unchanged."""

    def __init__(self, root: Path, read: Read) -> None:
        """``read(name, stamp)`` builds an entry from the file itself."""
        self.path = root / INDEX_NAME
        self._dir = os.path.join(root, "")  # what a file name is appended to for its path
        self._read = read
        self._rows: dict[str, Row] | None = None  # the persisted form, loaded lazily
        self._stale = 0  # rows changed since the file was last written
        self._written = time.monotonic()
        self._on_disk = False

    def describe(self, name: str, stamp: Stamp) -> Described:
        """The entry for the file ``name``, from the index, else from the file itself."""
        rows = self._rows if self._rows is not None else self._load()
        row = rows.get(name)
        if row is not None and row[:4] == stamp:
            try:
                return _from_row(row, stamp[1], self.location(name))
            except (TypeError, ValueError):
                pass
        info, named = self._read(name, stamp)
        described = (rank_of(info), info, named)
        if not (info.error or "").startswith("unreadable"):  # a passing I/O error: ask again
            rows[name] = _row(stamp, described)
            self._stale += 1
        return described

    def location(self, name: str) -> str:
        """The path of the session file ``name`` (what listings report)."""
        return self._dir + name

    def retain(self, names: Collection[str]) -> None:
        """Forget files that are gone (``names``: every session file that exists)."""
        rows = self._load()
        if len(rows) > len(names):
            gone = [name for name in rows if name not in names]
            for name in gone:
                del rows[name]
            self._stale += len(gone)

    def forget(self, name: str) -> None:
        """Drop a deleted file's entry; the index file goes once too few entries remain."""
        rows = self._load()
        if rows.pop(name, None) is not None:
            self._stale += 1
            if len(rows) < MIN_ENTRIES:
                self.flush()

    def flush(self, *, force: bool = False) -> None:
        """Write the index file when enough changed (or ``force``); failing is no error.

        Rewriting 10,000 rows for one changed session on every listing would cost more
        than the listing, so writes wait for ``1/STALE_SHARE`` of the rows to change, or
        ``WRITE_EVERY`` seconds. Meanwhile a new process reads at most those files again:
        a stale row is never used, only replaced.
        """
        rows = self._rows
        if rows is None or not self._stale:
            return
        small = len(rows) < MIN_ENTRIES
        if not (force or small or self._stale >= max(MIN_ENTRIES, len(rows) // STALE_SHARE)
                or time.monotonic() - self._written >= WRITE_EVERY):
            return
        self._stale = 0
        self._written = time.monotonic()
        try:
            if not small:
                data = jsonlib.dumps_cache({"format": FORMAT, "entries": rows})
                files.replace_atomically(self.path, data, durable=False)
                self._on_disk = True
            elif self._on_disk:
                self.path.unlink(missing_ok=True)
                self._on_disk = False
        except (OSError, ValueError, TypeError) as exc:
            logger.debug("listing index {} not written: {}", self.path, exc)

    def _load(self) -> dict[str, Row]:
        if self._rows is None:
            self._rows = _read(self.path)
            self._on_disk = self.path.exists()
        return self._rows


def _read(path: Path) -> dict[str, Row]:
    """The rows of the index file; empty when it is missing, foreign or corrupt."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    try:
        doc = jsonlib.loads(data)
    except jsonlib.DecodeErrors:
        doc = None
    rows = doc.get("entries") if isinstance(doc, dict) and doc.get("format") == FORMAT else None
    if not isinstance(rows, dict):
        logger.debug("listing index {} ignored: not a format {} index", path, FORMAT)
        return {}
    # A row of another shape is dropped (its file is read again); ``_from_row`` checks
    # the fields of the rest when they are used.
    return {name: tuple(row) for name, row in rows.items()
            if type(row) is list and len(row) == ROW}
