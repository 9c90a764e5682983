"""Session key <-> storage name: injective, reversible, and unable to escape a root.

Names are unpadded base64url of the UTF-8 key (nanobot 0.3's scheme), so they contain only
``[A-Za-z0-9_-]``: no separators, no dots, no reserved device names. Keys whose encoding
would pass ``MAX_NAME`` characters (file systems cap names at 255 bytes, S3 keys at 1,024)
are stored under ``~`` + SHA-256 of the key instead; ``~`` is outside the base64url
alphabet, so the two forms never collide, and the key itself is kept in the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from nanosession.errors import InvalidKeyError

SUFFIX = ".jsonl"
MAX_NAME = 200
MAX_KEY_BYTES = 65536
HASHED_PREFIX = "~"
_B64 = re.compile(r"[A-Za-z0-9_-]+")
_LEGACY_UNSAFE = re.compile(r'[<>:"/\\|?*]')


def validate_key(key: object) -> str:
    """Return ``key`` if it can be stored, else raise ``InvalidKeyError`` saying why."""
    if not isinstance(key, str):
        raise InvalidKeyError(f"session key must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidKeyError("session key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"session key is not valid Unicode text: {exc.reason}") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(f"session key is {size} bytes; the limit is {MAX_KEY_BYTES}")
    return key


def storage_name(key: str) -> str:
    """The file/object stem for ``key`` (without ``.jsonl``)."""
    raw = key.encode("utf-8")
    if (len(raw) + 2) // 3 * 4 <= MAX_NAME:
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    return HASHED_PREFIX + hashlib.sha256(raw).hexdigest()


def key_from_name(stem: str) -> str | None:
    """The key a stem encodes, or ``None`` (hashed names, foreign or legacy files)."""
    if not _B64.fullmatch(stem) or len(stem) % 4 == 1:
        return None
    try:
        key = base64.urlsafe_b64decode(stem + "=" * (-len(stem) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    # Only the canonical encoding counts: other stems decode too (e.g. non-zero pad bits).
    return key if key and storage_name(key) == stem else None


def legacy_name(key: str) -> str:
    """The lossy stem nanobot v0.2.0 used; several keys share one, so only read it."""
    return _LEGACY_UNSAFE.sub("_", key.replace(":", "_")).strip()
