"""``zlib``: transparent compression of message payloads (standard library only).

Agent sessions are dominated by large tool results and pasted documents, which compress
several-fold; short chat turns do not, so a message is compressed only when that makes it
smaller (base64 overhead included) and is otherwise kept as JSON inside its envelope.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

from nanosession import jsonlib
from nanosession.errors import ConfigurationError
from nanosession_wrappers.envelope import EnvelopeWrapper

MIN_SIZE = 256
"""Serialised messages shorter than this are never worth compressing."""


class ZlibWrapper(EnvelopeWrapper):
    """Compresses each message and the metadata; titles stay readable for listings."""

    name = "zlib"
    field = "_zlib"
    clear_title = True

    def __init__(self, level: int | str = 6, min_size: int | str = MIN_SIZE) -> None:
        super().__init__()
        try:
            self.level, self.min_size = int(level), int(min_size)
        except ValueError:
            raise ConfigurationError("zlib: level and min_size must be integers") from None
        if not -1 <= self.level <= 9:
            raise ConfigurationError(f"zlib: level must be -1..9, got {self.level}")

    def seal(self, value: Any) -> Any:
        data = jsonlib.dumps(value)
        keep = not isinstance(value, str)  # a string payload always means "compressed"
        if keep and len(data) < self.min_size:
            return value  # not worth it: the value itself, still inside its envelope
        packed = zlib.compress(data, self.level)
        if keep and len(packed) * 4 // 3 + 4 >= len(data):
            return value
        return base64.b64encode(packed).decode("ascii")

    def unseal(self, payload: Any) -> Any:
        if not isinstance(payload, str):
            return payload
        try:
            return jsonlib.loads(zlib.decompress(base64.b64decode(payload, validate=True)))
        except (binascii.Error, zlib.error) as exc:
            raise ValueError(f"corrupt compressed payload ({type(exc).__name__})") from None
