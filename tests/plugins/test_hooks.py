"""One test per hook of the contract, each driving that hook through pluggy.

``test_meta.py`` fails when a hook of ``nanosession.hookspecs`` has no ``test_hook_<name>``
here, so a new hook cannot land untested. A recording backend and a recording wrapper show
exactly what pluggy hands each implementation and what the caller gets back.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import datetime
from typing import Any

import pytest

from nanosession import (
    Capabilities,
    CapabilityError,
    ConfigurationError,
    ConflictError,
    PluginError,
    RepairReport,
    SessionInfo,
    SessionNotFoundError,
    SessionRecord,
    StorageError,
    Store,
    Update,
    hookimpl,
    open_store,
)
from nanosession.registry import Registry

T0 = datetime(2026, 1, 1, 12, 0)


class Recording:
    """A backend that records every call and answers from a dict."""

    capabilities = Capabilities(compare_and_swap=True)

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.data: dict[str, SessionRecord] = {}
        self.closed = 0

    @hookimpl
    def nanosession_load(self, key: str) -> SessionRecord | None:
        self.calls.append(("load", {"key": key}))
        return self.data.get(key)

    @hookimpl
    def nanosession_save(
        self, record: SessionRecord, mode: Any, unchanged: int, durable: bool
    ) -> str:
        self.calls.append(("save", {"mode": mode, "unchanged": unchanged, "durable": durable}))
        current = self.data.get(record.key)
        if mode == "create" and current is not None:
            raise ConflictError(record.key, "it already exists")
        if isinstance(mode, Update) and (current is None or current.version != mode.version):
            raise ConflictError(record.key)
        version = f"v{len(self.calls)}"
        self.data[record.key] = SessionRecord(record.key, list(record.messages),
                                              dict(record.metadata), T0, T0, version=version)
        return version

    @hookimpl
    def nanosession_delete(self, key: str, mode: Any) -> bool:
        self.calls.append(("delete", {"key": key, "mode": mode}))
        if isinstance(mode, Update) and getattr(self.data.get(key), "version", None) != \
                mode.version:
            raise ConflictError(key)
        return self.data.pop(key, None) is not None

    @hookimpl
    def nanosession_list(self, prefix: str, limit: int | None, details: bool) -> list[SessionInfo]:
        self.calls.append(("list", {"prefix": prefix, "limit": limit, "details": details}))
        keys = sorted(k for k in self.data if k.startswith(prefix))[:limit]
        return [SessionInfo(k, T0, title="t" if details else None) for k in keys]

    @hookimpl
    def nanosession_repair(self, key: str, dry_run: bool) -> RepairReport:
        self.calls.append(("repair", {"key": key, "dry_run": dry_run}))
        if key not in self.data:
            raise SessionNotFoundError(key)
        return RepairReport(key, (), len(self.data[key].messages))

    @hookimpl
    def nanosession_close(self) -> None:
        self.closed += 1


class Tagging:
    """A wrapper that sees every storage call on its way in and out."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.closed = 0

    @hookimpl(wrapper=True)
    def nanosession_load(self, key: str) -> Generator[None, Any, Any]:
        record = yield
        self.seen.append(f"load {key} -> {record is not None}")
        if record is not None:
            record.metadata = {**record.metadata, "wrapped": True}
        return record

    @hookimpl(wrapper=True)
    def nanosession_save(self, record: SessionRecord) -> Generator[None, Any, Any]:
        self.seen.append(f"save {record.key}")  # fewer arguments than the spec: allowed
        version = yield
        return version

    @hookimpl(wrapper=True)
    def nanosession_list(self, limit: int | None) -> Generator[None, Any, Any]:
        infos = yield
        self.seen.append(f"list limit={limit}")
        return [i for i in infos if i.key != "hidden"]

    @hookimpl
    def nanosession_close(self) -> None:
        self.closed += 1


@pytest.fixture
def parts() -> Iterator[tuple[Store, Recording, Tagging]]:
    backend, wrapper = Recording(), Tagging()
    store = Store(backend, [wrapper])
    yield store, backend, wrapper
    store.close()


def _registry(plugin: Any, name: str = "p") -> Registry:
    registry = Registry()
    registry.add_plugin(plugin, name, package="pkg", version="1.2")
    return registry


def test_hook_nanosession_register_backends() -> None:
    calls: list[Any] = []
    caps = Capabilities(append=True)

    class Plugin:
        @hookimpl
        def nanosession_register_backends(self, register: Any) -> None:
            calls.append(register)
            register("Rec", lambda url, **options: Recording(), description="d", capabilities=caps)

    registry = _registry(Plugin())
    assert len(calls) == 1  # called once, on the plugin being added
    entry = registry.backend_for("rec")  # schemes are case-insensitive
    assert (entry.scheme, entry.plugin, entry.capabilities, entry.description) == (
        "rec", "p", caps, "d")
    (info,) = registry.plugins()
    assert (info.name, info.package, info.version, info.schemes) == ("p", "pkg", "1.2", ("rec",))
    with open_store("rec://anything", registry=registry) as store:
        assert isinstance(store.backend, Recording)
    with pytest.raises(PluginError, match="registered by both"):
        registry.add_plugin(Plugin(), "q")


