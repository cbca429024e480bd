"""Slow, idle and flooding clients on the HTTP(S) listeners (slowloris): each is cut
after its timeout, and the number of connection threads never exceeds the cap.

Real sockets on 127.0.0.1 and short limits; every wait is on an event (the server's
answer or close, a thread's end) with a timeout larger than the server's."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from airlab.cloud.auth import Rules
from airlab.cloud.http_api import HttpLimits
from airlab.errors import UsageError
from tests.cloud.test_http_robustness import (
    AUTH_REQUEST,
    conn_threads,
    connect,
    good_auth,
    join_conn_threads,
    read_to_end,
    serve,
    statuses,
)

SCHEMES = ["http", "https"]
MARGIN = 2.0
"""Slack for a loaded machine on top of a server timeout (upper bounds only)."""


def trickle(sock: socket.socket, data: bytes, pace: float) -> bytes:
    """Send ``data`` one byte at a time, ``pace`` apart, until the server answers or
    closes; then everything it sends until it closes. The pause between bytes is a
    ``recv`` with a timeout: the server's answer ends it at once."""
    answer = b""
    sock.settimeout(pace)
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
            answer = sock.recv(65536)
        except TimeoutError:
            continue  # no answer yet: next byte
        except (ConnectionError, ssl.SSLError):
            return answer
        break
    else:
        raise AssertionError("the server took every byte without answering")
    return answer + read_to_end(sock) if answer else answer


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body) from a kept-alive connection."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_limits_defaults_and_checks() -> None:
    limits = HttpLimits()
    assert limits.head_timeout == 10.0 and limits.max_connections == 256
    assert limits.idle_timeout <= 30 and limits.read_timeout <= limits.head_timeout
    for bad in ({"head_timeout": 0}, {"max_connections": -1}, {"read_timeout": True}):
        with pytest.raises(UsageError):
            HttpLimits(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_head_sent_one_byte_at_a_time_is_cut_at_head_timeout(rules: Rules, scheme: str) -> None:
    """Each byte comes well within the per-read timeout; the head's deadline cuts it."""
    limits = HttpLimits(head_timeout=0.5, read_timeout=5.0, linger_timeout=5.0)
    with serve(rules, limits) as api:
        sock = connect(api, scheme)
        started = time.monotonic()
        answer = trickle(sock, AUTH_REQUEST, pace=0.02)
        elapsed = time.monotonic() - started
        sock.close()
        assert statuses(answer) == [408]
        # the answer is followed by the close at once (not after the linger)
        assert 0.3 <= elapsed <= 0.5 + MARGIN
        assert join_conn_threads(api, scheme, timeout=10) == 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_client_that_stops_mid_head_is_cut_at_read_timeout(rules: Rules, scheme: str) -> None:
    limits = HttpLimits(head_timeout=30.0, read_timeout=0.3)
    with serve(rules, limits) as api:
        sock = connect(api, scheme)
        for byte in b"POST /auth/devicename HTTP/1.1\r\nHo":  # one header byte at a time
            sock.sendall(bytes([byte]))
        started = time.monotonic()
        answer = read_to_end(sock, timeout=0.3 + MARGIN + 5)
        elapsed = time.monotonic() - started
        sock.close()
        assert statuses(answer) == [408] and b'"code":408' in answer
        assert elapsed <= 0.3 + MARGIN


@pytest.mark.parametrize("scheme", SCHEMES)
def test_connection_that_sends_nothing_is_closed(rules: Rules, scheme: str) -> None:
    with serve(rules, HttpLimits(head_timeout=0.5)) as api:
        # under TLS: not even the handshake
        sock = connect(api, scheme, handshake=False)
        started = time.monotonic()
        assert read_to_end(sock, timeout=0.5 + MARGIN + 5) == b""  # closed, no answer
        elapsed = time.monotonic() - started
        sock.close()
        assert 0.3 <= elapsed <= 0.5 + MARGIN


def test_tls_handshake_trickled_is_cut_at_head_timeout(rules: Rules) -> None:
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64))
    with serve(rules, HttpLimits(head_timeout=0.5, read_timeout=5.0)) as api:
        sock = connect(api, "https", handshake=False)
        started = time.monotonic()
        trickle(sock, hello, pace=0.05)
        elapsed = time.monotonic() - started
        sock.close()
        assert elapsed <= 0.5 + MARGIN


