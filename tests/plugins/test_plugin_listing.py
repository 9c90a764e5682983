"""``list_plugins()`` and the registry show every installed plugin with what it offers."""

from __future__ import annotations

from importlib import metadata

import nanosession_sqlite
import pytest

from nanosession import Capabilities, list_plugins
from nanosession.registry import ENV_PLUGINS, default_registry, load_registry


def test_installed_plugins_are_listed_with_versions() -> None:
    plugins = {p.name: p for p in list_plugins()}
    sqlite = plugins["sqlite"]
    assert (sqlite.package, sqlite.version, sqlite.schemes) == (
        "nanosession-sqlite", metadata.version("nanosession-sqlite"), ("sqlite",))
    assert plugins["wrappers"].wrappers == ("zlib", "fernet")
    assert plugins["wrappers"].schemes == ()
    assert "file" in plugins["local"].schemes


def test_capabilities_are_reachable_before_any_store_is_opened() -> None:
    registry = default_registry()
    assert registry.backends["sqlite"].capabilities == nanosession_sqlite.CAPABILITIES
    for scheme, entry in registry.backends.items():  # every specific backend declares them
        assert isinstance(entry.capabilities, Capabilities), scheme
    assert {"zlib", "fernet"} <= set(registry.wrappers)
    assert all(w.description for w in registry.wrappers.values())


def test_env_var_limits_which_plugins_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PLUGINS, "sqlite, wrappers")
    registry = load_registry()
    assert sorted(p.name for p in registry.plugins()) == ["sqlite", "wrappers"]
    assert sorted(registry.backends) == ["sqlite"]
    monkeypatch.setenv(ENV_PLUGINS, "")
    assert load_registry().plugins() == []
