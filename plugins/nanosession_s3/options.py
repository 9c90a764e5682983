"""``s3://bucket/prefix`` URLs and the backend's options, checked before any request is made.

Options arrive as keyword arguments or as query-string text (``?max_attempts=5``), so every
value is coerced here once. Credentials are accepted but never logged or put in messages.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from dataclasses import dataclass, fields
from typing import Any

from nanosession.errors import ConfigurationError, InvalidURLError
from nanosession.keys import MAX_NAME, SUFFIX

SCHEME = "s3://"
MAX_PREFIX_BYTES = 1024 - MAX_NAME - len(SUFFIX) - 64
"""S3 object names are at most 1,024 bytes; keep room for the session name and a backup
suffix (``.corrupt-<timestamp>``)."""
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

RETRY_MODES = ("standard", "adaptive", "legacy")
CONDITIONAL_WRITES = ("probe", "assume")
CHECKSUMS = ("when_supported", "when_required")
ON_UNSUPPORTED = ("error", "warn")
SSE_MODES = ("AES256", "aws:kms", "aws:kms:dsse")
CLIENT_OPTIONS = frozenset({
    "region", "endpoint_url", "profile", "aws_access_key_id", "aws_secret_access_key",
    "aws_session_token", "retry_mode", "max_attempts", "connect_timeout", "read_timeout",
    "max_pool_connections", "addressing_style", "checksums",
})
"""Options that shape a client nanosession builds; refused next to a caller's ``client``."""
ALIASES = {"region_name": "region", "profile_name": "profile"}


