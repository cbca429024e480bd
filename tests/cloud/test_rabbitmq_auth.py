"""RabbitMQ as the clustered engine: airlab's HTTP auth service for
``rabbitmq_auth_backend_http`` (form posts over a real socket), the node config writer,
the ``airlab cloud auth-service`` command, and — where ``rabbitmq-server`` is installed —
a private RabbitMQ node enforcing the platform's rules for paho clients."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from airlab.aliyun import direct_mqtt_credentials
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.fixtures import load_tutorial
from airlab.cloud.model import ConnectionEvent
from airlab.cloud.rabbitmq_auth import (
    CONSOLE_USER,
    OBSERVER_USER,
    PATHS,
    RabbitAuth,
    RabbitAuthServer,
    mqtt_topic,
)
from airlab.cloud.rabbitmq_config import (
    CONF_NAME,
    ENABLED_PLUGINS,
    PLUGINS_NAME,
    rabbitmq_conf,
    write_rabbitmq_config,
)
from airlab.cloud.rabbitmq_observer import RabbitObserver, device_in_topic
from airlab.cloud.registry import Device, Registry
from airlab.cloud.service_support import ServiceRules
from airlab.sim.hosts import HostTable

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0  # seconds for any one MQTT step
NODE_START = 90.0  # seconds for a RabbitMQ node to open its MQTT port (2 shared cores)
# a node starts in the first test on it and stops after the last: room for both
node_timeout = pytest.mark.timeout(NODE_START + 120)
OBSERVER_PASSWORD = "observer-test-password"
CONSOLE_PASSWORD = "console-test-password"


# -- the service over a real socket, without RabbitMQ -----------------------------------


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = Registry()
    load_tutorial(reg)
    yield reg
    reg.close()


@pytest.fixture
def server(registry: Registry) -> Iterator[RabbitAuthServer]:
    auth = RabbitAuth(
        ServiceRules(registry),
        observer_password=OBSERVER_PASSWORD,
        console_password=CONSOLE_PASSWORD,
    )
    with RabbitAuthServer(auth) as srv:
        yield srv


@pytest.fixture
def tutorial(registry: Registry) -> Device:
    device = registry.get_device(PK, DN)
    assert device is not None
    return device


class Poster:
    """Form posts to the service over one kept-alive HTTP/1.1 connection, as RabbitMQ's
    HTTP client sends them."""

    def __init__(self, server: RabbitAuthServer) -> None:
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=WAIT)

    def raw(self, path: str, body: bytes) -> tuple[int, str]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        self.conn.request("POST", path, body=body, headers=headers)
        reply = self.conn.getresponse()
        return reply.status, reply.read().decode()

    def post(self, check: str, **fields: str) -> str:
        status, text = self.raw(PATHS[check], urlencode(fields).encode())
        assert status == 200
        return text

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def poster(server: RabbitAuthServer) -> Iterator[Poster]:
    p = Poster(server)
    yield p
    p.close()


def login_form(device: Device, **over: str) -> dict[str, str]:
    cred = direct_mqtt_credentials(device.product_key, device.device_name, device.device_secret)
    form = {
        "username": cred.username,
        "password": cred.password,
        "vhost": "/",
        "client_id": cred.client_id,
    }
    form.update(over)
    return form


def topic_form(username: str, permission: str, routing_key: str) -> dict[str, str]:
    """What RabbitMQ 3.10.8 posts to topic_path (measured)."""
    return {
        "username": username,
        "vhost": "/",
        "resource": "topic",
        "name": "amq.topic",
        "permission": permission,
        "tags": "",
        "routing_key": routing_key,
        "variable_map.client_id": "c1",
        "variable_map.username": username,
        "variable_map.vhost": "/",
    }


def log_of(registry: Registry) -> list[ConnectionEvent]:
    registry.flush()
    return list(registry.connection_log())


def test_tutorial_device_is_allowed_through_all_four_checks(
    registry: Registry, poster: Poster, tutorial: Device
) -> None:
    form = login_form(tutorial)
    assert poster.post("user", **form) == "allow"
    user = form["username"]
    assert poster.post("vhost", username=user, vhost="/", ip="::ffff:127.0.0.1") == "allow"
    resource = {"username": user, "vhost": "/", "resource": "exchange", "name": "amq.topic"}
    assert poster.post("resource", **resource, permission="write") == "allow"
    key = f".{PK}.{DN}.user.update"
    assert poster.post("topic", **topic_form(user, "write", key)) == "allow"
    assert poster.post("topic", **topic_form(user, "read", f".{PK}.{DN}.user.get")) == "allow"
    events = log_of(registry)
    assert [(e.event, e.accepted, e.code) for e in events] == [
        ("connect", True, 0),
        ("subscribe", True, None),
    ]
    assert str(events[0].device) == f"{PK}/{DN}"
    assert events[0].client_id == form["client_id"]
    assert events[1].reason == f"SUBSCRIBE '/{PK}/{DN}/user/get' granted"
    assert events[1].client_id == "c1"
    assert registry.get_device(PK, DN).activated  # type: ignore[union-attr]


def test_forged_password_is_denied_and_logged_without_it(
    registry: Registry, poster: Poster, tutorial: Device
) -> None:
    forged = "0123456789abcdef0123456789abcdef"
    assert poster.post("user", **login_form(tutorial, password=forged)) == "deny"
    (event,) = log_of(registry)
    assert (event.event, event.accepted, event.code) == ("refused", False, 4)
    assert event.explanation is not None and event.explanation.rule == "signature"
    assert event.explanation.details["rule_code"] == "4"
    shown = repr(event)
    assert forged not in shown and tutorial.device_secret not in shown


def test_rules_code_is_kept_beside_the_code_rabbitmq_sends(
    registry: Registry, poster: Poster, tutorial: Device
) -> None:
    form = login_form(tutorial, username=f"{DN}&nosuchproduct")
    assert poster.post("user", **form) == "deny"
    (event,) = log_of(registry)
    assert event.code == 4  # RabbitMQ answers every user_path deny with CONNACK 4
    assert event.explanation is not None
    assert event.explanation.rule == "unknown_product"
    assert event.explanation.details["rule_code"] == "5"


def test_cross_device_topics_are_denied(
    registry: Registry, poster: Poster, tutorial: Device
) -> None:
    user = f"{DN}&{PK}"
    assert poster.post("topic", **topic_form(user, "read", ".sys.other.dev.#")) == "deny"
    other = f".{PK}.otherdevice.user.update"
    assert poster.post("topic", **topic_form(user, "write", other)) == "deny"
    events = log_of(registry)
    assert [(e.event, e.accepted) for e in events] == [("subscribe", False), ("publish", False)]
    assert events[0].reason is not None
    assert events[0].reason.startswith("SUBSCRIBE '/sys/other/dev/#' refused: ")
    assert events[0].reason.endswith("(RabbitMQ closes the connection)")
    assert events[1].explanation is not None
    assert events[1].explanation.rule == "topic_permission"
    assert events[1].explanation.details["topic"] == f"/{PK}/otherdevice/user/update"


def test_routing_keys_are_turned_back_into_mqtt_topics(registry: Registry, poster: Poster) -> None:
    assert mqtt_topic(f".{PK}.{DN}.user.*") == f"/{PK}/{DN}/user/+"
    assert mqtt_topic(".sys.a.b.#") == "/sys/a/b/#"
    user = f"{DN}&{PK}"
    # '.' → '/': the device's own get topic; the same key read literally names no topic
    assert poster.post("topic", **topic_form(user, "read", f".{PK}.{DN}.user.get")) == "allow"
    # '*' → '+': a wildcard over other devices is refused, and logged as MQTT wrote it
    assert poster.post("topic", **topic_form(user, "read", f".{PK}.*.user.get")) == "deny"
    events = log_of(registry)
    assert events[0].reason == f"SUBSCRIBE '/{PK}/{DN}/user/get' granted"
    assert events[1].reason is not None
    assert events[1].reason.startswith(f"SUBSCRIBE '/{PK}/+/user/get' refused")


def test_vhost_and_dynamic_registration_are_refused(
    registry: Registry, poster: Poster, tutorial: Device
) -> None:
    user = f"{DN}&{PK}"
    assert poster.post("vhost", username=user, vhost="other", client_id="c1") == "deny"
    dynreg = login_form(tutorial, client_id="x|securemode=2,authType=register,random=1|")
    assert poster.post("user", **dynreg) == "deny"
    vhost, register = log_of(registry)
    assert (vhost.code, vhost.client_id) == (5, "c1")
    assert vhost.explanation is not None and vhost.explanation.rule == "rabbitmq_vhost"
    assert register.code == 4
    assert register.explanation is not None and register.explanation.rule == "rabbitmq_dynreg"


def test_the_device_of_a_topic_is_the_first_known_pair() -> None:
    known = {(PK, DN)}.__contains__
    assert device_in_topic(f"/sys/{PK}/{DN}/thing/event/property/post", lambda *p: known(p))
    assert device_in_topic(f"/ext/ntp/{PK}/{DN}/request", lambda *p: known(p)) is not None
    assert device_in_topic(f"/{PK}/other/user/update", lambda *p: known(p)) is None


@pytest.mark.parametrize(
    ("user", "password", "allowed", "events"),
    [
        (OBSERVER_USER, OBSERVER_PASSWORD, "read",
         [("refused", False), ("connect", True), ("subscribe", True), ("publish", False)]),
        (CONSOLE_USER, CONSOLE_PASSWORD, "write",
         [("refused", False), ("connect", True), ("subscribe", False)]),
    ],
)  # fmt: skip
def test_airlabs_own_users_have_one_permission_on_every_topic(
    registry: Registry,
    poster: Poster,
    user: str,
    password: str,
    allowed: str,
    events: list[tuple[str, bool]],
) -> None:
    """The observer reads everything and writes nothing; the console's publisher the
    other way round (its granted publishes are not logged)."""
    login = {"username": user, "vhost": "/", "client_id": "own"}
    assert poster.post("user", **login, password="wrong") == "deny"
    assert poster.post("user", **login, password=password) == "allow"
    denied = "write" if allowed == "read" else "read"
    anything = "#" if allowed == "read" else ".a.b"
    assert poster.post("topic", **topic_form(user, allowed, anything)) == "allow"
    assert poster.post("topic", **topic_form(user, denied, ".a.b")) == "deny"
    logged = log_of(registry)
    assert [(e.event, e.accepted) for e in logged] == events
    assert all(password not in repr(e) for e in logged)


BAD_BODIES = [
    ("user", b"username=a&vhost=%2F&client_id=c", "password: missing"),
    ("user", b"username=" + b"a" * 300 + b"&password=p&vhost=%2F&client_id=c", "more than 256"),
    ("user", b"username=a%0Ab&password=p&vhost=%2F&client_id=c", "visible ASCII"),
    ("user", b"username=a%20b&password=p&vhost=%2F&client_id=c", "visible ASCII"),
    ("user", "username=é&password=p&vhost=/&client_id=c".encode(), "form-encoded ASCII"),
    ("user", b"username=%C3%A9&password=p&vhost=%2F&client_id=c", "visible ASCII"),
    ("user", b"username=a&username=b&password=p&vhost=%2F&client_id=c", "given twice"),
    ("topic", b"username=u&vhost=%2F&resource=topic&name=n&permission=x&routing_key=k", "x"),
    ("resource", b"username=u&vhost=%2F&resource=table&name=n&permission=read", "table"),
    ("vhost", b"garbage", "form-encoded"),
    ("vhost", b"&".join([b"k%d=v" % i for i in range(40)]), "form-encoded"),
]


@pytest.mark.parametrize(("check", "body", "why"), BAD_BODIES)
def test_bad_input_is_denied_logged_and_the_server_goes_on(
    registry: Registry, poster: Poster, tutorial: Device, check: str, body: bytes, why: str
) -> None:
    assert poster.raw(PATHS[check], body) == (200, "deny")
    (event,) = log_of(registry)
    assert (event.event, event.accepted, event.device) == ("refused", False, None)
    assert event.explanation is not None and event.explanation.rule == "rabbitmq_request"
    assert why in (event.reason or "")
    assert poster.post("user", **login_form(tutorial)) == "allow"  # still serving


def test_oversized_bodies_and_unknown_paths_are_refused_unread(
    registry: Registry, server: RabbitAuthServer
) -> None:
    for path, body, status in (
        (PATHS["user"], b"x" * 9000, 413),
        ("/rabbitmq/other", b"username=u", 404),
    ):
        p = Poster(server)
        try:
            assert p.raw(path, body) == (status, "deny")
        finally:
            p.close()
    p = Poster(server)
    try:
        assert p.post("resource", username="u", vhost="/", resource="queue", name="q",
                      permission="configure") == "allow"  # fmt: skip
    finally:
        p.close()
    (event,) = log_of(registry)  # the oversized one; an unknown path is not RabbitMQ's
    assert event.explanation is not None and event.explanation.rule == "rabbitmq_request"
    assert "Content-Length '9000', at most 8192" in (event.reason or "")


def test_a_check_takes_well_under_the_40_ms_of_a_delayed_ack(
    poster: Poster, tutorial: Device
) -> None:
    form = login_form(tutorial)
    topic = topic_form(form["username"], "write", f".{PK}.{DN}.user.update")
    times: dict[str, list[float]] = {"user": [], "topic": []}
    for _ in range(30):
        for check, fields in (("user", form), ("topic", topic)):
            start = time.perf_counter()
            assert poster.post(check, **fields) == "allow"
            times[check].append(time.perf_counter() - start)
    medians = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"median per check over a kept-alive connection: {medians} ms")
    assert medians["topic"] < 20.0, medians  # 40+ ms each with Nagle's algorithm on


# -- the config writer and the command ----------------------------------------------------


def test_config_files_name_the_four_urls_and_the_plugins(tmp_path: Path) -> None:
    urls = {name: f"http://10.0.0.5:8090{path}" for name, path in PATHS.items()}
    conf, plugins = write_rabbitmq_config(tmp_path / "node", rabbitmq_conf(urls, mqtt_port=1884))
    lines = conf.read_text().splitlines()
    assert "auth_backends.1 = http" in lines
    assert "auth_http.http_method = post" in lines
    for name in PATHS:
        assert f"auth_http.{name}_path = http://10.0.0.5:8090/rabbitmq/{name}" in lines
    assert "mqtt.listeners.tcp.default = 1884" in lines
    assert "mqtt.allow_anonymous = false" in lines
    assert "mqtt.exchange = amq.topic" in lines
    assert "mqtt.tcp_listen_options.buffer = 16384" in lines  # ~4 MB per connection without
    assert plugins.read_text() == ENABLED_PLUGINS == "[rabbitmq_mqtt,rabbitmq_auth_backend_http].\n"


def test_the_command_serves_writes_the_config_and_stops_on_sigterm(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    mqtt_port = _free_port()  # no node there: the observer keeps trying, harmlessly
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = (tmp_path / "out.txt").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airlab",
            "cloud",
            "auth-service",
            "--mqtt-port",
            str(mqtt_port),
            "--observe",
            "--write-rabbitmq-config",
            str(folder),
            "--endpoints-file",
            str(tmp_path / "rabbit.json"),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    try:
        conf = folder / "rabbitmq.conf"
        deadline = time.monotonic() + 30.0
        while not (conf.exists() and "Ctrl-C" in (tmp_path / "out.txt").read_text()):
            assert proc.poll() is None, (tmp_path / "out.txt").read_text()
            assert time.monotonic() < deadline, "the service did not start in 30 s"
            time.sleep(0.05)  # another process writes the file: no event to wait on
        urls = dict(
            line.split(" = ", 1)
            for line in conf.read_text().splitlines()
            if line.startswith("auth_http.") and line.endswith(tuple(PATHS.values()))
        )
        user_url = urlsplit(urls["auth_http.user_path"])
        assert user_url.hostname == "127.0.0.1"
        conn = http.client.HTTPConnection(user_url.hostname, user_url.port, timeout=WAIT)
        cred = direct_mqtt_credentials(PK, DN, "fef32adf6dad46c2c7cbf335d3a7b021")
        body = urlencode(
            {
                "username": cred.username,
                "password": cred.password,
                "vhost": "/",
                "client_id": cred.client_id,
            }
        )
        conn.request("POST", user_url.path, body=body)
        assert conn.getresponse().read() == b"allow"
        conn.close()
        assert f"mqtt.listeners.tcp.default = {mqtt_port}" in conf.read_text()
        endpoints_file = tmp_path / "rabbit.json"
        assert stat.S_IMODE(endpoints_file.stat().st_mode) == 0o600
        endpoints = json.loads(endpoints_file.read_text())
        assert (endpoints["engine"], endpoints["mqtt"]) == ("rabbitmq", f"127.0.0.1:{mqtt_port}")
        assert HostTable.from_endpoints(endpoints_file).resolve(
            f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883
        ) == ("127.0.0.1", mqtt_port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            out.close()
    text = (tmp_path / "out.txt").read_text()
    assert code == 0, text
    assert "airlab cloud auth-service: stopped" in text
    assert f"wrote {folder / 'enabled_plugins'}" in text
    assert f"observer {OBSERVER_USER} on 127.0.0.1:{mqtt_port}" in text
    assert not (tmp_path / "rabbit.json").exists()  # removed on a clean stop


# -- a private RabbitMQ node ----------------------------------------------------------------


def _rabbitmq_bin(name: str) -> str | None:
    """The node's own scripts: Debian's /usr/sbin wrappers switch to the rabbitmq user,
    who cannot write a test's temporary folder."""
    own = Path("/usr/lib/rabbitmq/bin") / name
    if own.exists():
        return str(own)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """A RabbitMQ node of its own: own folders, node name, ports and epmd."""

    def __init__(self, folder: Path, config: Path, mqtt_port: int) -> None:
        """A node configured by the files in ``config`` (``rabbitmq.conf`` and
        ``enabled_plugins``, as ``--write-rabbitmq-config`` writes them for ``mqtt_port``)."""
        self.folder = folder
        self.mqtt_port = mqtt_port
        self.epmd_port = _free_port()
        name = f"airlabtest{os.getpid()}{folder.name[-6:].lower()}@localhost"
        conf, plugins = config / CONF_NAME, config / PLUGINS_NAME
        with conf.open("a", encoding="utf-8") as out:  # its own AMQP port; clients from
            out.write(f"listeners.tcp.default = {_free_port()}\nloopback_users = none\n")
        self.env = dict(
            os.environ,
            HOME=str(folder),  # its Erlang cookie
            RABBITMQ_MNESIA_BASE=str(folder / "mnesia"),
            RABBITMQ_LOG_BASE=str(folder / "log"),
            RABBITMQ_CONFIG_FILE=str(conf),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
            RABBITMQ_NODENAME=name,
            RABBITMQ_NODE_PORT=str(_free_port()),
            RABBITMQ_DIST_PORT=str(_free_port()),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_CRASH_DUMP=str(folder / "erl_crash.dump"),
        )
        self.name = name
        self.output = folder / "server.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def asking(cls, folder: Path, auth: RabbitAuthServer) -> Node:
        """A node whose configuration points at ``auth``."""
        mqtt_port = _free_port()
        write_rabbitmq_config(folder / "etc", rabbitmq_conf(auth.urls, mqtt_port=mqtt_port))
        return cls(folder, folder / "etc", mqtt_port)

    def start(self) -> float:
        server = _rabbitmq_bin("rabbitmq-server")
        assert server is not None
        start = time.monotonic()
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                [server],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,
            )
        deadline = start + NODE_START
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"rabbitmq-server ended: {self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.mqtt_port), 0.5).close()
                return time.monotonic() - start
            except OSError:
                time.sleep(0.2)  # the node opens its MQTT listener last: nothing to wait on
        raise AssertionError(f"no MQTT listener in {NODE_START:g} s: {self.tail()}")

    def tail(self) -> str:
        return self.output.read_text(errors="replace")[-3000:] if self.output.exists() else ""

    def stop(self) -> None:
        ctl = _rabbitmq_bin("rabbitmqctl")
        if self.proc is not None and self.proc.poll() is None and ctl is not None:
            try:
                subprocess.run(
                    [ctl, "-n", self.name, "stop"],
                    env=self.env,
                    timeout=30,
                    capture_output=True,
                    check=False,
                )
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the node and its helpers
            self.proc.wait(10)
        epmd = shutil.which("epmd")
        if epmd is not None:  # the node's own epmd (ERL_EPMD_PORT), started with -daemon
            subprocess.run(
                [epmd, "-port", str(self.epmd_port), "-kill"],
                env=self.env,
                timeout=10,
                capture_output=True,
                check=False,
            )


