"""TEMPORARY placeholder so the package imports; helper-1 replaces this file entirely."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nanosession.tracking import MessageLog


@dataclass
class Session:
    key: str
    messages: Any = field(default_factory=list)
    created_at: datetime = field(default_factory=datetime.now)
    updated_at: datetime = field(default_factory=datetime.now)
    metadata: dict[str, Any] = field(default_factory=dict)
    last_consolidated: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.messages, MessageLog):
            self.messages = MessageLog(self.messages)

    def add_message(self, role: str, content: Any, **extra: Any) -> dict[str, Any]:
        msg = {"role": role, "content": content, "timestamp": datetime.now().isoformat(), **extra}
        self.messages.append(msg)
        self.updated_at = datetime.now()
        return self.messages[-1]
