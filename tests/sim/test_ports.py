"""The simulated module on its ports: airsim:// (pyserial URL), the pty, the TCP bridge.

Full flows go through ``serial.serial_for_url("airsim://...")`` against real servers:
a local HTTP/HTTPS server standing in for iot-auth, mosquitto (plain and TLS) standing
in for the MQTT broker, and raw TCP servers for the failure cases.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from airlab.sim.bridges import PtyBridge, TcpBridge
from airlab.sim.device import SimulatedModule
from airlab.sim.urlhandler import register_url_handler

register_url_handler()

PK_HOST = "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com"
AUTH_URL = "https://iot-auth.cn-shanghai.aliyuncs.com/auth"
AUTH_REPLY = (
    b'{"code":200,"data":{"iotId":"GNvr6Ij2bgSb","iotToken":"d0aa3c8b"},"message":"success"}'
)


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"port {port} did not open"
            time.sleep(0.01)  # another process's port (mosquitto): polled with a deadline


def expect(port: serial.SerialBase, text: bytes, timeout: float = 5.0) -> bytes:
    """Read until ``text`` has arrived (deadline, no sleeps)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while text not in buf:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {text!r}, got {buf!r}")
        buf += port.read(1)  # byte by byte: what follows stays for the next expect()
    return buf


def make_cert(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airlab test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Auth(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict[str, str], bytes]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.command, self.path, dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(AUTH_REPLY)))
        self.end_headers()
        self.wfile.write(AUTH_REPLY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Stand-in cloud: HTTP + HTTPS auth server, mosquitto plain + TLS, an endpoints file."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.skip("Debian's mosquitto is not installed (apt-get install mosquitto)")
    tmp = tmp_path_factory.mktemp("cloud")
    cert, key = make_cert(tmp)
    mqtt, mqtts = free_port(), free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        # as root, mosquitto would switch to its own user and not read our 0700 tmp dir
        f"{'user root' + chr(10) if os.geteuid() == 0 else ''}"
        f"allow_anonymous true\nlistener {mqtt} 127.0.0.1\n"
        f"listener {mqtts} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"
    )
    log = tmp / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "-c", str(conf), "-v"], stdout=out, stderr=subprocess.STDOUT)
    servers = []
    for tls in (False, True):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Auth)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
    endpoints = {
        "http": f"http://127.0.0.1:{servers[0].server_address[1]}",
        "https": f"https://127.0.0.1:{servers[1].server_address[1]}",
        "mqtt": f"127.0.0.1:{mqtt}",
        "mqtts": f"127.0.0.1:{mqtts}",
    }
    path = tmp / "endpoints.json"
    path.write_text(json.dumps(endpoints))
    try:
        try:
            wait_port(mqtt)
            wait_port(mqtts)
        except AssertionError:
            raise AssertionError(log.read_text()) from None
        yield {"path": path, "mqtt": mqtt, "mqtts": mqtts, "endpoints": endpoints}
    finally:
        proc.terminate()
        proc.wait(5)
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def sim(cloud: dict) -> Iterator[serial.SerialBase]:
    port = serial.serial_for_url(f"airsim://lab?cloud={cloud['path']}&seed=1", timeout=2)
    try:
        yield port
    finally:
        port.close()


def cmd(port: serial.SerialBase, line: str | bytes, until: bytes = b"OK\r\n") -> bytes:
    port.write(line.encode() + b"\r" if isinstance(line, str) else line)
    return expect(port, until)


# ---------------------------------------------------------------- airsim:// basics


