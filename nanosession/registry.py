"""Plugin discovery: which backend answers which URL scheme, and which wrappers exist.

Plugins are loaded from the ``nanosession`` entry-point group (the shipped backends too,
exactly as a third-party plugin would be) and handed ``register`` callables through the
registration hooks. ``NANOSESSION_PLUGINS`` (comma-separated entry-point names) limits
which plugins load; set it to an empty string to load none.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy
from loguru import logger

from nanosession.errors import PluginError, UnknownSchemeError
from nanosession.hookspecs import PROJECT, BackendFactory, RegistrationSpecs, WrapperFactory
from nanosession.record import Capabilities

ENTRY_POINT_GROUP = "nanosession"
ENV_PLUGINS = "NANOSESSION_PLUGINS"

INSTALL_HINTS = {
    "s3": "install it with: pip install 'nanosession[s3]'",
    "file": "the local backend ships with nanosession; is NANOSESSION_PLUGINS excluding 'local'?",
}
FSSPEC_HINT = (
    "install the fsspec backend with: pip install 'nanosession[fsspec]' "
    "(plus the fsspec implementation for the protocol, e.g. gcsfs, adlfs, sshfs)"
)


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend: the factory answering one scheme, and who registered it."""

    scheme: str
    factory: BackendFactory
    plugin: str
    fallback: bool = False
    description: str = ""
    capabilities: Capabilities | None = None


@dataclass(frozen=True)
class WrapperEntry:
    """A registered wrapper plugin, enabled per store by ``name``."""

    name: str
    factory: WrapperFactory
    plugin: str
    description: str = ""


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin, for ``nanosession plugins`` and ``list_plugins()``."""

    name: str
    package: str | None
    version: str | None
    schemes: tuple[str, ...] = ()
    fallback_schemes: tuple[str, ...] = ()
    wrappers: tuple[str, ...] = ()
    error: str | None = None


@dataclass
class Registry:
    """Backends and wrappers registered by the loaded plugins."""

    backends: dict[str, BackendEntry] = field(default_factory=dict)
    fallbacks: dict[str, BackendEntry] = field(default_factory=dict)
    wrappers: dict[str, WrapperEntry] = field(default_factory=dict)
    broken: dict[str, PluginInfo] = field(default_factory=dict)
    _plugins: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(RegistrationSpecs)

    def add_plugin(
        self, plugin: Any, name: str, *, package: str | None = None, version: str | None = None
    ) -> None:
        """Register a plugin object or module and run its registration hooks."""
        if name in self._plugins:
            raise PluginError(f"plugin {name!r} is loaded twice")
        self._pm.register(plugin, name=name)
        self._pm.check_pending()
        self._plugins[name] = (package, version)
        others = [p for p in self._pm.get_plugins() if p is not plugin]
        backends = self._pm.subset_hook_caller("nanosession_register_backends", others)
        wrappers = self._pm.subset_hook_caller("nanosession_register_wrappers", others)
        backends(register=self._backend_registrar(name))
        wrappers(register=self._wrapper_registrar(name))

    def _backend_registrar(self, plugin: str) -> Any:
        def register(
            scheme: str,
            factory: BackendFactory,
            *,
            fallback: bool = False,
            description: str = "",
            capabilities: Capabilities | None = None,
        ) -> None:
            scheme = scheme.lower()
            table = self.fallbacks if fallback else self.backends
            if scheme in table:
                if fallback:
                    return  # several fallbacks for one protocol: the first one loaded answers
                raise PluginError(
                    f"scheme {scheme!r} registered by both {table[scheme].plugin!r} and {plugin!r}"
                )
            table[scheme] = BackendEntry(
                scheme, factory, plugin, fallback, description, capabilities
            )

        return register

    def _wrapper_registrar(self, plugin: str) -> Any:
        def register(name: str, factory: WrapperFactory, *, description: str = "") -> None:
            if name in self.wrappers:
                raise PluginError(
                    f"wrapper {name!r} registered by both {self.wrappers[name].plugin!r} "
                    f"and {plugin!r}"
                )
            self.wrappers[name] = WrapperEntry(name, factory, plugin, description)

        return register

    def backend_for(self, scheme: str, plugin: str | None = None) -> BackendEntry:
        """The backend answering ``scheme``; a specific registration beats a fallback.

        ``plugin`` picks a particular plugin's registration for the scheme (for example the
        fsspec plugin for ``s3://`` instead of the dedicated S3 plugin).
        """
        scheme = scheme.lower()
        found = [e for e in (self.backends.get(scheme), self.fallbacks.get(scheme)) if e]
        if plugin is not None:
            found = [e for e in found if e.plugin == plugin]
        if not found:
            installed = sorted(self.backends)
            if self.fallbacks:
                installed.append("<fsspec protocols>")
            hint = INSTALL_HINTS.get(scheme) or (
                f"no installed plugin and no fsspec implementation knows {scheme!r}"
                if self.fallbacks
                else FSSPEC_HINT
            )
            if self.broken:
                hint += "; plugins that failed to load: " + ", ".join(
                    f"{b.name} ({b.error})" for b in self.broken.values()
                )
            if plugin is not None:
                hint = f"plugin {plugin!r} does not answer {scheme!r}; {hint}"
            raise UnknownSchemeError(scheme, installed, hint)
        return found[0]

    def plugins(self) -> list[PluginInfo]:
        """Loaded plugins with what each registered, then those that failed to load."""
        out = []
        for name, (package, version) in self._plugins.items():
            out.append(
                PluginInfo(
                    name,
                    package,
                    version,
                    tuple(s for s, e in self.backends.items() if e.plugin == name),
                    tuple(s for s, e in self.fallbacks.items() if e.plugin == name),
                    tuple(w for w, e in self.wrappers.items() if e.plugin == name),
                )
            )
        return out + list(self.broken.values())


def _allowed(env: str | None) -> set[str] | None:
    if env is None:
        return None
    return {n.strip() for n in env.split(",") if n.strip()}


def load_registry(extra_plugins: Iterable[tuple[str, Any]] = ()) -> Registry:
    """Build a registry from the entry-point group (filtered by ``NANOSESSION_PLUGINS``)."""
    registry = Registry()
    allowed = _allowed(os.environ.get(ENV_PLUGINS))
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if allowed is not None and ep.name not in allowed:
            logger.debug("plugin {} skipped by {}", ep.name, ENV_PLUGINS)
            continue
        if ep.name in registry._plugins:
            continue  # the same distribution seen twice on sys.path
        dist = getattr(ep, "dist", None)
        package = dist.metadata["Name"] if dist else None
        version = dist.version if dist else None
        try:
            plugin = ep.load()
        except Exception as exc:  # one broken plugin must not take every backend down
            logger.warning("plugin {} ({}) failed to load: {!r}", ep.name, ep.value, exc)
            registry.broken[ep.name] = PluginInfo(
                ep.name, package, version, error=f"{type(exc).__name__}: {exc}"
            )
            continue
        registry.add_plugin(plugin, ep.name, package=package, version=version)
        logger.debug("plugin {} loaded", ep.name)
    for name, plugin in extra_plugins:
        registry.add_plugin(plugin, name)
    return registry


_lock = threading.Lock()
_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _default
    with _lock:
        if _default is None:
            _default = load_registry()
        return _default


def reset_registry() -> None:
    """Forget the loaded plugins (tests, or after changing ``NANOSESSION_PLUGINS``)."""
    global _default
    with _lock:
        _default = None


def list_plugins() -> list[PluginInfo]:
    """Installed plugins with their schemes, wrappers and versions."""
    return default_registry().plugins()
