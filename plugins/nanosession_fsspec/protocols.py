"""What each fsspec filesystem can guarantee, and how writes are done safely on it.

The table is keyed by the filesystem's protocol (its class's first protocol name), so a
chained URL (``simplecache::s3://...``) is judged by its outermost layer. A protocol not
in the table gets the conservative default: check-then-write creates, single-shot
uploads, no guarantee claimed. Every claim here is exercised by ``tests/fsspec_backend``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from nanosession.record import Capabilities

CreateHow = Literal["xb", "put-create", "check"]
"""``xb``: ``fs.open(path, "xb")`` is an atomic exclusive create on the server;
``put-create``: ``fs.pipe_file(path, data, mode="create")`` (S3 ``If-None-Match: *``);
``check``: look, then write (racy between processes)."""

ReplaceHow = Literal["rename", "put"]
"""``rename``: upload to a temp name, then rename over the target (atomic where the
protocol's rename replaces atomically); ``put``: one upload straight to the target."""


@dataclass(frozen=True)
class Protocol:
    """How writes are done on one filesystem class, and what that guarantees."""

    create: CreateHow
    replace: ReplaceHow
    capabilities: Capabilities
    serial: bool = False
    """The client holds one connection that threads must not share (ftplib): reads
    take the store directory's lock too."""


_NO_CAS = "compare-and-swap is check-then-write: stale writers are caught, true races are not"

PROTOCOLS: dict[str, Protocol] = {
    "memory": Protocol(
        "check", "put",
        Capabilities(compare_and_swap=True, exclusive_create=True, atomic_write=True,
                     ranged_reads=True,
                     notes="in-process only; atomic among nanosession writers via a lock"),
    ),
    "file": Protocol(
        "xb", "rename",
        Capabilities(exclusive_create=True, atomic_write=True, ranged_reads=True,
                     notes="O_EXCL create, rename replace; " + _NO_CAS
                     + "; the file:// backend (default) has locks and appends"),
    ),
    "sftp": Protocol(
        "xb", "rename",
        Capabilities(exclusive_create=True, atomic_write=True, ranged_reads=True,
                     notes="SFTP open(CREAT|EXCL), posix-rename@openssh.com replace; "
                     + _NO_CAS),
    ),
    "ftp": Protocol(
        "check", "rename",
        Capabilities(atomic_write=True,
                     notes="RNFR/RNTO replace (atomic where the server renames with "
                     "rename(2), e.g. pyftpdlib, vsftpd); no exclusive create; partial reads "
                     "are REST + ABOR, so the server may send far more before the abort "
                     "lands; " + _NO_CAS),
        serial=True,
    ),
    "webdav": Protocol(
        "check", "rename",
        Capabilities(ranged_reads=True,
                     notes="PUT to a temp name + MOVE Overwrite:T: never half a file, "
                     "but a server may delete the target before moving (wsgidav does), "
                     "so a reader can briefly miss it; no exclusive create; " + _NO_CAS),
    ),
    "s3": Protocol(
        "put-create", "put",
        Capabilities(exclusive_create=True, atomic_write=True, ranged_reads=True,
                     notes="PUT If-None-Match create, single PUT replace; " + _NO_CAS
                     + "; the s3:// plugin has real compare-and-swap"),
    ),
}
ALIASES = {"local": "file", "ssh": "sftp", "s3a": "s3"}
DEFAULT = Protocol(
    "check", "put",
    Capabilities(notes="protocol not tested with nanosession: no guarantee claimed"),
)


def protocol_name(fs: Any) -> str:
    """The canonical name of a filesystem's protocol (``ssh`` and ``sftp`` are one)."""
    proto = fs.protocol
    name = proto[0] if isinstance(proto, (tuple, list)) else proto
    return ALIASES.get(name, name)


def protocol_for(fs: Any) -> Protocol:
    """How to write safely on ``fs``; the conservative default for unknown protocols."""
    return PROTOCOLS.get(protocol_name(fs), DEFAULT)


def best_capabilities(protocol: str) -> Capabilities:
    """What a scheme guarantees at best, shown before any store is opened."""
    return PROTOCOLS.get(ALIASES.get(protocol, protocol), DEFAULT).capabilities


INSTALL = {
    "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs",
    "az": "adlfs", "adl": "adlfs", "ssh": "sshfs", "sftp": "sshfs", "webdav": "webdav4",
    "hdfs": "pyarrow", "arrow_hdfs": "pyarrow", "oci": "ocifs", "oss": "ossfs",
    "smb": "smbprotocol", "dropbox": "dropboxdrivefs", "hf": "huggingface_hub",
    "lakefs": "lakefs-spec", "box": "boxfs", "webhdfs": "requests",
}
"""The package providing each protocol, for a friendlier error than a bare ImportError."""
