"""The ``nanosession`` command: look at, repair, copy and prune sessions in any store.

The core package never needs typer; only this entry point does, and it says how to get it.
"""

from __future__ import annotations

import sys

INSTALL_HINT = "the nanosession command needs typer: pip install 'nanosession[cli]'"


def main() -> None:
    """Console-script entry point (``nanosession``)."""
    try:
        import typer  # noqa: F401
    except ImportError:
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        raise SystemExit(1) from None
    from nanosession.cli.app import run

    run()
