"""JSON for the hot paths: orjson for reading when installed, the standard library otherwise.

Results are the same either way: a line orjson rejects (NaN, lone surrogate escapes) is
parsed again by the standard library, which nanobot wrote it with, and so is a line that
may hold an integer past 64 bits, which orjson would silently turn into a float.
Writing always uses the standard library (writes are deltas, so small), which keeps the
stored bytes and the errors for unserialisable values identical with or without orjson.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nanosession.errors import SerializationError

try:
    import orjson
except ImportError:  # pragma: no cover - exercised by the no-orjson CI leg
    orjson = None  # type: ignore[assignment]

FAST = orjson is not None
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_encode_ascii = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode
DecodeErrors = (ValueError, RecursionError)


_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))  # digit -> "0"
_LONG_RUN = b"0" * 19  # the shortest integer outside orjson's 64-bit range has 19 digits


def _may_hold_big_int(data: bytes | str) -> bool:
    """Whether ``data`` has a run of 19+ digits (a C-speed scan, cheaper than a regex)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return _LONG_RUN in raw.translate(_DIGITS)


def loads(data: bytes | str) -> Any:
    """Parse one JSON document; raises one of ``DecodeErrors``."""
    if orjson is not None and not _may_hold_big_int(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def loads_for(data: bytes) -> Callable[[bytes], Any]:
    """A ``loads`` for the documents inside ``data`` (say, the lines of a file).

    One scan of the whole buffer replaces one per document: when it holds no 19-digit run,
    no document in it does, and orjson may read each directly. A document it rejects
    raises, and the caller retries it with ``loads``.
    """
    if orjson is not None and not _may_hold_big_int(data):
        return orjson.loads  # type: ignore[no-any-return]
    return loads


_scan_once = json.JSONDecoder().scan_once


def _strict_line(line: bytes) -> Any:
    """``json.loads(line)`` for a line that is exactly one document (no surrounding space),
    without its encoding detection and two whitespace scans per call."""
    text = line.decode("utf-8")
    value, end = _scan_once(text, 0)
    if end != len(text):
        raise ValueError("extra data")
    return value


def parse_lines(data: bytes) -> tuple[list[bytes], list[Any]] | None:
    """The lines of ``data`` (newline-terminated, one JSON document each) and their values.

    The fast path for a well-formed file: each value is exactly what ``loads`` gives for
    its line. ``None`` means some line needs the per-line path (invalid, empty, padded with
    white space, a 19-digit run for orjson, bytes only ``surrogatepass`` decodes), where
    every line gets its own verdict.
    """
    if not data.endswith(b"\n") or (orjson is not None and _may_hold_big_int(data)):
        return None
    lines = data.split(b"\n")
    lines.pop()
    parse = orjson.loads if orjson is not None else _strict_line
    try:
        return lines, [parse(line) for line in lines]
    except (*DecodeErrors, StopIteration):  # the scanner's StopIteration: no value at 0
        return None


def dumps(obj: Any) -> bytes:
    """Serialise compactly as UTF-8; raises ``SerializationError`` for non-JSON values."""
    try:
        text = _encode(obj)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SerializationError(f"value is not JSON-serialisable: {exc}") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: keep them as escapes, valid JSON
        return _encode_ascii(obj).encode("ascii")
