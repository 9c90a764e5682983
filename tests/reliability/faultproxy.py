"""A fault-injecting HTTP proxy for a loopback server (moto's S3) in the tests.

Each request is read whole, then ``plan(method, path)`` picks what happens to it:

- ``"pass"``: forwarded, and the answer relayed;
- ``"reset"``: the connection is reset before anything reaches the server;
- ``"slowdown"`` / ``"error500"``: answered 503 SlowDown / 500 InternalError by the proxy;
- ``"truncate"``: half the body reaches the server, then both sides are reset;
- ``"lost_reply"``: the server does the request, the client's connection is reset, so it
  never hears that it worked (the hard case for conditional writes);
- ``"stall"``: held for ``stall_seconds`` (past the client's read timeout) then forwarded
  late, as a slow network would.

Every answer closes the connection, so each request is its own fault decision.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

Plan = Callable[[str, str], str]
FAULTS = ("reset", "slowdown", "error500", "truncate", "lost_reply", "stall")
_ERRORS = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "error500": (500, "Internal Server Error", "InternalError", "We encountered an error."),
}


def _read_head(sock: socket.socket, buf: bytearray) -> bytes | None:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end])
    del buf[:end]
    return head


def _read_exact(sock: socket.socket, buf: bytearray, size: int) -> bytes:
    while len(buf) < size:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("client went away mid-body")
        buf += chunk
    data = bytes(buf[:size])
    del buf[:size]
    return data


def _read_chunked(sock: socket.socket, buf: bytearray) -> bytes:
    out = bytearray()
    while True:
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        line_end = buf.index(b"\r\n")
        size = int(bytes(buf[:line_end]).split(b";")[0], 16)
        del buf[: line_end + 2]
        if size == 0:
            while b"\r\n\r\n" not in (b"\r\n" + buf):  # trailers end with an empty line
                buf += sock.recv(65536)
            end = (b"\r\n" + buf).index(b"\r\n\r\n") + 2
            out += b"0\r\n" + bytes(buf[:end])
            del buf[:end]
            return bytes(out)
        out += f"{size:x}\r\n".encode() + _read_exact(sock, buf, size + 2)


def _headers(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    pairs = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
    return lines[0], pairs  # type: ignore[return-value]


def _build(first: str, pairs: list[tuple[str, str]]) -> bytes:
    return ("\r\n".join([first, *(f"{k}: {v}" for k, v in pairs)]) + "\r\n\r\n").encode(
        "latin-1")


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN, as a dropped connection looks to the client."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultProxy:
    """Starts on 127.0.0.1 (an OS-chosen port) in front of ``upstream``; ``stop()`` ends it."""

    def __init__(self, upstream: str, plan: Plan, *, stall_seconds: float = 3.0) -> None:
        """``after_lost_reply`` (settable) runs once the server has done a request whose
        reply is about to be dropped: a test can slip another writer in right there."""
        self.after_lost_reply: Callable[[], None] | None = None
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.plan = plan
        self.stall_seconds = stall_seconds
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def faults(self) -> int:
        return sum(self.injected.values())

    def _serve(self, client: socket.socket) -> None:
        buf = bytearray()
        try:
            head = _read_head(client, buf)
            if head is None:
                return
            first, pairs = _headers(head)
            lower = {k.lower(): v for k, v in pairs}
            if lower.get("expect", "").lower() == "100-continue":
                client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if "chunked" in lower.get("transfer-encoding", "").lower():
                body = _read_chunked(client, buf)
            else:
                body = _read_exact(client, buf, int(lower.get("content-length", "0")))
            method, path = first.split(" ")[:2]
            with self._lock:
                self.requests += 1
                fault = self.plan(method, path)
                if fault != "pass":
                    self.injected[fault] += 1
            keep = [(k, v) for k, v in pairs if k.lower() not in ("connection", "expect")]
            request = _build(first, [*keep, ("Connection", "close")]) + body
            self._act(fault, client, request, len(request) - len(body) // 2)
        except (OSError, ValueError):
            pass
        finally:
            client.close()

    def _act(self, fault: str, client: socket.socket, request: bytes, half: int) -> None:
        if fault == "reset":
            _reset(client)
            return
        if fault in _ERRORS:
            status, reason, code, message = _ERRORS[fault]
            body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>{message}</Message></Error>").encode()
            client.sendall(_build(f"HTTP/1.1 {status} {reason}", [
                ("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                ("Connection", "close")]) + body)
            return
        if fault == "stall":
            time.sleep(self.stall_seconds)
        with socket.create_connection(self.upstream, timeout=30) as server:
            if fault == "truncate":
                server.sendall(request[:half])
                _reset(server)
                _reset(client)
                return
            server.sendall(request)
            head, body = _read_reply(server, request.split(b" ", 1)[0] == b"HEAD")
        if fault == "lost_reply":
            if self.after_lost_reply is not None:
                self.after_lost_reply()
            _reset(client)
            return
        first, pairs = _headers(head)
        pairs = [(k, v) for k, v in pairs if k.lower() != "connection"]
        client.sendall(_build(first, [*pairs, ("Connection", "close")]) + body)


def _read_reply(server: socket.socket, head_only: bool) -> tuple[bytes, bytes]:
    """One response, framed by its headers (the server may keep the connection open)."""
    buf = bytearray()
    head = _read_head(server, buf)
    if head is None:
        raise ConnectionError("server closed without answering")
    first, pairs = _headers(head)
    lower = {k.lower(): v for k, v in pairs}
    status = int(first.split(" ")[1])
    if head_only or status in (204, 304) or status < 200:
        return head, b""
    if "chunked" in lower.get("transfer-encoding", "").lower():
        return head, _read_chunked(server, buf)
    if "content-length" in lower:
        return head, _read_exact(server, buf, int(lower["content-length"]))
    while chunk := server.recv(65536):
        buf += chunk
    return head, bytes(buf)