def test_hook_nanosession_register_wrappers() -> None:
    made: list[dict[str, Any]] = []

    class Plugin:
        @hookimpl
        def nanosession_register_backends(self, register: Any) -> None:
            register("rec", lambda url: Recording())

        @hookimpl
        def nanosession_register_wrappers(self, register: Any) -> None:
            register("tag", lambda **options: made.append(options) or Tagging(), description="t")

    registry = _registry(Plugin())
    assert registry.wrappers["tag"].description == "t"
    assert registry.plugins()[0].wrappers == ("tag",)
    with open_store("rec://x", registry=registry, wrappers=[("tag", {"level": 2})]) as store:
        store.save(SessionRecord("k", []))
        assert isinstance(store.wrappers[0], Tagging)
        assert store.wrappers[0].seen == ["save k"]
    assert made == [{"level": 2}]
    with pytest.raises(ConfigurationError, match="unknown wrapper 'nope'"):
        open_store("rec://x", registry=registry, wrappers=["nope"])

    class Again:
        @hookimpl
        def nanosession_register_wrappers(self, register: Any) -> None:
            register("tag", Tagging)

    with pytest.raises(PluginError, match="wrapper 'tag' registered by both 'p' and 'again'"):
        registry.add_plugin(Again(), "again")


def test_hook_nanosession_load(parts: tuple[Store, Recording, Tagging]) -> None:
    store, backend, wrapper = parts
    assert store.get("k") is None
    with pytest.raises(SessionNotFoundError):
        store.load("k")
    backend.data["k"] = SessionRecord("k", [{"role": "user", "content": "x"}], version="v0")
    loaded = store.load("k")
    assert loaded.version == "v0" and loaded.metadata == {"wrapped": True}
    assert backend.calls == [("load", {"key": "k"})] * 3
    assert wrapper.seen == ["load k -> False", "load k -> False", "load k -> True"]

    class Failing(Recording):
        @hookimpl
        def nanosession_load(self, key: str) -> SessionRecord | None:
            raise OSError("disk gone")

    with pytest.raises(StorageError, match="disk gone"):  # foreign errors are wrapped
        Store(Failing()).load("k")


def test_hook_nanosession_save(parts: tuple[Store, Recording, Tagging]) -> None:
    store, backend, wrapper = parts
    record = SessionRecord("k", [{"role": "user", "content": "a"}])
    first = store.save(record, unchanged=5)  # no version: "create", and unchanged is dropped
    assert record.version == first
    record.messages = [*record.messages, {"role": "user", "content": "b"}]
    second = store.save(record, unchanged=1, durable=True)  # version: Update(first)
    with pytest.raises(ConflictError):
        store.save(SessionRecord("k", []))
    with pytest.raises(ConfigurationError):
        store.save(record, mode="sideways")  # type: ignore[arg-type]
    assert [c[1] for c in backend.calls] == [
        {"mode": "create", "unchanged": 0, "durable": False},
        {"mode": Update(first), "unchanged": 1, "durable": True},
        {"mode": "create", "unchanged": 0, "durable": False},
    ]
    assert backend.data["k"].version == second != first
    assert wrapper.seen == ["save k"] * 3


def test_hook_nanosession_delete(parts: tuple[Store, Recording, Tagging]) -> None:
    store, backend, _ = parts
    version = store.save(SessionRecord("k", []))
    with pytest.raises(ConflictError):
        store.delete("k", version="stale")
    assert store.delete("k", version=version) is True
    assert store.delete("k") is False
    assert [c for c in backend.calls if c[0] == "delete"] == [
        ("delete", {"key": "k", "mode": Update("stale")}),
        ("delete", {"key": "k", "mode": Update(version)}),
        ("delete", {"key": "k", "mode": "overwrite"}),
    ]


def test_hook_nanosession_list(parts: tuple[Store, Recording, Tagging]) -> None:
    store, backend, wrapper = parts
    for key in ("a:1", "a:2", "hidden", "b"):
        store.save(SessionRecord(key, []))
    assert [i.key for i in store.list()] == ["a:1", "a:2", "b"]  # the wrapper filtered one
    assert [(i.key, i.title) for i in store.list("a:", limit=1, details=False)] == [("a:1", None)]
    with pytest.raises(ConfigurationError):
        store.list(limit=-1)
    assert [c[1] for c in backend.calls if c[0] == "list"] == [
        {"prefix": "", "limit": None, "details": True},
        {"prefix": "a:", "limit": 1, "details": False},
    ]
    assert wrapper.seen[-2:] == ["list limit=None", "list limit=1"]


def test_hook_nanosession_repair(parts: tuple[Store, Recording, Tagging]) -> None:
    store, backend, _ = parts
    store.save(SessionRecord("k", [{"role": "user", "content": "a"}]))
    report = store.repair("k", dry_run=True)
    assert report.ok and report.messages_kept == 1
    with pytest.raises(SessionNotFoundError):
        store.repair("missing")
    assert [c[1] for c in backend.calls if c[0] == "repair"] == [
        {"key": "k", "dry_run": True}, {"key": "missing", "dry_run": False}]

    class NoRepair:  # a backend without the hook: firstresult finds no answer
        @hookimpl
        def nanosession_load(self, key: str) -> None:
            return None

    with pytest.raises(CapabilityError, match="does not implement repair"):
        Store(NoRepair()).repair("k")


def test_hook_nanosession_close() -> None:
    backend, wrapper = Recording(), Tagging()
    store = Store(backend, [wrapper])
    with store:
        pass
    store.close()  # idempotent
    assert (backend.closed, wrapper.closed) == (1, 1)  # called on every plugin, once
