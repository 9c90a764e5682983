"""Wrapper plugins: ``zlib`` (compression) and ``fernet`` (encryption at rest).

Enable them per store: ``open_store(url, wrappers=["zlib"])`` or
``open_store(url, wrappers=[("fernet", {"key": key})])``. Both work over any backend. With
several wrappers the first listed is innermost (nearest the storage); to compress before
encrypting, list ``["fernet", "zlib"]``.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from nanosession import hookimpl
from nanosession.errors import ConfigurationError

logger.disable(__name__)


def open_zlib(**options: Any) -> object:
    """Factory for the ``zlib`` wrapper: options ``level`` (0-9) and ``min_size`` (bytes)."""
    from nanosession_wrappers.compression import ZlibWrapper

    return _build(ZlibWrapper, options)


def open_fernet(**options: Any) -> object:
    """Factory for the ``fernet`` wrapper: option ``key`` (one key or a list, newest first)."""
    from nanosession_wrappers.encryption import FernetWrapper

    return _build(FernetWrapper, options)


def _build(cls: Any, options: dict[str, Any]) -> object:
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigurationError(f"bad options for the {cls.name} wrapper: {exc}") from None


@hookimpl
def nanosession_register_wrappers(register: Any) -> None:
    register("zlib", open_zlib, description="compresses large message payloads (zlib)")
    register("fernet", open_fernet,
             description="encrypts messages and metadata at rest (cryptography Fernet)")
