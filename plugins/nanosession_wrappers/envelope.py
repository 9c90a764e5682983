"""``EnvelopeWrapper``: the pluggy wrapper that encodes messages and metadata around any backend.

Each message is stored as ``{<field>: <payload>}`` and the metadata as the same kind of
envelope, so the backend stores, appends, lists and repairs plain JSON objects without knowing
what they hold. Envelopes carry no ``role`` or ``content``: a backend's listing can never show
a payload as a title or preview. The wrapper's name goes into ``record.extra["_encoding"]``,
so a store opened without it refuses the data (``EncodedDataError``) instead of returning it.

Sessions stored before the wrapper was enabled still load; their next save encodes them. If
that save only appends, the old messages stay plain, and the (encoded) metadata records how
many leading messages may be plain, so no other unencoded message is ever accepted. A session
that lost its marker (a repair that had no metadata line to keep) still decodes: envelopes
are recognised by their shape.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Mapping
from dataclasses import replace
from typing import Any, ClassVar

from loguru import logger

from nanosession import hookimpl
from nanosession.errors import EncodedDataError
from nanosession.record import PutMode, SessionRecord, Update
from nanosession.store import ENCODING
from nanosession_wrappers.lazy import Mapped

PLAIN = "plain"
"""Payload field of the metadata envelope: how many leading messages may be stored plain."""


class EnvelopeWrapper:
    """Base class: subclasses set ``name`` and ``field`` and implement ``seal``/``unseal``."""

    name: ClassVar[str]
    """Registered wrapper name, recorded in ``record.extra["_encoding"]``."""
    field: ClassVar[str]
    """The single key of every envelope this wrapper writes."""
    clear_title: ClassVar[bool] = False
    """Keep ``metadata["title"]`` readable beside the metadata envelope (for listings)."""

    def __init__(self) -> None:
        self._plain: dict[str, tuple[str, int]] = {}  # key -> (version, plain prefix)
        self._mu = threading.Lock()

    # -- what a subclass provides ---------------------------------------------------------
    def seal(self, value: Any) -> Any:
        """A JSON value -> the JSON payload stored in its envelope."""
        raise NotImplementedError

    def unseal(self, payload: Any) -> Any:
        """The inverse of ``seal``; raises ``ValueError``/``TypeError`` for a bad payload."""
        raise NotImplementedError

    # -- hooks --------------------------------------------------------------------------------
    @hookimpl(wrapper=True)
    def nanosession_save(
        self, record: SessionRecord, mode: PutMode, unchanged: int
    ) -> Generator[None, str | None, str | None]:
        # pluggy cannot hand the backend other argument objects, so the record's fields are
        # swapped for encoded ones during the call and restored after; the caller's message
        # list and dicts are never modified.
        plain = self._plain_prefix(record.key, mode, unchanged)
        payload: dict[str, Any] = {"metadata": record.metadata}
        if plain:
            payload[PLAIN] = plain
        envelope = {self.field: self.seal(payload)}
        title = record.metadata.get("title") if self.clear_title else None
        if isinstance(title, str):
            envelope["title"] = title
        names = [*_names(record.key, record.extra), self.name]
        original = (record.messages, record.metadata, record.extra)
        record.messages = Mapped(record.messages, self._encode_message)
        record.metadata = envelope
        record.extra = {**record.extra, ENCODING: names}
        try:
            version = yield
        finally:
            record.messages, record.metadata, record.extra = original
        self._remember(record.key, version, plain)
        return version

    @hookimpl(wrapper=True)
    def nanosession_load(
        self, key: str
    ) -> Generator[None, SessionRecord | None, SessionRecord | None]:
        record = yield
        if record is None:
            return None
        names = _names(key, record.extra)
        marked = self.name in names
        if marked and names[-1] != self.name:
            raise EncodedDataError(key, [
                f"stored with wrappers {names} (innermost last) but {self.name!r} is not the "
                "innermost here; open the store with the wrappers in the order it was saved"
            ])
        meta = record.metadata
        if isinstance(meta, Mapping) and self.field in meta:
            payload = self._unseal(key, "metadata", meta[self.field])
            plain = payload.get(PLAIN, 0) if isinstance(payload, dict) else -1
            if not (isinstance(plain, int) and plain >= 0 and isinstance(meta := payload.get(
                    "metadata"), dict)):
                raise EncodedDataError(key, [f"{self.name} metadata envelope has the wrong shape"])
        elif marked and meta:
            raise EncodedDataError(key, [f"metadata is not a {self.name} envelope"])
        else:
            plain = 0  # marked but the metadata was lost (repaired): all messages are envelopes
        if not marked:  # stored before the wrapper was enabled (or its marker was lost)
            logger.debug("session {} is not marked as {}-encoded", key[:80], self.name)
            plain = len(record.messages)
        messages = [self._decode_message(key, i, m, i < plain)
                    for i, m in enumerate(record.messages)]
        rest = names[:-1] if marked else names  # the wrappers still to undo, outside this one
        extra = {k: v for k, v in record.extra.items() if k != ENCODING}
        if rest:
            extra[ENCODING] = rest
        self._remember(key, record.version, plain)
        return replace(record, messages=messages, metadata=meta, extra=extra)

    # -- helpers ------------------------------------------------------------------------------
    def _encode_message(self, index: int, message: Any) -> dict[str, Any]:
        return {self.field: self.seal(message)}

    def _decode_message(self, key: str, index: int, item: Any, plain_ok: bool) -> Any:
        if isinstance(item, Mapping) and item.keys() == {self.field}:
            message = self._unseal(key, f"message {index}", item[self.field])
            if isinstance(message, dict):
                return message
            raise EncodedDataError(key, [f"message {index} does not decode to an object"])
        if plain_ok:
            return item  # stored before this wrapper was enabled, and recorded as such
        raise EncodedDataError(key, [f"message {index} is not a {self.name} envelope"])

    def _unseal(self, key: str, what: str, payload: Any) -> Any:
        try:
            return self.unseal(payload)
        except (ValueError, TypeError) as exc:  # never the payload itself in the message
            raise EncodedDataError(key, [f"cannot decode {what} with {self.name}: {exc}"]) from None

    def _plain_prefix(self, key: str, mode: PutMode, unchanged: int) -> int:
        """How many leading messages the backend may keep as stored (possibly plain)."""
        if not isinstance(mode, Update) or unchanged <= 0:
            return 0
        with self._mu:
            known = self._plain.get(key)
        return min(unchanged, known[1]) if known and known[0] == mode.version else 0

    def _remember(self, key: str, version: str | None, plain: int) -> None:
        with self._mu:
            if plain and version:
                self._plain[key] = (version, plain)
            else:
                self._plain.pop(key, None)


def _names(key: str, extra: Mapping[str, Any]) -> list[str]:
    names = extra.get(ENCODING) or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise EncodedDataError(key, [f"{ENCODING} is not a list of wrapper names"])
    return names
