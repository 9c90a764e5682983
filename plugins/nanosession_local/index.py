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

import json
import os
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger

from nanosession import jsonlib
from nanosession.record import SessionInfo
from nanosession_local import files

INDEX_NAME = ".nanosession-index"
FORMAT = 1
MIN_ENTRIES = 64  # below this, reading every head and tail takes milliseconds: no file
Stamp = tuple[int, int, int, int]
Described = tuple[float, SessionInfo]  # (sort rank: minus the updated_at timestamp, entry)
ROW = 11  # stamp (4 fields), then the SessionInfo fields a listing cannot take from stat
# Rows are tuples: the garbage collector stops tracking tuples of plain values, so 10,000
# remembered rows do not slow every later collection in the process (lists would).
Row = tuple[Any, ...]


def _rank(info: SessionInfo) -> float:
    stamp = info.updated_at
    return -stamp.timestamp() if stamp is not None else float("inf")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _row(stamp: Stamp, info: SessionInfo) -> Row:
    return (*stamp, info.key, _iso(info.updated_at), _iso(info.created_at), info.title,
            info.preview, info.message_count, info.error)


def _from_row(row: Row, size: int, location: str) -> Described:
    """The entry a row stores, filled the way ``copy`` and ``pickle`` fill a ``SessionInfo``.

    The frozen dataclass ``__init__`` costs three times as much, which shows at 10,000
    entries per listing; the fields are the same either way.
    """
    _, _, _, _, key, updated, created, title, preview, count, error = row
    if (type(key) is not str or type(title) not in _TEXT or type(preview) not in _TEXT
            or type(error) not in _TEXT or type(count) not in _COUNT):
        raise TypeError("malformed index row")
    info = object.__new__(SessionInfo)
    info.__dict__.update(
        key=key, updated_at=_time(updated), created_at=_time(created), title=title,
        preview=preview, message_count=count, size=size, version=None, location=location,
        error=error,
    )
    return _rank(info), info


_TEXT = (str, type(None))
_COUNT = (int, type(None))


def _time(value: str | None) -> datetime | None:
    """Raises ``TypeError`` or ``ValueError`` for what no row of ours holds."""
    return None if value is None else datetime.fromisoformat(value)


class ListingIndex:
    """Listing entries by file name, valid while the file's stamp is unchanged."""

    def __init__(self, root: Path, read: Callable[[str, str, os.stat_result], SessionInfo]) -> None:
        """``read(path, key, stat)`` builds an entry from the file itself."""
        self.path = root / INDEX_NAME
        self._read = read
        self._rows: dict[str, Row] | None = None  # the persisted form, loaded lazily
        self._live: dict[str, tuple[Stamp, Described]] = {}  # entries built in this process
        self._changed = False
        self._on_disk = False

    def describe(self, name: str, location: str, key: str, st: os.stat_result) -> Described:
        """The entry for the file ``name``, from memory, the index file, or the file."""
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        live = self._live.get(name)
        if live is not None and live[0] == stamp:
            return live[1]
        rows = self._rows if self._rows is not None else self._load()
        row = rows.get(name)
        if row is not None and row[:4] == stamp:
            try:
                described = _from_row(row, st.st_size, location)
            except (TypeError, ValueError):
                pass
            else:
                self._live[name] = (stamp, described)
                return described
        info = self._read(location, key, st)
        described = (_rank(info), info)
        if (info.error or "").startswith("unreadable"):
            return described  # a passing I/O error: ask again next time
        self._live[name] = (stamp, described)
        rows[name] = _row(stamp, info)
        self._changed = True
        return described

    def retain(self, names: Collection[str]) -> None:
        """Forget files that are gone (``names``: every session file that exists)."""
        rows = self._load()
        if len(rows) > len(names) or len(self._live) > len(names):
            present = set(names)
            gone = [name for name in rows if name not in present]
            for name in gone:
                del rows[name]
            self._changed = self._changed or bool(gone)
            self._live = {n: v for n, v in self._live.items() if n in present}

    def forget(self, name: str) -> None:
        """Drop a deleted file's entry; the index file goes once too few entries remain."""
        self._live.pop(name, None)
        rows = self._load()
        if rows.pop(name, None) is not None:
            self._changed = True
            if len(rows) < MIN_ENTRIES:
                self.flush()

    def flush(self) -> None:
        """Write the index file if anything changed; failing to is never an error."""
        if not self._changed or self._rows is None:
            return
        self._changed = False
        try:
            if len(self._rows) >= MIN_ENTRIES:
                data = _dumps({"format": FORMAT, "entries": self._rows})
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


def _dumps(doc: dict[str, Any]) -> bytes:
    if jsonlib.orjson is not None:
        try:
            return jsonlib.orjson.dumps(doc)
        except TypeError:  # lone surrogates in a title or preview
            pass
    return json.dumps(doc, separators=(",", ":")).encode("ascii")


def _read(path: Path) -> dict[str, Row]:
    """The rows of the index file; empty when it is missing, foreign or corrupt."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    try:
        # Not ``jsonlib.loads``: 19-digit mtimes would send the whole file to the stdlib
        # parser, and stamps past 64 bits cannot occur (a wrong one only forces a re-read).
        doc = jsonlib.orjson.loads(data) if jsonlib.orjson is not None else json.loads(data)
    except (ValueError, RecursionError):
        doc = None
    rows = doc.get("entries") if isinstance(doc, dict) and doc.get("format") == FORMAT else None
    if not isinstance(rows, dict) or not all(
        type(row) is list and len(row) == ROW for row in rows.values()
    ):
        logger.debug("listing index {} ignored: not a format {} index", path, FORMAT)
        return {}
    return {name: tuple(row) for name, row in rows.items()}
