"""Fixtures for the command tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import fill, record


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A local store with three sessions: telegram:1 newest, then cli:direct, then old:one."""
    root = tmp_path / "sessions"
    fill(str(root), [record("old:one", 0), record("cli:direct", 60, n=2),
                     record("telegram:1", 120, title="Weather")])
    return root
