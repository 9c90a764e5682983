"""The JSONL format: commit records, nanobot compatibility, tolerant decoding."""

from __future__ import annotations

import json
from datetime import datetime

from nanosession import SessionRecord, jsonl

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901)


def record(n: int = 2, **kw: object) -> SessionRecord:
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i} ✓"} for i in range(n)]
    return SessionRecord("k:1", msgs, {"title": "T"}, T0, T0, **kw)  # type: ignore[arg-type]


def test_full_encoding_is_nanobot_shaped_and_round_trips() -> None:
    data = jsonl.encode(record(3, last_consolidated=1, extra={"x": [1]}))
    first = json.loads(data.split(b"\n")[0])
    assert first["_type"] == "metadata" and first["key"] == "k:1"
    assert first["last_consolidated"] == first["last_archived"] == 1
    assert first["message_count"] == 3 and first["x"] == [1]
    assert "✓" in data.decode()  # UTF-8, not \\u escapes: readable with cat
    parsed = jsonl.decode(data, "k:1")
    assert parsed.problems == [] and parsed.notices == []
    assert parsed.record.messages == record(3).messages
    assert parsed.record.created_at == T0 and parsed.record.extra == {"x": [1]}
    assert parsed.count == 3 and parsed.committed_end == len(data)


def test_appended_commits_and_cut_short_appends() -> None:
    rec = record(2)
    base = jsonl.encode(rec)
    rec.messages = [*rec.messages, {"role": "user", "content": "new"}, {"role": "assistant"}]
    delta = jsonl.encode_append(rec, 2)
    full = base + delta
    parsed = jsonl.decode(full, "k:1")
    assert len(parsed.record.messages) == 4 and parsed.problems == []
    assert parsed.waste == len(base.split(b"\n")[0]) + 1
    # a crash after the first new message line: the append did not happen at all
    for cut in range(len(base) + 1, len(full)):
        torn = jsonl.decode(full[:cut], "k:1")
        assert torn.problems == [], cut
        expected = 4 if cut == len(full) else 2
        if cut >= len(full) - 1:  # only the final newline missing: the commit is complete
            expected = 4
        assert len(torn.record.messages) == expected, cut
        assert torn.committed_end <= cut


def test_nanobot_file_without_commit_record_counts_everything() -> None:
    lines = [
        {"_type": "metadata", "key": "k", "created_at": "2026-01-01T00:00:00",
         "updated_at": None, "metadata": None, "last_consolidated": 9},
        {"role": "user", "content": "hi"},
        {"_type": "provider_state", "state": {"a": 1}},
        {"role": "assistant", "content": "yo"},
    ]
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    parsed = jsonl.decode(data, "k")
    assert parsed.problems == [] and parsed.count == -1
    assert [m["content"] for m in parsed.record.messages] == ["hi", "yo"]
    assert parsed.record.metadata == {} and "metadata is null" in parsed.notices
    assert parsed.record.updated_at == parsed.record.created_at
    assert parsed.record.extra["_typed_lines"] == [lines[2]]
    again = jsonl.decode(jsonl.encode(parsed.record), "k")
    assert again.record.extra["_typed_lines"] == [lines[2]]


def test_problems_are_reported_not_raised() -> None:
    good = jsonl.encode(record(2))
    cases = {
        b"42\n": "a JSON int",
        b"{nope\n": "not valid JSON",
        b'"s"\n': "a JSON str",
    }
    for line, problem in cases.items():
        parsed = jsonl.decode(good + line, "k:1")
        assert any(problem in p for p in parsed.problems), (line, parsed.problems)
        assert len(parsed.record.messages) == 2
    assert jsonl.decode(b"", "k").problems == ["empty file"]
    missing = jsonl.decode(b'{"role":"user","content":"x"}\n', "k")
    assert missing.problems == ["no metadata line"] and len(missing.record.messages) == 1
    lying = jsonl.decode(jsonl.meta_line(record(0), 5), "k")
    assert "commits 5 messages" in lying.problems[0]
    deep = jsonl.decode(good + b"[" * 100_000 + b"\n", "k:1")
    assert deep.problems and len(deep.record.messages) == 2


def test_info_reads_head_and_tail_only() -> None:
    rec = record(2)
    rec.messages = [{"role": "tool", "content": "x" * 50_000}, *rec.messages]
    data = jsonl.encode(rec)
    rec.metadata = {"title": "Later"}
    rec.messages = [*rec.messages, {"role": "user", "content": "z"}]
    data += jsonl.encode_append(rec, 3)
    head, tail = data[:4096], data[-4096:]
    info = jsonl.info("fallback", head, tail, whole=False, size=len(data))
    assert info.key == "k:1" and info.title == "Later" and info.message_count == 4
    assert info.created_at == T0 and info.preview is None  # first user text is past the head
    small = jsonl.info("fallback", jsonl.encode(record(2)), b"", whole=True)
    assert small.preview == "m0 ✓" and small.title == "T" and small.message_count == 2


def test_only_heads_that_count_messages_can_have_appended_metadata() -> None:
    nanobot = b'{"_type": "metadata", "key": "k", "metadata": {}}\n{"role": "user"}\n'
    ours = jsonl.encode(SessionRecord("k", [{"role": "user", "content": "hi"}]))
    assert not jsonl.may_have_appends(nanobot)
    assert jsonl.may_have_appends(ours)
    for unsure in (b"", b"{not json\n", b'{"role": "user"}\n', b"[1]\n", b'{"_type": "x"}\n'):
        assert jsonl.may_have_appends(unsure)
    assert jsonl.has_metadata(b'..."cut\n' + ours.splitlines(keepends=True)[0])
    assert not jsonl.has_metadata(b'{"role": "user", "content": "metadata"}\n')
