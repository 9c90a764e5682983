"""``Store``: the typed face of one opened backend, so nobody calls ``pm.hook`` by hand."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

import pluggy
from loguru import logger

from nanosession.errors import (
    CapabilityError,
    ConfigurationError,
    EncodedDataError,
    InvalidURLError,
    NanosessionError,
    SessionNotFoundError,
    StorageError,
)
from nanosession.hookspecs import PROJECT, StorageSpecs
from nanosession.keys import validate_key
from nanosession.record import (
    Capabilities,
    PutMode,
    RepairReport,
    SessionInfo,
    SessionRecord,
    Update,
)
from nanosession.registry import Registry, default_registry

ENCODING = "_encoding"
"""``record.extra`` entry listing the wrappers a record was encoded with, outermost last.
A wrapper adds its name on save and removes it on load; a name left after loading means
the store lacks that wrapper, and the data would be garbage to the caller."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)(://|::)")
_USERINFO = re.compile(r"(://[^/@:]*:)[^/@]*@")
WrapperSpec = str | tuple[str, Mapping[str, Any]] | object


def split_url(url: object) -> tuple[str, str, dict[str, str]]:
    """``(scheme, url_without_query, query_options)``; a bare path has scheme ``file``.

    Query strings are read only on URLs with a scheme, so local paths may contain ``?``.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidURLError(f"store URL must be a non-empty string, got {url!r}")
    if "\x00" in url:
        raise InvalidURLError("store URL contains a NUL character")
    match = _SCHEME.match(url)
    if not match or len(match.group(1)) == 1:  # "C:\\..." is a Windows path
        return "file", url, {}
    base, _, query = url.partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise InvalidURLError(f"malformed query string in {url!r}: {exc}") from None
    return match.group(1).lower(), base, options


def redact(url: str) -> str:
    """``url`` without its password or query string (options may hold secrets), for logs."""
    base, query, _ = url.partition("?")
    return _USERINFO.sub(r"\1***@", base) + ("?..." if query else "")


class Store:
    """One opened session store: a backend plus the wrappers around it.

    Methods validate keys, translate put modes, check encodings and wrap any non-nanosession
    exception from a backend in ``StorageError`` so callers see one error hierarchy.
    """

    def __init__(
        self,
        backend: object,
        wrappers: Sequence[object] = (),
        *,
        url: str = "",
        backend_name: str = "",
    ) -> None:
        self.url = url
        self.backend = backend
        self.backend_name = backend_name or type(backend).__name__
        self.wrappers = tuple(wrappers)
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(StorageSpecs)
        self._pm.register(backend, name="backend")
        for i, wrapper in enumerate(self.wrappers):
            self._pm.register(wrapper, name=f"wrapper-{i}")
        self._pm.check_pending()
        self._hook = self._pm.hook
        self._closed = False

    # -- introspection ------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        """What the backend guarantees (see ``Capabilities``)."""
        caps = getattr(self.backend, "capabilities", None)
        return caps if isinstance(caps, Capabilities) else Capabilities()

    def __repr__(self) -> str:
        return f"<Store {self.backend_name} {redact(self.url)!r}>"

    # -- operations ---------------------------------------------------------
    def load(self, key: str) -> SessionRecord:
        """The stored session with its ``version``; ``SessionNotFoundError`` if absent."""
        record = self.get(key)
        if record is None:
            raise SessionNotFoundError(key)
        return record

    def get(self, key: str) -> SessionRecord | None:
        """Like ``load`` but ``None`` when the session does not exist."""
        key = validate_key(key)
        with self._errors("load", key):
            record = self._hook.nanosession_load(key=key)
        if record is not None:
            leftover = record.extra.get(ENCODING)
            if leftover:
                raise EncodedDataError(
                    key,
                    [f"stored with wrapper(s) {leftover}; open the store with "
                     f"wrappers={list(leftover)!r}"],
                )
        return record

    def save(
        self,
        record: SessionRecord,
        *,
        mode: PutMode | None = None,
        unchanged: int = 0,
        durable: bool = False,
    ) -> str:
        """Store ``record``; return the new version.

        ``mode`` defaults to ``Update(record.version)`` when the record has a version and
        to ``"create"`` when it has none, so a stale copy never silently overwrites a newer
        one. Pass ``mode="overwrite"`` for an unconditional write. ``unchanged`` is the
        number of leading messages known to be stored already (enables append-only saves).
        """
        validate_key(record.key)
        if mode is None:
            mode = Update(record.version) if record.version else "create"
        self._check_mode(mode)
        if not isinstance(mode, Update):
            unchanged = 0
        with self._errors("save", record.key):
            version = self._hook.nanosession_save(
                record=record, mode=mode, unchanged=max(0, unchanged), durable=durable
            )
        if not isinstance(version, str):
            raise StorageError(f"backend {self.backend_name} returned no version from save")
        record.version = version
        return version

    def delete(self, key: str, *, version: str | None = None) -> bool:
        """Delete a session; with ``version``, only if it is still that version."""
        key = validate_key(key)
        mode: PutMode = Update(version) if version else "overwrite"
        self._check_mode(mode)
        with self._errors("delete", key):
            return bool(self._hook.nanosession_delete(key=key, mode=mode))

    def list(
        self, prefix: str = "", *, limit: int | None = None, details: bool = True
    ) -> list[SessionInfo]:
        """Sessions newest first; see ``nanosession_list`` for what ``details`` costs."""
        if limit is not None and limit < 0:
            raise ConfigurationError("limit must be >= 0")
        with self._errors("list", prefix or "*"):
            result = self._hook.nanosession_list(prefix=prefix, limit=limit, details=details)
        return list(result or [])

    def repair(self, key: str, *, dry_run: bool = False) -> RepairReport:
        """Report and fix corruption of one session, keeping the original."""
        key = validate_key(key)
        with self._errors("repair", key):
            report = self._hook.nanosession_repair(key=key, dry_run=dry_run)
        if report is None:
            raise CapabilityError(f"backend {self.backend_name} does not implement repair")
        return report

    def close(self) -> None:
        """Release the backend's resources. Idempotent."""
        if not self._closed:
            self._closed = True
            self._hook.nanosession_close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------
    def _check_mode(self, mode: PutMode) -> None:
        if not (mode in ("create", "overwrite") or isinstance(mode, Update)):
            raise ConfigurationError(f"invalid put mode {mode!r}")

    @contextmanager
    def _errors(self, op: str, key: str) -> Iterator[None]:
        try:
            yield
        except NanosessionError:
            raise
        except Exception as exc:  # a backend's own failure: one typed error, cause kept
            logger.debug("{} {} failed in {}: {!r}", op, key[:80], self.backend_name, exc)
            raise StorageError(
                f"{op} of {key[:80]!r} failed in {self.backend_name}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def _make_wrapper(spec: WrapperSpec, registry: Registry) -> object:
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        name, options = spec[0], dict(spec[1])
    else:
        return spec  # a ready wrapper object
    entry = registry.wrappers.get(name)
    if entry is None:
        raise ConfigurationError(
            f"unknown wrapper {name!r}; installed: {', '.join(sorted(registry.wrappers)) or 'none'}"
        )
    return entry.factory(**options)


def open_store(
    url: str,
    *,
    wrappers: Sequence[WrapperSpec] = (),
    backend: str | None = None,
    registry: Registry | None = None,
    **options: Any,
) -> Store:
    """Open the store at ``url`` (a path, ``file://``, ``s3://``, any fsspec URL, ...).

    ``options`` (and ``?name=value`` query parameters on URLs with a scheme) go to the
    backend's factory; the query parameters ``backend`` and ``wrappers`` (comma-separated)
    are read by ``open_store`` itself. ``backend`` names the plugin to use when several answer the
    scheme (``open_store("s3://b/p", backend="fsspec")``). ``wrappers`` are names of
    registered wrapper plugins (or ``(name, options)`` pairs, or wrapper objects), applied
    innermost first.
    """
    scheme, base, query = split_url(url)
    backend = backend or query.pop("backend", None)
    if not wrappers and query.get("wrappers"):
        wrappers = query["wrappers"].split(",")
    query.pop("wrappers", None)
    registry = registry or default_registry()
    entry = registry.backend_for(scheme, backend)
    merged = {**query, **options}
    try:
        impl = entry.factory(base if scheme != "file" else url, **merged)
    except NanosessionError:
        raise
    except TypeError as exc:
        raise ConfigurationError(f"bad options for {entry.scheme!r} backend: {exc}") from None
    except Exception as exc:
        raise StorageError(
            f"cannot open {entry.scheme!r} store: {type(exc).__name__}: {exc}"
        ) from exc
    made = [_make_wrapper(w, registry) for w in wrappers]
    return Store(impl, made, url=url, backend_name=entry.plugin)
