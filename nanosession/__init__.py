"""nanosession: LLM-agent conversation sessions on any storage backend.

Public API: ``open_store`` / ``Store`` (the storage contract, typed), ``SessionManager``
(nanobot's manager API over any store), ``Session`` (the pure domain object), the record
types that cross the contract, ``hookimpl`` for plugin authors, and the error hierarchy.
"""

from __future__ import annotations

from loguru import logger

from nanosession.errors import (
    BackendUnavailableError,
    CapabilityError,
    ConfigurationError,
    ConflictError,
    CorruptSessionError,
    EncodedDataError,
    InvalidKeyError,
    InvalidURLError,
    NanosessionError,
    PluginError,
    SerializationError,
    SessionNotFoundError,
    StorageError,
    UnknownSchemeError,
)
from nanosession.hookspecs import hookimpl
from nanosession.manager import SessionManager
from nanosession.record import (
    Capabilities,
    PutMode,
    RepairReport,
    SessionInfo,
    SessionRecord,
    Update,
)
from nanosession.registry import list_plugins
from nanosession.session import Session
from nanosession.store import Store, open_store

logger.disable("nanosession")

__all__ = [
    "BackendUnavailableError",
    "Capabilities",
    "CapabilityError",
    "ConfigurationError",
    "ConflictError",
    "CorruptSessionError",
    "EncodedDataError",
    "InvalidKeyError",
    "InvalidURLError",
    "NanosessionError",
    "PluginError",
    "PutMode",
    "RepairReport",
    "SerializationError",
    "Session",
    "SessionInfo",
    "SessionManager",
    "SessionNotFoundError",
    "SessionRecord",
    "StorageError",
    "Store",
    "UnknownSchemeError",
    "Update",
    "hookimpl",
    "list_plugins",
    "open_store",
]