def test_airsim_at_ok_and_options() -> None:
    port = serial.serial_for_url(
        "airsim://?profile=instant&seed=1&imei=868488076506999&echo=1&baud=115200", timeout=1
    )
    try:
        assert isinstance(port.module, SimulatedModule)
        assert port.module.baudrate == 115200
        assert port.write(b"AT\r") == 3
        assert port.read(9) == b"AT\r\r\nOK\r\n"
        assert b"868488076506999" in cmd(port, "AT+CGSN")
        port.write(b"AT\r")
        expect(port, b"AT\r")  # paced at 115200 baud: the rest is still on the line
        port.module.read_until(b"OK\r\n", 1) and port.write(b"ATI\r")
        port.module.read_until(b"OK\r\n", 1)
        port.reset_input_buffer()
        assert port.in_waiting == 0
        t0 = time.monotonic()
        port.timeout = 0.05
        assert port.read(1) == b""  # pyserial timeout semantics
        assert time.monotonic() - t0 >= 0.05
    finally:
        port.close()
    with pytest.raises(serial.PortNotOpenError):
        port.read(1)


def test_airsim_echo_off_and_firmware_options() -> None:
    port = serial.serial_for_url("airsim://?echo=0&qos1_overlap=cme767", timeout=1)
    try:
        assert port.module.firmware.config.qos1_overlap == "cme767"
        port.write(b"AT\r")
        assert port.read(6) == b"\r\nOK\r\n"
    finally:
        port.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("airsim://?colour=red", "'colour'"),
        ("airsim://?profile=slow", "'slow'"),
        ("airsim://?echo=maybe", "'echo'"),
        ("airsim://?baud=fast", "'baud'"),
        ("airsim://?cloud=/nonexistent/endpoints.json", "'cloud'"),
    ],
)
def test_airsim_bad_options_name_themselves(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        serial.serial_for_url(url)


def test_airsim_boot_option_and_profile() -> None:
    port = serial.serial_for_url("airsim://?boot=1&profile=tutorial", timeout=1)
    try:
        assert port.module.profile.name == "tutorial"
        assert expect(port, b"RDY\r\n").endswith(b"RDY\r\n")
    finally:
        port.close()


# ---------------------------------------------------------------- full flows over airsim://


def test_https_auth_post_then_httpread(sim: serial.SerialBase) -> None:
    body = b"productKey=a1qsHBbKtmc&deviceName=dev1&clientId=dev1&sign=0123456789abcdef"
    cmd(sim, "AT+SAPBR=1,1")  # HTTP needs the bearer
    cmd(sim, "AT+HTTPINIT")
    cmd(sim, f'AT+HTTPPARA="URL","{AUTH_URL}"')
    cmd(sim, 'AT+HTTPPARA="USER_DEFINED","Content-type: application/x-www-form-urlencoded"')
    cmd(sim, f"AT+HTTPDATA={len(body)},20000", b"DOWNLOAD\r\n")
    sim.write(body)
    expect(sim, b"OK\r\n")
    cmd(sim, "AT+HTTPACTION=1", b"OK\r\n")
    urc = expect(sim, f"+HTTPACTION: 1,200,{len(AUTH_REPLY)}\r\n".encode())
    assert b"+HTTPACTION: 1,200," in urc
    out = cmd(sim, "AT+HTTPREAD")
    assert f"+HTTPREAD: {len(AUTH_REPLY)}\r\n".encode() + AUTH_REPLY + b"\r\nOK\r\n" in out
    method, path, headers, got = _Auth.seen[-1]
    assert (method, path, got) == ("POST", "/auth", body)
    assert headers["Host"] == "iot-auth.cn-shanghai.aliyuncs.com"
    assert headers["User-Agent"] == "AM_MODULE"
    assert headers["Content-type"] == "application/x-www-form-urlencoded"


def test_dns_failures(sim: serial.SerialBase) -> None:
    cmd(sim, "AT+SAPBR=1,1")  # HTTP needs the bearer
    cmd(sim, "AT+HTTPINIT")
    cmd(sim, 'AT+HTTPPARA="URL","http://no-such-host.example.com/x"')
    cmd(sim, "AT+HTTPACTION=0")
    expect(sim, b"\r\n+HTTPACTION: 0,603,0\r\n")
    out = cmd(sim, 'AT+MIPSTART="no-such-host.example.com",1883', b"CONNECT FAIL\r\n")
    assert out.endswith(b"\r\nCONNECT FAIL\r\n")


def test_tls_mqtt_qos1_with_puback_and_incoming_message(
    sim: serial.SerialBase, cloud: dict
) -> None:
    cmd(sim, 'AT+MCONFIG="sim-ports-1","",""')
    cmd(sim, f'AT+SSLMIPSTART="{PK_HOST}",1883', b"\r\nCONNECT OK\r\n")
    cmd(sim, "AT+MCONNECT=1,60", b"\r\nCONNACK OK\r\n")
    cmd(sim, 'AT+MSUB="/a1qsHBbKtmc/dev1/user/get",1', b"\r\nSUBACK\r\n")
    cmd(sim, 'AT+MPUB="/a1qsHBbKtmc/dev1/user/update",1,0,"{\\22temp\\22:25}"', b"\r\nPUBACK\r\n")
    assert b"+MQTTSTATU :1" in cmd(sim, "AT+MQTTSTATU")
    pub = shutil.which("mosquitto_pub")
    if pub is None:
        pytest.skip("mosquitto_pub not installed: incoming message not checked")
    subprocess.run(
        [pub, "-h", "127.0.0.1", "-p", str(cloud["mqtt"]), "-q", "1",
         "-t", "/a1qsHBbKtmc/dev1/user/get", "-m", "hello\nworld"],
        check=True, timeout=10,
    )  # fmt: skip
    expect(sim, b'\r\n+MSUB: "/a1qsHBbKtmc/dev1/user/get",11 byte,hello\nworld\r\n')
    # the server side drops the link
    assert sim.module.drop_link("mqtt")
    expect(sim, b"\r\nCLOSED\r\n")
    assert b"+MQTTSTATU :0" in cmd(sim, "AT+MQTTSTATU")
    assert b"+CME ERROR: 767" in cmd(sim, "AT+MIPCLOSE", b"767\r\n")


class _Subscriber:
    """A paho client subscribed to ``topic`` on the test broker (SUBACK awaited on an
    event); :meth:`message` waits for the first message, with a timeout."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.subscribed = threading.Event()
        self.received = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-ports-subscriber")
        self.c.on_connect = lambda c, userdata, flags, rc, props: c.subscribe(topic, 1)
        self.c.on_subscribe = lambda c, userdata, mid, rcs, props: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.subscribed.wait(5), "the test subscriber got no SUBACK"

    def _on_message(self, c: object, userdata: object, msg: object) -> None:
        self.messages.append((msg.topic, msg.payload))  # type: ignore[attr-defined]
        self.received.set()

    def message(self, timeout: float = 5.0) -> tuple[str, bytes]:
        assert self.received.wait(timeout), "the broker delivered nothing"
        return self.messages[0]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_plain_mqtt_through_the_endpoints(sim: serial.SerialBase, cloud: dict) -> None:
    got = _Subscriber(cloud["mqtt"], "x/y")  # subscribed before the module publishes
    try:
        cmd(sim, 'AT+MCONFIG="sim-ports-2","",""')
        cmd(sim, f'AT+MIPSTART="{PK_HOST}",1883', b"\r\nCONNECT OK\r\n")
        cmd(sim, "AT+MCONNECT=0,120", b"\r\nCONNACK OK\r\n")
        cmd(sim, 'AT+MPUB="x/y",0,0,"q0"')
        assert got.message() == ("x/y", b"q0")  # the broker got the QoS0 publish
        cmd(sim, "AT+MDISCONNECT")
        cmd(sim, "AT+MIPCLOSE")
    finally:
        got.close()


def test_idle_link_dropped_by_server_then_late_mconnect() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(0.3)  # no CONNECT within 0.3 s: drop the link
        try:
            received.append(conn.recv(100))
        except TimeoutError:
            received.append(b"")
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = serial.serial_for_url("airsim://", timeout=2)
    try:
        cmd(port, 'AT+MCONFIG="late","",""')
        cmd(port, f'AT+MIPSTART="127.0.0.1",{listener.getsockname()[1]}', b"CONNECT OK\r\n")
        expect(port, b"\r\nCLOSED\r\n")
        out = cmd(port, "AT+MCONNECT=1,60", b"767\r\n")
        assert out.endswith(b"\r\n+CME ERROR: 767\r\n")
        assert received == [b""]
    finally:
        port.close()
        listener.close()


# ---------------------------------------------------------------- bridges


def test_pty_bridge_with_plain_pyserial(tmp_path: Path) -> None:
    link = tmp_path / "airlab-sim.pty"
    with SimulatedModule() as module, PtyBridge(module, link) as bridge:
        assert bridge.path == str(link) and link.is_symlink()
        assert os.readlink(link).startswith("/dev/pts/")
        port = serial.Serial(bridge.path, 115200, timeout=2)
        try:
            port.write(b"AT\r")
            assert port.read(9) == b"AT\r\r\nOK\r\n"
            port.write(b"ATI\r\n")
            out = expect(port, b"OK\r\n")
            assert out.startswith(b"ATI\r\n")
            assert port.in_waiting == 0  # raw slave: our output is not echoed back to us
            module.drop_link()  # nothing open: no output
            module.lose_pdp()
            assert expect(port, b"+CGEV: NW PDN DEACT 1\r\n")
        finally:
            port.close()
    assert not link.exists()


def test_pty_bridge_refuses_to_replace_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with SimulatedModule() as module, pytest.raises(FileExistsError):
        PtyBridge(module, path).start()


def test_tcp_bridge_survives_host_disconnects() -> None:
    with SimulatedModule() as module, TcpBridge(module) as bridge:
        assert bridge.url.startswith("socket://127.0.0.1:")
        first = serial.serial_for_url(bridge.url, timeout=2)
        first.write(b"ATE0\r")
        expect(first, b"OK\r\n")
        busy = socket.create_connection(("127.0.0.1", bridge.port), 2)
        busy.settimeout(2)
        assert busy.recv(10) == b""  # one host at a time: the second one is closed
        busy.close()
        first.close()
        second = serial.serial_for_url(bridge.url, timeout=2)
        try:
            second.write(b"AT\r")
            assert second.read(6) == b"\r\nOK\r\n"  # same module: echo still off
        finally:
            second.close()
        assert bridge.connections == 2


def _recv_until(conn: socket.socket, text: bytes, timeout: float = 5.0) -> bytes:
    """Read from a raw socket until ``text`` arrived, the peer closed or the deadline."""
    deadline = time.monotonic() + timeout
    buf = b""
    while text not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        conn.settimeout(left)
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
    return buf


@pytest.mark.parametrize("burst", [b"AT+CGMI\r" * 2000, b"AT\r" * 50])
def test_tcp_bridge_accepts_a_host_right_after_the_previous_one_left(burst: bytes) -> None:
    """Issue 8 item 11: a host that reconnects at once, while the bridge is still busy with
    what the previous host sent, is accepted (not closed, not reset) and answered."""
    with SimulatedModule() as module, TcpBridge(module) as bridge:
        for _ in range(10):
            old = socket.create_connection(("127.0.0.1", bridge.port), 5)
            old.sendall(burst)
            old.close()
            new = socket.create_connection(("127.0.0.1", bridge.port), 5)
            try:
                new.sendall(b"AT\r")
                # exactly the echo and OK: nothing of the previous host's answers
                assert _recv_until(new, b"OK\r\n") == b"AT\r\r\nOK\r\n"
            finally:
                new.close()
        assert (bridge.connections, bridge.refused) == (20, 0)
