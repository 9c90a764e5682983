"""Child process of the concurrency tests: appends messages through compare-and-swap.

Run as ``python cas_worker.py URL KEY WRITER COUNT [name=value ...]``. Prints ``ready`` once
the store is open and waits for a line on stdin (so all writers start together), then adds
COUNT messages
``{"writer": WRITER, "n": i}`` one save each: load, append, save with ``Update(version)``,
and on ``ConflictError`` load again and retry. Every 5th save passes ``unchanged=0`` to
force a full rewrite instead of an append. With ``idempotent=1`` a message already present
counts as saved (a save whose reply a network fault swallowed) and ``StorageError`` is
retried too. Prints one JSON line of counters.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from nanosession import ConflictError, SessionRecord, StorageError, Update, open_store


def main(argv: list[str]) -> None:
    url, key, writer, count, *pairs = argv
    options: dict[str, Any] = dict(pair.split("=", 1) for pair in pairs)
    idempotent = options.pop("idempotent", "0") == "1"
    store = open_store(url, **options)
    stats = {"conflicts": 0, "storage_errors": 0, "already_saved": 0}
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(int(count)):
        msg = {"role": "user", "content": f"{writer}/{n}", "writer": writer, "n": n}
        while True:
            try:
                rec = store.get(key)
                if rec is None:
                    rec, mode, unchanged = SessionRecord(key), "create", 0
                else:
                    mode, unchanged = Update(rec.version or ""), len(rec.messages)
                if idempotent and msg in rec.messages:
                    stats["already_saved"] += 1
                    break
                rec.messages = [*rec.messages, msg]
                store.save(rec, mode=mode, unchanged=0 if n % 5 == 4 else unchanged)
                break
            except ConflictError:
                stats["conflicts"] += 1
            except StorageError:
                if not idempotent:
                    raise
                stats["storage_errors"] += 1
    store.close()
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