@pytest.fixture(scope="module")
def rabbit() -> Iterator[tuple[Node, Registry]]:
    if _rabbitmq_bin("rabbitmq-server") is None:
        pytest.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed")
    folder = Path(tempfile.mkdtemp(prefix="airlab-rabbitmq-"))
    registry = Registry()
    load_tutorial(registry)
    auth = RabbitAuth(ServiceRules(registry), observer_password=OBSERVER_PASSWORD)
    server = RabbitAuthServer(auth).start()
    node = Node.asking(folder, server)
    observer = RabbitObserver(auth.rules, "127.0.0.1", node.mqtt_port, OBSERVER_PASSWORD, retry=0.2)
    try:
        took = node.start()
        print(f"RabbitMQ node up in {took:.1f} s")
        observer.start()
        assert observer.ready.wait(WAIT), "airlab's observer did not subscribe"
        yield node, registry
    finally:
        observer.stop()
        node.stop()
        server.stop()
        registry.close()
        shutil.rmtree(folder, ignore_errors=True)


# paho 2 reports a 3.1.1 CONNACK code as the MQTT 5 reason code it maps it to
_MQTT3_CODES = {0: 0, 132: 1, 133: 2, 136: 3, 134: 4, 135: 5}


class Mqtt:
    """A paho client with bounded waits for CONNACK, SUBACK, messages and the close."""

    def __init__(self, client_id: str, username: str, password: str) -> None:
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        self.client.username_pw_set(username, password)
        self.connack = threading.Event()
        self.subacked = threading.Event()
        self.closed = threading.Event()
        self.code: int | None = None
        self.messages: list[tuple[str, bytes]] = []
        self.got_message = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subacked.set()
        self.client.on_disconnect = lambda *a: self.closed.set()
        self.client.on_message = self._on_message

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, *rest: Any) -> None:
        self.code = _MQTT3_CODES.get(reason.value, reason.value)  # paho 2 says MQTT 5 codes
        self.connack.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.messages.append((message.topic, bytes(message.payload)))
        self.got_message.set()

    def connect(self, port: int) -> float:
        start = time.perf_counter()
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        assert self.connack.wait(WAIT), "no CONNACK"
        return time.perf_counter() - start

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.slow
@node_timeout
def test_tutorial_device_logs_in_and_publishes_through_rabbitmq(
    rabbit: tuple[Node, Registry],
) -> None:
    node, registry = rabbit
    observer = Mqtt("airlab-observer-1", OBSERVER_USER, OBSERVER_PASSWORD)
    assert observer.connect(node.mqtt_port) >= 0 and observer.code == 0
    device = registry.get_device(PK, DN)
    assert device is not None
    cred = direct_mqtt_credentials(PK, DN, device.device_secret)
    modem = Mqtt(cred.client_id, cred.username, cred.password)
    try:
        observer.client.subscribe(f"/{PK}/{DN}/user/update", qos=1)
        assert observer.subacked.wait(WAIT), "no SUBACK for the observer"
        took = modem.connect(node.mqtt_port)
        print(f"login to CONNACK through RabbitMQ: {took * 1000:.1f} ms")
        assert modem.code == 0
        info = modem.client.publish(f"/{PK}/{DN}/user/update", b'{"t":21.5}', qos=1)
        info.wait_for_publish(WAIT)
        assert observer.got_message.wait(WAIT), "the observer got nothing"
        assert observer.messages == [(f"/{PK}/{DN}/user/update", b'{"t":21.5}')]
        assert modem.client.is_connected()
    finally:
        modem.stop()
        observer.stop()
    events = [e for e in log_of(registry) if e.device is not None and str(e.device) == f"{PK}/{DN}"]
    assert ("connect", True, 0) in [(e.event, e.accepted, e.code) for e in events]
    deadline = time.monotonic() + WAIT  # airlab's observer logs what the device published
    while not (records := registry.message_log((PK, DN))):
        assert time.monotonic() < deadline, "no message-log line from the observer"
        time.sleep(0.05)  # the observer thread logs on its own: polled, bounded
    (record,) = records
    assert (record.direction, record.topic, record.qos, record.payload, record.accepted) == (
        "up",
        f"/{PK}/{DN}/user/update",
        1,
        b'{"t":21.5}',
        True,
    )


