"""The embedded default backend: one JSONL file per session in a local directory.

Registered through the ``nanosession`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from nanosession import Capabilities, hookimpl

logger.disable(__name__)


def open_local(url: str, **options: Any) -> object:
    """Factory for ``file://`` URLs and bare paths."""
    from nanosession_local.backend import LocalBackend

    return LocalBackend.from_url(url, **options)


@hookimpl
def nanosession_register_backends(register: Any) -> None:
    register(
        "file",
        open_local,
        description="JSONL files in a local directory (the embedded default)",
        capabilities=Capabilities(
            compare_and_swap=True, exclusive_create=True, atomic_write=True, append=True,
            ranged_reads=True, durable=True, notes="compare-and-swap needs POSIX flock",
        ),
    )
