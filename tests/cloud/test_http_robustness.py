"""The HTTP(S) listeners against client mistakes and hostile clients, over real sockets
on 127.0.0.1: every client mistake gets a 4xx (never a 5xx, never a traceback), and
slow, idle or flooding connections are cut after the configured timeouts and cap.

Waits are on events (a socket's end, a thread's end) with a timeout, never a sleep.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from airlab.cloud.auth import Rules
from airlab.cloud.fixtures import load_tutorial
from airlab.cloud.http_api import HttpEndpoints, HttpLimits
from airlab.cloud.registry import Registry
from airlab.cloud.tls import make_client_context, make_server_context
from airlab.errors import UsageError

AUTH_BODY = (
    b"productKey=k1hipglLdjU&sign=0f655b12adf519b9a7a2b0a990f398b6"
    b"&clientId=868488076506128&deviceName=868488076506128"
)
AUTH_REQUEST = (
    b"POST /auth/devicename HTTP/1.1\r\nHost: iot-auth.cn-shanghai.aliyuncs.com\r\n"
    b"Content-type: application/x-www-form-urlencoded\r\nContent-Length: 112\r\n\r\n" + AUTH_BODY
)
_STATUS = re.compile(rb"(?:^|\n)HTTP/\d\.\d (\d{3})")
FAST = HttpLimits(
    head_timeout=0.5,
    body_timeout=0.5,
    idle_timeout=0.3,
    read_timeout=0.5,
    linger_timeout=0.2,
)
"""Short limits, so that fuzzed requests the server waits on end quickly."""


# -- the fuzzer ------------------------------------------------------------------------

METHODS = [
    b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS", b"TRACE",
    b"CONNECT", b"PROPFIND", b"BREW", b"get", b"P0ST", b"POST\x00", b"M" * 300, b"",
    b"\xff\xfe", b"G\tET", b"PRI", b"DELETE,PUT", b"\xe4\xb8\xad",
]  # fmt: skip
PATHS = [
    b"/auth/devicename", b"/auth/register/device", b"/admin/publish", b"/admin/status",
    b"/admin/log?table=x&limit=-1", b"/admin/reset", b"/", b"*",
    b"http://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename", b"//evil.example/x",
    b"/%00%ff", b"/\xe4\xb8\xad", b"/" + b"a" * 5000, b"", b"/auth/devicename?x=\xff",
]  # fmt: skip
VERSIONS = [
    b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/2", b"HTTP/3.0", b"HTTP/0.9", b"HTTP/1.2",
    b"HTTP/1.1.1", b"HTTP/x.y", b"http/1.1", b"HTTP/99999999999.0", b"HTTP/01.01",
    b"HTTP/1.10", b"HTTP/", b"HTTPS/1.1", b"", b"HTTP/1.1 extra", b"HTTP/2.0\x00",
    b"HTTP/1.1" + b"1" * 20,
]  # fmt: skip
CONTENT_LENGTHS = [
    b"-1", b"-100", b"abc", b"1e3", b"+5", b" 5 ", b"5_0", b"0x10", b"99999999999999999999999",
    b"", b"200000", b"\xd9\xa3", b"1" * 5000,
]  # fmt: skip
HEADERS = [
    b"Content-Type: application/x-www-form-urlencoded", b"Content-type: text/plain;charset=utf-8",
    b"Connection: close", b"Connection: keep-alive", b"Connection: \xff", b"Expect: 100-continue",
    b"Expect: 200-ok", b"Authorization: Bearer s3cret-admin", b"Authorization: Basic \xff",
    b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: identity", b"NoColonHere", b" folded: continuation",
    b"X-Bin: \xff\xfe\x00\x01", b": empty-name", b"X-Empty:", b"Host: \xe4\xb8\xad",
]  # fmt: skip
BODIES = [
    AUTH_BODY, b"", b"productKey=\xff\xfe", b"%%%&&==", b'{"topic":"/t","payload":"x"}',
    b"\x00" * 64, b'{"product_key":"k1hipglLdjU","device_name":"868488076506128"}',
]  # fmt: skip


def fuzz_request(rng: random.Random) -> bytes:
    """One randomized or mutated HTTP request (seeded: same seed, same bytes)."""
    roll = rng.random()
    if roll < 0.04:
        return rng.randbytes(rng.randint(1, 300))  # not HTTP at all
    if roll < 0.06:
        return b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(40)  # TLS hello
    eol = rng.choices([b"\r\n", b"\n", b"\r", b"\r\r\n"], weights=[80, 12, 4, 4])[0]
    method = rng.choice(METHODS) if rng.random() < 0.6 else b"POST"
    path = rng.choice(PATHS)
    version = rng.choice(VERSIONS) if rng.random() < 0.6 else b"HTTP/1.1"
    sep = rng.choices([b" ", b"  ", b"\t"], weights=[90, 5, 5])[0]
    line = sep.join(p for p in (method, path, version) if p or rng.random() < 0.5)
    body = rng.choice(BODIES)
    headers = [b"Host: iot-auth.cn-shanghai.aliyuncs.com"]
    headers += rng.sample(HEADERS, rng.randint(0, 4))
    chunked = any(h.lower().startswith(b"transfer-encoding") for h in headers)
    cl = rng.random()
    if cl < 0.5:
        headers.append(b"Content-Length: %d" % len(body))
    elif cl < 0.7:
        headers.append(b"Content-Length: " + rng.choice(CONTENT_LENGTHS))
    elif cl < 0.75:
        headers += [b"Content-Length: %d" % len(body), b"Content-Length: %d" % (len(body) + 1)]
    elif cl < 0.8:
        headers.append(b"Content-Length: %d" % (len(body) + rng.randint(1, 50)))  # truncated
    if rng.random() < 0.03:
        headers.append(b"X-Big: " + b"a" * rng.choice([9000, 70000]))  # one huge header
    if rng.random() < 0.03:
        headers += [b"X-%d: v" % i for i in range(rng.choice([99, 150]))]  # many headers
    if chunked and rng.random() < 0.7:
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    rng.shuffle(headers)
    head = eol.join([line, *headers])
    request = head + (eol + eol if rng.random() < 0.93 else eol) + body
    if rng.random() < 0.15:  # flip a few bytes
        data = bytearray(request)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        request = bytes(data)
    if rng.random() < 0.05:  # cut anywhere
        request = request[: rng.randrange(len(request) + 1)]
    return request


def _complete(data: bytes, head_request: bool) -> bool:
    """True once ``data`` holds a whole final response (interim 100s skipped)."""
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return False
        head, data = data[:end], data[end + 4 :]
        status = re.match(rb"HTTP/\d\.\d (\d{3})", head)
        if status is None:
            return False
        if status.group(1) == b"100":
            continue
        length = re.search(rb"(?im)^content-length:[ \t]*(\d+)", head)
        return len(data) >= (0 if head_request or length is None else int(length.group(1)))


def read_to_end(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (a reset ends it
    too); raises TimeoutError if it does not close within ``timeout``."""
    sock.settimeout(timeout)
    chunks: list[bytes] = []
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def exchange(
    port: int, request: bytes, *, context: ssl.SSLContext | None = None, timeout: float = 10
) -> bytes:
    """Send ``request`` on a new connection and return what the server answered.

    Plain HTTP: half-close, then read until the server closes. TLS (a half-close would
    break the TLS session): read until a whole response came or the server closed (it
    answers a request it is still waiting on with 408 after its timeouts)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock: socket.socket = raw
    try:
        if context is not None:
            sock = context.wrap_socket(raw, server_hostname="localhost")
        try:
            sock.sendall(request)
            if context is None:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading everything
        if context is None:
            return read_to_end(sock, timeout)
        answer = b""
        head_request = request.startswith(b"HEAD ")
        while not _complete(answer, head_request):
            try:
                data = sock.recv(65536)
            except (ConnectionError, ssl.SSLError):
                break
            if not data:
                break
            answer += data
        return answer
    finally:
        sock.close()


def statuses(answer: bytes) -> list[int]:
    """Status codes of every response in ``answer``."""
    return [int(m) for m in _STATUS.findall(answer)]


def conn_threads(api: HttpEndpoints, scheme: str) -> list[threading.Thread]:
    """The threads serving connections of one listener."""
    port = api.http_port if scheme == "http" else api.https_port
    return [t for t in threading.enumerate() if t.name == f"airlab-{scheme}-{port}-conn"]


def join_conn_threads(api: HttpEndpoints, scheme: str, timeout: float) -> int:
    """Wait until the listener's connection threads end (or ``timeout``); how many
    are left."""
    deadline = time.monotonic() + timeout
    for thread in conn_threads(api, scheme):
        thread.join(max(0.0, deadline - time.monotonic()))
    return len(conn_threads(api, scheme))


def connect(api: HttpEndpoints, scheme: str, *, handshake: bool = True) -> socket.socket:
    port = api.http_port if scheme == "http" else api.https_port
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if scheme == "https" and handshake:
        return make_client_context().wrap_socket(raw, server_hostname="localhost")
    return raw


def good_auth(api: HttpEndpoints, scheme: str = "http") -> int:
    """Status of the tutorial's auth request on a new connection."""
    conn: http.client.HTTPConnection
    if scheme == "http":
        conn = http.client.HTTPConnection("127.0.0.1", api.http_port, timeout=10)
    else:
        conn = http.client.HTTPSConnection(
            "localhost", api.https_port, timeout=10, context=make_client_context()
        )
    try:
        headers = {"Content-type": "application/x-www-form-urlencoded"}
        conn.request("POST", "/auth/devicename", body=AUTH_BODY, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        assert len(body) == 124, body
        return resp.status
    finally:
        conn.close()


class FakeConsole:
    """Just enough of the emulator service for the console admin routes."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def status(self) -> dict[str, Any]:
        return {"running": True}

    def online_devices(self) -> list[Any]:
        return []

    def flush(self) -> bool:
        return True

    def reset_registration(self, product_key: str, device_name: str) -> None:
        raise UsageError("device_name", f"no device {product_key}/{device_name}")


def serve(rules: Rules, limits: HttpLimits) -> HttpEndpoints:
    api = HttpEndpoints(
        rules,
        ssl_context=make_server_context(),
        admin_token="s3cret-admin",
        publisher=lambda topic, payload, qos: 1,
        limits=limits,
    )
    api.console = FakeConsole(rules.registry)
    return api


@pytest.fixture
def fast_api(rules: Rules) -> Iterator[HttpEndpoints]:
    with serve(rules, FAST) as api:
        yield api


@pytest.fixture(scope="module")
def shared_api() -> Iterator[HttpEndpoints]:
    """One server (in-memory registry) for the many small cases below."""
    registry = Registry()
    load_tutorial(registry)
    with serve(Rules(registry), FAST) as api:
        yield api
    registry.close()


# -- every client mistake gets a 4xx --------------------------------------------------


def _head(*lines: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


CASES: list[tuple[str, bytes, int, dict[str, str]]] = [
    ("unknown method, auth route", _head(b"BREW /auth/devicename HTTP/1.1"), 405,
     {"allow": "POST"}),
    ("unknown method, console route",
     _head(b"PROPFIND /admin/status HTTP/1.1", b"Authorization: Bearer s3cret-admin"), 405,
     {"allow": "GET"}),
    ("unknown method, unknown path", _head(b"BREW /coffee HTTP/1.1"), 404, {}),
    ("CONNECT", _head(b"CONNECT iot-auth.cn-shanghai.aliyuncs.com:443 HTTP/1.1"), 404, {}),
    ("TRACE on an auth route", _head(b"TRACE /auth/register/device HTTP/1.1"), 405,
     {"allow": "POST"}),
    ("method not a token", _head(b"G\x00T / HTTP/1.1"), 400, {}),
    ("method with a comma", _head(b"DELETE,PUT /auth/devicename HTTP/1.1"), 400, {}),
    ("HTTP/2.0", _head(b"POST /auth/devicename HTTP/2.0"), 400, {}),
    ("HTTP/3.0", _head(b"GET / HTTP/3.0"), 400, {}),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, {}),
    ("HTTP/0.9 version", _head(b"GET / HTTP/0.9"), 400, {}),
    ("HTTP/0.9 request", b"GET /\r\n", 400, {}),
    ("version not a number", _head(b"GET / HTTP/x.y"), 400, {}),
    ("no version", _head(b"POST /auth/devicename"), 400, {}),
    ("four words", _head(b"POST /auth/devicename HTTP/1.1 extra"), 400, {}),
    ("header line too long", _head(b"GET / HTTP/1.1", b"X-Big: " + b"a" * 70_000), 431, {}),
    ("too many headers", _head(b"GET / HTTP/1.1", *[b"X-%d: v" % i for i in range(150)]), 431,
     {}),
    ("head too large", _head(b"GET / HTTP/1.1", *[b"X-%d: " % i + b"v" * 1000
                                                  for i in range(80)]), 431, {}),
    ("negative Content-Length", _head(b"POST /auth/devicename HTTP/1.1",
                                      b"Content-Length: -1"), 400, {}),
    ("signed Content-Length", _head(b"POST /auth/devicename HTTP/1.1", b"Content-Length: +5")
     + b"a=b&c", 400, {}),
    ("Content-Length with _", _head(b"POST /auth/devicename HTTP/1.1", b"Content-Length: 1_0")
     + b"a=b&c=d&ef", 400, {}),
    ("conflicting Content-Lengths", _head(b"POST /auth/devicename HTTP/1.1",
                                          b"Content-Length: 3", b"Content-Length: 4") + b"a=bc",
     400, {}),
    ("chunked body", _head(b"POST /auth/devicename HTTP/1.1", b"Transfer-Encoding: chunked")
     + b"3\r\na=b\r\n0\r\n\r\n", 411, {}),
    ("chunked body, unknown method", _head(b"BREW /auth/devicename HTTP/1.1",
                                           b"Transfer-Encoding: chunked")
     + b"3\r\na=b\r\n0\r\n\r\n", 411, {}),
    ("body too large", _head(b"POST /auth/devicename HTTP/1.1", b"Content-Length: 200000")
     + b"a" * 200_000, 413, {}),
]  # fmt: skip


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize(("request_bytes", "status", "headers"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_client_mistakes_get_a_4xx(
    shared_api: HttpEndpoints,
    scheme: str,
    request_bytes: bytes,
    status: int,
    headers: dict[str, str],
) -> None:
    context = make_client_context() if scheme == "https" else None
    port = shared_api.http_port if scheme == "http" else shared_api.https_port
    answer = exchange(port, request_bytes, context=context)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} ") or lines[0].startswith(
        f"HTTP/1.0 {status} "
    ), answer[:200]
    got = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert got["content-type"].startswith("application/json")
    for name, value in headers.items():
        assert got[name] == value
    reply = json.loads(body)
    assert reply["code"] == status and reply["message"]
    assert b"Traceback" not in answer
    assert good_auth(shared_api, scheme) == 200


def test_http_version_hint(shared_api: HttpEndpoints) -> None:
    answer = exchange(shared_api.http_port, _head(b"GET / HTTP/2.0"))
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"use HTTP/1.1" in answer


# -- fuzzing ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("scheme", "count"), [("http", 3000), ("https", 300)])
def test_fuzzed_requests_never_get_a_5xx(
    fast_api: HttpEndpoints, tutorial: Registry, scheme: str, count: int
) -> None:
    rng = random.Random(f"airlab-http-fuzz-{scheme}")
    requests = [fuzz_request(rng) for _ in range(count)]
    context = make_client_context() if scheme == "https" else None
    port = fast_api.http_port if scheme == "http" else fast_api.https_port
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda r: exchange(port, r, context=context), requests))
    bad = [
        (request[:120], answer[:300])
        for request, answer in zip(requests, answers, strict=True)
        if any(s >= 500 for s in statuses(answer)) or b"Traceback" in answer
    ]
    assert not bad, f"{len(bad)} of {count} fuzzed requests got a 5xx: {bad[:5]}"
    seen = Counter(s for answer in answers for s in statuses(answer))
    assert {200, 400, 404, 405, 411} <= set(seen), seen  # the fuzzer reaches every layer
    answered = sum(1 for answer in answers if statuses(answer))
    assert answered > 0.8 * count, seen
    assert good_auth(fast_api, scheme) == 200
    # nothing the server logged carries a traceback either
    assert not [e for e in tutorial.connection_log() if "Traceback" in (e.reason or "")]
