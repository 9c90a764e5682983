"""The fsspec backend: sessions on any filesystem fsspec knows (SFTP, FTP, WebDAV, GCS, ...).

Registered as a *fallback* for every protocol in ``fsspec.available_protocols()``: it
answers only the schemes no more specific plugin claims (``s3://`` goes to the S3 plugin
unless ``open_store(url, backend="fsspec")``). Optional install:
``pip install 'nanosession[fsspec]'`` plus the protocol's own package (sshfs, gcsfs, ...).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from loguru import logger

from nanosession import hookimpl
from nanosession.errors import BackendUnavailableError, ConfigurationError
from nanosession.registry import FSSPEC_HINT

logger.disable(__name__)

OWN_OPTIONS = ("create", "strict")
"""Options the backend keeps; every other option goes to the fsspec filesystem."""


def _flag(value: Any) -> bool:
    """A boolean option, also from a query string (``?create=false``)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def _missing_implementation(url: str, exc: ImportError) -> BackendUnavailableError:
    """The error for a protocol whose fsspec implementation is not installed."""
    import fsspec

    from nanosession_fsspec.protocols import INSTALL

    for layer in url.split("::"):
        proto = layer.split("://", 1)[0] if "://" in layer else layer
        try:
            fsspec.get_filesystem_class(proto)
        except ValueError:  # a path, not a protocol
            continue
        except ImportError as inner:
            package = INSTALL.get(proto)
            hint = f"; install it with: pip install {package}" if package else ""
            return BackendUnavailableError(
                f"the fsspec implementation of {proto}:// is not installed ({inner}){hint}"
            )
    return BackendUnavailableError(f"fsspec cannot load a dependency: {exc}")


def _webdav(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``webdav://[user:pass@]host[:port]/path`` -> webdav4's ``base_url`` (+ ``auth``).

    webdav4 itself wants ``base_url`` as an option and the URL as a path under it; pass
    ``base_url`` explicitly (e.g. for https) and the URL is taken as that path.
    """
    if not url.startswith("webdav://") or "base_url" in options:
        return url, options
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigurationError("webdav:// URL needs a host (or pass base_url=...)")
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    options = {**options, "base_url": f"http://{host}"}
    if parts.username is not None and "auth" not in options:
        options["auth"] = (unquote(parts.username), unquote(parts.password or ""))
    return f"webdav://{parts.path.lstrip('/')}", options


def open_fsspec(url: str, **options: Any) -> object:
    """Factory: ``open_store(url, **storage_options)`` for any fsspec URL, chains included.

    ``create`` (default true) makes the directory; ``strict`` makes saves that ask for a
    guarantee the protocol cannot give (compare-and-swap, exclusive create) raise
    ``CapabilityError`` instead of doing their best. Other options are fsspec
    ``storage_options`` and are never logged.
    """
    try:
        import fsspec.core
    except ImportError:
        raise BackendUnavailableError(FSSPEC_HINT) from None
    from nanosession_fsspec.backend import FsspecBackend

    create = _flag(options.pop("create", True))
    strict = _flag(options.pop("strict", False))
    url, options = _webdav(url, options)
    try:
        fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True, **options)
    except ImportError as exc:
        raise _missing_implementation(url, exc) from None
    except ValueError as exc:
        raise ConfigurationError(f"fsspec cannot open this URL: {exc}") from None
    return FsspecBackend(fs, root, create=create, strict=strict)


@hookimpl
def nanosession_register_backends(register: Any) -> None:
    try:
        import fsspec

        protocols = fsspec.available_protocols()
    except (ImportError, AttributeError):  # not installed (or shadowed by a namespace dir)
        return  # the core's unknown-scheme error already says what to install
    from nanosession_fsspec.protocols import best_capabilities

    for protocol in protocols:
        register(
            protocol,
            open_fsspec,
            fallback=True,
            description=f"JSONL files through fsspec's {protocol}:// implementation",
            capabilities=best_capabilities(protocol),
        )
