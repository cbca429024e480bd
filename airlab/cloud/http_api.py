"""The emulator's HTTP(S) endpoints on a real HTTP server (stdlib, one thread per
connection, HTTP/1.1 keep-alive).

Routes (what ``iot-auth.<region>.aliyuncs.com`` serves, plus one admin route):

* ``POST /auth/devicename`` — HTTPS auth (一机一密, HTTP认证): form → iotId/iotToken;
* ``POST /auth/register/device`` — HTTPS dynamic registration (一型一密): form → DeviceSecret;
* ``POST /admin/publish`` — JSON ``{"topic", "payload" | "payload_b64", "qos"}`` with
  ``Authorization: Bearer <admin_token>``; calls ``publisher(topic, payload, qos)``
  (the console's "publish to a device").
* console admin routes (same bearer token; need ``HttpEndpoints.console``, set by
  :class:`airlab.cloud.service.CloudEmulator`): ``GET /admin/status``, ``GET
  /admin/online``, ``POST /admin/reset`` ``{"product_key","device_name"}``, ``POST
  /admin/product`` ``{"product_key", "dynamic_registration"?: bool, "host_check"?: bool,
  "tls_required"?: bool}``
  (switches a product's settings; answers them, never the secret), ``POST
  /admin/flush``, ``GET /admin/log?table=connection|message&limit=N``, ``POST
  /admin/wipe`` ``{"logs_only"?: bool, "dry_run"?: bool}`` (``airlab cloud reset``: back
  to the fixture) (see the block at the end of this module).
* the routes a remote console needs (``GET /admin/devices``, ``POST /admin/device``,
  ``GET /admin/topic-classes``, ``POST /admin/topic-class``, ``POST /admin/new-product``,
  ``GET /admin/log?product_key=&device=&after=``), and class tokens (``airlab class
  room-file``): every admin route takes the admin token or a class token, which reaches
  only its class's product (403 otherwise) — see "Class tokens" at the end.

The form body is read as bytes and parsed here: any ``Content-Type`` spelling is
accepted (the module writes ``Content-type``, with or without ``;charset=utf-8``).
Client mistakes never produce a 5xx (nor a traceback) and never stop the server: an
unreadable body (not UTF-8, bad percent-escapes) gets JSON ``code`` 460; a body over
128 KB gets HTTP 413; an unknown path 404; another method — any name — on a known route
405 with ``Allow``; a malformed request line, method or header, an HTTP version other
than 1.x (HTTP/0.9, HTTP/2.0 …) or a bad or conflicting ``Content-Length`` 400; a
chunked body 411; a head over 64 KB or with over 100 headers 431; a request that does
not arrive within its timeouts 408. Slow, idle and flooding clients are cut by
:class:`HttpLimits` (head 10 s, body 30 s, idle keep-alive 15 s, at most 256
connections: a new one closes the one waiting longest on its client). Platform answers are
HTTP 200 with the result in the JSON ``code`` (see :mod:`airlab.cloud.auth`). Every
request is logged as a :class:`~airlab.cloud.model.ConnectionEvent` (``protocol="http"``;
``event`` ``auth``/``register`` for the auth routes, ``admin`` for the admin route,
``request`` for anything else).

Example:
    >>> from airlab.cloud.registry import Registry
    >>> from airlab.cloud.auth import Rules
    >>> from airlab.cloud.fixtures import load_tutorial
    >>> import urllib.request
    >>> reg = Registry(); _ = load_tutorial(reg)
    >>> with HttpEndpoints(Rules(reg), https_port=None) as api:
    ...     body = (b"productKey=k1hipglLdjU&sign=0f655b12adf519b9a7a2b0a990f398b6"
    ...             b"&clientId=868488076506128&deviceName=868488076506128")
    ...     with urllib.request.urlopen(api.http_url + "/auth/devicename", body) as resp:
    ...         resp.status, len(resp.read())
    (200, 124)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import io
import json
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from airlab.cloud.auth import JSON_CONTENT_TYPE, HttpReply, Rules
from airlab.cloud.model import ConnectionEvent, Explanation, PublishCounts
from airlab.errors import UsageError

__all__ = ["MAX_BODY", "HttpEndpoints", "HttpLimits", "Publisher"]

log = logging.getLogger(__name__)

MAX_BODY = 128 * 1024
"""Largest request body accepted (the platform's HTTP limit)."""
_DISCARD_LIMIT = 16 * 1024 * 1024
_AUTH_ROUTES = {"/auth/devicename": "auth", "/auth/register/device": "register"}
_ADMIN_ROUTE = "/admin/publish"

Publisher = Callable[[str, bytes, int], Any]
"""``publisher(topic, payload, qos)``: deliver a cloud-to-device message."""


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024  # a flood of connects must not stall the accept queue

    def __init__(
        self,
        address: tuple[str, int],
        endpoints: HttpEndpoints,
        ssl_context: ssl.SSLContext | None,
        name: str,
    ) -> None:
        self.endpoints = endpoints
        self.ssl_context = ssl_context
        self.limits = endpoints.limits
        self._cond = threading.Condition()
        self._live: set[_Connection] = set()
        self._leaving: list[_Connection] = []
        self._closing = False
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.thread_name = f"airlab-{name}-{self.server_address[1]}"

    # -- connections: at most limits.max_connections threads ------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        conn = _Connection(self, request, client_address)
        if not self._admit(conn):
            log.debug("HTTP connection from %s refused: %d connections", client_address,
                      self.limits.max_connections)  # fmt: skip
            self.shutdown_request(request)
            return
        try:
            conn.start()
        except RuntimeError:  # no thread to be had
            self.release(conn)
            self.shutdown_request(request)

    def _admit(self, conn: _Connection) -> bool:
        cap = self.limits.max_connections
        deadline = time.monotonic() + self.limits.admit_timeout
        while True:
            with self._cond:
                if self._closing:
                    return False
                self._leaving = [c for c in self._leaving if c.is_alive()]
                if len(self._live) + len(self._leaving) < cap:
                    conn.since = time.monotonic()
                    self._live.add(conn)
                    return True
                leaving = list(self._leaving)
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if not leaving:
                    # Make room: drop the connection that has waited longest on its client.
                    waiting = [c for c in self._live if c.waiting and not c.aborted]
                    if waiting:
                        min(waiting, key=lambda c: c.since).abort()
                    self._cond.wait(left)
                    continue
            for c in leaving:  # threads at their very end: gone in a moment
                c.join(max(0.0, deadline - time.monotonic()))

    def release(self, conn: _Connection) -> None:
        with self._cond:
            if conn in self._live:
                self._live.discard(conn)
                self._leaving.append(conn)
            self._cond.notify_all()

    def close_connections(self, timeout: float = 2.0) -> None:
        """Refuse new connections, close the open ones and wait for their threads."""
        with self._cond:
            self._closing = True
            conns = list(self._live) + self._leaving
        for conn in conns:
            conn.abort()
        deadline = time.monotonic() + timeout
        for conn in conns:
            if conn.ident is not None:
                conn.join(max(0.0, deadline - time.monotonic()))

    # -- one connection (in its own thread) -----------------------------------------------

    def serve_connection(self, conn: _Connection) -> None:
        # The TLS handshake happens here, so a slow or broken client never blocks
        # accept(); it counts in the first request's head_timeout.
        request = conn.raw
        if self.ssl_context is None:
            _Handler(request, conn.client_address, self, conn)
            return
        left = conn.since + self.limits.head_timeout - time.monotonic()
        if left <= 0:
            return
        try:
            request.settimeout(left)
            tls = self.ssl_context.wrap_socket(
                request, server_side=True, do_handshake_on_connect=False
            )
        except OSError as exc:
            log.debug("TLS with %s failed: %s", conn.client_address, exc)
            return
        conn.sock = tls  # abort() reaches the connection through the TLS socket now
        try:
            conn.waiting = True
            try:
                if conn.aborted:
                    return
                tls.do_handshake()
            except OSError as exc:  # ssl.SSLError and timeouts included
                log.debug("TLS handshake with %s failed: %s", conn.client_address, exc)
                return
            finally:
                conn.waiting = False
            if not conn.aborted:
                _Handler(tls, conn.client_address, self, conn)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("HTTP connection %s ended with an error", client_address, exc_info=True)


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 method token
_DIGITS = re.compile(r"[0-9]+")
_CLIENT_FAULTS = {
    HTTPStatus.NOT_IMPLEMENTED: HTTPStatus.BAD_REQUEST,  # "unsupported method" (not used)
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: HTTPStatus.BAD_REQUEST,  # HTTP/2.0 and above
}
"""Codes the stdlib parser answers to client mistakes with a 5xx, and ours."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "airlab-cloud"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def __init__(
        self, request: Any, client_address: Any, server: _Server, conn: _Connection
    ) -> None:
        self._conn = conn
        self._requests = 0
        self._linger = False
        self._responded = False
        super().__init__(request, client_address, server)

    # -- plumbing -------------------------------------------------------------------------

    def setup(self) -> None:
        limits = self.server.limits
        self.connection = self.request
        self.connection.settimeout(limits.write_timeout)
        if self.disable_nagle_algorithm:
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self._reader = _Reader(self.connection, self._conn, limits.write_timeout)
        self.rfile = io.BufferedReader(self._reader)
        self.wfile = _Writer(self.connection)

    def finish(self) -> None:
        super().finish()
        if self._linger and not self._conn.aborted:
            self._conn.waiting = True  # evictable like any connection waiting on its client
            _linger(self.connection, self.server.limits.linger_timeout)

    def handle_one_request(self) -> None:
        """Read one request within the limits and dispatch it (any method name)."""
        limits = self.server.limits
        reader = self._reader
        self.command = None
        self.requestline = ""
        self.request_version = self.default_request_version
        self._responded = False
        started = False
        try:
            if self._requests:  # kept alive: wait for the next request
                self._conn.since = time.monotonic()
                reader.deadline = self._conn.since + limits.idle_timeout
            else:  # the first request's head is due head_timeout after the accept
                reader.deadline = self._conn.since + limits.head_timeout
            reader.per_read = None
            reader.budget = None
            if not self.rfile.peek(1):
                self.close_connection = True
                return
            started = True
            self._requests += 1
            if self._requests > 1:
                reader.deadline = time.monotonic() + limits.head_timeout
            reader.per_read = limits.read_timeout
            reader.budget = limits.max_head_bytes
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return  # answered
            reader.budget = None
            reader.deadline = time.monotonic() + limits.body_timeout
            self._dispatch()
            self.wfile.flush()
        except _ReadTimeout:
            self.close_connection = True
            if started and not self._responded:
                self.send_error(HTTPStatus.REQUEST_TIMEOUT, "the request did not arrive in time")
        except _HeadTooLarge:
            self.send_error(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                f"the request head is larger than {limits.max_head_bytes} bytes",
            )
        except TimeoutError:  # a response the client does not read
            self.close_connection = True

    def parse_request(self) -> bool:
        if len(self.raw_requestline.split()) == 2:  # "GET /": an HTTP/0.9 request
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 is not supported; use HTTP/1.1")
            return False
        if not super().parse_request():
            return False
        if not self.request_version.startswith("HTTP/1."):  # HTTP/0.9 (2.0+: send_error)
            self.send_error(
                HTTPStatus.BAD_REQUEST,
                f"{self.request_version} is not supported; use HTTP/1.1",
            )
            return False
        return True

    def _dispatch(self) -> None:
        command = self.command or ""
        if not _TOKEN.fullmatch(command):
            self._error(400, "request", f"bad method {command!r}", close=True)
            return
        # Any other method name: 405 on a known route (with Allow), 404 elsewhere.
        handler = getattr(self, f"do_{command}", None) or self._other
        try:
            handler()
        except OSError:
            raise
        except Exception:
            log.exception("HTTP %s %s failed", command, self._path())
            self.close_connection = True
            if not self._responded:
                self._error(500, "request", "internal error", close=True)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def remote(self) -> str:
        host, port = self.client_address[:2]
        return f"{host}:{port}"

    @property
    def endpoints(self) -> HttpEndpoints:
        return self.server.endpoints

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = JSON_CONTENT_TYPE,
        *,
        close: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        if close:
            self.close_connection = True
            self._linger = True  # the client may still be sending
        self._responded = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Connection", "close" if self.close_connection else "keep-alive")
        # Head and body leave in one write (one TCP segment for small replies).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found while reading the request (bad request line, header too long,
        timeouts ...): always a real status line, a 4xx for a client mistake (the
        stdlib's 505 for HTTP/2.0 becomes 400) and a JSON body, then close."""
        code = _CLIENT_FAULTS.get(code, code)
        if not self.request_version.startswith("HTTP/1."):
            self.request_version = "HTTP/1.0"  # HTTP/0.9 answers have no status line
        text = message or self.responses.get(code, ("error",))[0]
        if code == HTTPStatus.BAD_REQUEST and "HTTP version" in text:
            text += "; use HTTP/1.1"
        self._log("request", code, text, Explanation("http_request", text, {}))
        with contextlib.suppress(OSError):
            self._send(code, _dumps({"code": code, "message": text}), close=True)

    def _log(self, event: str, code: int, reason: str, explanation: Explanation | None = None):
        self.endpoints.rules.log_connection(
            ConnectionEvent(
                time=time.time(),
                protocol="http",
                event=event,
                accepted=False,
                remote=self.remote,
                code=code,
                reason=reason,
                explanation=explanation,
            )
        )

    def _error(self, status: int, event: str, message: str, *, close: bool = False, **extra: str):
        self._log(event, status, message, Explanation("http_request", message, {}))
        body = _dumps({"code": status, "message": message})
        self._send(status, body, close=close, extra=extra or None)

    def _read_body(self, event: str) -> bytes | None:
        """Read the request body, or answer the error and return None."""
        if "Transfer-Encoding" in self.headers:
            self._error(411, event, "send the body with a Content-Length", close=True)
            return None
        values = {v.strip() for v in self.headers.get_all("Content-Length", [])}
        if len(values) > 1:
            self._error(400, event, "conflicting Content-Length headers", close=True)
            return None
        text = values.pop() if values else "0"
        if not _DIGITS.fullmatch(text):
            self._error(400, event, f"bad Content-Length {text!r}", close=True)
            return None
        length = int(text) if len(text) <= 18 else 1 << 62
        if length > MAX_BODY:
            if length <= _DISCARD_LIMIT:
                self._discard(length)
            shown = text if len(text) <= 18 else f"{text[:18]}…"
            self._error(
                413,
                event,
                f"request body of {shown} bytes is larger than {MAX_BODY} bytes",
                close=True,
            )
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            self.close_connection = True
            return None
        return body

    def _discard(self, length: int) -> None:
        """Read and drop a body too large to serve, so the client reads the 413 (not
        past the body's deadline: then the close may reset the connection)."""
        remaining = length
        with contextlib.suppress(_ReadTimeout):
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)

    def _has_body(self) -> bool:
        return "Content-Length" in self.headers or "Transfer-Encoding" in self.headers

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    # -- methods --------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = self._path()
        if path in _AUTH_ROUTES:
            self._auth(path, _AUTH_ROUTES[path])
        elif path == _ADMIN_ROUTE:
            self._admin()
        elif path in _CONSOLE_ROUTES:  # console admin routes: see the block at the end
            _console_route(self, path)
        else:
            body = self._read_body("request")
            if body is not None:
                self._error(404, "request", f"no route POST {path}")

    def _other(self) -> None:
        path = self._path()
        if path in _CONSOLE_ROUTES:  # console admin routes: see the block at the end
            _console_route(self, path)
            return
        event = _AUTH_ROUTES.get(path, "admin" if path == _ADMIN_ROUTE else "request")
        if self._has_body() and self._read_body(event) is None:
            return
        if event != "request":
            self._error(
                405, event, f"{self.command} is not allowed on {path}; use POST", Allow="POST"
            )
        else:
            self._error(404, "request", f"no route {self.command} {path}")

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _other

    # -- routes ---------------------------------------------------------------------------

    def _auth(self, path: str, event: str) -> None:
        body = self._read_body(event)
        if body is None:
            return
        rules = self.endpoints.rules
        try:
            text = body.decode("utf-8")
            form = dict(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict"))
        except UnicodeDecodeError:
            reply = rules.http_param_error(event, "the body is not UTF-8", remote=self.remote)
        except ValueError as exc:
            reply = rules.http_param_error(event, str(exc), remote=self.remote)
        else:
            try:
                if event == "auth":
                    reply = rules.auth_devicename(form, remote=self.remote)
                else:
                    reply = rules.register_device(form, remote=self.remote)
            except Exception:
                log.exception("rules failed on %s", path)
                reply = HttpReply(200, _dumps({"code": 500, "message": "unknow error"}))
        self._send(reply.status, reply.body, reply.content_type)

    def _admin(self) -> None:
        body = self._read_body("admin")
        if body is None:
            return
        caller = _authorize(self)  # admin or class token: see the block at the end
        if caller is None:
            return
        publisher = self.endpoints.publisher
        if publisher is None:
            self._error(503, "admin", "no publisher: the MQTT broker is not running")
            return
        try:
            request = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._error(400, "admin", "the body must be a JSON object")
            return
        problem, topic, payload, qos = _publish_args(request)
        if problem:
            self._error(400, "admin", problem)
            return
        if not caller.may_publish(topic):
            self._error(403, "admin", caller.forbidden(f"publishing to {topic}"))
            return
        try:
            result = publisher(topic, payload, qos)
        except (ValueError, KeyError, LookupError) as exc:
            self._error(400, "admin", f"publish refused: {exc}")
            return
        except Exception as exc:
            log.exception("publisher failed")
            self._error(500, "admin", f"publish failed: {exc}")
            return
        answer: dict[str, object] = {
            "code": 200,
            "message": "success",
            "topic": topic,
            "qos": qos,
            "bytes": len(payload),
        }
        if isinstance(result, PublishCounts):  # delivered clients, queued sessions
            answer["result"] = result.delivered
            if result.queued is not None:
                answer["queued"] = result.queued
        elif isinstance(result, bool | int | float | str) or result is None:
            answer["result"] = result
        self.endpoints.rules.log_connection(
            ConnectionEvent(
                time=time.time(),
                protocol="http",
                event="admin",
                accepted=True,
                remote=self.remote,
                code=200,
                reason=f"published {len(payload)} bytes to {topic} (QoS {qos})",
            )
        )
        self._send(200, _dumps(answer))


def _publish_args(request: object) -> tuple[str | None, str, bytes, int]:
    if not isinstance(request, dict):
        return "the body must be a JSON object", "", b"", 0
    topic = request.get("topic")
    if not isinstance(topic, str) or not topic:
        return "'topic' (text) is required", "", b"", 0
    qos = request.get("qos", 0)
    if isinstance(qos, bool) or qos not in (0, 1):
        return "'qos' must be 0 or 1", "", b"", 0
    if "payload_b64" in request:
        try:
            payload = base64.b64decode(str(request["payload_b64"]), validate=True)
        except (binascii.Error, ValueError):
            return "'payload_b64' is not valid base64", "", b"", 0
    else:
        text = request.get("payload", "")
        if not isinstance(text, str):
            return "'payload' must be text (or use 'payload_b64')", "", b"", 0
        payload = text.encode("utf-8")
    return None, topic, payload, int(qos)


class HttpEndpoints:
    """The HTTP and HTTPS listeners of the emulator, each in a background thread.

    ``http_port``/``https_port``: 0 picks a free port, None leaves that listener off.
    ``ssl_context`` defaults to :func:`airlab.cloud.tls.make_server_context` (a
    certificate for localhost and the Aliyun host names). ``admin_token`` protects
    ``/admin/publish`` (None: the route always answers 401); ``publisher`` carries the
    publish out (None: 503). ``limits``: timeouts and the connection cap
    (:class:`HttpLimits`; its defaults when None).
    """

    def __init__(
        self,
        rules: Rules,
        *,
        host: str = "127.0.0.1",
        http_port: int | None = 0,
        https_port: int | None = 0,
        ssl_context: ssl.SSLContext | None = None,
        admin_token: str | None = None,
        publisher: Publisher | None = None,
        limits: HttpLimits | None = None,
    ) -> None:
        self.rules = rules
        self.limits = limits or HttpLimits()
        self.host = host
        self.admin_token = admin_token
        self.publisher = publisher
        self._wanted = (http_port, https_port)
        self._ssl_context = ssl_context
        self._servers: list[tuple[_Server, threading.Thread]] = []
        self._http: _Server | None = None
        self._https: _Server | None = None

    def __enter__(self) -> HttpEndpoints:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> HttpEndpoints:
        """Bind and serve (returns at once). Ports are known when this returns."""
        if self._servers:
            return self
        http_port, https_port = self._wanted
        try:
            if http_port is not None:
                self._http = self._serve(http_port, None, "http")
            if https_port is not None:
                context = self._ssl_context
                if context is None:
                    from airlab.cloud.tls import make_server_context

                    context = make_server_context()
                self._https = self._serve(https_port, context, "https")
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self, port: int, context: ssl.SSLContext | None, name: str) -> _Server:
        server = _Server((self.host, port), self, context, name)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=server.thread_name,
            daemon=True,
        )
        thread.start()
        self._servers.append((server, thread))
        return server

    def stop(self) -> None:
        """Stop both listeners (idempotent). Open connections are closed."""
        servers, self._servers = self._servers, []
        for server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            server.close_connections()
        self._http = self._https = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return bool(self._servers)

    def _port(self, server: _Server | None, name: str) -> int:
        if server is None:
            raise RuntimeError(f"the {name} listener is not running")
        return int(server.server_address[1])

    @property
    def http_port(self) -> int:
        """Port of the plain HTTP listener."""
        return self._port(self._http, "HTTP")

    @property
    def https_port(self) -> int:
        """Port of the HTTPS listener."""
        return self._port(self._https, "HTTPS")

    def _url(self, scheme: str, port: int) -> str:
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{port}"

    @property
    def http_url(self) -> str:
        """``http://host:port`` of the plain listener."""
        return self._url("http", self.http_port)

    @property
    def https_url(self) -> str:
        """``https://host:port`` of the TLS listener."""
        return self._url("https", self.https_port)


