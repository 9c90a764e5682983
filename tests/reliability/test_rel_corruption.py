"""Corruption: mutated session files never crash load, and repair keeps what is intact.

Mutations start from a real file (a create plus three appends): byte flips, truncation at
every offset, invalid UTF-8, NUL bytes, huge lines, deep nesting, non-object lines,
duplicated, stale and missing metadata lines. The coverage-guided counterpart is
``tests/reliability/fuzz_reader.py`` (atheris).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from corruption import (
    FILE,
    KEY,
    Sample,
    count_mismatch,
    is_meta,
    line_ends,
    make_sample,
    parse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nanosession import CorruptSessionError, Store, jsonl, open_store

SAMPLE = make_sample()
HUGE = b'{"role":"user","content":"' + b"x" * 3_000_000 + b'"}\n'
DEEP = b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n"
JUNK_LINES = [
    b"\xff\xfe\xfd\n", b"\xc3\n", b"\x00\x00\x00\n", b'{"role":"user","content":"\x00"}\n',
    b"42\n", b"null\n", b'"text"\n', b"[]\n", b"true\n", b"{\n", b"}\n", b"\n", b"\r\n",
    b'{"_type":"metadata","metadata":null,"updated_at":null,"created_at":7}\n',
    b'{"_type":"metadata","key":"other","message_count":999}\n',
    b'{"_type":"provider_state","x":1}\n', b'{"_type":5}\n', DEEP, HUGE,
    b"[" * 100_000 + b"\n",
]


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    """A few random damaging edits of the sample file."""
    data = bytearray(SAMPLE.data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "drop_line", "dup_line"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            junk = draw(st.sampled_from(JUNK_LINES) | st.binary(min_size=1, max_size=40))
            line_start = data.rfind(b"\n", 0, at) + 1
            where = draw(st.sampled_from([at, line_start]))
            data[where:where] = junk
        else:
            lines = bytes(data).splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            if kind == "drop_line":
                del lines[i]
            else:
                lines.insert(draw(st.integers(0, len(lines))), lines[i])
            data = bytearray(b"".join(lines))
    return bytes(data)


def _store(tmp: str, data: bytes) -> tuple[Store, Path]:
    path = Path(tmp) / FILE
    path.write_bytes(data)
    return open_store(tmp, backend="local"), path


def _intact_before_last_commit(sample: Sample, data: bytes) -> set[int]:
    """Sample messages whose exact line survives, complete, before the last metadata line.

    Lines after the last metadata line are what a crash leaves of an append, and are
    rightly dropped; everything before it that is intact must be kept.
    """
    lines = [raw + b"\n" for raw in data.split(b"\n")]  # JSONL lines end at \n, nowhere else
    last_meta = max((i for i, raw in enumerate(lines) if is_meta(parse(raw))), default=-1)
    known = sample.message_lines()
    return {known[raw] for raw in lines[:last_meta] if raw in known}


class Raw:
    """Byte-level access to the session file under test, beside the store that reads it."""

    def __init__(self, store: Store, put: Callable[[bytes], None],
                 get: Callable[[str | None], bytes]) -> None:
        self.store, self.put, self.get = store, put, get


def check_load_and_repair(data: bytes, raw: Raw | None = None) -> None:
    """The oracle: typed errors only, repair keeps intact messages and the original bytes."""
    if raw is None:
        with tempfile.TemporaryDirectory() as tmp:
            store, path = _store(tmp, data)
            check_load_and_repair(data, Raw(store, path.write_bytes,
                                            lambda p: Path(p or path).read_bytes()))
        return
    store = raw.store
    raw.put(data)
    try:
        loaded = store.load(KEY)
    except CorruptSessionError:
        loaded = None
    else:
        assert all(isinstance(m, dict) for m in loaded.messages)
    store.list()  # a corrupt entry never breaks the listing
    dry = store.repair(KEY, dry_run=True)
    assert raw.get(None) == data and not dry.repaired
    report = store.repair(KEY)
    if not report.problems:
        assert loaded is not None and raw.get(None) == data and report.backup is None
        return
    assert report.repaired and report.backup is not None
    assert raw.get(report.backup) == data  # the corrupt original is kept
    repaired = store.load(KEY)  # repair always leaves a loadable session
    kept = {m.get("id") for m in repaired.messages}
    lost = _intact_before_last_commit(SAMPLE, data) - kept
    assert not lost, f"repair dropped intact messages {sorted(lost)}"
    assert store.repair(KEY).ok  # and a second repair finds nothing left to fix


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_mutated_files_load_or_raise_typed_and_repair_keeps_intact_messages(
    data: bytes,
) -> None:
    check_load_and_repair(data)


@pytest.mark.parametrize("junk", JUNK_LINES, ids=lambda b: repr(b[:12]))
@pytest.mark.parametrize("where", ["after_meta", "middle", "end"])
def test_every_junk_line_at_every_place(junk: bytes, where: str) -> None:
    lines = SAMPLE.lines()
    at = {"after_meta": 1, "middle": len(lines) // 2, "end": len(lines)}[where]
    data = b"".join([*lines[:at], junk, *lines[at:]])
    check_load_and_repair(data)
    if where == "end" and parse(junk.strip()) is None:  # garbage tail: no message lost
        with tempfile.TemporaryDirectory() as tmp:
            store, _ = _store(tmp, data)
            store.repair(KEY)
            assert [m["id"] for m in store.load(KEY).messages] == list(range(13))


@pytest.mark.parametrize("extra", [b'{"_type":5}\n', b'{"role":"user","content":"dup"}\n', None])
def test_surplus_line_before_the_last_commit_loses_no_message(extra: bytes | None) -> None:
    lines = SAMPLE.lines()
    data = b"".join([*lines[:2], extra or lines[1], *lines[2:]])
    assert count_mismatch(data)
    with tempfile.TemporaryDirectory() as tmp:
        store, _ = _store(tmp, data)
        try:
            ids = {m.get("id") for m in store.load(KEY).messages}
        except CorruptSessionError:  # refusing is fine, if repair then keeps everything
            store.repair(KEY)
            ids = {m.get("id") for m in store.load(KEY).messages}
        assert set(range(len(SAMPLE.messages))) <= ids


@pytest.mark.parametrize("drop", ["first_metadata", "every_metadata"])
def test_missing_metadata_keeps_every_message(drop: str) -> None:
    lines = SAMPLE.lines()
    metas = [i for i, raw in enumerate(lines) if is_meta(parse(raw))]
    gone = set(metas[:1] if drop == "first_metadata" else metas)
    data = b"".join(raw for i, raw in enumerate(lines) if i not in gone)
    with tempfile.TemporaryDirectory() as tmp:
        store, path = _store(tmp, data)
        report = store.repair(KEY)
        assert [m["id"] for m in store.load(KEY).messages] == list(range(len(SAMPLE.messages)))
        if drop == "every_metadata":
            assert report.problems and Path(report.backup or "").read_bytes() == data
        else:  # a superseded metadata line is redundant: nothing to repair
            assert report.ok and path.read_bytes() == data


def test_truncation_at_every_offset_loads_the_last_committed_state() -> None:
    """A cut file (what a crash mid-write leaves) loads exactly its last complete commit."""
    data = SAMPLE.data
    ends = line_ends(data)
    with tempfile.TemporaryDirectory() as tmp:
        store, path = _store(tmp, data)
        for cut in range(len(data) + 1):
            path.write_bytes(data[:cut])
            present = [count for end, count in ends if end <= cut]
            commits = [count for count in present if count is not None]
            messages = present.count(None)
            if not commits or commits[-1] > messages:  # not a crash remainder: refused
                with pytest.raises(CorruptSessionError):
                    store.load(KEY)
                continue
            rec = store.load(KEY)
            assert [m["id"] for m in rec.messages] == list(range(commits[-1])), cut
            if cut % 53 == 0:  # repair of a cut file keeps the commit and the cut bytes
                report = store.repair(KEY)
                assert not report.problems or Path(report.backup or "").read_bytes() == data[:cut]
                assert [m["id"] for m in store.load(KEY).messages] == list(range(commits[-1]))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048) | st.builds(lambda a, b: a + b, st.just(SAMPLE.data),
                                            st.binary(max_size=64)))
def test_decode_never_raises(data: bytes) -> None:
    parsed = jsonl.decode(data, KEY)
    assert all(isinstance(m, dict) for m in parsed.record.messages)
    assert 0 <= parsed.committed_end <= len(data)


def _damaged_samples() -> list[bytes]:
    """A fixed spread of damage for the backends that are slower to drive than files."""
    lines = SAMPLE.lines()
    middle = len(lines) // 2
    out = [b"".join([*lines[:middle], junk, *lines[middle:]]) for junk in JUNK_LINES[:-3]]
    out += [SAMPLE.data[:cut] for cut in range(0, len(SAMPLE.data), 211)]
    flips = random.Random(3)
    for _ in range(8):
        data = bytearray(SAMPLE.data)
        data[flips.randrange(len(data))] ^= flips.randrange(1, 256)
        out.append(bytes(data))
    return out


def _s3_raw(target: tuple[str, dict[str, str]]) -> Raw:
    import boto3

    url, options = target
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    client = boto3.client("s3", endpoint_url=options["endpoint_url"], region_name="us-east-1")
    name = f"{prefix}/{FILE}"

    def get(where: str | None) -> bytes:
        obj = where.removeprefix("s3://").removeprefix(f"{bucket}/") if where else name
        return client.get_object(Bucket=bucket, Key=obj)["Body"].read()

    return Raw(open_store(url, **options),
               lambda data: client.put_object(Bucket=bucket, Key=name, Body=data), get)


@pytest.mark.parametrize("target", ["fsspec", "s3_target", "s3fs_target"])
def test_damaged_sessions_on_the_other_backends(
    request: pytest.FixtureRequest, tmp_path: Path, target: str
) -> None:
    if target == "fsspec":
        path = tmp_path / FILE
        raw = Raw(open_store(tmp_path.as_uri(), backend="fsspec"), path.write_bytes,
                  lambda where: Path(where or path).read_bytes())
    else:
        raw = _s3_raw(request.getfixturevalue(target))
    for data in _damaged_samples():
        check_load_and_repair(data, raw)
