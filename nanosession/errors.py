"""One error hierarchy: every failure nanosession reports is a ``NanosessionError``.

Backends raise these (or let the ``Store`` wrap their own exceptions in ``StorageError``),
so callers never need to know which library sits underneath.
"""

from __future__ import annotations


class NanosessionError(Exception):
    """Base class of every error nanosession raises."""


class ConfigurationError(NanosessionError, ValueError):
    """A store URL, option or plugin set-up is wrong."""


class InvalidURLError(ConfigurationError):
    """A store URL cannot be parsed."""


class UnknownSchemeError(ConfigurationError):
    """No installed plugin answers a URL scheme."""

    def __init__(self, scheme: str, installed: list[str], hint: str | None = None) -> None:
        self.scheme = scheme
        self.installed = installed
        msg = f"no backend for scheme {scheme!r}; installed: {', '.join(installed) or 'none'}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)


class PluginError(ConfigurationError):
    """A plugin failed to load or registered something twice."""


class BackendUnavailableError(ConfigurationError):
    """A backend's optional dependencies are not installed; the message says what to install."""


class InvalidKeyError(NanosessionError, ValueError):
    """A session key cannot be stored (empty, not text, unencodable, too long)."""


class SessionNotFoundError(NanosessionError, KeyError):
    """The session does not exist in the store."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)

    def __str__(self) -> str:
        return f"session {self.key!r} not found"


class ConflictError(NanosessionError):
    """The stored copy changed since it was read (or already exists on create).

    Reload the session, re-apply the change and save again.
    """

    def __init__(self, key: str, detail: str = "the stored copy changed") -> None:
        self.key = key
        super().__init__(f"conflict on session {key!r}: {detail}")


class CorruptSessionError(NanosessionError):
    """Stored data cannot be read as a session; ``Store.repair`` recovers what is intact."""

    def __init__(self, key: str, problems: list[str] | tuple[str, ...]) -> None:
        self.key = key
        self.problems = tuple(problems)
        first = "; ".join(self.problems[:3])
        more = f" (+{len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        super().__init__(f"session {key!r} is corrupt: {first}{more}")


class EncodedDataError(CorruptSessionError):
    """Data was written through a wrapper (compression, encryption) this store lacks,
    or cannot be decoded by it (wrong key, tampered bytes)."""

    def __str__(self) -> str:
        return f"session {self.key!r} cannot be decoded: {'; '.join(self.problems)}"


class SerializationError(NanosessionError, TypeError):
    """A message or metadata value cannot be stored as JSON."""


class CapabilityError(NanosessionError):
    """The backend cannot give a guarantee the caller asked for (see ``Capabilities``)."""


class StorageError(NanosessionError, OSError):
    """The storage medium failed (I/O error, disk full, permission, network)."""
