"""One HTTP/1.1 exchange of the simulated module (``AT+HTTPACTION``), with :mod:`http.client`.

Blocking: the network stack runs :func:`perform` in a worker thread.  The URL scheme
decides TLS (no scheme → ``http``); the name is resolved through the simulator's
:class:`~airlab.sim.hosts.HostTable` (so ``iot-auth.<region>.aliyuncs.com`` reaches the
emulator) while the ``Host`` header and the TLS SNI keep the name the module asked for.
Headers go out as given (``USER_DEFINED`` lines verbatim), after ``Host`` and
``User-Agent``; a ``Range`` header comes from ``byte_range``.  Failures become the
module's codes: 601 network error (refused, reset, timeout), 603 DNS error, 605 SSL
channel setup failed, 600 not an HTTP answer.

Example:
    >>> split_url("iot-auth.cn-shanghai.aliyuncs.com/auth")
    ('http', 'iot-auth.cn-shanghai.aliyuncs.com', 80, '/auth')
    >>> split_url("https://example.com:8443/a?b=1")
    ('https', 'example.com', 8443, '/a?b=1')
"""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.parse import urlsplit

from airlab.sim.actions import HttpRequest, HttpResult
from airlab.sim.hosts import HostNotFound, HostTable

__all__ = ["HTTP_DNS_ERROR", "HTTP_NETWORK_ERROR", "HTTP_NOT_HTTP", "HTTP_SSL_ERROR", "perform"]

HTTP_NOT_HTTP = 600
HTTP_NETWORK_ERROR = 601
HTTP_DNS_ERROR = 603
HTTP_SSL_ERROR = 605


def split_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path-and-query)`` of a module URL (scheme optional)."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme {parts.scheme!r}")
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path


class _Conn(http.client.HTTPConnection):
    """Dials the resolved address; ``Host`` stays the requested name."""

    def __init__(self, host: str, port: int, address: tuple[str, int], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection(self._address, self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _TlsConn(_Conn):
    def __init__(
        self,
        host: str,
        port: int,
        address: tuple[str, int],
        timeout: float,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, address, timeout)
        self._context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def _host_header(host: str, port: int, scheme: str) -> str:
    default = 443 if scheme == "https" else 80
    return host if port == default else f"{host}:{port}"


def perform(
    req: HttpRequest,
    hosts: HostTable,
    tls_context: ssl.SSLContext,
    *,
    dns_fails: bool = False,
    on_connection: object = None,
) -> HttpResult:
    """Carry out ``req``; never raises (failures are module status codes).

    ``on_connection`` (optional callable) receives the connection object once created,
    so the caller can close it from another thread.
    """
    try:
        scheme, host, port, path = split_url(req.url)
    except ValueError:
        return HttpResult(HTTP_NETWORK_ERROR)
    if dns_fails or not host:
        return HttpResult(HTTP_DNS_ERROR)
    tls = scheme == "https"
    try:
        address = hosts.resolve(host, port, tls=tls)
    except HostNotFound:
        return HttpResult(HTTP_DNS_ERROR)
    timeout = req.timeout if req.timeout and req.timeout > 0 else None
    conn: _Conn = (
        _TlsConn(host, port, address, timeout, tls_context)  # type: ignore[arg-type]
        if tls
        else _Conn(host, port, address, timeout)  # type: ignore[arg-type]
    )
    if callable(on_connection):
        on_connection(conn)
    try:
        try:
            conn.connect()
        except ssl.SSLError:
            return HttpResult(HTTP_SSL_ERROR)
        except ConnectionResetError:
            return HttpResult(HTTP_SSL_ERROR if tls else HTTP_NETWORK_ERROR)
        except OSError:
            return HttpResult(HTTP_NETWORK_ERROR)
        method = req.method.upper()
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", _host_header(host, port, scheme))
        if req.user_agent:
            conn.putheader("User-Agent", req.user_agent)
        names = set()
        for name, value in req.headers:
            names.add(name.strip().lower())
            conn.putheader(name, value)
        if req.byte_range is not None and "range" not in names:
            start, end = req.byte_range
            conn.putheader("Range", f"bytes={start}-{end}" if end else f"bytes={start}-")
        if (req.body or method == "POST") and "content-length" not in names:
            conn.putheader("Content-Length", str(len(req.body)))
        conn.endheaders(req.body or None)
        response = conn.getresponse()
        body = b"" if method == "HEAD" else response.read()
        return HttpResult(response.status, body, tuple(response.getheaders()))
    except ssl.SSLError:
        return HttpResult(HTTP_SSL_ERROR)
    except http.client.RemoteDisconnected:
        return HttpResult(HTTP_NETWORK_ERROR)
    except http.client.HTTPException:
        return HttpResult(HTTP_NOT_HTTP)
    except (OSError, ValueError):
        return HttpResult(HTTP_NETWORK_ERROR)
    finally:
        conn.close()
