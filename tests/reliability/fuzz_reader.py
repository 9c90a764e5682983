"""Coverage-guided fuzzing (atheris/libFuzzer) of the JSONL reader and local load/repair.

Run: ``python tests/reliability/fuzz_reader.py --runs 200000`` (seeded with a real file).
Every input is decoded, then stored as a session file and loaded and repaired through the
local backend: only ``CorruptSessionError`` may escape load, repair must keep a byte-exact
copy of what it replaces and leave a session that loads. Any other outcome stops the run
with the input saved by libFuzzer (``crash-*`` in the current directory).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

WORKDIR = "NANOSESSION_FUZZ_DIR"  # set for the fuzzing child; libFuzzer ends it with exit()


def test_one_input(data: bytes) -> None:
    """The oracle for one input; raises (and so stops the fuzzer) on any violation."""
    parsed = jsonl.decode(data, KEY)
    if not 0 <= parsed.committed_end <= len(data):
        raise AssertionError(f"committed_end {parsed.committed_end} outside the file")
    for stale in STORE_DIR.iterdir():
        stale.unlink()
    path = STORE_DIR / FILE
    path.write_bytes(data)
    with contextlib.suppress(CorruptSessionError):
        STORE.load(KEY)
    report = STORE.repair(KEY)
    if report.repaired:
        if Path(report.backup or "").read_bytes() != data:
            raise AssertionError("repair replaced a file without keeping its bytes")
        STORE.load(KEY)
    elif path.read_bytes() != data:
        raise AssertionError("repair changed a file it reported as fine")


def _fuzz(workdir: Path, libfuzzer_args: list[str]) -> None:
    global CorruptSessionError, jsonl, STORE, STORE_DIR, FILE, KEY
    import atheris

    with atheris.instrument_imports(include=["nanosession", "nanosession_local"]):
        from nanosession import CorruptSessionError, jsonl, open_store
    from corruption import FILE, KEY, make_sample

    STORE_DIR = workdir / "store"
    STORE_DIR.mkdir()
    STORE = open_store(str(STORE_DIR), backend="local")
    corpus = workdir / "corpus"
    corpus.mkdir()
    (corpus / "sample.jsonl").write_bytes(make_sample().data)
    atheris.Setup([sys.argv[0], *libfuzzer_args, str(corpus)], test_one_input)
    atheris.Fuzz()  # libFuzzer prints "Done N runs in S second(s)" when no input failed


def main() -> int:
    if os.environ.get(WORKDIR):
        _fuzz(Path(os.environ[WORKDIR]), sys.argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--max-len", type=int, default=8192)
    ns, rest = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="ns-fuzz-") as workdir:
        args = [*rest, f"-runs={ns.runs}", f"-max_len={ns.max_len}"]
        done = subprocess.run([sys.executable, __file__, *args],
                              env={**os.environ, WORKDIR: workdir}, check=False)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
