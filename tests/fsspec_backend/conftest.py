"""Real servers on 127.0.0.1 (port 0) for the fsspec backend: FTP, WebDAV, SFTP (+ moto S3).

Each server counts the file bytes it sends, so tests can measure that listings use ranged
reads instead of downloading whole sessions. Every server starts once per test session
and stops itself; each test gets a fresh directory on it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nanosession import Store, open_store

PROTOCOLS = ["memory", "local", "ftp", "webdav", "sftp", "s3"]
"""Every protocol the fsspec backend is tested on (the guarantees table in docs/fsspec.md)."""


@dataclass
class Server:
    """A running server: where it is, where its files live, how many bytes it sent."""

    url: str
    root: Path
    options: dict[str, Any] = field(default_factory=dict)
    sent: list[int] = field(default_factory=lambda: [0])

    @property
    def bytes_sent(self) -> int:
        return self.sent[0]


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """pyftpdlib (threaded) with one read-write user; fsspec's built-in ftp:// client."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import DTPHandler, FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    root = tmp_path_factory.mktemp("ftp")
    sent = [0]

    class CountingDTP(DTPHandler):
        def close(self) -> None:
            if not self._closed:
                sent[0] += self.tot_bytes_sent
            super().close()

    authorizer = DummyAuthorizer()
    authorizer.add_user("nano", "s3cret-ftp", str(root), perm="elradfmwMT")
    handler = type("Handler", (FTPHandler,), {
        "authorizer": authorizer, "dtp_handler": CountingDTP, "use_sendfile": False,
    })
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    host, port = server.address[:2]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"timeout": 0.2, "handle_exit": False}, daemon=True
    )
    thread.start()
    yield Server(f"ftp://{host}:{port}", root,
                 {"username": "nano", "password": "s3cret-ftp"}, sent)
    server.close_all()
    thread.join(5)


@pytest.fixture(scope="session")
def webdav_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """wsgidav on cheroot, anonymous read-write; webdav4 as the fsspec client."""
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp

    root = tmp_path_factory.mktemp("webdav")
    sent = [0]
    app = WsgiDAVApp({
        "provider_mapping": {"/": str(root)},
        "simple_dc": {"user_mapping": {"*": True}},
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
    })

    def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        body = app(environ, start_response)
        try:
            for chunk in body:
                if environ["REQUEST_METHOD"] == "GET":
                    sent[0] += len(chunk)
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    server = wsgi.Server(("127.0.0.1", 0), counting, numthreads=8)
    server.prepare()
    host, port = server.bind_addr[:2]
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield Server(f"webdav://{host}:{port}", root, {}, sent)
    server.stop()
    thread.join(5)


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An asyncssh SFTP server (fresh host key, chrooted, no auth); sshfs as the client."""
    import asyncssh

    root = tmp_path_factory.mktemp("sftp")
    sent = [0]

    class NoAuth(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return False

    class CountingSFTP(asyncssh.SFTPServer):
        def __init__(self, chan: Any) -> None:
            super().__init__(chan, chroot=str(root).encode())

        def read(self, file_obj: Any, offset: int, size: int) -> Any:
            data = super().read(file_obj, offset, size)
            sent[0] += len(data)
            return data

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Any:
        key = asyncssh.generate_private_key("ssh-ed25519")
        return await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[key], server_factory=NoAuth,
            sftp_factory=CountingSFTP, allow_scp=False,
        )

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    port = acceptor.sockets[0].getsockname()[1]
    yield Server(f"ssh://127.0.0.1:{port}", root,
                 {"username": "nano", "known_hosts": None, "client_keys": None,
                  "agent_path": None}, sent)

    async def stop() -> None:
        acceptor.close()
        await acceptor.wait_closed()
        sessions = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in sessions:  # client connections still open: end them quietly
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture(scope="session")
def fsspec_bucket(moto_endpoint: str) -> str:
    """One bucket on the moto server for every fsspec test (each gets its own prefix)."""
    import boto3

    name = f"fsspec-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=name
    )
    return name


@pytest.fixture(scope="session")
def aiobotocore_session() -> object:
    """One botocore session for every s3fs client: loading the S3 model once saves ~1 s
    per opened store (``session`` is an ordinary s3fs storage option)."""
    from aiobotocore.session import AioSession

    return AioSession()


@dataclass
class Target:
    """One fresh session directory on one protocol; ``open()`` is a new, separate client."""

    protocol: str
    url: str
    options: dict[str, Any]
    server: Server | None = None
    stores: list[Store] = field(default_factory=list)

    def open(self, **extra: Any) -> Store:
        store = open_store(self.url, backend="fsspec", **{**self.options, **extra})
        self.stores.append(store)
        return store


@pytest.fixture
def make_target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], Target]]:
    """``make_target(protocol)``: a fresh directory on that protocol's (running) server."""
    made: list[Target] = []

    def make(protocol: str) -> Target:
        name = f"t{uuid.uuid4().hex[:12]}"
        if protocol == "memory":
            target = Target(protocol, f"memory://{name}", {})
        elif protocol == "local":
            target = Target(protocol, (tmp_path / name).as_uri(), {})
        elif protocol == "s3":
            endpoint = request.getfixturevalue("moto_endpoint")
            bucket = request.getfixturevalue("fsspec_bucket")
            target = Target(protocol, f"s3://{bucket}/{name}", {
                "client_kwargs": {"endpoint_url": endpoint},
                "session": request.getfixturevalue("aiobotocore_session"),
            })
        else:
            server: Server = request.getfixturevalue(f"{protocol}_server")
            target = Target(protocol, f"{server.url}/{name}", dict(server.options), server)
        made.append(target)
        return target

    yield make
    for target in made:
        for store in target.stores:
            store.close()


@pytest.fixture(params=PROTOCOLS)
def target(request: pytest.FixtureRequest, make_target: Callable[[str], Target]) -> Target:
    """A fresh session directory on each tested protocol in turn."""
    return make_target(request.param)
