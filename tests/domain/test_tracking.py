"""MessageLog bookkeeping: restored messages stay untouched until handed out, then tracked.

A restored log keeps the decoder's dicts and adopts (copies into tracked dicts) only what
is read. Every way a message can leave the log must adopt it first, or an in-place edit
would not mark the log dirty and an appending save would silently drop the edit.
"""

from __future__ import annotations

import copy
import random
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from nanosession.tracking import MessageLog, TrackedDict, TrackedList


def stored(count: int = 4) -> list[dict[str, Any]]:
    return [
        {"role": "assistant", "content": f"m{i}",
         "tool_calls": [{"id": f"c{i}", "function": {"name": "f", "arguments": "{}"}}]}
        for i in range(count)
    ]


def restored(count: int = 4) -> tuple[MessageLog, list[dict[str, Any]]]:
    messages = stored(count)
    log = MessageLog()
    log.restore(messages, "v1")
    return log, messages


def raw(log: MessageLog, i: int) -> Any:
    return list.__getitem__(log, i)


def test_restore_keeps_the_decoded_messages_until_they_are_read() -> None:
    log, messages = restored()
    assert all(raw(log, i) is messages[i] for i in range(4))
    assert log.saved_tag == "v1" and log.saved_count == 4 and not log.dirty
    first = log[0]
    assert type(first) is TrackedDict and first == messages[0] and first is not messages[0]
    assert type(first["tool_calls"]) is TrackedList
    assert raw(log, 0) is first and log[0] is first  # adopted once, then the same object
    assert raw(log, 1) is messages[1]  # the rest stays as decoded


def test_reads_that_hand_nothing_out_adopt_nothing() -> None:
    log, messages = restored()
    assert len(log) == 4 and log == messages and messages[2] in log
    assert copy.deepcopy(log) == messages and log.copy() == messages
    assert all(raw(log, i) is messages[i] for i in range(4))


# Every way to get hold of the restored message at index ``i`` (of 4).
HANDED_OUT: dict[str, Callable[[MessageLog, int], Any]] = {
    "index": lambda log, i: log[i],
    "negative index": lambda log, i: log[i - 4],
    "slice": lambda log, i: log[i : i + 2][0],
    "slice to it": lambda log, i: log[: i + 1][-1],
    "reversed slice": lambda log, i: log[::-1][3 - i],
    "reversed slice from it": lambda log, i: log[i::-1][0],
    "stepped slice": lambda log, i: log[i::3][0],
    "iter": lambda log, i: [m for m in log][i],
    "reversed": lambda log, i: list(reversed(log))[3 - i],
    "list()": lambda log, i: list(log)[i],
    "tuple()": lambda log, i: tuple(log)[i],
    "unpacking": lambda log, i: [*log][i],
    "call unpacking": lambda log, i: (lambda *all_: all_[i])(*log),
    "enumerate": lambda log, i: dict(enumerate(log))[i],
    "sorted": lambda log, i: sorted(log, key=lambda m: m["content"])[i],
    "concatenation": lambda log, i: (log + [])[i],  # noqa: RUF005 - the operator is the point
    "reflected concatenation": lambda log, i: ([] + log)[i],  # noqa: RUF005
    "repetition": lambda log, i: (log * 2)[i],
    "reflected repetition": lambda log, i: (2 * log)[4 + i],
    "copy.copy": lambda log, i: copy.copy(log)[i],
    "max": lambda log, i: max(log, key=lambda m: m["content"] == f"m{i}"),
}


@pytest.mark.parametrize("get", HANDED_OUT.values(), ids=HANDED_OUT.keys())
@pytest.mark.parametrize("nested", [False, True], ids=["top level", "nested"])
@pytest.mark.parametrize("i", [0, 2, 3])
def test_every_handed_out_restored_message_reports_edits(
    get: Callable[[MessageLog, int], Any], nested: bool, i: int
) -> None:
    log, messages = restored()
    message = get(log, i)
    assert message == messages[i]
    if nested:
        message["tool_calls"][0]["function"]["name"] = "edited"
    else:
        message["content"] = "edited"
    assert log.dirty, "an edit of a saved message went unnoticed"
    assert log.unchanged_prefix("v1") == 0
    assert raw(log, i) is message, "the edited copy is not the one the log holds"


STRUCTURAL: dict[str, Callable[[list[Any]], object]] = {
    "insert": lambda seq: seq.insert(1, {"role": "user", "content": "new"}),
    "delete": lambda seq: seq.__delitem__(1),
    "delete slice": lambda seq: seq.__delitem__(slice(0, 2)),
    "pop": lambda seq: seq.pop(0),
    "remove": lambda seq: seq.remove(stored()[2]),
    "replace": lambda seq: seq.__setitem__(2, {"role": "user", "content": "new"}),
    "replace slice": lambda seq: seq.__setitem__(slice(1, 3), [{"role": "user"}]),
    "sort": lambda seq: seq.sort(key=lambda m: m["content"], reverse=True),
    "reverse": lambda seq: seq.reverse(),
    "repeat in place": lambda seq: seq.__imul__(2),
}


@pytest.mark.parametrize("change", STRUCTURAL.values(), ids=STRUCTURAL.keys())
def test_structural_changes_of_a_restored_log_act_like_a_list(
    change: Callable[[list[Any]], object],
) -> None:
    log, _ = restored()
    log.append({"role": "user", "content": "appended"})
    expected = [*stored(), {"role": "user", "content": "appended"}]
    change(log)
    change(expected)
    assert log == expected and log.dirty
    assert all(type(raw(log, i)) is TrackedDict for i in range(len(log)))
    log[0]["content"] = "x"  # still tracked afterwards
    assert log[0]["content"] == "x"


def test_clear_drops_restored_messages_without_adopting_them() -> None:
    log, _ = restored()
    log.clear()
    assert log == [] and log.dirty
    log.append({"role": "user", "content": "fresh"})
    assert log[-1]["content"] == "fresh"


def test_slices_across_restored_and_appended_messages() -> None:
    log, messages = restored(3)
    log.append({"role": "user", "content": "new"})
    tail = log[-2:]
    assert tail == [messages[2], {"role": "user", "content": "new"}]
    assert type(raw(log, 2)) is TrackedDict and raw(log, 1) is messages[1]
    assert not log.dirty and log.unchanged_prefix("v1") == 3
    tail[1]["content"] = "edited before saving"  # unsaved: the next save writes it anyway
    assert not log.dirty


def test_marking_saved_covers_everything_adopted_before_and_nothing_after() -> None:
    log = MessageLog([{"role": "user", "content": "a"}])
    log.append({"role": "user", "content": "b"})
    log.mark_saved("v2")
    log.append({"role": "user", "content": "c"})
    log[2]["content"] = "c2"
    assert not log.dirty, "editing a message that was never saved needs no rewrite"
    log[1]["content"] = "b2"
    assert log.dirty


def test_threads_adopting_the_same_messages_share_one_copy() -> None:
    log, _ = restored(2000)
    seen: list[list[Any]] = []
    barrier = threading.Barrier(6)

    def reader(seed: int) -> None:
        order = list(range(2000))
        random.Random(seed).shuffle(order)
        barrier.wait()
        got = [None] * 2000
        for i in order:
            got[i] = log[i] if i % 3 else log[i : i + 1][0]
        seen.append(got)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=reader, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(seen) == 6
    for i in range(2000):
        held = raw(log, i)
        assert type(held) is TrackedDict
        assert all(got[i] is held for got in seen), f"message {i} was adopted twice"
