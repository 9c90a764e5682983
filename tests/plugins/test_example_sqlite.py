"""Run the example SQLite plugin's own tests (conformance suite included) in the main run.

The example is a separate distribution with its tests beside it, as a plugin author's repo
would be; this module loads that test module by path so ``pytest`` (testpaths: tests) runs it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

if importlib.util.find_spec("nanosession_sqlite") is None:  # fail loudly: CI must run it
    raise ImportError("example plugin missing: pip install -e ./plugins/example-sqlite")

_PATH = Path(__file__).parents[2] / "plugins" / "example-sqlite" / "tests"
_spec = importlib.util.spec_from_file_location(
    "nanosession_sqlite_tests", _PATH / "test_sqlite_conformance.py"
)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
globals().update(
    {k: v for k, v in vars(_module).items() if k.startswith(("test_", "Test", "db", "sqlite_url"))}
)