# ==========================================================================================
# Console admin routes (added for airlab.cloud.service; separate from the routes above).
#
# ``HttpEndpoints.console`` (an attribute set after construction, default absent) is an
# object with ``status()``, ``online_devices()`` (items with ``as_dict()``),
# ``reset_registration(pk, dn)``, ``flush()``, ``registry``, ``product_settings(pk)``,
# ``set_dynamic_registration(pk, on)``, ``set_host_check(pk, on)`` and
# ``wipe(logs_only=, dry_run=)`` (``POST /admin/wipe`` ``{"logs_only"?: bool,
# "dry_run"?: bool}``: ``airlab cloud reset``; answers ``{"removed": {table: rows}}``,
# what would be removed with ``dry_run``). Every route needs
# ``Authorization: Bearer <admin token>`` and answers JSON ``{"code": 200, ...}``;
# errors use the HTTP status as ``code`` (401, 400, 404, 405, 503). Successful reads are
# not logged (a notebook may poll them); refusals are logged as ``admin`` events.
# ==========================================================================================

_CONSOLE_ROUTES = {
    "/admin/status": "GET",
    "/admin/online": "GET",
    "/admin/log": "GET",
    "/admin/reset": "POST",
    "/admin/flush": "POST",
    "/admin/product": "POST",
    "/admin/wipe": "POST",
    # added for class tokens and RemoteCloud over the network (see "Class tokens" below)
    "/admin/devices": "GET",
    "/admin/device": "POST",
    "/admin/topic-classes": "GET",
    "/admin/topic-class": "POST",
    "/admin/new-product": "POST",
}
_PRODUCT_SWITCHES = ("dynamic_registration", "host_check", "tls_required")
_LOG_LIMIT = 10_000


