"""Per-protocol guarantees of the fsspec backend, measured on the real servers."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from loguru import logger
from nanosession_fsspec.backend import HEAD, TAIL
from nanosession_fsspec.protocols import protocol_name

from nanosession import (
    BackendUnavailableError,
    CapabilityError,
    ConflictError,
    SessionRecord,
    Update,
    jsonl,
    open_store,
)
from nanosession.keys import storage_name
from nanosession.registry import default_registry

if TYPE_CHECKING:
    from conftest import Target

FIXTURES = Path(__file__).parent.parent / "fixtures"
DOCS = Path(__file__).parent.parent.parent / "docs" / "fsspec.md"
NANOBOT_KEYS = {"telegram:12345": 7, "slack:C01:T_2": 3, "cli:direct": 2}
RACERS = 6


def record(key: str, n: int = 2, **meta: object) -> SessionRecord:
    return SessionRecord(key, [{"role": "user", "content": f"m{i}"} for i in range(n)],
                         metadata=dict(meta))


def race(workers: list[Callable[[], object]]) -> list[object]:
    """Run the callables at the same instant in threads; return results or exceptions."""
    barrier = threading.Barrier(len(workers))
    results: list[object] = [None] * len(workers)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = workers[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def docs_table() -> dict[str, dict[str, bool]]:
    """The guarantees table of docs/fsspec.md: protocol -> column -> yes/no."""
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith("| `")]
    header = next(line for line in DOCS.read_text().splitlines()
                  if line.startswith("| protocol"))
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    table = {}
    for row in rows:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip("|"))]
        name = re.sub(r"[`]", "", cells[0]).split()[0]
        values = [cell.startswith("yes") for cell in cells[1:]]
        table[name] = dict(zip(columns, values, strict=True))
    return table


COLUMNS = {"atomic replace": "atomic_write", "exclusive create": "exclusive_create",
           "compare-and-swap": "compare_and_swap", "ranged reads": "ranged_reads"}


def test_docs_table_states_what_each_protocol_claims(target: Target) -> None:
    caps = target.open().capabilities
    row = docs_table()[target.protocol]
    assert {col: getattr(caps, attr) for col, attr in COLUMNS.items()} == {
        col: row[col] for col in COLUMNS
    }
    assert not caps.append and not caps.durable  # remote append is emulated or ignored


def test_exclusive_create_has_exactly_one_winner_in_memory(
    make_target: Callable[[str], Target]
) -> None:
    """memory:// writers all live in this process: the directory lock is the guarantee."""
    target = make_target("memory")
    stores = [target.open() for _ in range(RACERS)]
    assert stores[0].capabilities.exclusive_create
    for round_ in range(3):
        key = f"race:{round_}"
        results = race([lambda s=s, i=i, key=key: s.save(record(key, i + 1), mode="create")
                        for i, s in enumerate(stores)])
        winners = [r for r in results if isinstance(r, str)]
        assert len(winners) == 1, results
        assert all(isinstance(r, ConflictError) for r in results if r not in winners)
        assert stores[0].load(key).version == winners[0]


@pytest.mark.parametrize("protocol", ["local", "sftp"])
def test_exclusive_create_is_atomic_on_the_server(
    make_target: Callable[[str], Target], protocol: str
) -> None:
    """Racing creators on separate connections, bypassing this process's directory lock
    (as separate processes would): the server's O_EXCL lets exactly one win."""
    target = make_target(protocol)
    backends = [target.open().backend for _ in range(RACERS)]
    assert target.open().capabilities.exclusive_create
    for round_ in range(3):
        key = f"race:{round_}"
        path = backends[0].path(key)
        data = [jsonl.encode(record(key, i + 1)) for i in range(RACERS)]
        results = race([lambda b=b, d=d, key=key, path=path: b._create(key, path, d)
                        for b, d in zip(backends, data, strict=True)])
        winners = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
        assert len(winners) == 1, results
        assert all(isinstance(r, ConflictError) for i, r in enumerate(results) if i != winners[0])
        assert len(target.open().load(key).messages) == winners[0] + 1