@pytest.mark.slow
@node_timeout
def test_forged_login_gets_connack_refused_through_rabbitmq(
    rabbit: tuple[Node, Registry],
) -> None:
    node, registry = rabbit
    cred = direct_mqtt_credentials(PK, DN, "0" * 32)
    forged = Mqtt(cred.client_id, cred.username, cred.password)
    try:
        forged.connect(node.mqtt_port)
        assert forged.code == 4  # bad user name or password
    finally:
        forged.stop()
    last = [e for e in log_of(registry) if e.event == "refused"][-1]
    assert last.explanation is not None and last.explanation.rule == "signature"


@pytest.mark.slow
@node_timeout
def test_cross_device_subscription_closes_the_connection(
    rabbit: tuple[Node, Registry],
) -> None:
    node, registry = rabbit
    device = registry.get_device(PK, DN)
    assert device is not None
    cred = direct_mqtt_credentials(PK, DN, device.device_secret, client_id="snoop")
    snoop = Mqtt(cred.client_id, cred.username, cred.password)
    try:
        snoop.connect(node.mqtt_port)
        assert snoop.code == 0
        snoop.client.subscribe(f"/{PK}/otherdevice/user/get", qos=0)
        assert snoop.closed.wait(WAIT), "RabbitMQ kept the connection"
        assert not snoop.subacked.is_set()  # no SUBACK 0x80: the connection is closed
    finally:
        snoop.stop()
    refused = [e for e in log_of(registry) if e.event == "subscribe" and not e.accepted]
    assert refused and f"/{PK}/otherdevice/user/get" in (refused[-1].reason or "")


