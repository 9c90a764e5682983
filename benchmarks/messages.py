"""Deterministic, realistic agent traffic for the benchmarks.

A turn is what an agent really stores: a user message (unicode text), assistant messages
carrying ``tool_calls`` with JSON arguments, tool results of a few KB, and a final reply.
The same seed gives the same bytes, so both systems store identical sessions.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

Message = dict[str, Any]

_USER = [
    "Can you look at the failing build and tell me why the tests hang? 🙏",
    "Bitte fasse die Änderungen von gestern zusammen und prüfe die Übersetzungen.",
    "帮我查一下这个目录里最大的文件，然后压缩一下。",  # noqa: RUF001
    "Réserve une table pour deux vendredi soir, près de la gare — si possible en terrasse.",
    "What's the weather in Kraków tomorrow? Need to know if I should take the bike 🚲",
    "東京の来週の予定を確認して、空いている時間にミーティングを入れてください。",
]
_TOOLS = ["read_file", "exec", "web_search", "list_dir", "edit_file", "web_fetch"]
_WORDS = [
    "def", "class", "return", "import", "async", "await", "config", "session", "token",
    "error", "warning", "info", "debug", "the", "of", "and", "to", "in", "is", "for", "on",
    "with", "path", "file", "value", "result", "self", "None", "True", "False", "{}", "[]",
    "=>", "==", "!=", "./src/app.py", "/usr/lib/python3", "line", "42", "test", "passed",
    "failed", "ok",
]  # fmt: skip
_UNICODE = [
    "файл", "данные", "ошибка", "文件", "数据", "résultat", "données", "naïve", "café", "✓", "→",
    "λ", "🚀",
]  # fmt: skip


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_UNICODE if rng.random() < 0.04 else _WORDS)
        words.append(word)
        length += len(word) + 1
        if rng.random() < 0.08:
            words.append("\n")
    return " ".join(words)


def _tool_call(rng: random.Random, turn: int, round_: int) -> Message:
    name = rng.choice(_TOOLS)
    arguments = {
        "path": f"/home/user/project/src/module_{rng.randint(1, 99)}.py",
        "query": _text(rng, rng.randint(20, 80)),
        "options": {"recursive": rng.random() < 0.5, "limit": rng.randint(1, 500)},
    }
    return {
        "id": f"call_{turn:05d}_{round_}_{rng.getrandbits(32):08x}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


def turn_messages(rng: random.Random, turn: int, rounds: int = 3) -> list[Message]:
    """One turn: user message, ``rounds`` tool call/result pairs, final reply (no timestamps)."""
    out: list[Message] = [{"role": "user", "content": rng.choice(_USER) + " " + _text(rng, 60)}]
    for r in range(rounds):
        call = _tool_call(rng, turn, r)
        out.append({"role": "assistant", "content": "", "tool_calls": [call]})
        out.append(
            {
                "role": "tool",
                "tool_call_id": call["id"],
                "name": call["function"]["name"],
                "content": _text(rng, rng.randint(800, 2500)),
            }
        )
    out.append({"role": "assistant", "content": _text(rng, rng.randint(200, 900))})
    return out


def stream(seed: int = 7, rounds: int = 3) -> Iterator[Message]:
    """An endless stream of realistic messages, turn after turn, with timestamps."""
    rng = random.Random(seed)
    turn = 0
    while True:
        for message in turn_messages(rng, turn, rounds):
            message["timestamp"] = (
                f"2026-01-{1 + turn // 1440 % 28:02d}T"
                f"{turn // 60 % 24:02d}:{turn % 60:02d}:00.{turn % 1000:06d}"
            )
            yield message
        turn += 1


def take(count: int, seed: int = 7) -> list[Message]:
    """The first ``count`` messages of ``stream(seed)``."""
    source = stream(seed)
    return [next(source) for _ in range(count)]
