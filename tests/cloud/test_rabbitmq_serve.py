"""``airlab cloud serve --engine rabbitmq`` run as a command, with a private RabbitMQ
node started from the configuration it writes: the tutorial device logs in and publishes
through the node (message log by airlab's observer), a forged login is refused, HTTPS
auth through the served endpoints leads to a token login on the node, the node's TLS
listener presents airlab's certificate, and ``airlab cloud publish`` reaches a device
through the node. Skipped where ``rabbitmq-server`` is absent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlab.aliyun import direct_mqtt_credentials
from airlab.aliyun.dynreg import parse_register_reply, register_request
from airlab.aliyun.http_auth import (
    http_auth_request,
    mqtt_credentials_after_http_auth,
    parse_http_auth_reply,
)
from airlab.cli.cloud_serve import _check_engine
from airlab.cloud.discovery import RemoteCloud, load_endpoints
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as SECRET
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_SECRET as PRODUCT_SECRET
from airlab.cloud.rabbitmq_engine import RabbitEngine
from airlab.errors import UsageError
from airlab.sim.hosts import HostTable
from tests.cloud.test_rabbitmq_auth import (
    NODE_START,
    WAIT,
    Mqtt,
    Node,
    _free_port,
    _rabbitmq_bin,
    tutorial_at_session,
)

ROOT = Path(__file__).resolve().parents[2]
node_timeout = pytest.mark.timeout(NODE_START + 180)


def _airlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "airlab", *args]


class Served:
    """The command's process, its endpoints, the node and a console on the service."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mqtt_port, self.mqtts_port = _free_port(), _free_port()
        self.endpoints_file = folder / "rabbit.json"
        self.output = folder / "serve.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self.node: Node | None = None
        self.endpoints: dict[str, Any] = {}
        self.cloud: RemoteCloud | None = None

    def start(self) -> None:
        command = _airlab(
            "cloud", "serve", "--engine", "rabbitmq", "--db", str(self.folder / "cloud.db"),
            "--mqtt-port", str(self.mqtt_port), "--mqtts-port", str(self.mqtts_port),
            "--write-rabbitmq-config", str(self.folder / "node-etc"),
            "--endpoints-file", str(self.endpoints_file),
        )  # fmt: skip
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
                cwd=ROOT,
            )
        deadline = time.monotonic() + 30.0
        while "Ctrl-C stops it." not in self.text():
            assert self.proc.poll() is None, self.text()
            assert time.monotonic() < deadline, f"not serving in 30 s: {self.text()}"
            time.sleep(0.05)  # another process writes the file: no event to wait on
        self.endpoints = load_endpoints(self.endpoints_file)
        self.cloud = RemoteCloud(self.endpoints)
        self.node = Node(self.folder, self.folder / "node-etc", self.mqtt_port)
        print(f"RabbitMQ node up in {self.node.start():.1f} s")
        self.wait_for_log("connection", lambda row: "airlab-observer" in str(row["reason"]))

    def text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def wait_for_log(self, table: str, wanted: Any) -> dict[str, Any]:
        assert self.cloud is not None
        deadline = time.monotonic() + WAIT
        while True:
            frame = getattr(self.cloud, f"{table}_log")()
            rows = [row for row in frame.to_dict("records") if wanted(row)]
            if rows:
                return rows[-1]
            assert time.monotonic() < deadline, f"no such {table} log line: {frame.tail()}"
            time.sleep(0.1)  # the service logs on its own threads: polled, bounded

    def stop(self) -> int | None:
        if self.cloud is not None:
            self.cloud.close()
        if self.node is not None:
            self.node.stop()
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    if _rabbitmq_bin("rabbitmq-server") is None:
        pytest.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed")
    folder = Path(tempfile.mkdtemp(prefix="airlab-serve-rabbitmq-"))
    service = Served(folder)
    try:
        service.start()
        yield service
        code = service.stop()
        assert code == 0, service.text()
        assert "airlab cloud: stopped" in service.text()
        assert not service.endpoints_file.exists()  # removed on a clean stop
    finally:
        service.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@node_timeout
