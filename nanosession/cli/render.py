"""Output: rich tables and colours on a terminal, plain tab-separated text when piped, JSON.

Like ``gh``, piped listings drop the decoration and become one tab-separated line per item,
so ``cut`` and ``awk`` work; ``--json`` gives every field for scripts.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nanosession.record import Capabilities, SessionInfo, SessionRecord

_SPACE = re.compile(r"\s+")
ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "tool": "magenta",
               "system": "bold yellow"}
CUT = 400


class Output:
    """Where the command writes: ``out`` for results, ``err`` for progress and errors."""

    def __init__(self) -> None:
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False)

    @property
    def rich(self) -> bool:
        """True when stdout is a terminal (tables, colours); False when piped."""
        return self.out.is_terminal

    def line(self, text: str = "", style: str | None = None) -> None:
        """One line of literal text (never parsed as markup), styled on a terminal."""
        self.out.print(escape(text), style=style, soft_wrap=True)

    def markup(self, text: str) -> None:
        """One line of rich markup (markup is stripped when piped)."""
        self.out.print(text, soft_wrap=True)

    def json(self, value: Any) -> None:
        """Write ``value`` as indented JSON (datetimes as ISO 8601)."""
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))
        sys.stdout.write("\n")
        sys.stdout.flush()

    def error(self, message: str) -> None:
        """The one-line ``error: ...`` on stderr."""
        self.err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)

    def note(self, message: str) -> None:
        """A remark for the operator on stderr (kept out of piped results)."""
        self.err.print(escape(message), style="dim", soft_wrap=True)

    def heading(self, text: str) -> None:
        """A section title: a rule on a terminal, ``== text ==`` when piped."""
        if self.rich:
            self.out.rule(escape(text), align="left", style="magenta")
        else:
            self.line(f"== {text} ==")

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[str]],
              styles: Sequence[str | None] = ()) -> None:
        """A rich table on a terminal, tab-separated lines without a header when piped."""
        rows = list(rows)
        if not self.rich:
            for row in rows:
                sys.stdout.write("\t".join(_one_line(c) for c in row) + "\n")
            sys.stdout.flush()
            return
        table = Table(box=None, header_style="bold", pad_edge=False)
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        room = max(20, self.out.width - sum(widths[:-1]) - 2 * (len(headers) - 1))
        for i, header in enumerate(headers):
            style = styles[i] if i < len(styles) else None
            table.add_column(header, style=style, no_wrap=True)
        for row in rows:
            *fixed, free = (_one_line(c) for c in row)
            if len(free) > room:  # free text: one line, cut to the terminal's width
                free = free[: room - 1] + "…"
            table.add_row(*(escape(c) for c in (*fixed, free)))
        self.out.print(table)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _one_line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def when(stamp: datetime | None) -> str:
    """``2026-11-24 08:51:03`` in local time; ``-`` when unknown."""
    if stamp is None:
        return "-"
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone()
    return stamp.replace(microsecond=0, tzinfo=None).isoformat(" ")


def ago(stamp: datetime | None, now: datetime | None = None) -> str:
    """``3m ago``, ``2d ago``: how long since ``stamp``."""
    if stamp is None:
        return "-"
    now = now or datetime.now().astimezone()
    seconds = now.timestamp() - stamp.timestamp()
    if seconds < 0:
        return "in the future"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def info_dict(info: SessionInfo) -> dict[str, Any]:
    """A listing entry as JSON-ready data."""
    return {
        "key": info.key,
        "updated_at": info.updated_at,
        "created_at": info.created_at,
        "message_count": info.message_count,
        "title": info.title,
        "preview": info.preview,
        "size": info.size,
        "error": info.error,
    }


def record_dict(record: SessionRecord) -> dict[str, Any]:
    """The raw stored session as JSON-ready data."""
    return {
        "key": record.key,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "metadata": record.metadata,
        "last_consolidated": record.last_consolidated,
        "extra": record.extra,
        "version": record.version,
        "messages": list(record.messages),
    }


def listing(output: Output, infos: Sequence[SessionInfo]) -> None:
    """The ``ls`` table: relative times on a terminal, ISO 8601 when piped."""
    now = datetime.now().astimezone()
    rows = []
    for i in infos:
        text = f"⚠ {i.error}" if i.error else (i.title or i.preview or "")
        if output.rich:
            updated = ago(i.updated_at, now)
        else:
            updated = i.updated_at.isoformat() if i.updated_at else "-"
        count = "-" if i.message_count is None else str(i.message_count)
        rows.append((updated, count, i.key, text))
    output.table(("UPDATED", "MSGS", "KEY", "TITLE / PREVIEW"), rows,
                 ("dim", "cyan", "bold", None))


def capability_names(caps: Capabilities | None) -> list[str]:
    """The guarantees a backend claims, by name."""
    if caps is None:
        return []
    flags = ("compare_and_swap", "exclusive_create", "atomic_write", "append",
             "ranged_reads", "durable")
    return [f for f in flags if getattr(caps, f)]


def content_text(content: Any) -> str:
    """A message's content as readable text; non-text blocks become ``[type]`` markers."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, Mapping) and isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif isinstance(block, Mapping):
                parts.append(f"[{block.get('type', 'block')}]")
            else:
                parts.append(str(block))
        return "\n".join(parts)
    return json.dumps(content, ensure_ascii=False, default=str)