@pytest.mark.parametrize(
    "name",
    [
        "airlab.cloud.rabbitmq_auth",
        "airlab.cloud.rabbitmq_forms",
        "airlab.cloud.rabbitmq_config",
        "airlab.cloud.rabbitmq_observer",
        "airlab.cloud.rabbitmq_console",
        "airlab.cloud.rabbitmq_engine",
        "airlab.cli.cloud_rabbitmq",
        "airlab.cli.cloud_serve",
    ],
)
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.slow
@node_timeout
def test_cross_device_publish_closes_the_connection(rabbit: tuple[Node, Registry]) -> None:
    node, registry = rabbit
    device = registry.get_device(PK, DN)
    assert device is not None
    cred = direct_mqtt_credentials(PK, DN, device.device_secret, client_id="forger")
    forger = Mqtt(cred.client_id, cred.username, cred.password)
    try:
        forger.connect(node.mqtt_port)
        assert forger.code == 0
        forger.client.publish(f"/{PK}/otherdevice/user/update", b"x", qos=1)
        assert forger.closed.wait(WAIT), "RabbitMQ kept the connection"
    finally:
        forger.stop()
    refused = [e for e in log_of(registry) if e.event == "publish" and not e.accepted]
    assert refused and refused[-1].client_id == cred.client_id
    assert f"/{PK}/otherdevice/user/update" in (refused[-1].reason or "")


