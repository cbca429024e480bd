"""The simulator's network stack against real sockets: mosquitto, raw TCP/TLS servers, HTTP(S)."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airlab.sim import actions as a
from airlab.sim.hosts import HostTable
from airlab.sim.netstack import NetStack
from airlab.sim.profiles import Delay, Faults, Profile

# ---------------------------------------------------------------- helpers


class Events:
    """Collects network events; waits for one with a deadline (no sleeps)."""

    def __init__(self) -> None:
        self.items: list[a.NetEvent] = []
        self.times: list[float] = []
        self._cond = threading.Condition()

    def __call__(self, event: a.NetEvent) -> None:
        with self._cond:
            self.items.append(event)
            self.times.append(time.monotonic())
            self._cond.notify_all()

    def wait(self, match: Callable[[a.NetEvent], bool] | type, timeout: float = 5.0) -> a.NetEvent:
        pred = (lambda e: isinstance(e, match)) if isinstance(match, type) else match
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.items:
                    if pred(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching event within {timeout}s: {self.items}")
                self._cond.wait(left)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # another process's port (mosquitto): polled with a deadline


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    exe = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if exe is None:
        pytest.skip("Debian's mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    conf = tmp_path_factory.mktemp("mosq") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def make_cert(directory: Path, names: tuple[str, ...] = ("localhost",)) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class RawServer:
    """A one-connection TCP (optionally TLS) server run by a script function."""

    def __init__(self, script: Callable[[socket.socket], None], tls: ssl.SSLContext | None = None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.tls = tls
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.sock.accept()
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn:
                self.script(conn)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.done.set()

    def close(self) -> None:
        self.sock.close()


def recv_exact(conn: socket.socket, n: int, timeout: float = 5.0) -> bytes:
    conn.settimeout(timeout)
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def stack(events: Events) -> Iterator[NetStack]:
    hosts = HostTable()
    hosts.add("broker.test", "127.0.0.1")
    with NetStack(events, hosts, connect_timeout=3.0) as s:
        yield s


# ---------------------------------------------------------------- MQTT against mosquitto


def test_mqtt_flow_against_mosquitto(stack: NetStack, events: Events, mosquitto: int) -> None:
    stack.submit(a.OpenLink("mqtt", "broker.test", mosquitto))
    events.wait(a.LinkOpened)
    assert stack.is_open("mqtt")
    stack.submit(a.MqttConnect("sim-flow", None, None, 60))
    assert events.wait(a.MqttConnack) == a.MqttConnack(0)
    stack.submit(a.MqttSubscribe(1, "airlab/t", 1))
    assert events.wait(a.MqttSuback) == a.MqttSuback(1, (1,))
    stack.submit(a.MqttPublish("airlab/t", b"hello\r\n\x00", qos=1, packet_id=2))
    assert events.wait(a.MqttPuback) == a.MqttPuback(2)
    assert events.wait(a.MqttMessage) == a.MqttMessage("airlab/t", b"hello\r\n\x00", 1)
    stack.submit(a.MqttPublish("airlab/t", b"q0", qos=0))
    events.wait(lambda e: isinstance(e, a.MqttMessage) and e.payload == b"q0")
    stack.submit(a.MqttUnsubscribe(3, "airlab/t"))
    assert events.wait(a.MqttUnsuback) == a.MqttUnsuback(3)
    stack.submit(a.MqttDisconnect())
    events.wait(a.LinkClosed)  # mosquitto closes the link after DISCONNECT
    assert not stack.is_open("mqtt")


def test_qos2_publish_gets_pubrec_then_pubcomp(
    stack: NetStack, events: Events, mosquitto: int
) -> None:
    stack.submit(a.OpenLink("mqtt", "127.0.0.1", mosquitto))
    events.wait(a.LinkOpened)
    stack.submit(a.MqttConnect("sim-q2", None, None, 60))
    events.wait(a.MqttConnack)
    stack.submit(a.MqttPublish("airlab/q2", b"x", qos=2, packet_id=9))
    events.wait(a.MqttPubcomp)
    kinds = [type(e) for e in events.items]
    assert kinds.index(a.MqttPubrec) < kinds.index(a.MqttPubcomp)


def test_drop_link_reports_linkclosed(stack: NetStack, events: Events, mosquitto: int) -> None:
    stack.submit(a.OpenLink("mqtt", "127.0.0.1", mosquitto))
    events.wait(a.LinkOpened)
    assert stack.drop_link("mqtt") is True
    assert events.wait(a.LinkClosed) == a.LinkClosed("mqtt")
    assert stack.drop_link("mqtt") is False


# ---------------------------------------------------------------- raw servers: exact bytes


def test_connect_only_on_request_and_idle_close(stack: NetStack, events: Events) -> None:
    received = []

    def script(conn: socket.socket) -> None:
        conn.settimeout(0.3)
        try:
            received.append(conn.recv(100))
        except TimeoutError:
            received.append(b"")  # nothing arrived: the idle link is dropped

    server = RawServer(script)
    try:
        stack.submit(a.OpenLink("mqtt", "127.0.0.1", server.port))
        events.wait(a.LinkOpened)
        events.wait(a.LinkClosed)
        assert received == [b""]  # no CONNECT before MqttConnect
        # a late MCONNECT on the dead link: nothing sent, no second LinkClosed
        stack.submit(a.MqttConnect("late", None, None, 60))
        stack.submit(a.OpenLink("http-probe", "nowhere.invalid", 1))
        events.wait(a.LinkFailed)
        assert [e for e in events.items if isinstance(e, a.LinkClosed)] == [a.LinkClosed("mqtt")]
    finally:
        server.close()


def test_incoming_qos1_publish_is_acked_and_keepalive_pings(
    stack: NetStack, events: Events
) -> None:
    from airlab.mqtt.codec import Connack, Publish, encode

    got: dict[str, bytes] = {}

    def script(conn: socket.socket) -> None:
        got["connect_head"] = recv_exact(conn, 2)
        got["connect_rest"] = recv_exact(conn, got["connect_head"][1])
        conn.sendall(encode(Connack(0)))
        conn.sendall(encode(Publish("down/t", b"abc", qos=1, packet_id=5)))
        got["puback"] = recv_exact(conn, 4)
        got["ping"] = recv_exact(conn, 2, timeout=3)

    server = RawServer(script)
    try:
        stack.submit(a.OpenLink("mqtt", "127.0.0.1", server.port))
        events.wait(a.LinkOpened)
        stack.submit(a.MqttConnect("cid-1", "user", "pw", 1, clean_session=False))
        events.wait(a.MqttConnack)
        assert events.wait(a.MqttMessage) == a.MqttMessage("down/t", b"abc", 1)
        assert server.done.wait(5) and server.error is None
        assert got["connect_head"][0] == 0x10
        assert got["connect_rest"][:7] == b"\x00\x04MQTT\x04"
        assert got["connect_rest"][7] == 0xC0  # username+password, no clean session
        assert got["connect_rest"][8:10] == b"\x00\x01"  # keepalive 1 s
        assert got["puback"] == b"\x40\x02\x00\x05"
        assert got["ping"] == b"\xc0\x00"
    finally:
        server.close()


def test_tls_link_sends_sni_and_does_not_verify(
    stack: NetStack, events: Events, tmp_path: Path
) -> None:
    cert, key = make_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    seen = []
    ctx.sni_callback = lambda sock, name, c: seen.append(name)
    server = RawServer(lambda conn: conn.recv(10), tls=ctx)
    try:
        stack.submit(a.OpenLink("mqtt", "broker.test", server.port, tls=True))
        events.wait(a.LinkOpened)
        assert seen == ["broker.test"]
    finally:
        server.close()


@pytest.mark.parametrize(
    ("host", "reason"),
    [("no.such.host", "dns"), ("127.0.0.1", "refused"), ("tls-to-plain", "tls")],
)
def test_link_failures(stack: NetStack, events: Events, host: str, reason: str) -> None:
    port = free_port()
    server = None
    if host == "tls-to-plain":
        server = RawServer(lambda conn: (conn.recv(10), conn.sendall(b"HTTP/1.0 400 no\r\n\r\n")))
        port, host = server.port, "127.0.0.1"
    try:
        stack.submit(a.OpenLink("mqtt", host, port, tls=reason == "tls"))
        assert events.wait(a.LinkFailed) == a.LinkFailed("mqtt", reason)
        assert not stack.is_open("mqtt")
    finally:
        if server:
            server.close()


def test_close_link_is_silent(stack: NetStack, events: Events, mosquitto: int) -> None:
    stack.submit(a.OpenLink("mqtt", "127.0.0.1", mosquitto))
    events.wait(a.LinkOpened)
    stack.submit(a.CloseLink("mqtt"))
    stack.submit(a.OpenLink("mqtt", "no.such.host", 1))
    events.wait(a.LinkFailed)
    assert not any(isinstance(e, a.LinkClosed) for e in events.items)


def test_events_carry_the_attempt_of_their_open(
    stack: NetStack, events: Events, mosquitto: int
) -> None:
    """Each event names the OpenLink it answers, so the firmware can ignore one of an
    attempt it abandoned (AT+MIPCLOSE) that was already on its way."""
    stack.submit(a.OpenLink("mqtt", "no.such.host", 1, attempt=7))
    assert events.wait(a.LinkFailed) == a.LinkFailed("mqtt", "dns", 7)
    stack.submit(a.OpenLink("mqtt", "127.0.0.1", mosquitto, attempt=8))
    assert events.wait(a.LinkOpened) == a.LinkOpened("mqtt", 8)
    assert stack.drop_link("mqtt")
    assert events.wait(a.LinkClosed) == a.LinkClosed("mqtt", 8)


# ---------------------------------------------------------------- profiles in the stack


def test_profile_delays_are_minimum_totals_and_losses(events: Events, mosquitto: int) -> None:
    profile = Profile(
        "test",
        net={"connack": Delay(0.2), "suback": Delay(0.05)},
        faults=Faults(lose={"puback": 1.0}),
    )
    with NetStack(events, sampler=profile.sampler(1)) as stack:
        stack.submit(a.OpenLink("mqtt", "127.0.0.1", mosquitto))
        events.wait(a.LinkOpened)
        t0 = time.monotonic()
        stack.submit(a.MqttConnect("sim-delay", None, None, 60))
        events.wait(a.MqttConnack)
        assert events.times[-1] - t0 >= 0.2
        stack.submit(a.MqttPublish("airlab/lost", b"x", qos=1, packet_id=1))
        stack.submit(a.MqttSubscribe(2, "airlab/lost", 0))
        events.wait(a.MqttSuback)  # answered after the PUBACK on the same link
        assert not any(isinstance(e, a.MqttPuback) for e in events.items)


# ---------------------------------------------------------------- HTTP


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client (the timeout test) hanging up mid-answer is expected here


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[tuple[str, str, list[tuple[str, str]], bytes]] = []  # noqa: RUF012
    release = threading.Event()  # set when the test is over: /slow answers then

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).requests.append((self.command, self.path, list(self.headers.items()), body))
        if self.path == "/slow":  # a server that answers late: 1 s, or at once at teardown
            type(self).release.wait(1.0)
        payload = b'{"code":200,"data":{"iotId":"x"}}'
        status = 206 if self.headers.get("Range") else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[int, int, list]]:
    """(http port, https port, recorded requests)."""
    _Handler.requests = []
    _Handler.release = threading.Event()
    plain = _QuietServer(("127.0.0.1", 0), _Handler)
    secure = _QuietServer(("127.0.0.1", 0), _Handler)
    cert, key = make_cert(tmp_path, ("iot-auth.cn-shanghai.aliyuncs.com",))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
    threads = [
        threading.Thread(target=s.serve_forever, args=(0.02,), daemon=True) for s in (plain, secure)
    ]
    for t in threads:
        t.start()
    try:
        yield plain.server_address[1], secure.server_address[1], _Handler.requests
    finally:
        _Handler.release.set()
        for s in (plain, secure):
            s.shutdown()
            s.server_close()


def test_https_post_through_the_endpoints_table(events: Events, http_server) -> None:
    http_port, https_port, requests = http_server
    hosts = HostTable.from_endpoints(
        {"http": f"http://127.0.0.1:{http_port}", "https": f"https://127.0.0.1:{https_port}"}
    )
    body = b"productKey=pk&deviceName=dn&sign=abc"
    with NetStack(events, hosts) as stack:
        stack.submit(
            a.HttpRequest(
                "POST",
                "https://iot-auth.cn-shanghai.aliyuncs.com/auth",
                headers=(("Content-type", "application/x-www-form-urlencoded"),),
                body=body,
            )
        )
        result = events.wait(a.HttpResult)
    assert result.status == 200
    assert result.body == b'{"code":200,"data":{"iotId":"x"}}'
    assert ("Content-Type", "application/json") in result.headers
    method, path, headers, got = requests[0]
    assert (method, path, got) == ("POST", "/auth", body)
    assert headers[:3] == [
        ("Host", "iot-auth.cn-shanghai.aliyuncs.com"),
        ("User-Agent", "AM_MODULE"),
        ("Content-type", "application/x-www-form-urlencoded"),
    ]
    assert ("Content-Length", str(len(body))) in headers


def test_http_get_without_scheme_and_range(events: Events, http_server) -> None:
    http_port, _, requests = http_server
    with NetStack(events) as stack:
        stack.submit(a.HttpRequest("GET", f"127.0.0.1:{http_port}/file?x=1", byte_range=(0, 99)))
        result = events.wait(a.HttpResult)
    assert result.status == 206
    method, path, headers, _ = requests[0]
    assert (method, path) == ("GET", "/file?x=1")
    assert ("Range", "bytes=0-99") in headers
    assert not any(k.lower() == "content-length" for k, _ in headers)


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("http://unknown.example.com/", 603),
        ("http://127.0.0.1:{free}/", 601),
        ("https://127.0.0.1:{http}/", 605),
        ("http://127.0.0.1:{http}/slow", 601),
    ],
)
def test_http_failures_are_module_codes(events: Events, http_server, url: str, status: int) -> None:
    http_port, _, _ = http_server
    url = url.format(free=free_port(), http=http_port)
    with NetStack(events) as stack:
        stack.submit(a.HttpRequest("GET", url, timeout=0.3))
        assert events.wait(a.HttpResult).status == status


def test_close_link_drops_a_pending_http_answer(events: Events, http_server) -> None:
    http_port, _, _ = http_server
    with NetStack(events) as stack:
        stack.submit(a.HttpRequest("GET", f"http://127.0.0.1:{http_port}/slow"))
        stack.submit(a.CloseLink("http"))
        stack.submit(a.HttpRequest("HEAD", f"http://127.0.0.1:{http_port}/fast"))
        result = events.wait(a.HttpResult)
    assert (result.status, result.body) == (200, b"")
    assert len([e for e in events.items if isinstance(e, a.HttpResult)]) == 1


# ---------------------------------------------------------------- wildcard topics (issue 8 item 5)


def test_wildcard_publish_goes_out_as_given(stack: NetStack, events: Events) -> None:
    """The module sends the PUBLISH with the topic as typed (+ and # included)."""
    from airlab.mqtt.codec import Connack, encode

    got: dict[str, bytes] = {}

    def script(conn: socket.socket) -> None:
        head = recv_exact(conn, 2)
        recv_exact(conn, head[1])
        conn.sendall(encode(Connack(0)))
        got["publish"] = recv_exact(conn, 2 + 2 + 5 + 2 + 1)

    server = RawServer(script)
    try:
        stack.submit(a.OpenLink("mqtt", "127.0.0.1", server.port))
        events.wait(a.LinkOpened)
        stack.submit(a.MqttConnect("cid-w", None, None, 60))
        events.wait(a.MqttConnack)
        stack.submit(a.MqttPublish("a/+/#", b"x", qos=1, packet_id=7))
        assert server.done.wait(5) and server.error is None
        assert got["publish"] == b"\x32\x0a\x00\x05a/+/#\x00\x07x"
    finally:
        server.close()


@pytest.mark.parametrize("topic", ["a/+/b", "a/#"])
def test_broker_closes_on_wildcard_publish(
    stack: NetStack, events: Events, mosquitto: int, topic: str
) -> None:
    """MQTT 3.1.1 §3.3.2.1: a real broker drops the client: LinkClosed, like any server close."""
    stack.submit(a.OpenLink("mqtt", "127.0.0.1", mosquitto))
    events.wait(a.LinkOpened)
    stack.submit(a.MqttConnect("sim-wild", None, None, 60))
    events.wait(a.MqttConnack)
    stack.submit(a.MqttPublish(topic, b"x", qos=1, packet_id=1))
    assert events.wait(a.LinkClosed) == a.LinkClosed("mqtt")
    assert not any(isinstance(e, a.MqttPuback) for e in events.items)
    assert not stack.is_open("mqtt")


def test_a_request_that_cannot_be_encoded_closes_the_link(
    stack: NetStack, events: Events, mosquitto: int
) -> None:
    """An internal failure on the MQTT link is never left half-done: the link is closed and
    LinkClosed reported, so the firmware's in-flight state is cleared."""
    stack.submit(a.OpenLink("mqtt", "127.0.0.1", mosquitto))
    events.wait(a.LinkOpened)
    stack.submit(a.MqttConnect("sim-bad", None, None, 60))
    events.wait(a.MqttConnack)
    stack.submit(a.MqttPublish("t", b"x", qos=1, packet_id=70000))  # no 2-byte packet id
    assert events.wait(a.LinkClosed) == a.LinkClosed("mqtt")
