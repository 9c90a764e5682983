"""Token estimates for replayed messages, offline by default.

``get_history(max_tokens=...)`` needs a per-message cost. nanobot counts with tiktoken's
cl100k vocabulary, which is downloaded on first use; the default here needs no download
and no dependency (about four characters per token), and callers who want exact counts
plug in their own tokenizer as a ``TokenCounter``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

TokenCounter = Callable[[str], int]
"""Counts the tokens of a text, e.g. ``lambda text: len(encoding.encode(text))``."""

MESSAGE_OVERHEAD = 4
"""Tokens every message costs beyond its text (role and separators), as nanobot counts."""


def approximate_tokens(text: str) -> int:
    """About four characters per token (rounded up): right in size without a vocabulary."""
    return -(-len(text) // 4)


def _json(value: Any) -> str:
    # ``default=str``: an estimate must not fail on a value JSON cannot encode.
    return json.dumps(value, ensure_ascii=False, default=str)


def _content_parts(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return [_json(content)]
    parts: list[str] = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text":
            text = block.get("text")
            if isinstance(text, str) and text:
                parts.append(text)
        else:
            parts.append(_json(block))
    return parts


def message_text(message: Mapping[str, Any]) -> str:
    """The text a tokenizer sees of ``message``: content, name, tool ids and calls, reasoning.

    Text blocks count by their text; other blocks (images, files) by their JSON, so a large
    inline image costs what it weighs in the request.
    """
    parts = _content_parts(message.get("content"))
    for key in ("name", "tool_call_id"):
        value = message.get(key)
        if isinstance(value, str) and value:
            parts.append(value)
    if message.get("tool_calls"):
        parts.append(_json(message["tool_calls"]))
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append(reasoning)
    return "\n".join(parts)


def estimate_message_tokens(message: Mapping[str, Any], counter: TokenCounter | None = None) -> int:
    """Tokens ``message`` adds to a prompt: its text counted by ``counter``, plus overhead.

    Never less than ``MESSAGE_OVERHEAD``: even an empty message occupies a slot.
    """
    text = message_text(message)
    if not text:
        return MESSAGE_OVERHEAD
    count = (counter or approximate_tokens)(text)
    return max(MESSAGE_OVERHEAD, count + MESSAGE_OVERHEAD)
