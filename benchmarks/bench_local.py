"""Local-disk benchmarks: nanosession's JSONL backend against nanobot 0.3.5, same run.

Every function builds its own fixture under a fresh directory, measures both systems with
identical messages and returns plain numbers (milliseconds, bytes) for the runner.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nanosession.jsonlib
from benchmarks import systems
from benchmarks.messages import Message, stream, take
from benchmarks.timing import median_ms, timed, written_bytes

Factory = Callable[[Path], Any]
SYSTEMS: dict[str, Factory] = {
    "nanobot": systems.nanobot_manager,
    "nanosession": systems.nanosession_manager,
}


def _fill(session: Any, source: Iterator[Message], count: int) -> None:
    session.messages.extend(next(source) for _ in range(count))


def _open_all(root: Path) -> dict[str, Any]:
    return {name: factory(root / name) for name, factory in SYSTEMS.items()}


def save_curve(root: Path, lengths: list[int], repeat: int) -> dict[str, Any]:
    """Median cost of one save right after appending one message, at each session length.

    Both systems' sessions grow through the same lengths with the same messages; their
    samples are interleaved so background load hits both alike.
    """
    managers = _open_all(root)
    sessions = {name: m.get_or_create("bench:save") for name, m in managers.items()}
    sources = {name: stream(seed=1) for name in managers}
    out: dict[str, Any] = {"lengths": lengths, **{name: [] for name in managers}}
    for length in lengths:
        samples: dict[str, list[float]] = {name: [] for name in managers}
        for name, manager in managers.items():
            _fill(sessions[name], sources[name], length - len(sessions[name].messages))
            manager.save(sessions[name])
        for _ in range(repeat):
            for name, manager in managers.items():
                session = sessions[name]
                systems.add(session, next(sources[name]))
                samples[name].append(timed(lambda m=manager, s=session: m.save(s)))
        for name in managers:
            out[name].append(median_ms(samples[name]))
    return out


def _turn(manager: Any, session: Any, messages: list[Message], rounds: int) -> None:
    """One agent turn with nanobot's 2N+3 saves for N tool rounds."""
    systems.add(session, messages[0])
    manager.save(session)  # the user's message, saved early
    for r in range(rounds):
        manager.save(session)  # checkpoint before the tool round
        systems.add(session, messages[1 + 2 * r])
        systems.add(session, messages[2 + 2 * r])
        manager.save(session)  # checkpoint after it
    systems.add(session, messages[-1])
    manager.save(session)  # the reply
    manager.save(session)  # end of turn


def turn(root: Path, length: int, repeat: int, rounds: int = 3) -> dict[str, Any]:
    """Median wall time of a realistic turn (messages and saves) at ``length`` messages."""
    managers = _open_all(root)
    out: dict[str, Any] = {"length": length, "saves_per_turn": 2 * rounds + 3}
    sessions, sources = {}, {}
    for name, manager in managers.items():
        sessions[name] = manager.get_or_create("bench:turn")
        sources[name] = stream(seed=2, rounds=rounds)
        _fill(sessions[name], sources[name], length)
        manager.save(sessions[name])
    samples: dict[str, list[float]] = {name: [] for name in managers}
    for _ in range(repeat):
        for name, manager in managers.items():
            batch = [next(sources[name]) for _ in range(2 * rounds + 2)]
            samples[name].append(
                timed(lambda m=manager, s=sessions[name], b=batch: _turn(m, s, b, rounds))
            )
    out.update({name: median_ms(v) for name, v in samples.items()})
    return out


@contextmanager
def _stdlib_json() -> Iterator[None]:
    """nanosession's JSON reads on the standard library, as without the ``fast`` extra."""
    saved = nanosession.jsonlib.msgspec
    nanosession.jsonlib.msgspec = None
    try:
        yield
    finally:
        nanosession.jsonlib.msgspec = saved


