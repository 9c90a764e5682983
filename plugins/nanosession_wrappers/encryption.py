"""``fernet``: encryption at rest of messages and metadata with ``cryptography``'s Fernet.

Fernet is authenticated (AES-128-CBC + HMAC-SHA256): a wrong key or altered data fails to
decrypt, and the store raises ``EncodedDataError`` rather than returning garbage. Several keys
(``key=[new, old]``) use ``MultiFernet``: new data is encrypted with the first, any decrypts,
so keys rotate without downtime (already stored messages keep their key until rewritten).
Keys, timestamps, counts and the session key stay readable: listings and repair still work.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from nanosession import jsonlib
from nanosession.errors import BackendUnavailableError, ConfigurationError
from nanosession_wrappers.envelope import EnvelopeWrapper

ENV_KEY = "NANOSESSION_FERNET_KEY"
"""Fallback for ``key=``: one key, or several separated by commas (first encrypts)."""
KeySpec = str | bytes | Sequence[str | bytes]


def _keys(key: KeySpec | None) -> list[bytes]:
    if key is None:
        key = os.environ.get(ENV_KEY) or None
    if key is None:
        raise ConfigurationError(
            f"the fernet wrapper needs key= (from cryptography.fernet.Fernet.generate_key()) "
            f"or the {ENV_KEY} environment variable"
        )
    if isinstance(key, str):
        key = key.split(",")
    keys = [key] if isinstance(key, bytes) else list(key)
    out = [k.strip().encode() if isinstance(k, str) else k for k in keys]
    if not out or not all(isinstance(k, bytes) and k for k in out):
        raise ConfigurationError("fernet keys must be non-empty str or bytes")
    return out


class FernetWrapper(EnvelopeWrapper):
    """Encrypts each message and the metadata; nothing readable is left of either."""

    name = "fernet"
    field = "_fernet"

    def __init__(self, key: KeySpec | None = None) -> None:
        super().__init__()
        try:
            from cryptography.fernet import Fernet, InvalidToken, MultiFernet
        except ImportError:
            raise BackendUnavailableError(
                "the fernet wrapper needs cryptography: pip install 'nanosession[crypto]'"
            ) from None
        keys = _keys(key)
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):  # never echo the key
            raise ConfigurationError(
                "invalid fernet key: expected 32 url-safe base64-encoded bytes "
                "(cryptography.fernet.Fernet.generate_key())"
            ) from None
        self._invalid = InvalidToken

    def seal(self, value: Any) -> Any:
        return self._fernet.encrypt(jsonlib.dumps(value)).decode("ascii")

    def unseal(self, payload: Any) -> Any:
        if not isinstance(payload, str):
            raise ValueError("payload is not a Fernet token")
        try:
            data = self._fernet.decrypt(payload.encode("ascii"))
        except (self._invalid, UnicodeEncodeError):
            raise ValueError("wrong key, or the data was altered") from None
        return jsonlib.loads(data)
