"""The ``Server:`` header of every HTTP(S) answer is exactly ``airlab-cloud`` (no
trailing space: the standard library's ``version_string`` appends ``" " + sys_version``
even when that is empty), on answers, errors and requests that never parse."""

from __future__ import annotations

import contextlib
import socket

import pytest

from airlab.cloud.http_api import HttpEndpoints
from airlab.cloud.tls import make_client_context

REQUESTS = (
    b"POST /auth/devicename HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",  # 200 / 460
    b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",  # 404
    b"GARBAGE\r\n\r\n",  # 400, before any route
    b"POST /admin/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",  # 401
)


def head(endpoints: HttpEndpoints, request: bytes, tls: bool) -> bytes:
    port = endpoints.https_port if tls else endpoints.http_port
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock: socket.socket = raw
    if tls:
        sock = make_client_context().wrap_socket(raw, server_hostname="localhost")
    with contextlib.closing(sock):
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("request_bytes", REQUESTS, ids=["route", "404", "400", "401"])
def test_server_header_has_no_trailing_space(
    endpoints: HttpEndpoints, request_bytes: bytes, tls: bool
) -> None:
    lines = head(endpoints, request_bytes, tls).split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 ")
    servers = [line for line in lines if line.lower().startswith(b"server:")]
    assert servers == [b"Server: airlab-cloud"]
