"""The rules that turn stored messages into the history replayed to the model.

They follow nanobot v0.2.0's ``Session.get_history`` so an agent switching to nanosession
sends its model the same context. Each rule is a small pure function over message
mappings; ``build_history`` runs rules 1-9 in order. Inputs are never
modified, and the output is made of new plain dicts, so callers may edit it freely without
touching (or marking as changed) what is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from nanosession.tokens import TokenCounter, estimate_message_tokens

Message = Mapping[str, Any]

DEFAULT_MAX_MESSAGES = 120
"""Window used when ``max_messages`` is not positive."""

REPLAY_FIELDS = ("tool_calls", "tool_call_id", "name", "reasoning_content", "thinking_blocks")
"""Fields a replayed message keeps besides ``role`` and ``content``; the rest is bookkeeping
(timestamps, media paths, latency, flags) that providers reject or the model must not see."""

REPLAY_CARRIERS = ("tool_calls", "reasoning_content", "thinking_blocks")
"""What makes an assistant message worth replaying even without text."""

ECHOED_TOOLS = ("generate_image", "message")
"""Tools whose calls models copy into their text as a bare ``name(...)`` line."""

_TIME_PREFIX = re.compile(r"\A\[Message Time: [^\]]+\]\n?")
_LOCAL_IMAGE_LINE = re.compile(r"\[image: [/~][^\]]+\]\s*")
_TOOL_ECHO_LINE = re.compile(rf"\s*(?:{'|'.join(map(re.escape, ECHOED_TOOLS))})\([^)]*\)\s*")
# What those lines cannot match without: text holding none of them keeps every line.
_LINE_MARKERS = ("[image: ", *(f"{tool}(" for tool in ECHOED_TOOLS))
# The line boundaries ``str.splitlines`` knows besides "\n" (one-character tests are memchr).
_OTHER_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


# -- rule 1: the window ----------------------------------------------------------------
def replay_start(last_consolidated: object, count: int) -> int:
    """Index replay starts at: ``last_consolidated`` when it is an index into ``count`` messages.

    Anything else (negative, past the end, not an int) is corrupt bookkeeping. nanobot v0.2.0
    then hid the whole history (or, for a negative value, all but its tail); replaying
    already-summarised messages again is the harmless failure, so this falls back to 0.
    """
    if (
        isinstance(last_consolidated, int)
        and not isinstance(last_consolidated, bool)
        and 0 <= last_consolidated <= count
    ):
        return last_consolidated
    return 0


def select_window(
    messages: Sequence[Message], last_consolidated: object, max_messages: int
) -> list[Message]:
    """Rule 1: the last ``max_messages`` (<= 0: ``DEFAULT_MAX_MESSAGES``) unconsolidated ones."""
    limit = max_messages if max_messages > 0 else DEFAULT_MAX_MESSAGES
    start = max(replay_start(last_consolidated, len(messages)), len(messages) - limit)
    return list(messages[start:])


# -- rule 2: start at a user turn ------------------------------------------------------
def align_to_user_turn(messages: Sequence[Message]) -> list[Message]:
    """Rule 2: start at the first user message, so the model never sees half a turn.

    A proactive delivery (``_channel_delivery``) right before it stays: the user is replying
    to it. Without any user message the sequence is kept whole.
    """
    for i, message in enumerate(messages):
        if message.get("role") == "user":
            if i > 0 and messages[i - 1].get("_channel_delivery"):
                i -= 1
            return list(messages[i:])
    return list(messages)


# -- rule 3: orphan tool results -------------------------------------------------------
def legal_start(messages: Sequence[Message]) -> int:
    """First index from which every tool result answers a call issued earlier in the slice.

    Providers reject a ``tool`` message whose ``tool_call_id`` they did not see requested;
    ids are compared as strings since stored ids may be numbers. Everything up to the last
    such orphan goes, because what precedes it belongs to the cut-off turn.
    """
    issued: set[str] = set()
    start = 0
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id and (call_id if type(call_id) is str else str(call_id)) not in issued:
                start = i + 1
                issued.clear()
        elif role == "assistant":
            calls = message.get("tool_calls")
            if calls and isinstance(calls, list):
                for call in calls:
                    if isinstance(call, dict) and (call_id := call.get("id")):
                        issued.add(call_id if type(call_id) is str else str(call_id))
    return start


def drop_orphan_tool_results(messages: Sequence[Message]) -> list[Message]:
    """Rule 3: the messages from ``legal_start`` on."""
    return list(messages[legal_start(messages) :])


# -- rules 4-8: one message's replay form ----------------------------------------------
def is_command(message: Message) -> bool:
    """Rule 4: slash commands (``_command``) steer the agent and are not conversation."""
    return bool(message.get("_command"))


def is_blank(content: Any) -> bool:
    """No text to show: ``None``, whitespace only, or an empty block list."""
    if isinstance(content, str):
        return not content.strip()
    return content is None or content == []


def is_empty_assistant(message: Message, content: Any) -> bool:
    """Rule 4: an assistant message with blank ``content`` and nothing else to replay.

    Tool calls, reasoning and thinking blocks must be replayed even without text (the tool
    results that follow need their call, and providers check thinking signatures).
    """
    if message.get("role") != "assistant" or not is_blank(content):
        return False
    for key in REPLAY_CARRIERS:  # noqa: SIM110 - a loop, not all(<generator>): runs per message
        if message.get(key):
            return False
    return True


def clean_assistant_text(text: str) -> str:
    """Rule 5: remove replay artifacts the model copied into its own earlier answers.

    A leading ``[Message Time: ...]`` line, lines that are only a local image breadcrumb
    (``[image: /path]``) and lines that only echo a tool call: left in, they act as examples
    the model keeps repeating to the user.
    """
    if not text:
        return ""  # tool-call turns: the common case, and nothing to clean
    if text.startswith("[Message Time: "):
        text = _TIME_PREFIX.sub("", text, count=1)
    for marker in _LINE_MARKERS:  # substring tests: several times cheaper than a regex scan
        if marker in text:
            lines = [
                line
                for line in text.splitlines()
                if not _LOCAL_IMAGE_LINE.fullmatch(line) and not _TOOL_ECHO_LINE.fullmatch(line)
            ]
            return "\n".join(lines).strip()
    for mark in _OTHER_BREAKS:  # splitting and re-joining only turns these into "\n"
        if mark in text:
            return "\n".join(text.splitlines()).strip()
    return text.strip()


def render_media(content: Any, media: Any) -> Any:
    """Rule 6: append an ``[image: <path>]`` line per stored media path to text content.

    The files themselves are not replayed; without these lines an image-only turn would
    replay as an empty message and the answer after it would respond to nothing.
    """
    if not isinstance(content, str) or not isinstance(media, list):
        return content
    lines = [f"[image: {path}]" for path in media if isinstance(path, str) and path]
    return "\n".join([content, *lines] if content else lines)


def stamp_time(content: Any, timestamp: Any) -> Any:
    """Rule 7: a ``[Message Time: <timestamp>]`` first line, for reasoning about dates."""
    if not timestamp or not isinstance(content, str):
        return content
    return f"[Message Time: {timestamp}]\n{content}"


_SCALARS = frozenset({str, int, float, bool, type(None)})
_REPLAYED = frozenset(REPLAY_FIELDS)


def _plain(value: Any) -> Any:
    """A copy made of plain dicts and lists (stored messages are tracked subclasses).

    Callers pass only non-scalars: they test ``type(value) in _SCALARS`` inline, cheaper
    than a call per field.
    """
    if isinstance(value, dict):
        out = dict(value)  # a C-level copy; then only the containers inside are replaced
        for key, item in out.items():
            if type(item) not in _SCALARS:
                out[key] = _plain(item)
        return out
    if isinstance(value, list):
        return [item if type(item) in _SCALARS else _plain(item) for item in value]
    return value


def render_message(message: Message, *, include_timestamps: bool = False) -> dict[str, Any] | None:
    """Rules 4-8 for one message: its replay form, or ``None`` when it is not replayed.

    Timestamps go on user messages only: on assistant messages the model would learn to
    start its own replies with them.
    """
    if message.get("_command"):  # rule 4, ``is_command`` inlined: this runs per message
        return None
    role = message.get("role")
    content = message.get("content", "")
    if role == "assistant":
        if isinstance(content, str):
            content = clean_assistant_text(content)
        # Cleaned text is blank only when empty, and tool calls always replay: the full
        # check runs only for what is left.
        if (
            not (content and type(content) is str)
            and not message.get("tool_calls")
            and is_empty_assistant(message, content)
        ):
            return None
    elif role == "user":
        content = render_media(content, message.get("media"))
        if include_timestamps:
            content = stamp_time(content, message.get("timestamp"))
    entry: dict[str, Any] = {
        "role": role, "content": content if type(content) in _SCALARS else _plain(content)
    }
    if not _REPLAYED.isdisjoint(message):  # one C-level look at the keys: most carry none
        for key in REPLAY_FIELDS:
            if key in message:
                value = message[key]
                entry[key] = value if type(value) in _SCALARS else _plain(value)
    return entry


# -- rule 9: the token budget ----------------------------------------------------------
def trim_to_token_budget(
    messages: Sequence[dict[str, Any]], max_tokens: int, counter: TokenCounter | None = None
) -> list[dict[str, Any]]:
    """Rule 9: the longest tail costing at most ``max_tokens`` (<= 0: no limit).

    The newest message is kept even alone over budget: a history without the current turn
    is useless. The tail then starts at its first user message; if it has none, at the
    nearest earlier one even though that exceeds the budget, since an answer without its
    question misleads more than a few extra tokens cost. Orphan tool results are dropped
    last, as the cut may have separated results from their call.
    """
    if max_tokens <= 0 or not messages:
        return list(messages)
    start = len(messages)
    used = 0
    while start > 0:
        cost = estimate_message_tokens(messages[start - 1], counter)
        if start < len(messages) and used + cost > max_tokens:
            break
        used += cost
        start -= 1
    users = [i for i, message in enumerate(messages) if message.get("role") == "user"]
    in_tail = [i for i in users if i >= start]
    if in_tail:
        start = in_tail[0]
    elif users:
        start = users[-1]
    return drop_orphan_tool_results(messages[start:])


def build_history(
    messages: Sequence[Message],
    *,
    last_consolidated: object = 0,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    max_tokens: int = 0,
    include_timestamps: bool = False,
    token_counter: TokenCounter | None = None,
) -> list[dict[str, Any]]:
    """Rules 1-9 in order: the messages to send to the model, as new plain dicts."""
    window = select_window(messages, last_consolidated, max_messages)
    window = drop_orphan_tool_results(align_to_user_turn(window))
    out = [
        entry
        for message in window
        if (entry := render_message(message, include_timestamps=include_timestamps)) is not None
    ]
    return trim_to_token_budget(out, max_tokens, token_counter)