def load_and_history(root: Path, length: int, repeat: int) -> dict[str, Any]:
    """Median cost of loading a ``length``-message session, and of ``get_history`` on it."""
    managers = _open_all(root)
    messages = take(length, seed=3)
    for manager in managers.values():
        session = manager.get_or_create("bench:load")
        session.messages.extend(messages)
        manager.save(session)

    def load(manager: Any) -> Any:
        manager.invalidate("bench:load")
        return manager.get_or_create("bench:load")

    variants = {
        "nanobot_load": lambda: load(managers["nanobot"]),
        "nanosession_load": lambda: load(managers["nanosession"]),
    }
    samples: dict[str, list[float]] = {v: [] for v in [*variants, "nanosession_load_stdlib"]}
    for fn in variants.values():
        fn()  # warm the page cache for both alike
    for _ in range(repeat):
        for name, fn in variants.items():
            samples[name].append(timed(fn))
        with _stdlib_json():
            samples["nanosession_load_stdlib"].append(timed(variants["nanosession_load"]))
    out: dict[str, Any] = {"length": length}
    out.update({name: median_ms(v) for name, v in samples.items()})
    loaded = {name: load(m) for name, m in managers.items()}
    for name, session in loaded.items():
        out[f"{name}_history"] = median_ms(
            [timed(lambda s=session: s.get_history(max_messages=120)) for _ in range(repeat)]
        )
        out[f"{name}_history_len"] = len(session.get_history(max_messages=120))
    with _stdlib_json():
        stdlib = [dict(m) for m in load(managers["nanosession"]).messages]
    out["same_messages"] = (
        [dict(m) for m in loaded["nanobot"].messages]
        == [dict(m) for m in loaded["nanosession"].messages]
        == stdlib
        == messages
    )
    return out


def _write_listing_fixture(directory: Path, sessions: int, per_session: int) -> None:
    """``sessions`` files in nanobot's own format and naming, which both systems read."""
    rng = random.Random(4)
    bodies = [take(per_session, seed=100 + i) for i in range(16)]
    for i in range(sessions):
        key = f"telegram:{100000 + i}"
        stamp = f"2026-02-{1 + rng.randrange(28):02d}T{rng.randrange(24):02d}:" \
            f"{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}"
        data = systems.nanobot_file(key, bodies[i % len(bodies)], updated_at=stamp)
        (directory / f"{systems.storage_name(key)}.jsonl").write_bytes(data)


def _same_preview(ours: str, theirs: str) -> bool:
    """Equal, or nanobot's ``…``-cut form of the same text (it cuts at 119 + ``…``)."""
    return ours == theirs or (theirs.endswith("…") and ours.startswith(theirs[:-1].rstrip()))


_CHILD = """
import sys, time
from nanosession.manager import SessionManager
manager = SessionManager.from_url(sys.argv[1])  # opened untimed, as nanobot's manager is
started = time.perf_counter()
listed = manager.list_sessions()
print((time.perf_counter() - started) * 1000, len(listed))
"""


_NANOBOT_CHILD = """
import sys, time
from pathlib import Path
from loguru import logger
logger.remove()
from nanobot.session.manager import SessionManager
root = Path(sys.argv[1])
manager = SessionManager(root / "workspace", sessions_root=root / "nanobot-sessions")
started = time.perf_counter()
listed = manager.list_sessions()
print((time.perf_counter() - started) * 1000, len(listed))
"""


def _fresh_process_ms(script: str, where: Path) -> tuple[float, int]:
    """One listing in a new interpreter, timed inside it (startup and store opening excluded)."""
    done = subprocess.run([sys.executable, "-c", script, str(where)], check=True,
                          capture_output=True, text=True)
    ms, count = done.stdout.split()
    return float(ms), int(count)


def _touch_one(manager: Any, keys: list[str], rng: random.Random) -> None:
    """Another writer appends a message to one random session (as agents do between two
    listings), so the next listing sees exactly one changed file."""
    session = manager.get_or_create(rng.choice(keys))
    systems.add(session, {"role": "user", "content": f"again {rng.random()}"})
    manager.save(session)


