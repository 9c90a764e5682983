"""JSON for the hot paths: msgspec for reading when installed, the standard library otherwise.

Results are the same either way: a document msgspec rejects (NaN, infinities, lone
surrogate escapes, numbers past its range) is parsed again by the standard library, which
nanobot wrote it with. msgspec reads integers of any size exactly (orjson, the usual other
choice, turns those past 64 bits into floats, which would need a scan of every file).
Writing always uses the standard library (writes are deltas, so small), which keeps the
stored bytes and the errors for unserialisable values identical with or without msgspec.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nanosession.errors import SerializationError

try:
    import msgspec
except ImportError:  # pragma: no cover - exercised by the stdlib test legs
    msgspec = None  # type: ignore[assignment]

_fast_decode: Callable[[bytes | str], Any] | None = (
    msgspec.json.Decoder().decode if msgspec is not None else None
)
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_encode_ascii = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode
DecodeErrors = (ValueError, RecursionError)  # msgspec.DecodeError is a ValueError


def _fast() -> Callable[[bytes | str], Any] | None:
    """msgspec's decoder, or ``None`` when it is missing (or switched off: ``msgspec = None``,
    as the tests and benchmarks do to run the standard-library path)."""
    return _fast_decode if msgspec is not None else None


def loads(data: bytes | str) -> Any:
    """Parse one JSON document; raises one of ``DecodeErrors``."""
    fast = _fast()
    if fast is not None:
        try:
            return fast(data)
        except DecodeErrors:
            pass
    return json.loads(data)


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
    white space, a value msgspec declines, bytes only ``surrogatepass`` decodes), where
    every line gets its own verdict.
    """
    if not data.endswith(b"\n"):
        return None
    lines = data.split(b"\n")
    lines.pop()
    parse = _fast() or _strict_line
    try:
        return lines, [parse(line) for line in lines]
    except (*DecodeErrors, StopIteration):  # the scanner's StopIteration: no value at 0
        return None


def dumps_cache(obj: Any) -> bytes:
    """Compact JSON for files only nanosession reads back (the listing index), where speed
    matters more than matching the stdlib byte for byte: msgspec when installed."""
    if _fast() is not None:
        try:
            return msgspec.json.encode(obj)
        except UnicodeEncodeError:  # lone surrogates
            pass
    return json.dumps(obj, separators=(",", ":")).encode("ascii")


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