def _console_route(handler: _Handler, path: str) -> None:
    if handler._has_body():
        body = handler._read_body("admin")
        if body is None:
            return
    else:
        body = b""
    endpoints = handler.endpoints
    caller = _authorize(handler)
    if caller is None:
        return
    method = _CONSOLE_ROUTES[path]
    if handler.command != method:
        handler._error(405, "admin", f"{handler.command} is not allowed on {path}; use {method}",
                       Allow=method)  # fmt: skip
        return
    console = getattr(endpoints, "console", None)
    if console is None:
        handler._error(503, "admin", "no console: the emulator service is not attached")
        return
    try:
        answer = _console_answer(console, path, handler.path, body, caller)
    except _ConsoleProblem as exc:
        handler._error(exc.status, "admin", exc.message)
        return
    except Exception as exc:
        log.exception("console route %s failed", path)
        handler._error(500, "admin", f"{path} failed: {exc}")
        return
    handler._send(200, _dumps({"code": 200, "message": "success", **answer}))


class _ConsoleProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _console_answer(
    console: Any, path: str, raw_path: str, body: bytes, caller: _Caller | None = None
) -> dict[str, Any]:
    from urllib.parse import parse_qs, urlsplit

    caller = caller or _ADMIN
    if path in _ADMIN_ONLY and not caller.admin:
        raise _ConsoleProblem(403, caller.forbidden(path))
    if path in _SCOPED_ROUTES:
        return _SCOPED_ROUTES[path](console, caller, raw_path, body)
    if path == "/admin/log" and (not caller.admin or _wants_rows(raw_path)):
        return _log_rows_answer(console, caller, raw_path)
    if path == "/admin/status":
        return dict(console.status())
    if path == "/admin/online":
        return {
            "devices": [
                d.as_dict() for d in console.online_devices() if caller.reaches(d.product_key)
            ]
        }
    if path == "/admin/flush":
        return {"flushed": bool(console.flush())}
    if path == "/admin/product":
        request = _json_object(body)
        caller.check(request.get("product_key"), path)
        return _product_answer(console, request)
    if path == "/admin/wipe":
        return _wipe_answer(console, _json_object(body))
    if path == "/admin/reset":
        request = _json_object(body)
        pk, dn = request.get("product_key"), request.get("device_name")
        if not isinstance(pk, str) or not pk or not isinstance(dn, str) or not dn:
            raise _ConsoleProblem(400, "'product_key' and 'device_name' (text) are required")
        caller.check(pk, f"ResetThing of {pk}/{dn}")
        try:
            console.reset_registration(pk, dn)
        except UsageError as exc:
            raise _ConsoleProblem(404, exc.message) from None
        return {"product_key": pk, "device_name": dn, "activated": False}
    # /admin/log
    query = parse_qs(urlsplit(raw_path).query)
    table = (query.get("table") or ["connection"])[0]
    limit_text = (query.get("limit") or [str(_LOG_LIMIT)])[0]
    try:
        limit = max(0, min(int(limit_text), _LOG_LIMIT))
    except ValueError:
        raise _ConsoleProblem(400, f"'limit' must be an integer, not {limit_text!r}") from None
    registry = console.registry
    if table == "connection":
        rows = [_event_row(e) for e in registry.connection_log(limit=limit)]
    elif table == "message":
        rows = [_message_row(m) for m in registry.message_log(limit=limit)]
    else:
        raise _ConsoleProblem(400, f"'table' must be connection or message, not {table!r}")
    return {"table": table, "rows": rows}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        request = None
    if not isinstance(request, dict):
        raise _ConsoleProblem(400, "the body must be a JSON object")
    return request