def test_the_endpoints_lead_mqtt_to_the_node_and_auth_to_airlab(served: Served) -> None:
    ep = served.endpoints
    assert (ep["engine"], ep["mqtt"], ep["mqtts"]) == (
        "rabbitmq",
        f"127.0.0.1:{served.mqtt_port}",
        f"127.0.0.1:{served.mqtts_port}",
    )
    hosts = HostTable.from_endpoints(served.endpoints_file)
    mqtt_host = f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com"
    assert hosts.resolve(mqtt_host, 1883) == ("127.0.0.1", served.mqtt_port)
    assert hosts.resolve(mqtt_host, 8883, tls=True) == ("127.0.0.1", served.mqtts_port)
    https = ep["https"].rsplit(":", 1)[1]
    assert hosts.resolve("iot-auth.cn-shanghai.aliyuncs.com", 443, tls=True)[1] == int(https)
    conf = (served.folder / "node-etc" / "rabbitmq.conf").read_text()
    assert f"auth_http.user_path = {ep['rules']['user']}" in conf
    assert "with the RabbitMQ engine" in served.text()


@pytest.mark.slow
@node_timeout
def test_the_tutorial_device_logs_in_and_publishes_through_the_node(served: Served) -> None:
    cred = direct_mqtt_credentials(PK, DN, SECRET)
    modem = Mqtt(cred.client_id, cred.username, cred.password)
    try:
        modem.connect(served.mqtt_port)
        assert modem.code == 0
        info = modem.client.publish(f"/{PK}/{DN}/user/update", b"through the node", qos=1)
        info.wait_for_publish(WAIT)
        assert modem.client.is_connected()
    finally:
        modem.stop()
    row = served.wait_for_log("message", lambda r: r["payload"] == b"through the node")
    assert (row["direction"], row["topic"], row["qos"]) == ("up", f"/{PK}/{DN}/user/update", 1)
    connect = served.wait_for_log("connection", lambda r: r["client_id"] == cred.client_id)
    assert (connect["event"], connect["accepted"], connect["code"]) == ("connect", True, 0)


@pytest.mark.slow
@node_timeout
def test_the_simulated_module_logs_in_through_the_node_by_the_endpoints_file(
    served: Served,
) -> None:
    hosts = HostTable.from_endpoints(served.endpoints_file)  # what airsim://?cloud= reads
    assert tutorial_at_session(hosts, SECRET, "simulated") == [
        ("OK", None), ("OK", "CONNECT OK"), ("OK", "CONNACK OK"), ("OK", "PUBACK"), ("OK", None)
    ]  # fmt: skip
    row = served.wait_for_log("message", lambda r: r["payload"] == b"simulated")
    assert (row["direction"], row["topic"]) == ("up", f"/{PK}/{DN}/user/update")


@pytest.mark.slow
@node_timeout
def test_a_forged_login_is_refused_by_the_node(served: Served) -> None:
    cred = direct_mqtt_credentials(PK, DN, "0" * 32, client_id="forger")
    assert login_code(cred, served.mqtt_port) == 4
    row = served.wait_for_log("connection", lambda r: str(r["client_id"]).startswith("forger"))
    assert (row["event"], row["accepted"], row["code"]) == ("refused", False, 4)


@pytest.mark.slow
@node_timeout
def test_https_auth_through_the_served_endpoints_then_a_token_login_on_the_node(
    served: Served,
) -> None:
    request = http_auth_request(PK, DN, SECRET, client_id=DN, resources="mqtt")
    auth = parse_http_auth_reply(post_https(served, "/auth/devicename", request))
    cred = mqtt_credentials_after_http_auth(auth, PK, DN)
    host, port = HostTable.from_endpoints(served.endpoints).resolve(cred.host, cred.port)
    assert (host, port) == ("127.0.0.1", served.mqtt_port)
    assert login_code(cred, port) == 0  # iotId + iotToken, checked by airlab's rules


@pytest.mark.slow
@node_timeout
def test_https_dynamic_registration_through_the_served_endpoints_then_a_login_on_the_node(
    served: Served,
) -> None:
    assert served.cloud is not None
    served.cloud.set_dynamic_registration(PK, True)
    served.cloud.add_device(PK, "dynreg0001")
    request = register_request(PK, "dynreg0001", PRODUCT_SECRET, random="424242")
    issued = parse_register_reply(post_https(served, "/auth/register/device", request))
    cred = direct_mqtt_credentials(PK, "dynreg0001", issued.device_secret)
    assert login_code(cred, served.mqtt_port) == 0


