"""``nanosession.jsonlib``: msgspec when installed, the standard library otherwise, same results.

Every case runs twice, once on the msgspec path and once with ``jsonlib.msgspec = None``
(what a machine without the ``[fast]`` extra runs), against ``json.loads`` as the oracle.
``repr`` compares the values so that NaN equals NaN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nanosession import jsonl, jsonlib
from nanosession.errors import SerializationError

HAS_MSGSPEC = jsonlib.msgspec is not None


@pytest.fixture(params=["msgspec", "stdlib"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "msgspec" and not HAS_MSGSPEC:
        pytest.skip("msgspec is not installed")
    if request.param == "stdlib":
        monkeypatch.setattr(jsonlib, "msgspec", None)
    yield request.param


VALID = {
    "plain": b'{"role":"user","content":"hello","n":1,"f":1.5,"t":true,"z":null}',
    "unicode": '{"content":"naïve café 日本語 🚀 \\u00e9"}'.encode(),
    "escaped pair": b'{"c":"\\ud83d\\ude80"}',
    "lone surrogate": b'{"c":"\\ud800 alone"}',
    "lone low surrogate": b'["\\udfff"]',
    "NaN": b'{"x":NaN}',
    "infinities": b'[Infinity,-Infinity]',
    "big int": b'{"n":123456789012345678901234567890}',
    "negative big int": b'[-18446744073709551617]',
    "int64 edge": b'[9223372036854775807,-9223372036854775808,18446744073709551615]',
    "huge float": b'[1e400]',
    "float precision": b'[0.1,1e-320,5e-324,-0.0]',
    "deep nesting": b'[' * 200 + b']' * 200,
    "deep objects": b'{"a":' * 200 + b'1' + b'}' * 200,
    "whitespace": b' \t{"a" : [ 1 , 2 ] }\r',
    "duplicate keys": b'{"a":1,"a":2}',
}
INVALID = {
    "truncated": b'{"role":"user","content":"cut',
    "empty": b"",
    "trailing garbage": b'{"a":1} x',
    "bad utf-8": b'{"a":"\xff"}',
    "bare word": b"nope",
    "too deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("data", VALID.values(), ids=VALID.keys())
def test_same_values_as_the_standard_library(reader: str, data: bytes) -> None:
    assert repr(jsonlib.loads(data)) == repr(json.loads(data))


def test_values_msgspec_declines_come_back_all_the_same(reader: str) -> None:
    value = jsonlib.loads(b'{"x":NaN,"n":340282366920938463463374607431768211456,'
                          b'"s":"\\udc80"}')
    assert math.isnan(value["x"])
    assert value["n"] == 2**128 and type(value["n"]) is int
    assert value["s"] == "\udc80"


@pytest.mark.parametrize("data", INVALID.values(), ids=INVALID.keys())
def test_invalid_input_raises_only_decode_errors(reader: str, data: bytes) -> None:
    with pytest.raises(jsonlib.DecodeErrors):
        jsonlib.loads(data)


def test_str_input_is_accepted(reader: str) -> None:
    assert jsonlib.loads('{"a":"ü"}') == {"a": "ü"}


def test_a_file_decodes_identically_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        b'{"_type":"metadata","key":"k","created_at":"2026-01-01T00:00:00",'
        b'"updated_at":"2026-01-01T00:00:01","metadata":{"t":NaN},"last_consolidated":0}',
        *(v for v in VALID.values() if v.lstrip().startswith(b"{")),
        b'{"role":"tool","content":"' + b"x" * 5000 + b'"}',
        b"42",  # a JSON value that is not an object: a problem on both paths
        b'{"role":"user","content":"truncated',
    ]
    data = b"\n".join(lines)
    fast = jsonl.decode(data, "k")
    monkeypatch.setattr(jsonlib, "msgspec", None)
    slow = jsonl.decode(data, "k")
    assert repr(fast.record) == repr(slow.record)
    assert (fast.problems, fast.notices, fast.dropped, fast.committed_end) == (
        slow.problems, slow.notices, slow.dropped, slow.committed_end
    )
    assert fast.problems == [f"line {len(lines) - 1}: a JSON int"]
    assert fast.notices[-1].startswith(f"line {len(lines)}: truncated final line")
    assert fast.record.messages[5] == {"n": 123456789012345678901234567890}


def test_dumps_is_compact_utf8_and_round_trips(reader: str) -> None:
    value = {"content": "naïve 🚀", "n": 2**70, "f": 0.1, "nested": [{"a": None}] * 2}
    data = jsonlib.dumps(value)
    assert data == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert jsonlib.loads(data) == value


def test_dumps_keeps_lone_surrogates_as_escapes(reader: str) -> None:
    data = jsonlib.dumps({"c": "bad \ud800 half"})
    assert data == b'{"c":"bad \\ud800 half"}'  # valid UTF-8, valid JSON
    assert jsonlib.loads(data) == {"c": "bad \ud800 half"}


@pytest.mark.parametrize(
    "value",
    [{"x": float("nan")}, {"x": float("inf")}, {"x": {1, 2}}, {"x": b"bytes"}, {"x": object()}],
    ids=["nan", "inf", "set", "bytes", "object"],
)
def test_dumps_rejects_non_json_values_with_a_typed_error(value: object) -> None:
    with pytest.raises(SerializationError, match="not JSON-serialisable"):
        jsonlib.dumps(value)


def test_dumps_rejects_cycles_with_a_typed_error() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError):
        jsonlib.dumps(cycle)


_META = ('{"_type":"metadata","key":"k","created_at":"2026-01-01T00:00:00",'
         '"updated_at":"2026-01-02T00:00:00","metadata":{"title":"t"},"last_consolidated":0')
LINES = [
    '{"role":"user","content":"hi ✓"}',
    '{"role":"assistant","content":"","tool_calls":[{"id":"c1","function":{"name":"f"}}]}',
    '{"role":"tool","content":"x","tool_call_id":"c1","_type":null}',
    '{"n":123456789012345678901234567890}',
    '{"x":NaN}',
    '{"c":"\\ud800"}',
    '{"_type":"provider_state","state":{}}',
    '{"_type":7,"role":"user"}',
    _META + "}",
    _META + ',"message_count":0}',
    _META + ',"message_count":1}',
    _META + ',"message_count":2}',
    _META + ',"message_count":-1}',
    _META + ',"metadata":null}',
    " " + _META + "}",
    "",
    "   ",
    "42",
    "[1,2]",
    '{"role":"user","content":"cut',
    "not json",
]


@given(picks=st.lists(st.sampled_from(LINES), max_size=12), end=st.sampled_from(["\n", ""]))
@settings(max_examples=400, deadline=None)
def test_whole_file_fast_path_decodes_exactly_like_the_line_by_line_one(
    picks: list[str], end: str
) -> None:
    """``jsonl.decode`` takes a shortcut for well-formed files; it must never differ from
    the per-line decoder, with msgspec or without, whatever the file holds."""
    data = ("\n".join(picks) + end).encode("utf-8", "surrogatepass")
    saved = jsonlib.msgspec
    try:
        for fast in ([saved] if HAS_MSGSPEC else []) + [None]:
            jsonlib.msgspec = fast
            when = datetime(2026, 1, 1)
            got = jsonl.decode(data, "k", mtime=when)
            want = jsonl._decode_lines(jsonl.SessionRecord("k", created_at=when,
                                                           updated_at=when), data)
            assert repr(got) == repr(want)
    finally:
        jsonlib.msgspec = saved
