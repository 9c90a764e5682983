"""Helpers for the command tests: sample records, the typer runner, a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta

from typer.testing import CliRunner, Result

from nanosession import SessionRecord, open_store
from nanosession.cli.app import app

BASE = datetime(2026, 3, 1, 12, 0, 0, 123456)


def record(key: str, minutes: int = 0, *, n: int = 4, title: str | None = None) -> SessionRecord:
    """A realistic session updated ``minutes`` after ``BASE`` (user, tool call, result, reply)."""
    stamp = BASE + timedelta(minutes=minutes)
    messages = []
    for i in range(0, n, 4):
        messages += [
            {"role": "user", "content": f"question {i} of {key}", "timestamp": stamp.isoformat()},
            {"role": "assistant", "content": "", "timestamp": stamp.isoformat(),
             "tool_calls": [{"id": f"c{i}", "type": "function",
                             "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]},
            {"role": "tool", "content": "result ✓", "tool_call_id": f"c{i}", "name": "lookup",
             "timestamp": stamp.isoformat()},
            {"role": "assistant", "content": f"answer {i}", "timestamp": stamp.isoformat()},
        ]
    return SessionRecord(key=key, messages=messages[:n],
                         metadata={"title": title} if title else {},
                         created_at=BASE, updated_at=stamp)


def fill(url: str, records: Sequence[SessionRecord], **options: str) -> None:
    with open_store(url, **options) as store:
        for r in records:
            store.save(r, mode="create")


def invoke(args: Sequence[str], *, input: str | None = None,
           env: dict[str, str | None] | None = None) -> Result:
    """Run the command in-process through typer's test runner (NANOSESSION_URL unset)."""
    return CliRunner().invoke(app, list(args), input=input,
                              env={"NANOSESSION_URL": None, **(env or {})})


def run_cli(*args: str, env: dict[str, str] | None = None,
            input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m nanosession.cli`` as a real subprocess with piped output."""
    full_env = {k: v for k, v in os.environ.items() if k != "NANOSESSION_URL"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "nanosession.cli", *args], env=full_env,
                          capture_output=True, text=True, input=input, timeout=timeout,
                          check=False)


def one_error_line(stderr: str) -> str:
    """The single ``error: ...`` line a failed command must print (and nothing else)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]