@pytest.mark.parametrize("protocol", ["memory", "local", "sftp", "ftp", "s3", "webdav"])
def test_readers_never_see_half_a_session(
    make_target: Callable[[str], Target], protocol: str
) -> None:
    """While one client replaces a 600 kB session, another reads it raw, over and over.

    Where the backend claims atomic_write, every read is the old or the new session. On
    WebDAV (wsgidav deletes the target before MOVE) a read may find nothing, never half.
    """
    target = make_target(protocol)
    store = target.open()
    raw = target.open().backend.fs  # its own connection; no lock of this process
    path = store.backend.path("k")
    records = [SessionRecord("k", [{"role": "user", "content": c * 600}] * 1000)
               for c in "01"]
    payloads = {jsonl.encode(r) for r in records}
    store.save(records[0])
    stop = threading.Event()
    seen: list[str] = []

    def read() -> None:
        while not stop.is_set():
            try:
                data = raw.cat_file(path)
            except FileNotFoundError:
                seen.append("missing")
                continue
            seen.append("whole" if data in payloads else "partial")

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:  # the reader is really reading
        time.sleep(0.01)
    try:
        for i in range(1, 9):
            store.save(records[i % 2], mode="overwrite")
    finally:
        stop.set()
        reader.join(30)
    assert seen.count("whole") > 0
    if store.capabilities.atomic_write:
        assert set(seen) == {"whole"}, (seen.count("partial"), seen.count("missing"))
    else:
        assert "partial" not in seen


def test_compare_and_swap_has_exactly_one_winner_in_memory(
    make_target: Callable[[str], Target]
) -> None:
    target = make_target("memory")
    stores = [target.open() for _ in range(RACERS)]
    assert stores[0].capabilities.compare_and_swap
    stores[0].save(record("k"))
    for _ in range(3):
        copies = [s.load("k") for s in stores]
        for i, rec in enumerate(copies):
            rec.messages = [*rec.messages, {"role": "user", "content": f"writer {i}"}]
        results = race([lambda s=s, r=r: s.save(r) for s, r in zip(stores, copies, strict=True)])
        winners = [i for i, r in enumerate(results) if isinstance(r, str)]
        assert len(winners) == 1, results
        assert stores[0].load("k").messages[-1]["content"] == f"writer {winners[0]}"


@pytest.mark.parametrize("protocol", ["ftp", "sftp"])
def test_one_store_can_be_shared_by_threads(
    make_target: Callable[[str], Target], protocol: str
) -> None:
    """ftplib's single connection must not be used by two threads at once."""
    store = make_target(protocol).open()

    def work(i: int) -> int:
        for j in range(4):
            store.save(record(f"k{i}", j + 1), mode="overwrite")
            assert len(store.load(f"k{i}").messages) == j + 1
        return i

    assert race([lambda i=i: work(i) for i in range(4)]) == [0, 1, 2, 3]
    assert sorted(i.key for i in store.list()) == ["k0", "k1", "k2", "k3"]


@pytest.mark.parametrize("protocol", ["ftp", "webdav"])
def test_strict_refuses_guarantees_the_protocol_cannot_give(
    make_target: Callable[[str], Target], protocol: str
) -> None:
    target = make_target(protocol)
    lenient, strict = target.open(), target.open(strict="true")  # as from a query string
    assert not strict.capabilities.exclusive_create and not strict.capabilities.compare_and_swap
    with pytest.raises(CapabilityError, match="exclusive"):
        strict.save(record("k"), mode="create")
    version = lenient.save(record("k"))  # best effort: check-then-write
    with pytest.raises(CapabilityError, match="compare-and-swap"):
        strict.save(record("k", 3), mode=Update(version))
    with pytest.raises(CapabilityError):
        strict.delete("k", version=version)
    strict.save(record("k", 3), mode="overwrite")
    assert len(lenient.load("k").messages) == 3


