"""The ``zlib`` and ``fernet`` wrappers over three backends: local files, the SQLite example
and S3 (moto over real HTTP). What is stored is checked on the medium itself."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.fernet import Fernet
from nanosession_wrappers.compression import ZlibWrapper
from nanosession_wrappers.encryption import ENV_KEY
from nanosession_wrappers.lazy import Mapped

from nanosession import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    EncodedDataError,
    SessionManager,
    SessionRecord,
    Store,
    Update,
    open_store,
)

KEY = Fernet.generate_key()
SECRET = "tell-no-one-7f3a"
Opener = Callable[..., Store]


def fernet(key: bytes | list[bytes] = KEY) -> tuple[str, dict[str, Any]]:
    return ("fernet", {"key": key})


def chat(n: int, start: int = 0, size: int = 40) -> list[dict[str, Any]]:
    return [{"role": "user" if i % 2 == 0 else "assistant",
             "content": f"{SECRET} #{i} " + "lorem ipsum " * size} for i in range(start, start + n)]


@pytest.fixture(params=["local", "sqlite", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Opener, Callable[[], bytes]]:
    """``(open(wrappers=...), stored_bytes())`` for a fresh location on one backend."""
    if request.param == "local":
        root = tmp_path / "sessions"
        return (lambda **kw: open_store(str(root), **kw),
                lambda: b"".join(p.read_bytes() for p in sorted(root.iterdir())))
    if request.param == "sqlite":
        path = tmp_path / "s.sqlite"
        return (lambda **kw: open_store(f"sqlite://{path}", **kw),
                lambda: b"".join(p.read_bytes() for p in sorted(tmp_path.glob("s.sqlite*"))))
    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    prefix = f"w-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

    def stored() -> bytes:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return b"".join(client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                        for o in listed)

    return (lambda **kw: open_store(f"s3://{bucket}/{prefix}?endpoint_url={endpoint}", **kw),
            stored)


@pytest.mark.parametrize("wrapper", ["zlib", fernet()], ids=["zlib", "fernet"])
def test_round_trip_with_appends_and_rewrites(backend: Any, wrapper: Any) -> None:
    opener, stored = backend
    with opener(wrappers=[wrapper]) as store:
        record = SessionRecord("chat:1", chat(3), {"title": "Plans", "n": 1})
        version = store.save(record)
        for _ in range(3):
            count = len(record.messages)
            record.messages = [*record.messages, *chat(2, count)]
            version = store.save(record, mode=Update(version), unchanged=count)
        record.messages = record.messages[2:]  # an edit: everything is rewritten
        record.metadata = {"title": "Plans", "n": 2}
        store.save(record, mode=Update(version))
        loaded = store.load("chat:1")
        assert loaded.messages == record.messages and loaded.metadata == record.metadata
        assert "_encoding" not in loaded.extra
    data = stored()
    assert b"lorem ipsum lorem" not in data, "message text stored uncompressed/unencrypted"
    if wrapper != "zlib":
        assert SECRET.encode() not in data and b"Plans" not in data


@pytest.mark.parametrize("wrapper", ["zlib", fernet()], ids=["zlib", "fernet"])
def test_store_without_the_wrapper_refuses_encoded_data(backend: Any, wrapper: Any) -> None:
    opener, _ = backend
    with opener(wrappers=[wrapper]) as store:
        store.save(SessionRecord("k", chat(2)))
    with opener() as plain, pytest.raises(EncodedDataError) as info:
        plain.load("k")
    name = wrapper if isinstance(wrapper, str) else wrapper[0]
    assert info.value.key == "k" and f"wrappers=['{name}']" in str(info.value)


def test_wrong_fernet_key_fails_clearly(backend: Any) -> None:
    opener, _ = backend
    with opener(wrappers=[fernet()]) as store:
        store.save(SessionRecord("k", chat(2), {"title": "x"}))
    with opener(wrappers=[fernet(Fernet.generate_key())]) as other:
        with pytest.raises(EncodedDataError, match="wrong key") as info:
            other.load("k")
        assert "gAAAA" not in str(info.value)  # no ciphertext in the message
        with pytest.raises(ConflictError):  # and its create cannot clobber the session
            other.save(SessionRecord("k", []))


@pytest.mark.parametrize("wrapper", ["zlib", fernet()], ids=["zlib", "fernet"])
def test_listing_never_shows_payloads(backend: Any, wrapper: Any) -> None:
    opener, _ = backend
    with opener(wrappers=[wrapper]) as store:
        store.save(SessionRecord("k", chat(4), {"title": "Trip"}))
        (info,) = store.list()
        assert info.key == "k" and info.preview is None and info.error is None
        assert info.title == ("Trip" if wrapper == "zlib" else None)
        assert info.message_count in (None, 4)


def test_fernet_key_rotation(backend: Any) -> None:
    opener, _ = backend
    old, new = KEY, Fernet.generate_key()
    with opener(wrappers=[fernet(old)]) as store:
        version = store.save(SessionRecord("k", chat(2)))
    with opener(wrappers=[fernet([new, old])]) as rotated:
        record = rotated.load("k")
        record.messages = [*record.messages, *chat(1, 2)]
        rotated.save(record, mode=Update(record.version or version), unchanged=2)
        assert rotated.load("k").messages == chat(3)
    with opener(wrappers=[fernet(new)]) as only_new:
        if only_new.capabilities.append:  # appended: the old messages keep the old key
            with pytest.raises(EncodedDataError, match="message 0"):
                only_new.load("k")
        else:
            assert only_new.load("k").messages == chat(3)


def test_plain_sessions_migrate_on_their_next_save(backend: Any) -> None:
    """Enabling a wrapper on an existing store: plain sessions load, and stay loadable
    after an append leaves their old messages plain; nothing else may be plain."""
    opener, stored = backend
    with opener() as plain:
        plain.save(SessionRecord("k", chat(3), {"title": "old"}))
    with opener(wrappers=[fernet()]) as store:
        manager = SessionManager(store)
        session = manager.get_or_create("k")
        assert len(session.messages) == 3
        session.add_message("user", "appended")
        manager.save(session)
        if store.capabilities.append:  # really appended: the old messages are still plain
            assert SECRET.encode() in stored()
        assert [m["content"] for m in store.load("k").messages][-1] == "appended"
        record = store.load("k")
        record.metadata = {"title": "rewritten"}
        store.save(record, mode=Update(record.version or ""))  # full rewrite
        assert store.load("k").messages == [*chat(3), record.messages[-1]]
    if store.backend_name == "local":  # (SQLite may keep old text in free pages until reused)
        assert SECRET.encode() not in stored()
    with opener() as plain, pytest.raises(EncodedDataError):
        plain.load("k")


def test_tampered_plain_message_is_refused(tmp_path: Path) -> None:
    """Only the recorded plain prefix may be unencrypted: an injected line is rejected."""
    with open_store(str(tmp_path), wrappers=[fernet()]) as store:
        store.save(SessionRecord("k", chat(2)))
        path = store.backend.path("k")  # type: ignore[attr-defined]
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join([lines[0], b'{"role":"user","content":"forged"}\n',
                                   *lines[2:]]))
        with pytest.raises(EncodedDataError, match="message 0 is not a fernet envelope"):
            store.load("k")


def test_wrapper_order_is_checked(tmp_path: Path) -> None:
    with open_store(str(tmp_path), wrappers=[fernet(), "zlib"]) as store:
        store.save(SessionRecord("k", chat(2)))
        assert store.load("k").messages == chat(2)
    swapped = open_store(str(tmp_path), wrappers=["zlib", fernet()])
    with swapped, pytest.raises(EncodedDataError, match="order"):
        swapped.load("k")
    partial = open_store(str(tmp_path), wrappers=[fernet()])
    with partial, pytest.raises(EncodedDataError, match="zlib"):
        partial.load("k")


def test_callers_record_is_never_modified(tmp_path: Path) -> None:
    with open_store(str(tmp_path), wrappers=["zlib"]) as store:
        messages, metadata, extra = chat(3), {"title": "t"}, {"kept": 1}
        record = SessionRecord("k", messages, metadata, extra=extra)
        store.save(record)
        assert record.messages is messages and messages == chat(3)
        assert record.metadata is metadata and metadata == {"title": "t"}
        assert record.extra is extra and extra == {"kept": 1}
        with pytest.raises(ConflictError):  # the fields are restored after a failure too
            store.save(SessionRecord("k", messages, metadata, extra=extra), mode="create")
        assert store.load("k").extra == {"kept": 1}


class CountingZlib(ZlibWrapper):
    def __init__(self) -> None:
        super().__init__(min_size=0)
        self.sealed = 0

    def seal(self, value: Any) -> Any:
        self.sealed += 1
        return super().seal(value)


@pytest.mark.parametrize("url", ["local", "sqlite"])
def test_an_append_encodes_only_the_new_messages(tmp_path: Path, url: str) -> None:
    counting = CountingZlib()
    target = str(tmp_path) if url == "local" else f"sqlite://{tmp_path}/s.sqlite"
    with open_store(target, wrappers=[counting]) as store:
        record = SessionRecord("k", chat(500, size=2))
        version = store.save(record)
        assert counting.sealed == 501  # every message, plus the metadata
        counting.sealed = 0
        record.messages = [*record.messages, *chat(1, 500)]
        store.save(record, mode=Update(version), unchanged=500)
        assert counting.sealed == 2, "an append re-encoded stored messages"
        assert store.load("k").messages == record.messages


def test_mapped_is_lazy_and_list_like() -> None:
    calls: list[int] = []
    mapped = Mapped([10, 20, 30, 40], lambda i, v: calls.append(i) or v + 1)
    tail = mapped[2:]
    assert calls == [] and len(tail) == 2 and isinstance(tail, Mapped)
    assert list(tail) == [31, 41] and calls == [2, 3]
    assert mapped[-1] == 41 and calls == [2, 3]  # cached, shared with the slice
    assert list(mapped[::-2]) == [41, 21] and mapped[1:3][0] == 21
    with pytest.raises(IndexError):
        mapped[4]
    assert list(mapped[10:]) == []


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    with pytest.raises(ConfigurationError, match=ENV_KEY):
        open_store(str(tmp_path), wrappers=["fernet"])
    with pytest.raises(ConfigurationError, match="invalid fernet key") as info:
        open_store(str(tmp_path), wrappers=[fernet(b"not-a-real-key-but-secret")])
    assert "not-a-real-key" not in str(info.value)
    with pytest.raises(ConfigurationError, match="bad options"):
        open_store(str(tmp_path), wrappers=[("zlib", {"levle": 3})])
    with pytest.raises(ConfigurationError, match="level"):
        open_store(str(tmp_path), wrappers=[("zlib", {"level": 42})])
    with pytest.raises(ConfigurationError, match="unknown wrapper"):
        open_store(str(tmp_path), wrappers=["rot13"])
    monkeypatch.setenv(ENV_KEY, f"{Fernet.generate_key().decode()},{KEY.decode()}")
    with open_store(str(tmp_path), wrappers=[fernet()]) as store:
        store.save(SessionRecord("k", chat(1)))
    with open_store(str(tmp_path), wrappers=["fernet"]) as from_env:  # second key decrypts
        assert from_env.load("k").messages == chat(1)


def test_missing_cryptography_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.fernet", None)  # import now fails
    with pytest.raises(BackendUnavailableError, match=r"pip install 'nanosession\[crypto\]'"):
        open_store(str(tmp_path), wrappers=[fernet()])


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_KEY, raising=False)
    yield