def parse_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket[/prefix]``; the prefix is normalised.

    The prefix loses leading, trailing and doubled slashes and gains one trailing slash
    (``""`` stays empty). ``.`` and ``..`` segments and control characters are refused, so
    no URL can make the store reach outside the prefix it names.
    """
    if not url.lower().startswith(SCHEME):
        raise InvalidURLError(f"not an s3:// URL: {url!r}")
    bucket, _, path = url[len(SCHEME):].partition("/")
    if not bucket:
        raise InvalidURLError(f"s3 URL names no bucket: {url!r} (use s3://bucket/prefix)")
    check_bucket(bucket)
    if _CONTROL.search(path):
        raise InvalidURLError("s3 URL prefix contains a control character")
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise InvalidURLError(f"s3 URL prefix must not contain '.' or '..' segments: {url!r}")
    prefix = "".join(s + "/" for s in segments)
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_PREFIX_BYTES:
        raise InvalidURLError(f"s3 URL prefix is longer than {MAX_PREFIX_BYTES} bytes")
    return bucket, prefix


def check_bucket(bucket: str) -> None:
    """Refuse names S3 (and S3-compatible stores) would reject, with the rule broken."""
    if "@" in bucket or ":" in bucket:
        raise InvalidURLError(
            "s3 URL must not carry credentials or a port; pass endpoint_url=... and use the "
            "normal AWS credential chain or the aws_* options"
        )
    if not _BUCKET.fullmatch(bucket):
        raise InvalidURLError(
            f"invalid bucket name {bucket!r}: 3-63 characters of a-z, 0-9, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in bucket:
        raise InvalidURLError(f"invalid bucket name {bucket!r}: contains '..'")
    try:
        ipaddress.ip_address(bucket)
    except ValueError:
        return
    raise InvalidURLError(f"invalid bucket name {bucket!r}: looks like an IP address")


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"option {name} must be true or false, got {value!r}")


def _number(name: str, value: Any, kind: type, minimum: float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"option {name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or number < minimum:
        raise ConfigurationError(f"option {name} must be >= {minimum}, got {value!r}")
    return number


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigurationError(
            f"option {name} must be one of {', '.join(allowed)}; got {value!r}"
        )
    return str(value)


@dataclass(frozen=True)
class S3Options:
    """Every option of the S3 backend, typed. ``repr`` hides credentials."""

    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    client: Any = None
    retry_mode: str = "standard"
    max_attempts: int = 5
    """Attempts per request in total, the first included (1: never retry)."""
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_pool_connections: int | None = None
    addressing_style: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    bucket_key_enabled: bool | None = None
    checksums: str = "when_supported"
    """botocore's request checksums (CRC32, sent as an aws-chunked trailer) and response
    validation; ``when_required`` for S3-compatible stores that reject such uploads."""
    list_concurrency: int = 16
    conditional_writes: str = "probe"
    on_unsupported: str = "error"

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)
                 if not f.name.startswith("aws_") and f.name != "client"}
        return f"S3Options({shown})"

    @classmethod
    def parse(cls, options: dict[str, Any]) -> S3Options:
        """Coerce and check ``open_store`` options (keyword or query-string text)."""
        given = {ALIASES.get(k, k): v for k, v in options.items()}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) for the s3 backend: {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        if given.get("client") is not None:
            clash = sorted(set(given) & CLIENT_OPTIONS)
            if clash:
                raise ConfigurationError(
                    f"option(s) {', '.join(clash)} shape a client nanosession builds; "
                    "configure the client you pass instead"
                )
        for name in ("max_attempts", "max_pool_connections", "list_concurrency"):
            if given.get(name) is not None:
                given[name] = _number(name, given[name], int, 1)
        for name in ("connect_timeout", "read_timeout"):
            if given.get(name) is not None:
                given[name] = _number(name, given[name], float, 0.001)
        if given.get("bucket_key_enabled") is not None:
            given["bucket_key_enabled"] = _flag("bucket_key_enabled", given["bucket_key_enabled"])
        for name, allowed in (("retry_mode", RETRY_MODES), ("checksums", CHECKSUMS),
                              ("conditional_writes", CONDITIONAL_WRITES),
                              ("on_unsupported", ON_UNSUPPORTED)):
            if name in given:
                given[name] = _choice(name, given[name], allowed)
        if given.get("sse") is not None:
            given["sse"] = _choice("sse", given["sse"], SSE_MODES)
        if given.get("sse_kms_key_id") and not str(given.get("sse", "")).startswith("aws:kms"):
            raise ConfigurationError("option sse_kms_key_id needs sse=aws:kms")
        if given.get("addressing_style") is not None:
            given["addressing_style"] = _choice(
                "addressing_style", given["addressing_style"], ("auto", "path", "virtual")
            )
        for name in ("region", "endpoint_url", "profile", "sse_kms_key_id"):
            if given.get(name) == "":
                given[name] = None
        return cls(**given)

    def write_args(self) -> dict[str, Any]:
        """Server-side encryption arguments for every PUT."""
        args: dict[str, Any] = {}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        if self.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.sse_kms_key_id
        if self.bucket_key_enabled is not None:
            args["BucketKeyEnabled"] = self.bucket_key_enabled
        return args


_sessions: dict[tuple[str | None, ...], Any] = {}
_sessions_lock = threading.Lock()


def _session(opts: S3Options) -> Any:
    """A boto3 session per credential source, kept: a new one re-reads ~1 MB of service
    models (about 0.2 s), while a client from a warm session takes a few milliseconds."""
    import boto3

    slot = (opts.profile, opts.aws_access_key_id, opts.aws_secret_access_key,
            opts.aws_session_token)
    session = _sessions.get(slot)
    if session is None:
        session = boto3.session.Session(
            profile_name=opts.profile,
            aws_access_key_id=opts.aws_access_key_id,
            aws_secret_access_key=opts.aws_secret_access_key,
            aws_session_token=opts.aws_session_token,
        )
        _sessions[slot] = session
    return session


def make_client(opts: S3Options) -> Any:
    """The caller's client, or a boto3 S3 client from the options and the normal chain."""
    if opts.client is not None:
        return opts.client
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    config = Config(
        retries={"mode": opts.retry_mode, "total_max_attempts": opts.max_attempts},
        connect_timeout=opts.connect_timeout,
        read_timeout=opts.read_timeout,
        max_pool_connections=opts.max_pool_connections or max(10, opts.list_concurrency),
        s3={"addressing_style": opts.addressing_style} if opts.addressing_style else None,
        request_checksum_calculation=opts.checksums,
        response_checksum_validation=opts.checksums,
    )
    try:
        with _sessions_lock:  # boto3 sessions are not thread-safe; their clients are
            return _session(opts).client(
                "s3", region_name=opts.region, endpoint_url=opts.endpoint_url, config=config
            )
    except (BotoCoreError, ValueError) as exc:  # unknown profile, bad endpoint URL, ...
        raise ConfigurationError(f"cannot configure the S3 client: {exc}") from None
