"""Helpers shared by the S3 tests (a unique module name: every test area has a conftest)."""

from __future__ import annotations

import uuid
from typing import Any


def new_bucket(client: Any) -> str:
    """Create a bucket with a fresh name; return the name."""
    name = f"ns-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return name