def _clip(text: str, full: bool) -> str:
    if full or len(text) <= CUT:
        return text
    return f"{text[:CUT]}… ({len(text) - CUT} more characters; --full shows all)"


def _stamp(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        return when(datetime.fromisoformat(value))
    except ValueError:
        return value


def _tool_call(call: Any, full: bool) -> str:
    if not isinstance(call, Mapping):
        return f"→ {call}"
    fn = call.get("function") if isinstance(call.get("function"), Mapping) else call
    name = fn.get("name", "?")
    args = fn.get("arguments", "")
    if not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False, default=str)
    ident = f"  [{call['id']}]" if call.get("id") else ""
    return f"→ {name}({_clip(args, full)}){ident}"


def conversation(output: Output, messages: Sequence[Mapping[str, Any]], *,
                 consolidated: int = 0, full: bool = False, first_index: int = 0) -> None:
    """Print messages readably: role, timestamp, text, tool calls and tool results."""
    for offset, msg in enumerate(messages):
        index = first_index + offset
        if consolidated and index == consolidated:
            output.line(f"── {consolidated} earlier message(s) are consolidated to memory "
                        "and not replayed ──", style="dim")
        if not isinstance(msg, Mapping):
            output.line(f"#{index} (not a message: {msg!r})", style="red")
            continue
        role = str(msg.get("role", "?"))
        head = f"#{index} {role}"
        if role == "tool" and (msg.get("name") or msg.get("tool_call_id")):
            head += f" ← {msg.get('name') or ''}"
            if msg.get("tool_call_id"):
                head += f" [{msg['tool_call_id']}]"
        flags = [f for f in ("_command", "_channel_delivery") if msg.get(f)]
        stamp = _stamp(msg.get("timestamp"))
        tail = "  ".join(x for x in (stamp, " ".join(flags)) if x)
        style = ROLE_STYLES.get(role, "bold")
        output.markup(f"[{style}]{escape(head)}[/]" + (f"  [dim]{escape(tail)}[/]" if tail else ""))
        reasoning = msg.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning.strip():
            output.line("  (thinking) " + _clip(reasoning.strip(), full), style="dim italic")
        text = _clip(content_text(msg.get("content")), full)
        for text_line in text.splitlines():
            output.line("  " + text_line)
        for path in msg.get("media") or []:
            output.line(f"  [image: {path}]", style="dim")
        for call in msg.get("tool_calls") or []:
            output.line("  " + _tool_call(call, full), style="yellow")
        output.line()