@pytest.mark.parametrize("scheme", SCHEMES)
def test_body_trickled_slower_than_the_deadline_is_cut(rules: Rules, scheme: str) -> None:
    limits = HttpLimits(body_timeout=0.5, read_timeout=5.0)
    head, _, body = AUTH_REQUEST.partition(b"\r\n\r\n")
    with serve(rules, limits) as api:
        sock = connect(api, scheme)
        sock.sendall(head + b"\r\n\r\n")
        started = time.monotonic()
        answer = trickle(sock, body, pace=0.02)
        elapsed = time.monotonic() - started
        sock.close()
        assert statuses(answer) == [408]
        assert 0.3 <= elapsed <= 0.5 + MARGIN
        assert good_auth(api, scheme) == 200


@pytest.mark.parametrize("scheme", SCHEMES)
def test_idle_keep_alive_connection_is_closed(rules: Rules, scheme: str) -> None:
    with serve(rules, HttpLimits(idle_timeout=0.5)) as api:
        sock = connect(api, scheme)
        for _ in range(2):  # kept alive between requests
            sock.sendall(AUTH_REQUEST)
            assert statuses(read_response(sock)) == [200]
        started = time.monotonic()
        assert read_to_end(sock, timeout=0.5 + MARGIN + 5) == b""  # closed without a word
        elapsed = time.monotonic() - started
        sock.close()
        assert 0.3 <= elapsed <= 0.5 + MARGIN


@pytest.mark.parametrize(("scheme", "count", "cap"), [("http", 300, 64), ("https", 100, 16)])
def test_flood_of_idle_connections_keeps_threads_under_the_cap(
    rules: Rules, scheme: str, count: int, cap: int
) -> None:
    limits = HttpLimits(head_timeout=1.5, max_connections=cap, admit_timeout=5.0)
    with serve(rules, limits) as api:
        flood: list[socket.socket] = []
        peak = 0
        try:
            for _ in range(count):
                flood.append(connect(api, scheme, handshake=False))
                peak = max(peak, len(conn_threads(api, scheme)))
            # A normal request during the flood is served at once: the connection that
            # waited longest on its client makes room (under TLS: also one stuck in its
            # handshake). It is accepted after the whole flood, so it is slow if
            # connections wait for a free slot (admit_timeout) instead.
            started = time.monotonic()
            assert good_auth(api, scheme) == 200
            assert time.monotonic() - started <= MARGIN
            peak = max(peak, len(conn_threads(api, scheme)))
            assert peak <= cap
            # every flooding connection ends: closed to make room, or at head_timeout
            for sock in flood:
                assert read_to_end(sock, timeout=1.5 + MARGIN + 5) == b""
        finally:
            for sock in flood:
                sock.close()
        assert join_conn_threads(api, scheme, timeout=10) == 0


def test_slow_clients_do_not_hold_the_cap(rules: Rules) -> None:
    """The cap's worth of clients sending their heads one byte at a time: a normal
    client still gets through, and the slow ones are cut at head_timeout."""
    cap = 32
    limits = HttpLimits(head_timeout=1.5, max_connections=cap)
    with serve(rules, limits) as api:
        slow = [connect(api, "http") for _ in range(cap)]
        try:
            for sock in slow:
                sock.sendall(b"P")
            assert good_auth(api) == 200
            assert len(conn_threads(api, "http")) <= cap
            for sock in slow:
                answer = read_to_end(sock, timeout=1.5 + MARGIN + 5)
                assert statuses(answer) in ([], [408])  # evicted, or cut with 408
        finally:
            for sock in slow:
                sock.close()
        assert join_conn_threads(api, "http", timeout=10) == 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_stop_closes_open_connections(rules: Rules, scheme: str) -> None:
    api = serve(rules, HttpLimits()).start()  # idle_timeout 15 s
    try:
        sock = connect(api, scheme)
        sock.sendall(AUTH_REQUEST)
        assert statuses(read_response(sock)) == [200]
        threads = conn_threads(api, scheme)
        assert len(threads) == 1
    finally:
        api.stop()
    assert not threads[0].is_alive()
    assert read_to_end(sock, timeout=5) == b""
    sock.close()
