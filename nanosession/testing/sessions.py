"""Sample sessions and hypothesis strategies: the data the conformance suite stores.

Samples cover what real agent sessions hold (nested content blocks, tool calls, emoji,
line separators inside strings, large messages); strategies generate arbitrary ones.
Every builder returns a fresh record, since ``Store.save`` sets ``record.version``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from nanosession.record import SessionRecord

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456)
"""A naive timestamp with microseconds (nanobot writes naive local times)."""
IST = timezone(timedelta(hours=5, minutes=30))

HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors,  # every backend's subclass runs the same tests
        HealthCheck.too_slow,
    ],
)
"""Settings for property tests: modest, deterministic, and fine with a per-test store."""


def unique_key(stem: str = "k") -> str:
    """A key no other test or example uses (hypothesis reruns examples on one store)."""
    return f"{stem}#{uuid.uuid4().hex}"


def message(role: str, content: Any, **extra: Any) -> dict[str, Any]:
    """One chat message as nanobot stores it."""
    return {"role": role, "content": content, **extra}


def conversation(n: int, *, size: int = 20, tag: str = "") -> list[dict[str, Any]]:
    """``n`` alternating user/assistant messages of about ``size`` characters each."""
    return [
        message("user" if i % 2 == 0 else "assistant", f"{tag}{i}:" + "x" * size)
        for i in range(n)
    ]


def _empty(key: str) -> SessionRecord:
    return SessionRecord(key, [], {}, T0, T0)


def _unicode(key: str) -> SessionRecord:
    tricky = "line\nbreak\r\n tab\t nul\x00 unit\x1f sep\u2028para\u2029 nel\x85 vt\x0b ff\x0c"
    return SessionRecord(
        key,
        [
            message("user", "Привет 👋🏽 — 你好 — مرحبا — 🇺🇦 👨‍👩‍👧", timestamp=T0.isoformat()),
            message("assistant", tricky),
            message("user", "quotes \" ' \\ backslash \\n not a newline </script> {\"_type\":1}"),
        ],
        {"title": "Ünïcödé 🎉", "lang": "日本語"},
        T0,
        T0 + timedelta(minutes=5),
    )


def _blocks(key: str) -> SessionRecord:
    return SessionRecord(
        key,
        [
            message(
                "user",
                [
                    {"type": "text", "text": "what is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                ],
                media=["/tmp/cat.png"],
            ),
            message(
                "assistant",
                [{"type": "text", "text": "A cat.", "annotations": [{"k": [1, [2, [3, {}]]]}]}],
                thinking_blocks=[{"type": "thinking", "thinking": "hmm", "signature": "c2ln"}],
            ),
        ],
        {},
        T0,
        T0,
    )


def _tools(key: str) -> SessionRecord:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "read_file", "arguments": "{\"path\": \"a.txt\"}"}}
    return SessionRecord(
        key,
        [
            message("user", "read a.txt"),
            message("assistant", None, tool_calls=[call], reasoning_content="need the file"),
            message("tool", "file body", tool_call_id="call_1", name="read_file", latency_ms=12.5),
            message("assistant", "It says: file body", _command=False, sender_id="bot"),
        ],
        {"title": "Files"},
        T0,
        T0 + timedelta(seconds=1),
        last_consolidated=2,
    )


def _large(key: str) -> SessionRecord:
    return SessionRecord(
        key,
        [message("user", "big one follows"), message("tool", "€" * 400_000), *conversation(500)],
        {"title": "large"},
        T0,
        T0,
    )


def _metadata_types(key: str) -> SessionRecord:
    metadata = {
        "null": None, "true": True, "false": False, "int": -42, "big": 2**62, "zero": 0,
        "float": 3.141592653589793, "tiny": 5e-324, "neg": -1.5e300, "str": "ß🎉\u2028",
        "empty_str": "", "list": [1, "two", None, [3.0, {"four": [False]}]], "empty_list": [],
        "obj": {"nested": {"deeper": {"deepest": [{}]}}}, "empty_obj": {}, "title": "types",
        "": "empty key", "key with spaces and :/": 1,
    }
    return SessionRecord(key, [message("user", "hi")], metadata, T0, T0, last_consolidated=1)


def _aware_times(key: str) -> SessionRecord:
    return SessionRecord(
        key,
        [message("user", "times")],
        {},
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(2038, 1, 19, 3, 14, 8, 1, tzinfo=IST),
    )


def _extra(key: str) -> SessionRecord:
    return SessionRecord(
        key, [message("user", "x")], {}, T0, T0,
        extra={"provider_hint": {"model": "m", "n": [1, 2]}, "schema_rev": 3},
    )


SAMPLES: dict[str, Callable[[str], SessionRecord]] = {
    "empty": _empty,
    "unicode": _unicode,
    "content_blocks": _blocks,
    "tool_calls": _tools,
    "large": _large,
    "metadata_types": _metadata_types,
    "aware_timestamps": _aware_times,
    "extra_fields": _extra,
}
"""Named builders ``key -> SessionRecord`` of hand-picked sessions."""


# -- hypothesis strategies ----------------------------------------------------------------
_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_scalars = st.none() | st.booleans() | _INT64 | st.floats(allow_nan=False,
                                                               allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
"""Any JSON value (integers within 64 bits, finite floats, any non-surrogate text)."""

timestamps = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2100, 1, 1),
    timezones=st.none() | st.sampled_from([timezone.utc, IST, timezone(timedelta(hours=-8))]),
)
"""Naive or fixed-offset datetimes with microseconds."""

_blocks_strategy = st.lists(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text()})
    | st.fixed_dictionaries({"type": st.just("image_url"),
                             "image_url": st.fixed_dictionaries({"url": st.text(max_size=20)})}),
    max_size=3,
)
_tool_calls = st.lists(
    st.fixed_dictionaries({
        "id": st.text(min_size=1, max_size=10),
        "type": st.just("function"),
        "function": st.fixed_dictionaries({"name": st.text(max_size=10),
                                           "arguments": st.text(max_size=30)}),
    }),
    min_size=1,
    max_size=2,
)
messages = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool", "system"]),
     "content": st.none() | st.text() | _blocks_strategy},
    optional={
        "timestamp": timestamps.map(datetime.isoformat),
        "tool_calls": _tool_calls,
        "tool_call_id": st.text(max_size=10),
        "name": st.text(max_size=10),
        "reasoning_content": st.text(),
        "media": st.lists(st.text(max_size=20), max_size=2),
        "custom": json_values,
    },
)
"""One message: nanobot's fields plus an arbitrary JSON ``custom`` field."""


@st.composite
def records(draw: st.DrawFn) -> SessionRecord:
    """An arbitrary session under a unique key (arbitrary text plus a uuid suffix)."""
    msgs = draw(st.lists(messages, max_size=8))
    return SessionRecord(
        key=unique_key(draw(st.text(min_size=1, max_size=30))),
        messages=msgs,
        metadata=draw(st.dictionaries(st.text(max_size=10), json_values, max_size=5)),
        created_at=draw(timestamps),
        updated_at=draw(timestamps),
        last_consolidated=draw(st.integers(min_value=0, max_value=len(msgs))),
    )
