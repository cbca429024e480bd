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
  to the fixture) (see :mod:`airlab.cloud.http_console`).
* the routes a remote console needs (``GET /admin/devices``, ``POST /admin/device``,
  ``GET /admin/topic-classes``, ``POST /admin/topic-class``, ``POST /admin/new-product``,
  ``GET /admin/log?product_key=&device=&after=``), and class tokens (``airlab class
  room-file``): every admin route takes the admin token or a class token, which reaches
  only its class's product (403 otherwise) — see "Class tokens" in :mod:`airlab.cloud.http_console`.

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

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from airlab.cloud.auth import Rules
from airlab.cloud.http_conn import HttpLimits, _Connection
from airlab.cloud.http_handler import MAX_BODY, _Handler

__all__ = ["MAX_BODY", "HttpEndpoints", "HttpLimits", "Publisher"]

log = logging.getLogger(__name__)

Publisher = Callable[[str, bytes, int], Any]
"""``publisher(topic, payload, qos)``: deliver a cloud-to-device message."""


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
        # the stub wants a handler class built from (request, address, server); ours also
        # takes its _Connection, so serve_connection builds it and the base never does
        super().__init__(address, _Handler)  # type: ignore[arg-type]
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


class HttpEndpoints:
    """The HTTP and HTTPS listeners of the emulator, each in a background thread.

    ``http_port``/``https_port``: 0 picks a free port, None leaves that listener off.
    ``ssl_context`` defaults to :func:`airlab.cloud.tls.make_server_context` (a
    certificate for localhost and the Aliyun host names). ``admin_token`` protects
    ``/admin/publish`` (None: the route always answers 401); ``publisher`` carries the
    publish out (None: 503). ``limits``: timeouts and the connection cap
    (:class:`HttpLimits`; its defaults when None).
    """

    console: Any
    """The object the console admin routes call (see :mod:`airlab.cloud.http_console`):
    set after construction by :class:`~airlab.cloud.service.CloudEmulator`; absent
    until then (those routes answer 503)."""

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
