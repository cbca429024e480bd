"""The connection side of the emulator's HTTP(S) listeners: the limits against slow,
idle and flooding clients (:class:`HttpLimits`), one thread per accepted connection
(``_Connection``), and the reader/writer a request handler reads and writes through
(every read bounded by a deadline, a per-read timeout and a head budget).

:mod:`airlab.cloud.http_api` puts these under its listeners; nothing here parses HTTP.

Example:
    >>> limits = HttpLimits(head_timeout=2.0)
    >>> limits.head_timeout, limits.body_timeout, limits.max_connections
    (2.0, 30.0, 256)
    >>> HttpLimits(idle_timeout=0)
    Traceback (most recent call last):
    ...
    airlab.errors.UsageError: ...
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airlab.errors import UsageError

if TYPE_CHECKING:
    from airlab.cloud.http_api import _Server

__all__ = ["HttpLimits"]


@dataclass(frozen=True)
class HttpLimits:
    """Timeouts (seconds) and caps of the HTTP(S) listeners, against slow, idle and
    hostile clients (slowloris). Tests pass short ones.

    * ``head_timeout``: the whole request head (request line and headers) must arrive
      within this time — counted from the accept for a connection's first request
      (the TLS handshake included), from the request's first byte on a kept-alive one;
    * ``body_timeout``: the whole body, from the end of the head;
    * ``idle_timeout``: how long a kept-alive connection may wait for its next request;
    * ``read_timeout``: the longest silence inside a head or a body;
    * ``write_timeout``: the whole write of one response;
    * ``linger_timeout``: after an error answer, how long the server keeps reading
      (and dropping) what the client still sends, so that the close does not reset the
      connection before the client read the answer;
    * ``max_connections``: connections served at once (one thread each). A new one
      beyond it closes the connection that has waited longest on its client (idle, or
      sending its request slowly), or waits ``admit_timeout`` for a free slot and is
      closed at once if none frees up;
    * ``max_head_bytes``: the largest request head (about; HTTP 431 beyond).

    A request cut by a timeout gets HTTP 408 and the connection is closed; a
    connection that sent nothing is closed without an answer.
    """

    head_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 15.0
    read_timeout: float = 5.0
    write_timeout: float = 10.0
    linger_timeout: float = 1.0
    admit_timeout: float = 1.0
    max_connections: int = 256
    max_head_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise UsageError(name, f"must be a positive number, not {value!r}")


class _ReadTimeout(TimeoutError):
    """The client did not send its request (head or body) in time."""


class _HeadTooLarge(Exception):
    """The request head is larger than ``HttpLimits.max_head_bytes``."""


class _Aborted(ConnectionAbortedError):
    """The server closed this connection (evicted for a newer one, or stopping)."""


class _Connection(threading.Thread):
    """One accepted connection and the thread that serves it."""

    def __init__(self, server: _Server, sock: socket.socket, client_address: Any) -> None:
        super().__init__(name=f"{server.thread_name}-conn", daemon=True)
        self.server = server
        self.raw = sock
        self.sock = sock  # the TLS socket once the handshake is done
        self.client_address = client_address
        self.since = time.monotonic()  # accepted, or last request answered
        self.waiting = False  # blocked reading from the client right now
        self.aborted = False

    def abort(self) -> None:
        """Close the connection under its thread's feet (its read returns at once)."""
        self.aborted = True
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)  # also under TLS: the fd

    def run(self) -> None:
        server = self.server
        try:
            server.serve_connection(self)
        except Exception:
            server.handle_error(self.sock, self.client_address)
        finally:
            server.shutdown_request(self.raw)
            server.release(self)


class _Reader(io.RawIOBase):
    """The request side of a connection: every read waits at most ``per_read`` and
    never past ``deadline`` (monotonic); ``budget`` bounds the bytes of a head."""

    def __init__(self, sock: socket.socket, conn: _Connection, write_timeout: float) -> None:
        self._sock = sock
        self._conn = conn
        self._write_timeout = write_timeout
        self.deadline: float | None = None
        self.per_read: float | None = None
        self.budget: int | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        conn = self._conn
        if conn.aborted:
            raise _Aborted("connection closed by the server")
        wait = self.per_read
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise _ReadTimeout("the request did not arrive in time")
            wait = left if wait is None else min(wait, left)
        view = memoryview(buffer).cast("B")
        if self.budget is not None:
            if self.budget <= 0:
                raise _HeadTooLarge
            view = view[: self.budget]
        self._sock.settimeout(wait)
        conn.waiting = True
        try:
            n = self._sock.recv_into(view)
        except TimeoutError:
            raise _ReadTimeout("the client stopped sending") from None
        finally:
            conn.waiting = False
            with contextlib.suppress(OSError):
                self._sock.settimeout(self._write_timeout)
        if not n and conn.aborted:
            raise _Aborted("connection closed by the server")
        if self.budget is not None:
            self.budget -= n
        return n


class _Writer(io.BufferedIOBase):
    """The response side: each write is one ``sendall`` (bounded by the socket's
    write timeout)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sock.sendall(data)
        return memoryview(data).nbytes


def _linger(sock: socket.socket, seconds: float, limit: int = 1 << 20) -> None:
    """Half-close (the client sees the end of the answer), then drop what the client
    still sends for at most ``seconds``: closing with unread bytes would reset the
    connection and could destroy the answer before the client reads it."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_WR)  # raw FIN, also under TLS
        received = 0
        while received < limit and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            data = socket.socket.recv(sock, 65536)  # raw bytes, also under TLS
            if not data:
                break
            received += len(data)
