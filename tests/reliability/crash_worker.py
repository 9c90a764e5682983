"""Child process of the crash harness: saves one session for ever, acknowledging each save.

Run as ``python crash_worker.py URL KEY [name=value ...]`` (options go to ``open_store``).
It prints ``ready <seq>`` once the stored session is loaded, then ``ack <seq>`` (flushed)
after every save that returned and before the next change starts, until the parent kills
it with SIGKILL. Each step is a pure function of its sequence number, so the parent can
replay exactly what any acknowledged state must contain.
"""

from __future__ import annotations

import random
import sys
from collections.abc import MutableSequence
from typing import Any

EDIT_EVERY = 6  # step seq % EDIT_EVERY == EDIT_EVERY - 1 edits an old message: a full rewrite
TRIM_EVERY = 40  # ... and seq % TRIM_EVERY == TRIM_EVERY - 1 drops the oldest 30 (a rewrite)
TRIM_ABOVE = 100
_TEXT = "abcdefghij klmnop \"quoted\" é — 漢字 \\ \n\t{}[]"


def message(seq: int) -> dict[str, Any]:
    """The message step ``seq`` adds: sizes from a few bytes to ~6 KB, mixed shapes."""
    rng = random.Random(seq)
    body = "".join(rng.choices(_TEXT, k=rng.randint(0, 3000)))
    msg: dict[str, Any] = {"role": "user" if seq % 2 == 0 else "assistant",
                           "content": f"m{seq} {body}", "seq": seq}
    if seq % 5 == 1:
        msg["tool_calls"] = [{"id": f"call_{seq}", "type": "function",
                              "function": {"name": "f", "arguments": "{\"x\": 1}"}}]
    return msg


def is_rewrite(seq: int) -> bool:
    """Whether step ``seq`` changes stored messages (so its save cannot append)."""
    return seq % EDIT_EVERY == EDIT_EVERY - 1 or seq % TRIM_EVERY == TRIM_EVERY - 1


def apply_step(messages: MutableSequence[Any], metadata: dict[str, Any], seq: int) -> None:
    """Apply step ``seq``: the worker on a ``MessageLog``, the checker on a plain list."""
    messages.append(message(seq))
    if seq % EDIT_EVERY == EDIT_EVERY - 1 and len(messages) > 1:
        messages[(seq * 7) % (len(messages) - 1)]["edited"] = seq
    if seq % TRIM_EVERY == TRIM_EVERY - 1 and len(messages) > TRIM_ABOVE:
        del messages[:30]
    metadata["seq"] = seq
    if seq % 4 == 3:
        metadata["title"] = f"title {seq}"


def main(argv: list[str]) -> None:
    from nanosession import SessionManager

    url, key, *pairs = argv
    options = dict(pair.split("=", 1) for pair in pairs)
    manager = SessionManager.from_url(url, on_corrupt="raise", **options)
    session = manager.get_or_create(key)
    seq = session.metadata.get("seq", -1)
    print(f"ready {seq}", flush=True)
    while True:
        seq += 1
        apply_step(session.messages, session.metadata, seq)
        manager.save(session)
        print(f"ack {seq}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
