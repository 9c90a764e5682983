"""``Session``: one conversation, as nanobot v0.2.0's users know it, unaware of storage.

Its messages live in a ``MessageLog`` so that a manager can save only what changed. That
works only if every change goes through the log, so the methods here edit it in place
(``del``, ``clear``) and never rebind ``messages`` to a new list.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, overload

from nanosession import history
from nanosession.tokens import TokenCounter
from nanosession.tracking import MessageLog

Message = dict[str, Any]
ArchiveCallback = Callable[[list[Message]], object]

FILE_MAX_MESSAGES = 2000
"""nanobot's default cap on messages kept in one session."""


class _MessageLogField:
    """Keeps ``Session.messages`` a ``MessageLog`` whatever list is given or assigned.

    Assigning a new list (``session.messages = [...]``) replaces every message, so the new
    log takes over the old one's saved baseline marked as rewritten: the next save then
    rewrites instead of appending, and stays conditional on the version it replaces.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, session: None, owner: type | None = None) -> tuple[()]: ...

    @overload
    def __get__(self, session: Session, owner: type | None = None) -> MessageLog: ...

    def __get__(self, session: Session | None, owner: type | None = None) -> Any:
        if session is None:
            return ()  # the dataclass default: empty, and immutable as defaults must be
        log = session.__dict__[self._name]
        if not isinstance(log, MessageLog):  # copy.deepcopy and pickle restore a plain list
            log = session.__dict__[self._name] = MessageLog(log)
        return log

    def __set__(self, session: Session, messages: Iterable[Message]) -> None:
        old = session.__dict__.get(self._name)
        if messages is old:  # ``session.messages += [...]`` rebinds the same log
            return
        log = MessageLog(messages)
        if isinstance(old, MessageLog):
            log.inherit(old)
        session.__dict__[self._name] = log


@dataclass
class Session:
    """A conversation: its key, messages, metadata and timestamps (naive local time).

    ``last_consolidated`` counts leading messages already summarised into long-term memory;
    they stay stored but are not replayed. A value that is not an index into ``messages``
    is treated as 0 wherever it is used, never trusted to hide history.
    """

    key: str
    messages: _MessageLogField = _MessageLogField()
    created_at: datetime = field(default_factory=datetime.now)
    updated_at: datetime = field(default_factory=datetime.now)
    metadata: dict[str, Any] = field(default_factory=dict)
    last_consolidated: int = 0

    def add_message(self, role: str, content: Any, **extra: Any) -> Message:
        """Append ``{role, content, timestamp, **extra}`` and return the stored message.

        Edit the returned dict, not the one you built: the log stores its own copy.
        """
        now = datetime.now()
        message = {"role": role, "content": content, "timestamp": now.isoformat(), **extra}
        self.messages.append(message)
        self.updated_at = now
        return self.messages[-1]

    def get_history(
        self,
        max_messages: int = history.DEFAULT_MAX_MESSAGES,
        *,
        max_tokens: int = 0,
        include_timestamps: bool = False,
        token_counter: TokenCounter | None = None,
    ) -> list[Message]:
        """The messages to send to the model, as new plain dicts (see ``nanosession.history``).

        ``token_counter`` measures ``max_tokens``; the default estimates offline.
        """
        return history.build_history(
            self.messages,
            last_consolidated=self.last_consolidated,
            max_messages=max_messages,
            max_tokens=max_tokens,
            include_timestamps=include_timestamps,
            token_counter=token_counter,
        )

    def clear(self) -> None:
        """Forget every message (``/new``), including the consolidation mark."""
        self.messages.clear()
        self.last_consolidated = 0
        self.updated_at = datetime.now()

    def retain_recent_legal_suffix(self, max_messages: int) -> list[Message]:
        """Keep at most ``max_messages`` recent messages; return the dropped ones, oldest first.

        The kept tail follows ``get_history``'s boundary rules: it starts at its first user
        turn (or the proactive delivery that turn answers) and never with an orphan tool
        result. It is always a suffix: nanobot v0.2.0, when the tail had no user turn, kept
        a window from the latest user turn instead and silently lost the newest messages.
        ``last_consolidated`` shifts with the drop; ``max_messages <= 0`` drops everything.
        The returned messages are plain copies, no longer tracked.
        """
        if max_messages > 0 and len(self.messages) <= max_messages:
            return []
        cut = self._suffix_start(max_messages)
        dropped: list[Message] = copy.deepcopy(self.messages[:cut])
        self._drop_front(cut)
        return dropped

    def enforce_file_cap(
        self, on_archive: ArchiveCallback | None = None, limit: int = FILE_MAX_MESSAGES
    ) -> None:
        """Trim the session to at most ``limit`` messages (<= 0: no cap), like the retain above.

        Dropped messages not yet consolidated are passed (as plain copies) to ``on_archive``
        before anything is removed, so if archiving raises, the session is left intact.
        """
        if limit <= 0 or len(self.messages) <= limit:
            return
        cut = self._suffix_start(limit)
        pending: list[Message] = copy.deepcopy(self.messages[self._replay_start() : cut])
        if pending and on_archive is not None:
            on_archive(pending)
        self._drop_front(cut)

    def _replay_start(self) -> int:
        return history.replay_start(self.last_consolidated, len(self.messages))

    def _suffix_start(self, max_messages: int) -> int:
        """How many leading messages to drop to keep a legal tail of ``max_messages``."""
        if max_messages <= 0:
            return len(self.messages)
        tail = history.align_to_user_turn(self.messages[-max_messages:])
        return len(self.messages) - len(history.drop_orphan_tool_results(tail))

    def _drop_front(self, count: int) -> None:
        consolidated = self._replay_start()
        del self.messages[:count]
        self.last_consolidated = max(0, consolidated - count)
        self.updated_at = datetime.now()
