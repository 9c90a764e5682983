"""The storage contract: pluggy hook specifications.

Two kinds of hooks.

*Registration hooks* run once on the process-wide registry, when plugins are loaded from
the ``nanosession`` entry-point group. They hand each plugin a ``register`` callable.

*Storage hooks* run on one opened store. ``open_store`` asks the factory registered for
the URL's scheme for a *backend*: an object whose methods are the storage hook
implementations below (marked with ``@nanosession.hookimpl``). Each store has its own
pluggy plugin manager holding exactly one backend, plus any *wrappers* the caller asked
for: objects with ``@hookimpl(wrapper=True)`` implementations of the same hooks that
transform arguments and results around the backend (compression, encryption, metrics).

Every storage hook is ``firstresult``: the backend's answer is the answer. Backends
raise ``nanosession.errors`` exceptions for the failures named below; anything else they
raise reaches the caller wrapped in ``StorageError``. Implementations may accept fewer
arguments than the spec names (pluggy passes only what they ask for), so adding an
argument later does not break existing plugins.

Application code never calls these hooks: it uses ``nanosession.Store``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pluggy

from nanosession.record import PutMode, RepairReport, SessionInfo, SessionRecord

PROJECT = "nanosession"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

BackendFactory = Callable[..., object]
"""``factory(url, **options) -> backend``; called by ``open_store`` for its scheme."""

WrapperFactory = Callable[..., object]
"""``factory(**options) -> wrapper``; called by ``open_store(..., wrappers=[name])``."""


class RegistrationSpecs:
    """Hooks called once per process on every plugin loaded from the entry-point group."""

    @hookspec
    def nanosession_register_backends(self, register: Callable[..., None]) -> None:
        """Register storage backends.

        :param register: ``register(scheme, factory, *, fallback=False, description="",
            capabilities=None)``. ``scheme`` is the URL scheme answered (``"s3"``,
            ``"file"``); ``factory`` is called as ``factory(url, **options)`` and returns a
            backend object (with a ``capabilities`` attribute). A ``fallback`` registration
            answers only when no other plugin claims the scheme (the fsspec plugin uses it
            for every protocol fsspec knows). ``capabilities`` is what the backend
            guarantees at best, shown by ``nanosession plugins`` before any store is open.
        :return: nothing; the result is ignored.
        :raises PluginError: (from ``register``) when a scheme is registered twice.

        Called on every plugin (not firstresult). Import heavy dependencies inside the
        factory, not here, so a missing optional install only fails when it is used.
        """

    @hookspec
    def nanosession_register_wrappers(self, register: Callable[..., None]) -> None:
        """Register wrapper plugins that callers enable per store by name.

        :param register: ``register(name, factory, *, description="")``; ``factory`` is
            called as ``factory(**options)`` and returns an object with
            ``@hookimpl(wrapper=True)`` storage hook implementations.
        :return: nothing; the result is ignored.
        :raises PluginError: (from ``register``) when a name is registered twice.

        Called on every plugin (not firstresult).
        """


class StorageSpecs:
    """Hooks called on the one backend (and the wrappers) of an opened store."""

    @hookspec(firstresult=True)
    def nanosession_load(self, key: str) -> SessionRecord | None:
        """Read one session.

        :param key: the session key (already validated: a non-empty string).
        :return: the ``SessionRecord`` with ``version`` set to the stored state's token,
            or ``None`` when the session does not exist. The record and its messages
            belong to the caller: return fresh objects, never ones the backend keeps
            (a manager holds the decoded messages as they are, without copying them).
        :raises CorruptSessionError: when the stored data cannot be read as a session
            (never return an empty record instead: that would lose data on next save).

        firstresult: stops at the first non-None result, which is the backend's.
        """

    @hookspec(firstresult=True)
    def nanosession_save(
        self, record: SessionRecord, mode: PutMode, unchanged: int, durable: bool
    ) -> str | None:
        """Write one session.

        :param record: what to store. ``record.version`` is ignored: ``mode`` says what
            the write is conditional on.
        :param mode: ``"create"`` (fail if it exists), ``"overwrite"`` (unconditional) or
            ``Update(version)`` (fail unless the stored version is still ``version``).
        :param unchanged: how many leading messages are known to equal those stored at
            ``mode.version`` (only with ``Update``; else 0). A backend that can append
            may write only ``record.messages[unchanged:]`` plus the metadata; any other
            backend ignores it and writes everything.
        :param durable: reach stable storage (fsync or equivalent) before returning.
        :return: the new version token.
        :raises ConflictError: when ``mode`` is ``"create"`` and the session exists, or
            ``Update`` and the stored version differs (or the session is gone).
        :raises SerializationError: when a value is not JSON; nothing is written then.
        :raises CapabilityError: when ``mode`` asks for a condition the medium cannot
            enforce and the backend was configured to refuse rather than warn.

        The write is all-or-nothing where the backend claims ``atomic_write``.
        firstresult: stops at the first non-None result, which is the backend's.
        """

    @hookspec(firstresult=True)
    def nanosession_delete(self, key: str, mode: PutMode) -> bool | None:
        """Delete one session.

        :param key: the session key.
        :param mode: ``"overwrite"`` (unconditional) or ``Update(version)`` (only if the
            stored version is still ``version``). ``"create"`` is never passed.
        :return: ``True`` if something was deleted, ``False`` if it did not exist.
        :raises ConflictError: with ``Update`` when the stored version differs or the
            session is gone.

        firstresult: stops at the first non-None result, which is the backend's.
        """

    @hookspec(firstresult=True)
    def nanosession_list(
        self, prefix: str, limit: int | None, details: bool
    ) -> Iterable[SessionInfo] | None:
        """List sessions, newest first.

        :param prefix: only keys that start with this string ("" for all).
        :param limit: at most this many entries (``None``: all).
        :param details: fill ``created_at``, ``title``, ``preview`` and ``message_count``
            for the returned entries. Backends must read a bounded number of bytes per
            entry for this (a head and a tail, not the whole session) and may fetch in
            parallel; without ``details`` they should answer from cheap metadata only
            (directory entries, object listings).
        :return: ``SessionInfo`` entries, newest first. Without ``details``, ordered by the
            storage's modification time (file mtime, object ``LastModified``), which is
            also their ``updated_at`` then. With ``details``, ordered by the
            ``updated_at`` stored in each session. A backend that can describe every
            entry cheaply (the local backend, from its stat-validated index) orders all
            matching sessions that way before ``limit`` picks the first ones; a backend
            for which that would mean a read per session (S3, fsspec) may let ``limit``
            pick the newest by modification time first and then order those. A corrupt
            session appears with ``error`` set; it never makes the listing fail.

        firstresult: stops at the first non-None result, which is the backend's.
        """

    @hookspec(firstresult=True)
    def nanosession_repair(self, key: str, dry_run: bool) -> RepairReport | None:
        """Check one session and recover everything intact.

        :param key: the session key.
        :param dry_run: only report; write nothing.
        :return: a ``RepairReport``. When problems were found and ``dry_run`` is false,
            the repaired session replaces the stored one atomically and the original
            bytes are kept (``RepairReport.backup`` says where) before anything is
            replaced: a corrupt original is never destroyed without a copy.
        :raises SessionNotFoundError: when the session does not exist.

        Repair keeps every valid message line, survives non-object lines, bad timestamps,
        null metadata, a truncated tail and a missing metadata line.
        firstresult: stops at the first non-None result, which is the backend's.
        """

    @hookspec
    def nanosession_close(self) -> None:
        """Release connections, thread pools and file handles. Called on every plugin.

        :return: nothing; results are ignored.
        """


def storage_hook_names() -> list[str]:
    """The storage hooks, in contract order (used by docs meta-tests and the CLI)."""
    return [n for n in vars(StorageSpecs) if n.startswith("nanosession_")]


def registration_hook_names() -> list[str]:
    """The registration hooks."""
    return [n for n in vars(RegistrationSpecs) if n.startswith("nanosession_")]


def hook_names() -> list[str]:
    """Every hook of the contract."""
    return registration_hook_names() + storage_hook_names()

