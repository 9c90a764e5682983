"""nanosession-sqlite, the example backend plugin: a row per session (its ``rev`` is the
version; a store-wide counter means no token ever repeats) and a row per message (an append
inserts just the new ones). Each operation is one transaction: all or nothing, everywhere."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import nanosession as ns
from nanosession import jsonlib
from nanosession.record import preview_of, title_of

CAPABILITIES = ns.Capabilities(compare_and_swap=True, exclusive_create=True, atomic_write=True,
                               append=True, ranged_reads=True, durable=True)
PREVIEW_ROWS = 20  # listing previews come from the first messages only
SCHEMA = """PRAGMA journal_mode=WAL; BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, rev INTEGER, count INTEGER,
    created_at TEXT, updated_at TEXT, updated_ts REAL, title TEXT, meta BLOB);
CREATE INDEX IF NOT EXISTS sessions_by_time ON sessions (updated_ts);
CREATE TABLE IF NOT EXISTS messages (key TEXT, idx INTEGER, data BLOB, PRIMARY KEY (key, idx));
CREATE TABLE IF NOT EXISTS backups (key TEXT, idx INTEGER, data BLOB, taken_at TEXT);
CREATE TABLE IF NOT EXISTS counter (n INTEGER);
INSERT INTO counter SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM counter);
COMMIT;"""
CAS = "CAST(rev AS TEXT)=?"  # a version matches only as the exact string handed out
COLUMNS = ("rev", "count", "created_at", "updated_at", "updated_ts", "title", "meta")
INSERT = f"INTO sessions ({', '.join(COLUMNS)}, key) VALUES ({', '.join('?' * 8)})"
UPDATE = f"UPDATE sessions SET {', '.join(c + '=?' for c in COLUMNS)} WHERE key=? AND {CAS}"


def _json(data: bytes) -> Any:
    """The JSON object in ``data``; ``None`` when it is not JSON or not an object."""
    try:
        value = jsonlib.loads(data)
    except jsonlib.DecodeErrors:
        return None
    return value if isinstance(value, dict) else None


class SQLiteBackend:
    """The storage hooks over one SQLite file (one connection, serialised by a lock)."""

    capabilities = CAPABILITIES

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self._lock = path, threading.Lock()  # transactions are explicit: see _tx
        self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                   check_same_thread=False)
        self._db.executescript(SCHEMA)

    @classmethod
    def from_url(cls, url: str) -> SQLiteBackend:
        """The factory: ``sqlite:///path/to/db.sqlite`` (the URL's path is the file's path)."""
        parts = urlsplit(url)
        if parts.netloc or not parts.path.strip("/"):
            raise ns.InvalidURLError(f"expected sqlite:///path/to/file.sqlite, got {url!r}")
        return cls(Path(unquote(parts.path)))

    @contextmanager
    def _tx(self, write: bool = True, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._lock:
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @staticmethod
    def _read(db: sqlite3.Connection, key: str) -> tuple[ns.SessionRecord, list[str], int] | None:
        """The stored record (whatever is intact), what is wrong, and how many rows are bad."""
        row = db.execute("SELECT rev, count, created_at, updated_at, meta FROM sessions "
                         "WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        rows = db.execute("SELECT idx, data FROM messages WHERE key=? ORDER BY idx", (key,))
        messages, problems, rows = [], [], rows.fetchall()
        for idx, data in rows:
            if (message := _json(data)) is not None:
                messages.append(message)
            else:
                problems.append(f"message row {idx} is not a JSON object")
        bad = len(problems)
        if [idx for idx, _ in rows] != list(range(row[1])):
            problems.append(f"expected message rows 0..{row[1] - 1}, found {len(rows)}")
        try:
            meta = jsonlib.loads(row[4])
            return ns.SessionRecord(
                key, messages, dict(meta["metadata"]), datetime.fromisoformat(row[2]),
                datetime.fromisoformat(row[3]), int(meta["last_consolidated"]),
                dict(meta["extra"]), str(row[0])), problems, bad
        except (*jsonlib.DecodeErrors, TypeError, KeyError) as exc:
            problems.append(f"session row is malformed ({type(exc).__name__}); metadata reset")
            return ns.SessionRecord(key, messages, version=str(row[0])), problems, bad

    @staticmethod
    def _write(db: sqlite3.Connection, rec: ns.SessionRecord, mode: ns.PutMode, start: int) -> str:
        """Store ``rec`` (rows before ``start`` stay); non-JSON raises before any row changes."""
        meta = jsonlib.dumps({"metadata": rec.metadata, "extra": rec.extra,
                              "last_consolidated": rec.last_consolidated})
        rows = [(rec.key, i, jsonlib.dumps(m)) for i, m in enumerate(rec.messages[start:], start)]
        db.execute("UPDATE counter SET n = n + 1")
        (rev,) = db.execute("SELECT n FROM counter").fetchone()
        values = (rev, len(rec.messages), rec.created_at.isoformat(), rec.updated_at.isoformat(),
                  rec.updated_at.timestamp(), title_of(rec.metadata), meta, rec.key)
        if isinstance(mode, ns.Update):  # compare-and-swap: only the expected rev is replaced
            if db.execute(UPDATE, (*values, mode.version)).rowcount != 1:
                raise ns.ConflictError(rec.key)
        else:
            try:  # the primary key makes a racing create fail; overwrite replaces the row
                db.execute(f"INSERT {'OR REPLACE ' if mode == 'overwrite' else ''}{INSERT}", values)
            except sqlite3.IntegrityError:
                raise ns.ConflictError(rec.key, "it already exists") from None
        db.execute("DELETE FROM messages WHERE key=? AND idx>=?", (rec.key, start))
        db.executemany("INSERT INTO messages VALUES (?, ?, ?)", rows)
        return str(rev)

    @ns.hookimpl
    def nanosession_load(self, key: str) -> ns.SessionRecord | None:
        with self._tx(write=False) as db:
            found = self._read(db, key)
        if found and found[1]:  # never hand out part of a session: its next save loses the rest
            raise ns.CorruptSessionError(key, found[1])
        return found[0] if found else None

    @ns.hookimpl
    def nanosession_save(self, record: ns.SessionRecord, mode: ns.PutMode, unchanged: int,
                         durable: bool) -> str:
        start = min(unchanged, len(record.messages)) if isinstance(mode, ns.Update) else 0
        with self._tx(durable=durable) as db:
            return self._write(db, record, mode, start)

    @ns.hookimpl
    def nanosession_delete(self, key: str, mode: ns.PutMode) -> bool:
        cas = (f" AND {CAS}", (key, mode.version)) if isinstance(mode, ns.Update) else ("", (key,))
        with self._tx() as db:
            deleted = db.execute("DELETE FROM sessions WHERE key=?" + cas[0], cas[1]).rowcount == 1
            if cas[0] and not deleted:
                raise ns.ConflictError(key, "it changed or was deleted")
            db.execute("DELETE FROM messages WHERE key=?", (key,))
        return deleted

    @ns.hookimpl
    def nanosession_list(self, prefix: str, limit: int | None, details: bool) -> list[Any]:
        out: list[ns.SessionInfo] = []
        with self._tx(write=False) as db:
            rows = db.execute("SELECT key, rev, created_at, updated_at, title, count FROM sessions "
                              "WHERE substr(key, 1, ?)=? ORDER BY updated_ts DESC, key LIMIT ?",
                              (len(prefix), prefix, -1 if limit is None else limit)).fetchall()
            for key, rev, created, updated, title, count in rows:
                info = ns.SessionInfo(key, datetime.fromisoformat(updated), version=str(rev))
                if details:  # a bounded read per entry: the first messages give the preview
                    head = db.execute("SELECT data FROM messages WHERE key=? AND idx<? ORDER BY"
                                      " idx", (key, PREVIEW_ROWS)).fetchall()
                    info = replace(info, created_at=datetime.fromisoformat(created), title=title,
                                   preview=preview_of([m for (d,) in head if (m := _json(d))]),
                                   message_count=count)
                out.append(info)
        return out

    @ns.hookimpl
    def nanosession_repair(self, key: str, dry_run: bool) -> ns.RepairReport:
        with self._tx() as db:
            found = self._read(db, key)
            if found is None:
                raise ns.SessionNotFoundError(key)
            record, problems, dropped = found
            if not problems or dry_run:
                return ns.RepairReport(key, tuple(problems), len(record.messages), dropped)
            taken = datetime.now().isoformat()  # keep the original rows before replacing
            db.execute("INSERT INTO backups SELECT key, idx, data, ?1 FROM messages WHERE key=?2 "
                       "UNION ALL SELECT key, -1, meta, ?1 FROM sessions WHERE key=?2",
                       (taken, key))
            self._write(db, record, ns.Update(record.version or ""), 0)
        return ns.RepairReport(key, tuple(problems), len(record.messages), dropped, repaired=True,
                               backup=f"{self.path} table backups, taken_at={taken}")

    @ns.hookimpl
    def nanosession_close(self) -> None:
        with self._lock:
            self._db.close()


@ns.hookimpl
def nanosession_register_backends(register: Any) -> None:
    register("sqlite", SQLiteBackend.from_url, capabilities=CAPABILITIES,
             description="one SQLite database file (example plugin)")
