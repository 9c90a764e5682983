"""The two systems under test, opened the way their users open them.

Both managers expose ``get_or_create``, ``save``, ``invalidate`` and ``list_sessions``, and
their sessions ``add_message``, ``messages`` and ``get_history``, so one driver runs both.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nanosession.manager import SessionManager

Message = dict[str, Any]


def nanosession_manager(directory: Path) -> SessionManager:
    """nanosession over the local JSONL backend in ``directory``."""
    return SessionManager.from_url(str(directory))


def nanobot_manager(root: Path) -> Any:
    """nanobot 0.3.5's own ``SessionManager``: workspace and session root under ``root``."""
    from nanobot.session.manager import SessionManager as NanobotManager

    return NanobotManager(root / "workspace", sessions_root=root / "nanobot-sessions")


def add(session: Any, message: Message) -> None:
    """Append ``message`` the way an agent does, through ``add_message``."""
    extra = {k: v for k, v in message.items() if k not in ("role", "content", "timestamp")}
    session.add_message(message["role"], message["content"], **extra)


def storage_name(key: str) -> str:
    """nanobot 0.3's file stem for ``key`` (unpadded base64url), which both systems read."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def nanobot_file(key: str, messages: Iterable[Message], *, updated_at: str) -> bytes:
    """A session file exactly as nanobot 0.3.5 writes it (metadata line, then messages)."""
    meta = {
        "_type": "metadata",
        "key": key,
        "created_at": "2026-01-01T00:00:00",
        "updated_at": updated_at,
        "metadata": {"title": f"Session {key}"},
        "last_archived": 0,
        "last_consolidated": 0,
    }
    lines = [json.dumps(meta, ensure_ascii=False)]
    lines += [json.dumps(m, ensure_ascii=False) for m in messages]
    return ("\n".join(lines) + "\n").encode()
