"""The request handler of the emulator's HTTP(S) listeners: reading one request within
:class:`~airlab.cloud.http_conn.HttpLimits`, the error answers (a 4xx and a JSON body for
every client mistake, never a traceback), the log of each refusal, and the two routes the
platform serves plus the console's publish:

=============================  ==============================================
Route                           Handled by
=============================  ==============================================
``POST /auth/devicename``       ``_Handler._auth`` → ``Rules.auth_devicename``
``POST /auth/register/device``  ``_Handler._auth`` → ``Rules.register_device``
``POST /admin/publish``         ``_Handler._admin`` → ``HttpEndpoints.publisher``
the other ``/admin/...`` routes :mod:`airlab.cloud.http_console`
anything else                   404 (405 with ``Allow`` on a known route)
=============================  ==============================================

:mod:`airlab.cloud.http_api` serves it (see there for the whole contract).

Example:
    >>> _publish_args({"topic": "/k1/dev/user/get", "payload": "hi", "qos": 1})
    (None, '/k1/dev/user/get', b'hi', 1)
    >>> _publish_args({"topic": "/k1/dev/user/get", "qos": 2})[0]
    "'qos' must be 0 or 1"
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import logging
import re
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from airlab.cloud.auth_common import JSON_CONTENT_TYPE, HttpReply, _dumps
from airlab.cloud.http_conn import (
    _Connection,
    _HeadTooLarge,
    _linger,
    _Reader,
    _ReadTimeout,
    _Writer,
)
from airlab.cloud.http_console import _CONSOLE_ROUTES, _authorize, _console_route
from airlab.cloud.model import ConnectionEvent, Explanation, PublishCounts

if TYPE_CHECKING:
    from airlab.cloud.http_api import HttpEndpoints, _Server

__all__ = ["MAX_BODY"]

log = logging.getLogger("airlab.cloud.http_api")

MAX_BODY = 128 * 1024
"""Largest request body accepted (the platform's HTTP limit)."""
_DISCARD_LIMIT = 16 * 1024 * 1024
_AUTH_ROUTES = {"/auth/devicename": "auth", "/auth/register/device": "register"}
_ADMIN_ROUTE = "/admin/publish"


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 method token
_DIGITS = re.compile(r"[0-9]+")
_CLIENT_FAULTS: dict[int, int] = {
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
    rfile: io.BufferedReader  # setup() wraps the _Reader: handle_one_request peeks
    _headers_buffer: list[bytes]  # BaseHTTPRequestHandler's, not in its stub

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
        self.command = ""  # no request read yet
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
        text = message or _phrase(code)
        if code == HTTPStatus.BAD_REQUEST and "HTTP version" in text:
            text += "; use HTTP/1.1"
        self._log("request", code, text, Explanation("http_request", text, {}))
        with contextlib.suppress(OSError):
            self._send(code, _dumps({"code": code, "message": text}), close=True)

    def _log(
        self, event: str, code: int, reason: str, explanation: Explanation | None = None
    ) -> None:
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

    def _error(
        self,
        status: int,
        event: str,
        message: str,
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Log and answer a refused request: ``status``, a JSON body with ``message``
        and the extra ``headers`` (``Allow``, ``WWW-Authenticate`` ...)."""
        self._log(event, status, message, Explanation("http_request", message, {}))
        body = _dumps({"code": status, "message": message})
        self._send(status, body, close=close, extra=headers or None)

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
        elif path in _CONSOLE_ROUTES:  # console admin routes: see http_console
            _console_route(self, path)
        else:
            body = self._read_body("request")
            if body is not None:
                self._error(404, "request", f"no route POST {path}")

    def _other(self) -> None:
        path = self._path()
        if path in _CONSOLE_ROUTES:  # console admin routes: see http_console
            _console_route(self, path)
            return
        event = _AUTH_ROUTES.get(path, "admin" if path == _ADMIN_ROUTE else "request")
        if self._has_body() and self._read_body(event) is None:
            return
        if event != "request":
            self._error(
                405,
                event,
                f"{self.command} is not allowed on {path}; use POST",
                headers={"Allow": "POST"},
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
        caller = _authorize(self)  # admin or class token: see http_console
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


def _phrase(code: int) -> str:
    """The stdlib's reason phrase of ``code`` (what ``responses`` holds), "error" for a
    code it does not know."""
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "error"


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
