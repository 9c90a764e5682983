"""``demo``: the guided tour of the main job on the embedded default backend.

It goes through the public API only (``SessionManager.from_url``), the way an agent would.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from nanosession.cli import render
from nanosession.cli.render import Output
from nanosession.errors import ConflictError
from nanosession.keys import SUFFIX, storage_name
from nanosession.manager import SessionManager

WEATHER_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Lisbon"})},
}


def _write_sessions(manager: SessionManager) -> None:
    s = manager.get_or_create("telegram:4242")
    s.metadata["title"] = "Weather in Lisbon"
    s.add_message("user", "Do I need an umbrella in Lisbon tomorrow?", sender_id="4242")
    s.add_message("assistant", "", tool_calls=[WEATHER_CALL])
    s.add_message("tool", json.dumps({"rain_mm": 6, "high_c": 17}), tool_call_id="call_1",
                  name="get_weather")
    s.add_message("assistant", "Yes: about 6 mm of rain is expected, with a high of 17 °C.")
    manager.save(s)

    s = manager.get_or_create("cli:direct")
    s.add_message("user", "Summarise notes.md in three bullet points.")
    s.add_message("assistant", "- Ship the S3 backend\n- Write the CLI docs\n- Benchmark appends")
    manager.save(s)

    s = manager.get_or_create("slack:C024BE91L")
    s.metadata["title"] = "Retry policy"
    s.add_message("user", "/new", _command=True)
    s.add_message("user", "Remind me what we decided about retries.")
    s.add_message("assistant", "Standard retry mode, three attempts, one-second timeouts.")
    manager.save(s)


def tour(out: Output, directory: str | None = None) -> Path:
    """Write a few sessions, list, show, append, catch a conflict, print the file."""
    root = Path(directory).expanduser() if directory else Path(
        tempfile.mkdtemp(prefix="nanosession-demo-"))
    out.markup(f"Sessions go to [bold]{render.escape(str(root))}[/] "
               "(the embedded default backend: one JSONL file per session).")
    out.line()
    with SessionManager.from_url(str(root)) as manager:
        _write_sessions(manager)
        out.heading("1. nanosession ls: three sessions saved through SessionManager")
        render.listing(out, manager.store.list())
        out.line()

        out.heading("2. nanosession show: one conversation, with its tool call")
        session = manager.get_or_create("telegram:4242")
        render.conversation(out, list(session.messages))

        out.heading("3. get_history(): what the agent sends its model")
        history = session.get_history()
        out.line(f"{len(history)} message(s), only model-facing fields:", style="dim")
        for message in history:
            out.line("  " + json.dumps(message, ensure_ascii=False))
        out.line()

        out.heading("4. an append-only save")
        path = root / (storage_name(session.key) + SUFFIX)
        st = path.stat()
        session.add_message("user", "And the day after?")
        session.add_message("assistant", "Dry and sunny, 21 °C.")
        manager.save(session)
        now = path.stat()
        how = ("appended in place (same inode): the first bytes were not rewritten"
               if now.st_ino == st.st_ino else "rewritten as a new file")
        out.line(f"two new messages: the file grew from {st.st_size} to {now.st_size} bytes "
                 f"(+{now.st_size - st.st_size}), {how}.")
        out.line()

        out.heading("5. two agents, one session: the stale save is refused")
        with SessionManager.from_url(str(root)) as other:
            theirs = other.get_or_create("cli:direct")
            mine = manager.get_or_create("cli:direct")
            mine.add_message("user", "Add a fourth point: release on Friday.")
            manager.save(mine)
            theirs.add_message("user", "Make it five bullet points instead.")
            try:
                other.save(theirs)
                out.line("unexpected: the stale save went through", style="red")
            except ConflictError as exc:
                out.line(f"ConflictError: {exc}", style="yellow")
                other.invalidate("cli:direct")
                fresh = other.get_or_create("cli:direct")
                fresh.add_message("user", "Make it five bullet points instead.")
                other.save(fresh)
                out.line(f"reloaded and saved again: {len(fresh.messages)} messages, "
                         "nothing lost.")
        out.line()

        out.heading(f"6. the file on disk: cat {path}")
        for line in path.read_text(encoding="utf-8").splitlines():
            out.line(line)
        out.line()
    out.line("Next: nanosession ls " + str(root) + "  ·  nanosession show " + str(root)
             + " telegram:4242  ·  nanosession copy " + str(root) + " s3://bucket/sessions")
    return root