def post_https(served: Served, path: str, request: Any) -> bytes:
    """POST a form (``HttpFormRequest``) to the served HTTPS endpoint, verifying it with
    the endpoints' CA; the reply's body."""
    context = ssl.create_default_context(cadata=served.endpoints["ca"])
    post = urllib.request.Request(
        served.endpoints["https"] + path,
        data=request.body.encode(),
        headers={"Content-Type": request.content_type},
    )
    with urllib.request.urlopen(post, timeout=WAIT, context=context) as reply:
        return bytes(reply.read())


@pytest.mark.slow
@node_timeout
def test_the_nodes_tls_listener_presents_airlabs_certificate(served: Served) -> None:
    cred = direct_mqtt_credentials(PK, DN, SECRET, client_id="tls-client")
    context = ssl.create_default_context(cadata=served.endpoints["ca"])
    assert login_code(cred, served.mqtts_port, context) == 0


def login_code(cred: Any, port: int, context: ssl.SSLContext | None = None) -> int | None:
    """The CONNACK code a paho client with ``cred`` gets from the node's ``port``."""
    client = Mqtt(cred.client_id, cred.username, cred.password)
    if context is not None:
        client.client.tls_set_context(context)
    try:
        client.connect(port)
        return client.code
    finally:
        client.stop()