@pytest.mark.parametrize("protocol", ["ftp", "webdav", "sftp"])
def test_listing_details_use_ranged_reads(
    make_target: Callable[[str], Target], protocol: str
) -> None:
    """A 4 MB session is listed from its head and tail: the server sends a small part.

    FTP can only abort a transfer (REST + ABOR), and on loopback the server sends megabytes
    before the abort lands, so FTP does not claim ranged reads; its listing must still be right.
    """
    target = make_target(protocol)
    store = target.open()
    big = [{"role": "user", "content": "first question"}] + [
        {"role": "tool", "content": "x" * 4000, "tool_call_id": str(i)} for i in range(1000)
    ]
    store.save(SessionRecord("big", big, metadata={"title": "Big one"}))
    size = store.list(details=False)[0].size
    assert size is not None and size > 4_000_000
    server = target.server
    assert server is not None
    before = server.bytes_sent
    store.backend.fs.cat_file(store.backend.path("big"))  # the counter sees whole reads
    assert server.bytes_sent - before >= size
    before = server.bytes_sent
    [info] = store.list()
    sent = server.bytes_sent - before
    assert (info.title, info.preview) == ("Big one", "first question")
    # a whole-file rewrite has one metadata line, at the head: jsonl.info only trusts a
    # count from a trailing (tail) metadata line, so a bounded read cannot give the count
    assert info.message_count is None and info.size == size
    if store.capabilities.ranged_reads:
        assert sent <= 2 * (HEAD + TAIL), f"listing read {sent} of {size} bytes"
    else:
        assert protocol == "ftp"


def test_missing_implementation_names_the_package_to_install() -> None:
    with pytest.raises(BackendUnavailableError, match="pip install gcsfs"):
        open_store("gs://bucket/sessions")
    with pytest.raises(BackendUnavailableError, match="adlfs"):
        open_store("simplecache::abfs://container/sessions")


def test_fsspec_answers_only_unclaimed_schemes_unless_asked() -> None:
    registry = default_registry()
    assert registry.backend_for("ftp").plugin == "fsspec"
    assert registry.backend_for("sftp").fallback
    assert registry.backend_for("file").plugin == "local"  # the specific plugin wins
    assert registry.backend_for("file", "fsspec").plugin == "fsspec"
    assert registry.backend_for("s3", "fsspec").plugin == "fsspec"


def test_chained_url_works_and_claims_nothing(tmp_path: Path) -> None:
    store = open_store(f"simplecache::file://{tmp_path}/chained")
    assert store.backend_name == "fsspec"
    caps = store.capabilities
    assert not (caps.atomic_write or caps.exclusive_create or caps.compare_and_swap)
    store.save(record("k", 3))
    assert len(store.load("k").messages) == 3
    assert (tmp_path / "chained" / (storage_name("k") + ".jsonl")).is_file()
    assert [i.key for i in store.list()] == ["k"]


def test_s3_through_s3fs_is_a_second_path_to_the_same_objects(
    make_target: Callable[[str], Target]
) -> None:
    target = make_target("s3")
    store = target.open()
    assert protocol_name(store.backend.fs) == "s3"
    assert type(store.backend.fs).__module__.startswith("s3fs")
    store.save(record("s3:key", 2, title="via s3fs"))
    with pytest.raises(ConflictError):  # If-None-Match: * refused by the server
        target.open().save(record("s3:key"), mode="create")
    import boto3

    bucket, _, prefix = target.url.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=target.options["client_kwargs"]["endpoint_url"])
    body = client.get_object(Bucket=bucket, Key=f"{prefix}/{storage_name('s3:key')}.jsonl")
    assert b'"title":"via s3fs"' in body["Body"].read()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    logger.enable("nanosession")
    logger.enable("nanosession_fsspec")
    sink = logger.add(lambda m: lines.append(str(m) + repr(m.record["extra"])), level="TRACE")
    yield lines
    logger.remove(sink)
    logger.disable("nanosession")
    logger.disable("nanosession_fsspec")


def test_credentials_are_never_logged(
    make_target: Callable[[str], Target], log_lines: list[str]
) -> None:
    target = make_target("ftp")
    secret = target.options["password"]
    store = target.open()
    store.save(record("k"))
    store.backend.fs.pipe_file(store.backend.path("k"), b"42\n")
    store.list()
    store.repair("k")
    with pytest.raises(Exception) as failed:
        open_store(target.url, backend="fsspec", username="nano", password="wrong-secret-1")
    store.close()
    assert log_lines, "nothing was logged: the test would prove nothing"
    assert not any(secret in line or "wrong-secret-1" in line for line in log_lines)
    assert "wrong-secret-1" not in str(failed.value)


