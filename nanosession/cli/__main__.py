"""``python -m nanosession.cli``: the same as the ``nanosession`` console script."""

from nanosession.cli import main

main()
