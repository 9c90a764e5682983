"""The JSONL session format, shared by every file- and object-shaped backend.

One UTF-8 JSON object per line. The first line is nanobot's metadata line; every other
line is a message. Appending saves add the new messages and then a fresh metadata line,
which is what nanobot's reader expects too ("every metadata line counts, the last wins").

That trailing metadata line is also the commit record: it carries ``message_count``, the
number of messages committed so far. Message lines after the last metadata line are the
remains of an append a crash cut short, and are ignored. Files nanobot wrote have no
``message_count``: all their messages count, and they are rewritten in full (gaining the
field) before anything is appended to them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import Any

from loguru import logger

from nanosession import jsonlib
from nanosession.errors import CorruptSessionError
from nanosession.record import (
    Message,
    SessionInfo,
    SessionRecord,
    message_text,
    preview_of,
    title_of,
)

META = "metadata"
COUNT = "message_count"
_KNOWN = {"_type", "key", "created_at", "updated_at", META, "last_consolidated",
          "last_archived", COUNT}
TYPED_LINES = "_typed_lines"  # record.extra entry holding non-metadata ``_type`` lines


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp, or ``None`` when missing or malformed."""
    if not isinstance(value, str) or not value:
        return None
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _offset(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def meta_line(record: SessionRecord, count: int) -> bytes:
    """The metadata line (with newline) committing ``count`` messages."""
    line: dict[str, Any] = {
        "_type": META,
        "key": record.key,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        META: record.metadata,
        "last_consolidated": record.last_consolidated,
        "last_archived": record.last_consolidated,
        COUNT: count,
    }
    line.update((k, v) for k, v in record.extra.items() if k not in _KNOWN and k != TYPED_LINES)
    return jsonlib.dumps(line) + b"\n"


YIELD_EVERY = 16
"""Messages a worker thread encodes between two hand-overs of the GIL (~0.3 ms of work)."""


def message_lines(messages: Sequence[Message]) -> bytes:
    """Message lines, each ending in a newline.

    A full rewrite of a big session encodes for tens of milliseconds holding the GIL. Run
    off an event loop (``nanosession.aio`` uses worker threads) that would still stall the
    loop thread, for a switch interval per competing thread. So a worker thread hands the
    GIL over (``time.sleep(0)``) every ``YIELD_EVERY`` messages; the main thread, where
    nothing waits on it, does not pay for that.
    """
    if len(messages) <= YIELD_EVERY or threading.current_thread() is threading.main_thread():
        return b"".join([jsonlib.dumps(m) + b"\n" for m in messages])
    out = []
    for i, m in enumerate(messages):
        if i % YIELD_EVERY == 0:
            time.sleep(0)
        out.append(jsonlib.dumps(m) + b"\n")
    return b"".join(out)


def encode(record: SessionRecord) -> bytes:
    """The whole session as a fresh, compact file."""
    typed = record.extra.get(TYPED_LINES) or []
    return (
        meta_line(record, len(record.messages))
        + message_lines(typed)
        + message_lines(record.messages)
    )


def encode_append(record: SessionRecord, start: int) -> bytes:
    """What an appending save adds after ``start`` already stored messages."""
    return message_lines(record.messages[start:]) + meta_line(record, len(record.messages))


@dataclass
class Parsed:
    """A decoded file: the record plus what a writer needs to append to it safely.

    ``problems`` lists what would lose data if ignored (load refuses such files);
    ``notices`` lists what was tolerated (null metadata, bad timestamps); repair fixes both.
    """

    record: SessionRecord
    committed_end: int = 0
    count: int = -1
    waste: int = 0
    last_meta_size: int = 0
    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    dropped: int = 0


def _apply_meta(record: SessionRecord, meta: Mapping[str, Any], out: Parsed) -> None:
    md = meta.get(META)
    if md is None:
        if META in meta:
            out.notices.append("metadata is null")
        md = {}
    elif not isinstance(md, dict):
        out.notices.append(f"metadata is a {type(md).__name__}, not an object")
        md = {}
    record.metadata = md
    created = parse_time(meta.get("created_at"))
    updated = parse_time(meta.get("updated_at"))
    for name, value, parsed in (("created_at", meta.get("created_at"), created),
                                ("updated_at", meta.get("updated_at"), updated)):
        if parsed is None:
            out.notices.append(f"{name} is missing or malformed: {str(value)[:40]!r}")
    if created is not None:
        record.created_at = created
    record.updated_at = updated or created or record.updated_at
    lc = _offset(meta.get("last_consolidated"))
    if lc is None:
        lc = _offset(meta.get("last_archived"))
    if lc is None and ("last_consolidated" in meta or "last_archived" in meta):
        out.notices.append("last_consolidated is not a non-negative integer")
    record.last_consolidated = lc or 0
    record.extra = {k: v for k, v in meta.items() if k not in _KNOWN}
    if isinstance(meta.get("key"), str) and meta["key"]:
        record.key = meta["key"]


def decode(data: bytes, key: str, *, mtime: datetime | None = None) -> Parsed:
    """Decode a whole file. Never raises for bad content: it lands in ``problems``."""
    now = mtime or datetime.now()
    record = SessionRecord(key=key, created_at=now, updated_at=now)
    parsed = jsonlib.parse_lines(data)
    if parsed is not None:
        out = _decode_usual(record, *parsed, size=len(data))
        if out is not None:
            return out
    return _decode_lines(record, data)


def _decode_usual(
    record: SessionRecord, lines: list[bytes], values: list[Any], *, size: int
) -> Parsed | None:
    """The usual file, decoded without a loop over its lines: only message and metadata
    objects, and a commit record that covers every message. ``None`` for anything else,
    which ``_decode_lines`` then judges line by line (the same results, found slower).
    """
    if not values or set(map(type, values)) != {dict}:
        return None
    kinds = list(map(dict.get, values, repeat("_type")))
    metas = kinds.count(META)
    if not metas or kinds.count(None) + metas != len(kinds):
        return None  # no commit record, typed lines or odd ``_type`` values
    at = [kinds.index(META)]
    for _ in range(metas - 1):
        at.append(kinds.index(META, at[-1] + 1))
    last = at[-1]
    meta = values[last]
    count = _offset(meta.get(COUNT))
    messages = values[: at[0]]
    for i, j in zip(at, [*at[1:], len(values)], strict=True):
        messages += values[i + 1 : j]
    before_meta = last - (metas - 1)
    if count is not None and (count != len(messages) or before_meta not in (count, 0)):
        return None  # lines lost, added or not committed: reported by the line decoder
    # Every line ends in a newline and the last is a message or the commit record, so
    # committed data ends with the file.
    out = Parsed(record, committed_end=size,
                 waste=sum(len(lines[i]) + 1 for i in at[:-1]),
                 last_meta_size=len(lines[last]) + 1)
    record.messages = messages
    _apply_meta(record, meta, out)
    if count is not None:
        out.count = count
    return out


def _decode_lines(record: SessionRecord, data: bytes) -> Parsed:
    """``decode`` one line at a time: each damaged line gets its own verdict."""
    out = Parsed(record)
    messages: list[Any] = []
    ends: list[int] = []  # where each message line ends, newline included
    typed: list[Any] = []
    last_meta: dict[str, Any] | None = None
    meta_end = 0
    before_meta = 0  # message lines before the last metadata line
    size = len(data)
    end = -1  # where the previous line's newline is
    for number, raw in enumerate(data.split(b"\n"), 1):
        start, end = end + 1, end + 1 + len(raw)
        if not raw:
            continue
        try:
            value = jsonlib.loads(raw)
        except jsonlib.DecodeErrors:
            value = _INVALID
        complete = end < size  # followed by a newline
        if type(value) is not dict:
            if not raw.strip():
                continue
            if not complete:
                out.notices.append(f"line {number}: truncated final line ({end - start} bytes)")
            else:
                what = "not valid JSON" if value is _INVALID else f"a JSON {type(value).__name__}"
                out.problems.append(f"line {number}: {what}")
            out.dropped += 1
            continue
        stop = end + 1 if complete else end
        kind = value.get("_type")
        if kind is None:  # the common case first: a message
            messages.append(value)
            ends.append(stop)
        elif kind == META:
            if last_meta is not None:
                out.waste += out.last_meta_size
            last_meta = value
            meta_end = stop
            before_meta = len(messages)
            out.last_meta_size = stop - start
        elif isinstance(kind, str):
            typed.append(value)
        else:
            messages.append(value)
            ends.append(stop)
    record.messages = messages
    if last_meta is None:
        out.problems.append("no metadata line" if data.strip() else "empty file")
        out.committed_end = len(data)
        return out
    _apply_meta(record, last_meta, out)
    if typed:
        record.extra[TYPED_LINES] = typed
    count = _offset(last_meta.get(COUNT))
    if count is None:  # written by nanobot: everything counts; append only after a rewrite
        out.committed_end = max([meta_end, *ends[-1:]])
        return out
    # Committed: the messages before an appended commit record, or the first ``count``
    # after a leading one (a full rewrite). Anything else means lines were added or lost.
    if count > len(messages) or before_meta not in (count, 0):
        out.problems.append(
            f"metadata commits {count} messages but the file holds {len(messages)} "
            f"({before_meta} before the last commit record)"
        )
        out.committed_end = len(data)
        return out
    if count < len(messages):
        uncommitted = len(messages) - count
        out.notices.append(f"{uncommitted} uncommitted message lines after the last commit")
        record.messages = messages[:count]
    out.count = count
    out.committed_end = max([meta_end, *ends[count - 1 : count]])
    return out


_INVALID = object()


def loaded(parsed: Parsed, key: str, version: str) -> SessionRecord:
    """The record a backend's load returns for ``key``, or ``CorruptSessionError``.

    Refusing data-losing problems here (instead of returning what could be read) is what
    keeps the next save from overwriting the intact rest of a damaged session.
    """
    if parsed.record.key != key:
        parsed.problems.append(f"stored data holds session {parsed.record.key[:80]!r}")
    if parsed.problems:
        raise CorruptSessionError(key, parsed.problems)
    for notice in parsed.notices:
        logger.debug("session {}: {}", key[:80], notice)
    record = parsed.record
    record.key = key
    record.version = version
    return record


def may_have_appends(head: bytes) -> bool:
    """Whether metadata lines may follow the first one, judging by the head of a file.

    Only nanosession appends add them, and it appends only to files whose metadata line
    counts messages (it rewrites nanobot's files in full first). A listing may then skip
    the tail of a file nanobot wrote: its first metadata line is its only one.
    """
    end = head.find(b"\n")
    try:
        first = jsonlib.loads(head[: end if end >= 0 else len(head)])
    except jsonlib.DecodeErrors:
        return True
    return not (type(first) is dict and first.get("_type") == META and COUNT not in first)


def has_metadata(tail: bytes) -> bool:
    """Whether ``tail`` (the last bytes of a file) holds a whole metadata line."""
    return _last_meta(tail) is not None


def _last_meta(tail: bytes) -> dict[str, Any] | None:
    """The last metadata line in ``tail``, whose first piece may be cut mid-line.

    Only lines holding the bytes ``metadata`` are parsed, found by searching backwards:
    every JSON writer spells ``"_type": "metadata"`` out (none escapes ASCII letters).
    """
    stop = len(tail)
    while (hit := tail.rfind(b"metadata", 0, stop)) >= 0:
        start = tail.rfind(b"\n", 0, hit) + 1
        if start == 0:
            return None
        end = tail.find(b"\n", hit)
        try:
            value = jsonlib.loads(tail[start : end if end >= 0 else len(tail)])
        except jsonlib.DecodeErrors:
            value = None
        if type(value) is dict and value.get("_type") == META:
            return value
        stop = start
    return None


def info(
    key: str,
    head: bytes,
    tail: bytes,
    *,
    whole: bool,
    size: int | None = None,
    mtime: datetime | None = None,
    version: str | None = None,
    location: str | None = None,
) -> SessionInfo:
    """A listing entry from the first and last bytes of a file (or all of it if ``whole``)."""
    if whole:
        parsed = decode(head, key, mtime=mtime)
        rec = parsed.record
        return SessionInfo(
            key=rec.key,
            updated_at=rec.updated_at,
            created_at=rec.created_at,
            title=title_of(rec.metadata),
            preview=preview_of(rec.messages),
            message_count=len(rec.messages),
            size=size,
            version=version,
            location=location,
            error="; ".join(parsed.problems) or None,
        )
    first: dict[str, Any] | None = None
    messages: list[Any] = []
    start = 0
    while (end := head.find(b"\n", start)) >= 0:  # complete lines only: the rest may be cut
        raw = head[start:end]
        start = end + 1
        try:
            value = jsonlib.loads(raw)
        except jsonlib.DecodeErrors:
            continue
        if type(value) is not dict:
            continue
        if value.get("_type") == META:
            first = first or value
        elif not isinstance(value.get("_type"), str):
            messages.append(value)
            if (first is not None and value.get("role") == "user"
                    and message_text(value.get("content")).strip()):
                break  # the preview is settled: a user message's text beats all others
    last = _last_meta(tail)
    meta = last or first
    if meta is None:
        return SessionInfo(key=key, updated_at=mtime, size=size, version=version,
                           location=location, error="no metadata line")
    stored_key = meta.get("key")
    return SessionInfo(
        key=stored_key if isinstance(stored_key, str) and stored_key else key,
        updated_at=parse_time(meta.get("updated_at")) or mtime,
        created_at=parse_time((first or meta).get("created_at")),
        title=title_of(meta.get(META)),
        preview=preview_of(messages),
        message_count=_offset(last.get(COUNT)) if last else None,
        size=size,
        version=version,
        location=location,
    )