def _product_answer(console: Any, request: dict[str, Any]) -> dict[str, Any]:
    """``POST /admin/product``: check every field first, then switch, then answer the
    product's settings (no secret)."""
    pk = request.get("product_key")
    if not isinstance(pk, str) or not pk:
        raise _ConsoleProblem(400, "'product_key' (text) is required")
    unknown = sorted(set(request) - {"product_key", *_PRODUCT_SWITCHES})
    if unknown:
        raise _ConsoleProblem(
            400, f"unknown field(s) {', '.join(unknown)}: use {', '.join(_PRODUCT_SWITCHES)}"
        )
    for name in _PRODUCT_SWITCHES:
        if name in request and not isinstance(request[name], bool):
            raise _ConsoleProblem(400, f"'{name}' must be true or false")
    try:
        settings = console.product_settings(pk)
        if "dynamic_registration" in request:
            settings = console.set_dynamic_registration(pk, request["dynamic_registration"])
        if "host_check" in request:
            settings = console.set_host_check(pk, request["host_check"])
        if "tls_required" in request:
            settings = console.set_tls_required(pk, request["tls_required"])
    except UsageError as exc:
        raise _ConsoleProblem(404, exc.message) from None
    return {"product": dict(settings)}


def _wipe_answer(console: Any, request: dict[str, Any]) -> dict[str, Any]:
    """``POST /admin/wipe``: back to the fixture (or only the logs emptied)."""
    unknown = sorted(set(request) - {"logs_only", "dry_run"})
    if unknown:
        raise _ConsoleProblem(400, f"unknown field(s) {', '.join(unknown)}: use logs_only, dry_run")
    flags = {name: request.get(name, False) for name in ("logs_only", "dry_run")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise _ConsoleProblem(400, f"'{name}' must be true or false")
    removed = console.wipe(logs_only=flags["logs_only"], dry_run=flags["dry_run"])
    return {**flags, "removed": dict(removed)}


def _event_row(e: ConnectionEvent) -> dict[str, Any]:
    return {
        "time": e.time,
        "protocol": e.protocol,
        "event": e.event,
        "accepted": e.accepted,
        "product_key": e.device.product_key if e.device else None,
        "device_name": e.device.device_name if e.device else None,
        "client_id": e.client_id,
        "remote": e.remote,
        "code": e.code,
        "reason": e.reason,
        "explanation": e.explanation.as_dict() if e.explanation else None,
    }


def _message_row(m: Any) -> dict[str, Any]:
    return {
        "time": m.time,
        "direction": m.direction,
        "product_key": m.device.product_key if m.device else None,
        "device_name": m.device.device_name if m.device else None,
        "client_id": m.client_id,
        "topic": m.topic,
        "qos": m.qos,
        "payload_b64": base64.b64encode(m.payload).decode("ascii"),
        "accepted": m.accepted,
        "reason": m.reason,
    }


# ==========================================================================================
# Class tokens (``airlab class room-file``): scoped access for students on their laptops.
#
# The bearer token is the admin token (everything, as before) or a class token: its
# SHA-256 digest is stored with the class (``Registry.add_class_token``), and it reaches
# only the class's product: the logs of its devices (and the unattributed refusals that
# mention its key), its devices without their secrets, a new device (with its secret),
# ResetThing, its settings and topic classes, publishing to ``/<pk>/...`` and
# ``/sys/<pk>/...``, its online devices, ``/admin/flush``. Anything else answers 403 with
# a JSON message naming the admin token (logged like every admin refusal).
#
# Routes added for them and for :class:`airlab.cloud.discovery.RemoteCloud` over the
# network: ``GET /admin/devices?product_key=``, ``POST /admin/device`` ``{"product_key",
# "device_name"?, "device_secret"?, "activated"?}``, ``GET
# /admin/topic-classes?product_key=``, ``POST /admin/topic-class`` ``{"product_key",
# "template", "permission"}``, ``POST /admin/new-product`` (admin only) and ``GET
# /admin/log?table=&product_key=&device=&after=&limit=`` (rows as stored, with their
# ``id``, ``payload_b64``; pages of at most ``limit``; ``next_after`` and ``more``).
# ==========================================================================================

_ADMIN_ONLY = frozenset({"/admin/status", "/admin/wipe", "/admin/new-product"})
_PAGE = 5000


@dataclass(frozen=True)
class _Caller:
    """Who called: the admin (``admin``) or a class token's class and product."""

    admin: bool
    class_name: str | None = None
    product_key: str | None = None

    def reaches(self, product_key: object) -> bool:
        return self.admin or (isinstance(product_key, str) and product_key == self.product_key)

    def may_publish(self, topic: str) -> bool:
        pk = self.product_key
        return self.admin or topic.startswith((f"/{pk}/", f"/sys/{pk}/"))

    def forbidden(self, what: str) -> str:
        return (
            f"{what} needs the teacher's admin token: the class token of class "
            f"{self.class_name!r} only reaches its product {self.product_key}"
        )

    def check(self, product_key: object, what: str) -> None:
        if not self.reaches(product_key):
            raise _ConsoleProblem(403, self.forbidden(what))


_ADMIN = _Caller(admin=True)


def _authorize(handler: _Handler) -> _Caller | None:
    """The caller of an admin route, or None after answering 401. The admin token is
    compared in constant time, a class token by its digest (``class_of_token``)."""
    token = handler.endpoints.admin_token
    scheme, _, value = handler.headers.get("Authorization", "").partition(" ")
    given = value.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() == "bearer" and given:
        if token is not None and hmac.compare_digest(given, token.encode()):
            return _ADMIN
        registry = getattr(handler.endpoints.rules, "registry", None)
        finder = getattr(registry, "class_of_token", None)
        found = finder(value.strip()) if finder is not None else None
        if found is not None:
            return _Caller(admin=False, class_name=found[0], product_key=found[1])
    handler._error(
        401,
        "admin",
        "the admin API needs 'Authorization: Bearer <admin token>' (or a class token)"
        + (" (no admin token is configured)" if token is None else ""),
        **{"WWW-Authenticate": "Bearer"},
    )
    return None


def _query(raw_path: str) -> dict[str, str]:
    from urllib.parse import parse_qs, urlsplit

    return {k: v[0] for k, v in parse_qs(urlsplit(raw_path).query).items() if v}


def _wants_rows(raw_path: str) -> bool:
    return bool({"product_key", "device", "after"} & set(_query(raw_path)))


def _valid_pk(value: object) -> str:
    from airlab.aliyun import validate_platform_product_key

    if not isinstance(value, str) or not value:
        raise _ConsoleProblem(400, "'product_key' (text) is required")
    try:
        return validate_platform_product_key(value)
    except UsageError as exc:
        raise _ConsoleProblem(400, exc.message) from None


def _valid_dn(value: object) -> str:
    from airlab.aliyun import validate_platform_device_name

    if not isinstance(value, str) or not value:
        raise _ConsoleProblem(400, "'device_name' (text) is required")
    try:
        return validate_platform_device_name(value)
    except UsageError as exc:
        raise _ConsoleProblem(400, exc.message) from None


def _int_param(query: dict[str, str], name: str, default: int, top: int) -> int:
    text = query.get(name, str(default))
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise _ConsoleProblem(400, f"'{name}' must be a whole number, not {text!r}")
    return min(int(text), top)


def _scoped_pk(caller: _Caller, value: object, what: str) -> str:
    """The product a request is about: given (validated, and the caller's) or, for a
    class token, its class's."""
    if value is None and not caller.admin:
        return str(caller.product_key)
    pk = _valid_pk(value)
    caller.check(pk, what)
    return pk


def _log_rows_answer(console: Any, caller: _Caller, raw_path: str) -> dict[str, Any]:
    """``GET /admin/log`` with ``product_key``/``device``/``after`` (or a class token):
    rows as stored, oldest first, from id ``after`` on, one page of at most ``limit``."""
    query = _query(raw_path)
    table = query.get("table", "connection")
    if table not in ("connection", "message"):
        raise _ConsoleProblem(400, f"'table' must be connection or message, not {table!r}")
    pk = query.get("product_key")
    pk = _scoped_pk(caller, pk, f"the {table} log of product {pk}") if (
        pk is not None or not caller.admin
    ) else None  # fmt: skip
    dn = _valid_dn(query["device"]) if "device" in query else None
    if dn is not None and pk is None:
        raise _ConsoleProblem(400, "'device' needs 'product_key'")
    after = _int_param(query, "after", 0, 1 << 62)
    limit = max(1, _int_param(query, "limit", _PAGE, _PAGE))
    raw = console.registry.log_rows_after(f"{table}_log", after, pk, limit=limit)
    rows = []
    for row in raw:
        if dn is not None and (row["product_key"], row["device_name"]) != (pk, dn):
            continue
        if pk is not None and row["product_key"] is None and not _mentions_key(row, pk):
            continue
        rows.append(_stored_row(row))
    return {
        "table": table,
        "rows": rows,
        "next_after": raw[-1]["id"] if raw else after,
        "more": len(raw) == limit,
    }


def _mentions_key(row: dict[str, Any], product_key: str) -> bool:
    """An unattributed row (a refused CONNECT names no device) that mentions the key."""
    text = " ".join(str(row.get(k) or "") for k in ("client_id", "reason", "explanation"))
    return product_key in text


def _stored_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if "payload" in out:
        out["payload_b64"] = base64.b64encode(bytes(out.pop("payload") or b"")).decode("ascii")
    return out


def _device_dict(device: Any, *, secret: bool) -> dict[str, Any]:
    return {
        "product_key": device.product_key,
        "device_name": device.device_name,
        "device_secret": device.device_secret if secret else None,
        "enabled": device.enabled,
        "activated": device.activated,
        "iot_id": device.iot_id,
        "created": device.created,
    }


def _devices_answer(console: Any, caller: _Caller, raw_path: str, body: bytes) -> dict:
    """``GET /admin/devices?product_key=``: the device list; secrets for the admin only."""
    query = _query(raw_path)
    pk = query.get("product_key")
    pk = _scoped_pk(caller, pk, "listing devices" + (f" of {pk}" if pk else "")) if (
        pk is not None or not caller.admin
    ) else None  # fmt: skip
    devices = console.registry.devices(pk)
    return {"devices": [_device_dict(d, secret=caller.admin) for d in devices]}


def _new_device_answer(console: Any, caller: _Caller, raw_path: str, body: bytes) -> dict:
    """``POST /admin/device``: add a device (a fresh name unless given) and answer it
    with its DeviceSecret (the ProductSecret too, for the admin)."""
    from airlab.cloud.names import new_device_name

    request = _json_object(body)
    unknown = sorted(set(request) - {"product_key", "device_name", "device_secret", "activated"})
    if unknown:
        raise _ConsoleProblem(400, f"unknown field(s) {', '.join(unknown)}")
    pk = _valid_pk(request.get("product_key"))
    caller.check(pk, f"adding a device to {pk}")
    secret = request.get("device_secret")
    if secret is not None and not isinstance(secret, str):
        raise _ConsoleProblem(400, "'device_secret' must be text")
    activated = request.get("activated", False)
    if not isinstance(activated, bool):
        raise _ConsoleProblem(400, "'activated' must be true or false")
    registry = console.registry
    product = registry.get_product(pk)
    if product is None:
        raise _ConsoleProblem(404, f"no product {pk!r}")
    given = request.get("device_name")
    names = [_valid_dn(given)] if given is not None else [new_device_name() for _ in range(5)]
    device = None
    for name in names:
        try:
            device = registry.add_device(pk, name, secret)
            break
        except UsageError as exc:
            if given is not None or "already exists" not in exc.message:
                raise _ConsoleProblem(400, exc.message) from None
    if device is None:
        raise _ConsoleProblem(409, "no free device name after 5 tries")
    if activated:
        registry.mark_activated(device.ref)
        device = registry.get_device(device.ref)
    answer: dict[str, Any] = {"device": _device_dict(device, secret=True)}
    if caller.admin:
        answer["product_secret"] = product.product_secret
    return answer


def _topic_classes_answer(console: Any, caller: _Caller, raw_path: str, body: bytes) -> dict:
    pk = _scoped_pk(caller, _query(raw_path).get("product_key"), "reading topic classes")
    if console.registry.get_product(pk) is None:
        raise _ConsoleProblem(404, f"no product {pk!r}")
    classes = console.registry.topic_classes(pk)
    return {"topic_classes": [{"template": c.template, "permission": c.permission.value}
                              for c in classes]}  # fmt: skip


def _add_topic_class_answer(console: Any, caller: _Caller, raw_path: str, body: bytes) -> dict:
    request = _json_object(body)
    pk = _valid_pk(request.get("product_key"))
    caller.check(pk, f"adding a topic class to {pk}")
    template, permission = request.get("template"), request.get("permission")
    if not isinstance(template, str) or not isinstance(permission, str):
        raise _ConsoleProblem(400, "'template' and 'permission' (text) are required")
    try:
        added = console.add_topic_class(pk, template, permission)
    except UsageError as exc:
        raise _ConsoleProblem(400, exc.message) from None
    return {"topic_class": {"template": added.template, "permission": added.permission.value}}


def _new_product_answer(console: Any, caller: _Caller, raw_path: str, body: bytes) -> dict:
    """``POST /admin/new-product`` (admin only): create a product, answer it with its
    ProductSecret."""
    request = _json_object(body)
    fields = {"product_key", "product_secret", "region", "dynamic_registration", "host_check",
              "tls_required", "topic_classes"}  # fmt: skip
    unknown = sorted(set(request) - fields)
    if unknown:
        raise _ConsoleProblem(400, f"unknown field(s) {', '.join(unknown)}")
    pk = _valid_pk(request.get("product_key"))
    options: dict[str, Any] = {}
    for name in _PRODUCT_SWITCHES:
        if name in request:
            if not isinstance(request[name], bool):
                raise _ConsoleProblem(400, f"'{name}' must be true or false")
            options[name] = request[name]
    for name in ("product_secret", "region"):
        if name in request and not isinstance(request[name], str):
            raise _ConsoleProblem(400, f"'{name}' must be text")
    classes = request.get("topic_classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(
            isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) for x in c)
            for c in classes
        ):
            raise _ConsoleProblem(400, "'topic_classes' must be [[template, permission], ...]")
        options["topic_classes"] = [tuple(c) for c in classes]
    if "region" in request:
        options["region"] = request["region"]
    try:
        product = console.add_product(pk, request.get("product_secret"), **options)
    except UsageError as exc:
        raise _ConsoleProblem(400, exc.message) from None
    return {
        "product": {
            "product_key": product.product_key,
            "product_secret": product.product_secret,
            "region": product.region,
            "dynamic_registration": product.dynamic_registration,
            "created": product.created,
            "host_check": product.host_check,
            "tls_required": product.tls_required,
        }
    }


_SCOPED_ROUTES: dict[str, Callable[[Any, _Caller, str, bytes], dict[str, Any]]] = {
    "/admin/devices": _devices_answer,
    "/admin/device": _new_device_answer,
    "/admin/topic-classes": _topic_classes_answer,
    "/admin/topic-class": _add_topic_class_answer,
    "/admin/new-product": _new_product_answer,
}