@pytest.mark.slow
@node_timeout
def test_console_publish_reaches_the_device_through_the_node(served: Served) -> None:
    cred = direct_mqtt_credentials(PK, DN, SECRET, client_id="listener")
    device = Mqtt(cred.client_id, cred.username, cred.password)
    topic = f"/{PK}/{DN}/user/get"
    try:
        device.connect(served.mqtt_port)
        device.client.subscribe(topic, qos=1)
        assert device.subacked.wait(WAIT)
        done = subprocess.run(
            _airlab("cloud", "publish", "--endpoints-file", str(served.endpoints_file),
                    "--topic", topic, "--payload", "from the console", "--qos", "1"),
            capture_output=True, text=True, timeout=60, cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "through the RabbitMQ node" in done.stdout
        assert device.got_message.wait(WAIT), "the device got nothing"
        assert device.messages == [(topic, b"from the console")]
    finally:
        device.stop()
    row = served.wait_for_log("message", lambda r: r["payload"] == b"from the console")
    assert (row["direction"], row["topic"]) == ("down", topic)
    time.sleep(0.5)  # the observer's copy would have arrived by now: it must not be logged
    assert served.cloud is not None
    frame = served.cloud.message_log()
    assert list(frame[frame["payload"] == b"from the console"]["direction"]) == ["down"]


@pytest.mark.slow
@node_timeout
def test_the_platform_answers_alink_and_ntp_through_the_node(served: Served) -> None:
    """A property post gets its ``_reply`` and an NTP request its response, as from the
    embedded broker: published through the node, logged ``down``."""
    cred = direct_mqtt_credentials(PK, DN, SECRET, client_id="alink")
    device = Mqtt(cred.client_id, cred.username, cred.password)
    post = f"/sys/{PK}/{DN}/thing/event/property/post"
    ntp = f"/ext/ntp/{PK}/{DN}/request"
    try:
        device.connect(served.mqtt_port)
        for topic in (post + "_reply", f"/ext/ntp/{PK}/{DN}/response"):
            device.subacked.clear()
            device.client.subscribe(topic, qos=0)
            assert device.subacked.wait(WAIT)
        request = (
            b'{"id":"7","version":"1.0","params":{"t":21.5},"method":"thing.event.property.post"}'
        )
        device.client.publish(post, request, qos=1).wait_for_publish(WAIT)
        device.client.publish(ntp, b'{"deviceSendTime":"1700000000000"}', qos=0)
        deadline = time.monotonic() + WAIT
        while len(device.messages) < 2:
            assert device.got_message.wait(max(0.0, deadline - time.monotonic())), device.messages
            device.got_message.clear()
    finally:
        device.stop()
    answers = dict(device.messages)
    reply = json.loads(answers[post + "_reply"])
    assert (reply["code"], reply["id"], reply["method"]) == (200, "7", "thing.event.property.post")
    times = json.loads(answers[f"/ext/ntp/{PK}/{DN}/response"])
    assert times["deviceSendTime"] == "1700000000000" and int(times["serverRecvTime"]) > 0
    row = served.wait_for_log("message", lambda r: r["topic"] == post + "_reply")
    assert row["direction"] == "down"


def test_options_of_the_other_engine_are_usage_errors() -> None:
    import argparse

    with pytest.raises(UsageError, match="--engine rabbitmq"):
        _check_engine(argparse.Namespace(engine="embedded", write_rabbitmq_config="x"))
    with pytest.raises(UsageError, match="RabbitMQ throttles nothing"):
        _check_engine(argparse.Namespace(engine="rabbitmq", no_throttle=True))
    assert _check_engine(argparse.Namespace(engine="rabbitmq", no_throttle=False)) == "rabbitmq"
    assert _check_engine(argparse.Namespace()) == "embedded"


def test_the_engine_answers_what_rabbitmq_does_not_say() -> None:
    with RabbitEngine(node_mqtt_port=_free_port()) as cloud:  # no node there
        assert cloud.status()["online"] is None
        topic = f"/{PK}/{DN}/user/get"
        with pytest.raises(OSError):
            cloud.publish(topic, "x", 1)
        assert not cloud.node.observer.take_expected(topic, b"x")  # not awaited any more
        with pytest.raises(UsageError, match="list_mqtt_connections"):
            cloud.online_devices()
        with pytest.raises(UsageError, match="close_connection"):
            cloud.disconnect(PK, DN)
        assert json.loads(json.dumps(cloud.endpoints))["engine"] == "rabbitmq"


def test_the_console_publisher_connects_again_when_the_node_closed_its_connection() -> None:
    """A stand-in node acks one QoS 1 publish per connection and closes it: the second
    publish finds the connection gone and goes out on a new one."""
    import socket
    import threading

    from airlab.cloud.rabbitmq_auth import CONSOLE_USER
    from airlab.cloud.rabbitmq_console import RabbitPublisher
    from airlab.mqtt import codec as c

    got: list[tuple[int, Any]] = []  # (connection, packet)

    def serve(listener: socket.socket) -> None:
        for number in range(2):
            conn, _ = listener.accept()
            with conn:
                reader = c.PacketReader()
                done = False
                while not done and (data := conn.recv(65536)):
                    for packet in reader.feed(data):
                        got.append((number, packet))
                        if isinstance(packet, c.Connect):
                            conn.sendall(c.encode(c.Connack(0)))
                        elif isinstance(packet, c.Publish) and packet.packet_id is not None:
                            conn.sendall(c.encode(c.Puback(packet.packet_id)))
                            done = number == 0  # the first connection ends after its ack

    with socket.create_server(("127.0.0.1", 0)) as listener:
        node = threading.Thread(target=serve, args=(listener,), daemon=True)
        node.start()
        publisher = RabbitPublisher("127.0.0.1", listener.getsockname()[1], "pw", timeout=WAIT)
        publisher.publish("/a/b/user/get", b"first", 1)
        publisher.publish("/a/b/user/get", b"second", 1)
        publisher.close()
        node.join(WAIT)
    logins = [p for _, p in got if isinstance(p, c.Connect)]
    assert [(p.username, p.password, p.keepalive) for p in logins] == [
        (CONSOLE_USER, b"pw", 0),
        (CONSOLE_USER, b"pw", 0),
    ]
    published = [(n, p.payload) for n, p in got if isinstance(p, c.Publish)]
    assert published[0] == (0, b"first") and published[-1] == (1, b"second")


@node_timeout
def test_a_fleet_runs_through_the_node(served: Served) -> None:
    """``airlab fleet run --endpoints-file`` against the RabbitMQ engine, as from one of
    several machines: a product of its own, TLS logins on the node, every QoS 1 publish
    acknowledged by the node and recorded by airlab's observer."""
    proc = subprocess.run(
        _airlab("fleet", "run", "--modems", "3", "--rate", "2", "--duration", "1",
                "--ramp", "0", "--json", "--endpoints-file", str(served.endpoints_file)),
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["logins"], summary["published"], summary["acked"]) == (3, 6, 6)
    assert summary["refused"] == 0 and summary["throttled"] == 0  # the node throttles nothing
    assert served.cloud is not None
    devices = served.cloud.devices()
    fleet = devices[devices["device_name"].str.startswith("86950")]
    assert len(fleet) == 3 and fleet["product_key"].nunique() == 1
    pk = str(fleet["product_key"].iloc[0])
    deadline = time.monotonic() + WAIT
    while (
        len([r for r in served.cloud.product_log_rows("message", pk) if r["direction"] == "up"]) < 6
    ):
        assert time.monotonic() < deadline, "the observer did not record the fleet's uplinks"
        time.sleep(0.1)  # the observer logs on its own thread: polled, bounded
