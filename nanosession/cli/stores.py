"""Store URLs on the command line: ``-o name=value`` options and the ``NANOSESSION_URL`` default."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from nanosession.errors import ConfigurationError
from nanosession.store import Store, open_store, split_url

ENV_URL = "NANOSESSION_URL"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+(://|::)")


class UsageProblem(ValueError):
    """The command line is wrong (exit code 2, like any other usage error)."""


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """``["endpoint_url=http://..", "region=eu-west-1"]`` as a dict (values stay strings,
    exactly as they would arrive in a URL query string)."""
    options: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageProblem(f"option {pair!r} must look like name=value")
        options[name.strip()] = value
    return options


def default_url() -> str | None:
    """``NANOSESSION_URL`` when set and not blank."""
    value = os.environ.get(ENV_URL, "").strip()
    return value or None


def looks_like_store(arg: str) -> bool:
    """Whether a positional argument names a store (a URL with a scheme, or a directory)."""
    return bool(_SCHEME.match(arg)) or Path(arg).expanduser().is_dir()


def url_and_keys(args: Sequence[str], *, need_keys: bool) -> tuple[str, list[str]]:
    """Split ``URL KEY...``; the URL may be left out when ``NANOSESSION_URL`` is set.

    With the variable set, a first argument counts as the URL only if it has a scheme
    (``s3://``) or names an existing directory; otherwise every argument is a key.
    """
    args = list(args)
    env = default_url()
    if args and (env is None or looks_like_store(args[0])):
        url, keys = args[0], args[1:]
    elif env is not None:
        url, keys = env, args
    else:
        raise UsageProblem(f"missing URL (give it first, or set {ENV_URL})")
    if need_keys and not keys:
        raise UsageProblem("missing KEY (give at least one session key after the URL)")
    return url, keys


def require_url(url: str | None) -> str:
    """``url``, else ``NANOSESSION_URL``, else a usage error."""
    url = url or default_url()
    if not url:
        raise UsageProblem(f"missing URL (give it, or set {ENV_URL})")
    return url


def open_url(url: str, options: Sequence[str] = (), *, create: bool = False) -> Store:
    """``open_store`` with the ``-o`` options (``-o wrappers=a,b`` names wrapper plugins,
    ``-o backend=fsspec`` picks the plugin for a scheme several answer).

    A local directory is only created when ``create`` is set (the destination of
    ``copy``), so a mistyped path fails instead of leaving an empty directory behind.
    """
    if not url.strip():
        raise ConfigurationError("store URL is empty")
    parsed = parse_options(options)
    wrappers = [w.strip() for w in parsed.pop("wrappers", "").split(",") if w.strip()]
    if split_url(url)[0] == "file" and not create:
        parsed.setdefault("create", "false")
    return open_store(url, wrappers=wrappers, **parsed)
