"""Plugin discovery, URL parsing and the Store's error translation."""

from __future__ import annotations

from typing import Any

import pytest

import nanosession
from nanosession import hookimpl, open_store
from nanosession.errors import (
    ConfigurationError,
    InvalidURLError,
    PluginError,
    StorageError,
    UnknownSchemeError,
)
from nanosession.registry import Registry, load_registry, reset_registry
from nanosession.store import Store, split_url


class MemoryBackend:
    """The smallest backend: a dict. Enough to exercise dispatch, not a conformance target."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = options
        self.data: dict[str, nanosession.SessionRecord] = {}

    @hookimpl
    def nanosession_load(self, key: str) -> nanosession.SessionRecord | None:
        return self.data.get(key)


class MemoryPlugin:
    @hookimpl
    def nanosession_register_backends(self, register: Any) -> None:
        register("mem", MemoryBackend, description="dict")


class BrokenBackend:
    @hookimpl
    def nanosession_load(self, key: str) -> None:
        raise OSError(5, "Input/output error")


def test_split_url_schemes_paths_and_queries() -> None:
    assert split_url("sessions") == ("file", "sessions", {})
    assert split_url("/var/lib/x?y") == ("file", "/var/lib/x?y", {})
    assert split_url(r"C:\data\sessions") == ("file", r"C:\data\sessions", {})
    assert split_url("file:///tmp/s") == ("file", "file:///tmp/s", {})
    assert split_url("S3://bucket/p?endpoint_url=http%3A%2F%2Fh%3A1&x=") == (
        "s3", "S3://bucket/p", {"endpoint_url": "http://h:1", "x": ""},
    )
    assert split_url("simplecache::s3://b/p")[0] == "simplecache"


@pytest.mark.parametrize("bad", ["", "   ", None, 42, "s3://b/p\x00"])
def test_split_url_rejects_garbage(bad: object) -> None:
    with pytest.raises(InvalidURLError):
        split_url(bad)


def test_unknown_scheme_lists_installed_and_hints_package() -> None:
    registry = Registry()
    registry.add_plugin(MemoryPlugin(), "mem")
    with pytest.raises(UnknownSchemeError) as info:
        open_store("s3://bucket/x", registry=registry)
    message = str(info.value)
    assert "'s3'" in message and "mem" in message and "nanosession[s3]" in message
    with pytest.raises(UnknownSchemeError, match=r"nanosession\[fsspec\]"):
        open_store("gcs://bucket/x", registry=registry)


def test_duplicate_scheme_is_an_error() -> None:
    registry = Registry()
    registry.add_plugin(MemoryPlugin(), "one")
    with pytest.raises(PluginError, match="'mem' registered by both 'one' and 'two'"):
        registry.add_plugin(MemoryPlugin(), "two")


def test_fallback_yields_to_specific_registration_and_can_be_chosen() -> None:
    class Fallback:
        @hookimpl
        def nanosession_register_backends(self, register: Any) -> None:
            register("mem", lambda url, **o: ("fallback", url), fallback=True)

    registry = Registry()
    registry.add_plugin(Fallback(), "fb")
    registry.add_plugin(MemoryPlugin(), "mem")
    assert registry.backend_for("mem").plugin == "mem"
    assert registry.backend_for("MEM", "fb").plugin == "fb"
    with pytest.raises(UnknownSchemeError, match="plugin 'nope' does not answer"):
        registry.backend_for("mem", "nope")


def test_options_and_query_reach_the_factory() -> None:
    registry = Registry()
    registry.add_plugin(MemoryPlugin(), "mem")
    store = open_store("mem://x/y?region=eu&n=1", registry=registry, n="2")
    assert isinstance(store.backend, MemoryBackend)
    assert store.backend.url == "mem://x/y"
    assert store.backend.options == {"region": "eu", "n": "2"}
    with pytest.raises(ConfigurationError, match="unknown wrapper 'zz'"):
        open_store("mem://x", registry=registry, wrappers=["zz"])


def test_env_var_limits_loaded_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NANOSESSION_PLUGINS", "local")
    names = [p.name for p in load_registry().plugins()]
    assert names == ["local"]
    monkeypatch.setenv("NANOSESSION_PLUGINS", "")
    assert load_registry().plugins() == []
    monkeypatch.setenv("NANOSESSION_PLUGINS", "")
    reset_registry()
    with pytest.raises(UnknownSchemeError, match="installed: none"):
        open_store("/tmp/never-created-by-this-test")
    monkeypatch.delenv("NANOSESSION_PLUGINS")
    reset_registry()


def test_shipped_plugins_load_from_entry_points() -> None:
    plugins = {p.name: p for p in load_registry().plugins()}
    assert plugins["local"].schemes == ("file",)
    assert plugins["local"].package == "nanosession"


def test_backend_exceptions_become_storage_errors() -> None:
    store = Store(BrokenBackend())
    with pytest.raises(StorageError, match="load of 'k' failed in BrokenBackend: OSError") as info:
        store.get("k")
    assert isinstance(info.value.__cause__, OSError)


def test_store_rejects_invalid_put_mode_and_limit() -> None:
    store = Store(MemoryBackend("mem://"))
    with pytest.raises(ConfigurationError):
        store.save(nanosession.SessionRecord("k"), mode="upsert")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        store.list(limit=-1)


def test_a_broken_plugin_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    real = metadata.entry_points

    def with_broken(**kw: Any) -> Any:
        eps = list(real(**kw))
        if kw.get("group") == "nanosession":
            eps.append(metadata.EntryPoint("broken", "no_such_module_xyz", "nanosession"))
        return eps

    monkeypatch.setattr(metadata, "entry_points", with_broken)
    registry = load_registry()
    assert registry.backend_for("file").plugin == "local"
    broken = [p for p in registry.plugins() if p.error]
    assert [p.name for p in broken] == ["broken"] and "ModuleNotFoundError" in broken[0].error
    with pytest.raises(UnknownSchemeError, match=r"failed to load: broken \(ModuleNotFound"):
        registry.backend_for("nope")


def test_query_string_picks_backend_and_wrappers() -> None:
    class Wrap:
        @hookimpl
        def nanosession_register_wrappers(self, register: Any) -> None:
            register("tag", lambda **o: ("wrapper", o))

    registry = Registry()
    registry.add_plugin(MemoryPlugin(), "mem")
    registry.add_plugin(Wrap(), "wrap")
    with pytest.raises(ConfigurationError, match="unknown wrapper 'zz'"):
        open_store("mem://x?wrappers=tag,zz", registry=registry)
    with pytest.raises(UnknownSchemeError, match="plugin 'other' does not answer"):
        open_store("mem://x?backend=other", registry=registry)


def test_store_repr_hides_passwords() -> None:
    store = Store(MemoryBackend("mem://"), url="ftp://agent:s3cret@host/x?key=s3cret2")
    assert "s3cret" not in repr(store) and "agent:***@host/x?..." in repr(store)