@pytest.mark.parametrize("protocol", ["memory", "ftp", "webdav", "sftp"])
def test_directory_copied_from_the_local_backend_reads_the_same(
    make_target: Callable[[str], Target], tmp_path: Path, protocol: str
) -> None:
    local = open_store(str(tmp_path / "local"))
    for i, key in enumerate(["a:1", "b/2", "~tilde", "long" * 40]):
        local.save(record(key, i + 1, title=key[:10]))
    target = make_target(protocol)
    store = target.open()
    for path in (tmp_path / "local").iterdir():
        store.backend.fs.pipe_file(f"{store.backend.root}/{path.name}", path.read_bytes())
    for key in ["a:1", "b/2", "~tilde", "long" * 40]:
        mine, theirs = store.load(key), local.load(key)
        assert (mine.messages, mine.metadata, mine.updated_at) == (
            theirs.messages, theirs.metadata, theirs.updated_at)
    assert sorted(i.key for i in store.list()) == sorted(i.key for i in local.list())
    # and back: what the fsspec backend wrote, the local backend reads
    store.save(record("from fsspec", 4))
    data = store.backend.fs.cat_file(store.backend.path("from fsspec"))
    (tmp_path / "local" / (storage_name("from fsspec") + ".jsonl")).write_bytes(data)
    assert len(local.load("from fsspec").messages) == 4


@pytest.mark.parametrize("protocol", ["memory", "sftp"])
def test_nanobot_files_are_read_migrated_and_deleted(
    make_target: Callable[[str], Target], tmp_path: Path, protocol: str
) -> None:
    target = make_target(protocol)
    store = target.open()
    fs, root = store.backend.fs, store.backend.root
    for release in ("nanobot-v0.2.0", "nanobot-v0.3.5"):
        for f in (FIXTURES / release).iterdir():
            if release.endswith("0.3.5") and f.name.startswith("Y2xp"):
                continue  # cli:direct stays v0.2.0-only, to be migrated below
            fs.pipe_file(f"{root}/{f.name}", f.read_bytes())
    listed = {i.key: i for i in store.list()}
    assert {k: i.message_count for k, i in listed.items()} == NANOBOT_KEYS
    assert listed["telegram:12345"].title == "Reading notes"
    assert store.get("cli_direct") is None  # a lossy name never answers another key
    rec = store.load("cli:direct")
    assert rec.version is not None and rec.version.startswith("L")
    rec.messages = [*rec.messages, {"role": "user", "content": "more"}]
    store.save(rec)
    fs.invalidate_cache()
    names = {p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)}
    assert "cli_direct.jsonl" not in names and storage_name("cli:direct") + ".jsonl" in names
    assert len(store.load("cli:direct").messages) == 3
    assert store.delete("slack:C01:T_2") is True  # both the 0.3.5 file and the legacy copy
    assert store.get("slack:C01:T_2") is None
    assert "slack_C01_T_2.jsonl" not in {p.rsplit("/", 1)[-1] for p in fs.ls(root, False)}


def test_local_target_root_is_a_plain_directory(
    make_target: Callable[[str], Target]
) -> None:
    target = make_target("local")
    store = target.open()
    store.save(record("k"))
    root = Path(store.backend.root)
    assert [p.name for p in root.iterdir()] == [storage_name("k") + ".jsonl"]
    shutil.rmtree(root)
    assert store.list() == [] and store.get("k") is None


def test_close_removes_only_stale_temp_files(make_target: Callable[[str], Target]) -> None:
    target = make_target("local")
    store = target.open()
    store.save(record("k"))
    root = Path(store.backend.root)
    stale, fresh = root / ".x.jsonl.0a0a.tmp", root / ".y.jsonl.0b0b.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"in flight")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    store.close()
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [fresh.name, storage_name("k") + ".jsonl"])


def test_webdav_urls_become_webdav4_options() -> None:
    from nanosession_fsspec import _webdav

    url, options = _webdav("webdav://ann:p%40ss@dav.example:8080/srv/sessions", {"timeout": 5})
    assert url == "webdav://srv/sessions"
    assert options == {"timeout": 5, "base_url": "http://dav.example:8080", "auth": ("ann", "p@ss")}
    given = {"base_url": "https://dav.example/remote.php/dav"}
    assert _webdav("webdav://sessions", given) == ("webdav://sessions", given)
