"""Backend-neutral data that crosses the storage contract.

Backends see only these types: they never import the ``Session`` domain object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Message = Mapping[str, Any]


@dataclass
class SessionRecord:
    """One stored session: what a backend loads and saves.

    ``messages`` is any sequence (a wrapper may hand a lazily mapped one); ``extra`` holds
    fields of the stored metadata line that nanosession does not interpret (for example
    nanobot 0.3's ``last_archived`` or a wrapper's ``_encoding``) and must round-trip.
    ``version`` is the backend's opaque token for this exact stored state.
    """

    key: str
    messages: Sequence[Message] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=datetime.now)
    updated_at: datetime = field(default_factory=datetime.now)
    last_consolidated: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    version: str | None = None

    def as_dict(self, *, messages: bool = True) -> dict[str, Any]:
        """Plain data in nanobot's ``read_session_file`` shape (timestamps as ISO text)."""
        data: dict[str, Any] = {
            "key": self.key,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "metadata": self.metadata,
        }
        if messages:
            data["messages"] = list(self.messages)
        return data


@dataclass(frozen=True)
class SessionInfo:
    """One listing entry. Fields a backend could not get cheaply are ``None``.

    ``error`` is set (and the other fields may be partial) when the stored session is
    corrupt: a listing never fails because one entry is bad.
    """

    key: str
    updated_at: datetime | None
    created_at: datetime | None = None
    title: str | None = None
    preview: str | None = None
    message_count: int | None = None
    size: int | None = None
    version: str | None = None
    location: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class RepairReport:
    """What repair found and did. ``problems`` never quotes message text."""

    key: str
    problems: tuple[str, ...]
    messages_kept: int
    lines_dropped: int = 0
    repaired: bool = False
    backup: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing was wrong."""
        return not self.problems


@dataclass(frozen=True)
class Capabilities:
    """What a backend guarantees. Conformance tests for an unclaimed guarantee are skipped.

    - ``compare_and_swap``: save/delete with ``Update(version)`` are atomic against other
      writers (exactly one of two racing writers wins).
    - ``exclusive_create``: ``mode="create"`` is atomic (never overwrites a racing create).
    - ``atomic_write``: a full write is all-or-nothing (a crash leaves old or new).
    - ``append``: delta saves write O(new messages) bytes, not the whole session.
    - ``ranged_reads``: listing details read a bounded number of bytes per session.
    - ``durable``: ``durable=True`` saves reach stable storage before returning.
    """

    compare_and_swap: bool = False
    exclusive_create: bool = False
    atomic_write: bool = False
    append: bool = False
    ranged_reads: bool = False
    durable: bool = False
    notes: str = ""


@dataclass(frozen=True)
class Update:
    """Put mode: write only if the stored version is still ``version`` (compare-and-swap)."""

    version: str


PutMode = Literal["create", "overwrite"] | Update
"""How a save or delete treats what is stored: ``"create"`` fails if the session exists,
``"overwrite"`` is unconditional, ``Update(version)`` fails unless the version matches."""

_SPACE = re.compile(r"\s+")
PREVIEW_CHARS = 120


def message_text(content: Any) -> str:
    """Plain text of a message's content (string, or the text blocks of a block list)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            b.get("text", "")
            for b in content
            if isinstance(b, Mapping) and isinstance(b.get("text"), str)
        )
    return ""


def preview_of(messages: Sequence[Message]) -> str | None:
    """The first user message's text, else the first assistant text; collapsed, 120 chars."""
    for role in ("user", "assistant"):
        for m in messages:
            if m.get("role") == role:
                text = preview_text(message_text(m.get("content")))
                if text:
                    return text
    return None


def preview_text(text: str) -> str:
    """``text`` with white space collapsed and stripped, cut to ``PREVIEW_CHARS``.

    Only a prefix is collapsed (doubled until it yields enough): a pasted 50 KB first
    message would otherwise cost a regex pass over all of it in every listing entry.
    """
    n = PREVIEW_CHARS * 4
    while True:
        head = _SPACE.sub(" ", text[:n]).lstrip()
        # Two more characters than kept: one of them is not a space (runs collapse), so
        # the full text goes on past the cut and stripping it could not end it sooner.
        if n >= len(text) or len(head) > PREVIEW_CHARS + 1:
            return head.rstrip()[:PREVIEW_CHARS] if n >= len(text) else head[:PREVIEW_CHARS]
        n *= 4


def title_of(metadata: Any) -> str | None:
    """The session title kept in ``metadata["title"]``, if it is a non-blank string."""
    if isinstance(metadata, Mapping):
        title = metadata.get("title")
        if isinstance(title, str) and title.strip():
            return title.strip()
    return None