@pytest.mark.slow
@node_timeout
def test_the_simulated_module_logs_in_through_rabbitmq_by_its_endpoints(
    rabbit: tuple[Node, Registry],
) -> None:
    """The tutorial's AT commands on the simulated module, its Aliyun host name sent to
    the RabbitMQ node by the engine's endpoints (what ``--endpoints-file`` writes)."""
    from airlab.cloud.rabbitmq_config import rabbitmq_endpoints

    node, registry = rabbit
    device = registry.get_device(PK, DN)
    assert device is not None
    hosts = HostTable.from_endpoints(rabbitmq_endpoints("127.0.0.1", node.mqtt_port, {}))
    assert tutorial_at_session(hosts, device.device_secret, "via rabbitmq") == [
        ("OK", None), ("OK", "CONNECT OK"), ("OK", "CONNACK OK"), ("OK", "PUBACK"), ("OK", None)
    ]  # fmt: skip
    deadline = time.monotonic() + WAIT  # airlab's observer logs what the device published
    while not [r for r in registry.message_log((PK, DN)) if r.payload == b"via rabbitmq"]:
        assert time.monotonic() < deadline, "no message-log line from the observer"
        time.sleep(0.05)  # the observer thread logs on its own: polled, bounded


def tutorial_at_session(
    hosts: HostTable, secret: str, payload: str
) -> list[tuple[str, str | None]]:
    """The tutorial's AT commands on a simulated module whose host table is ``hosts``:
    log in with ``secret``, publish ``payload`` at QoS 1, disconnect; (final, URC) each."""
    import asyncio

    from airlab.fleet import FleetModem
    from airlab.mqtt.loopthread import LoopThread

    cred = direct_mqtt_credentials(PK, DN, secret)
    runner = LoopThread("test-rabbit-modem").start()

    async def session() -> list[tuple[str, str | None]]:
        modem = FleetModem(DN, runner, hosts=hosts)
        steps = [
            (f'AT+MCONFIG="{cred.client_id}","{cred.username}","{cred.password}"', ()),
            (f'AT+MIPSTART="{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883', ("CONNECT OK",)),
            ("AT+MCONNECT=1,120", ("CONNACK OK",)),
            (f'AT+MPUB="/{PK}/{DN}/user/update",1,0,"{payload}"', ("PUBACK",)),
            ("AT+MDISCONNECT", ()),
        ]
        got = []
        for line, urc in steps:
            ex = await modem.command(line, urc=urc, timeout=WAIT)
            got.append((ex.final, ex.urc))
        await asyncio.sleep(0)
        modem.close()
        return got

    try:
        return runner.run(session(), WAIT * 6)
    finally:
        runner.stop()
