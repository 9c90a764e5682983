"""Shared by the corruption tests and the atheris target: a valid file and its oracles."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nanosession import SessionRecord, Update, open_store
from nanosession.keys import SUFFIX, storage_name

KEY = "fuzz:chat/1"
FILE = storage_name(KEY) + SUFFIX
T0 = datetime(2026, 1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Sample:
    """A session file written by the local backend: one create and three appends."""

    data: bytes
    messages: tuple[dict, ...]

    def lines(self) -> list[bytes]:
        return self.data.splitlines(keepends=True)

    def message_lines(self) -> dict[bytes, int]:
        """Each stored message line (with newline) -> its message's position."""
        return {json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode() + b"\n": i
                for i, m in enumerate(self.messages)}


def _message(i: int) -> dict:
    content = f"message {i}: " + "é—漢 \"q\" \\ " * (i % 4)
    msg = {"role": "user" if i % 2 == 0 else "assistant", "content": content, "id": i}
    if i % 3 == 2:
        msg["tool_calls"] = [{"id": f"c{i}", "function": {"name": "f", "arguments": "{}"}}]
    return msg


def make_sample() -> Sample:
    """Build the file through the real backend, so it has several commit (metadata) lines."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(tmp, backend="local")
        rec = SessionRecord(KEY, [_message(i) for i in range(4)], {"title": "Fuzz"}, T0, T0)
        store.save(rec)
        for batch in range(3):
            start = len(rec.messages)
            rec.messages = [*rec.messages, *(_message(start + j) for j in range(3))]
            rec.metadata = {"title": f"Fuzz {batch}"}
            store.save(rec, mode=Update(rec.version or ""), unchanged=start)
        data = (Path(tmp) / FILE).read_bytes()
    return Sample(data, tuple(rec.messages))


def line_ends(data: bytes) -> list[tuple[int, int | None]]:
    """(end offset of the JSON, committed count or None for a message) of every line."""
    out = []
    pos = 0
    for line in data.splitlines(keepends=True):
        body = line.rstrip(b"\n")
        value = json.loads(body)
        out.append((pos + len(body), value.get("message_count")))
        pos += len(line)
    return out


def parse(raw: bytes) -> object:
    """A line's JSON value, or None when it is not valid JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def is_meta(value: object) -> bool:
    return isinstance(value, dict) and value.get("_type") == "metadata"


def count_mismatch(data: bytes) -> bool:
    """More message lines before the last metadata line than it commits.

    Only corruption makes such a file (appends truncate to the last commit first), so
    ``jsonl.decode`` must report it as a problem rather than take the surplus for an
    uncommitted tail (which once silently dropped the newest intact messages).
    """
    values = [parse(raw) for raw in data.splitlines()]
    metas = [i for i, v in enumerate(values) if is_meta(v)]
    if not metas or metas[-1] == 0:
        return False
    count = values[metas[-1]].get("message_count")  # type: ignore[union-attr]
    before = sum(isinstance(v, dict) and not isinstance(v.get("_type"), str)
                 for v in values[: metas[-1]])
    return isinstance(count, int) and before > count