def listing(root: Path, sessions: int, per_session: int, repeat: int) -> dict[str, Any]:
    """Median ``list_sessions`` time over ``sessions`` stored sessions, both systems.

    nanosession is measured five ways: ``first``, the first listing ever of the directory
    (every file's head and tail read, the index file written; one sample); ``process``, a
    new process (the index file read, every file stat-checked), against nanobot in a new
    process too; ``cold``, a store opened anew in this process; ``warm``, one long-lived
    store, as an agent's once-a-second listing runs; and ``one_changed``, that store
    listing right after another writer appended to one session (timed alone).
    """
    nanobot = systems.nanobot_manager(root / "nanobot")
    directory = Path(nanobot.sessions_dir)
    _write_listing_fixture(directory, sessions, per_session)
    size = sum(p.stat().st_size for p in directory.glob("*.jsonl"))
    out: dict[str, Any] = {"sessions": sessions, "messages_each": per_session,
                           "fixture_bytes": size}
    nanobot.list_sessions()  # the page cache warm for the first listing too
    out["nanosession_first"] = median_ms(
        [timed(lambda: systems.nanosession_manager(directory).list_sessions())]
    )
    warm = systems.nanosession_manager(directory)
    variants = {
        "nanobot": nanobot.list_sessions,
        "nanosession_cold": lambda: systems.nanosession_manager(directory).list_sessions(),
        "nanosession": warm.list_sessions,
    }
    results = {name: fn() for name, fn in variants.items()}  # warm-up, kept for the check
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, fn in variants.items():
            samples[name].append(timed(fn))
    out.update({name: median_ms(v) for name, v in samples.items()})
    writer = systems.nanosession_manager(directory)
    keys = sorted(entry["key"] for entry in results["nanobot"])
    rng = random.Random(6)
    changed = []
    for _ in range(repeat):
        _touch_one(writer, keys, rng)
        changed.append(timed(warm.list_sessions))
    out["nanosession_one_changed"] = median_ms(changed)
    mine, theirs = [], []
    for _ in range(repeat):
        mine.append(_fresh_process_ms(_CHILD, directory))
        theirs.append(_fresh_process_ms(_NANOBOT_CHILD, root / "nanobot"))
    out["nanosession_process"] = sorted(ms for ms, _ in mine)[len(mine) // 2]
    out["nanobot_process"] = sorted(ms for ms, _ in theirs)[len(theirs) // 2]
    out["process_listed_all"] = all(count == sessions for _, count in mine + theirs)
    # The floor for a listing that cannot go stale: one stat() per session file.
    out["stat_floor"] = median_ms(
        [timed(lambda: [e.stat() for e in os.scandir(directory)]) for _ in range(repeat)]
    )
    theirs = {e["key"]: e for e in results["nanobot"]}
    mine = {e["key"]: e for e in results["nanosession"]}
    out["same_keys"] = set(theirs) == set(mine) and len(mine) == sessions
    out["same_titles"] = sum(1 for k, e in mine.items() if theirs[k]["title"] == e["title"])
    out["same_previews"] = sum(
        1 for k, e in mine.items() if _same_preview(e["preview"], theirs[k]["preview"])
    )
    return out


def life_bytes(root: Path, length: int) -> dict[str, Any]:
    """Bytes written (at the ``write()`` boundary) saving after each of ``length`` messages."""
    out: dict[str, Any] = {"length": length}
    for name, factory in SYSTEMS.items():
        manager = factory(root / name)
        session = manager.get_or_create("bench:life")
        source = stream(seed=5)

        def life(m: Any = manager, s: Any = session, src: Iterator[Message] = source) -> None:
            for _ in range(length):
                systems.add(s, next(src))
                m.save(s)

        before = written_bytes()
        seconds = timed(life)
        after = written_bytes()
        if name == "nanobot":
            path = Path(manager._get_session_path("bench:life"))
        else:
            path = manager.store.backend.path("bench:life")
        out[f"{name}_written"] = after - before if before is not None and after else None
        out[f"{name}_final_size"] = os.path.getsize(path)
        out[f"{name}_seconds"] = seconds
    return out
