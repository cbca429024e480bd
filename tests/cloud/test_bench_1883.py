"""The tutorial's ``AT+SSLMIPSTART="<pk>.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883``
against a real ``airlab cloud serve --mqtt-port P`` process (issue 10, item 6).

The platform's 1883 takes TLS and plain TCP; so does the emulator's plain MQTT port (it
sniffs the first byte).  The tutorial's captures are replayed into the simulated module
through two routes, both byte for byte as captured:

* **by name, to the TLS port** (what the simulator does today: the host table sends a
  TLS link to the endpoints' ``mqtts`` and a plain one to ``mqtt``, whatever port the
  module asked for);
* **by name, to the port that takes both** (what a bench module reaches when the
  teacher's DNS name or port forward leads its ``…,1883`` to ``--mqtt-port``): a host
  table whose TLS and plain links both go to ``P``.

A third-party client (mosquitto_pub, plain and ``--cafile`` TLS) checks port P and the
TLS-only port, as docs/bench.md's checklist does.  When this runs as root with 1883
free and a non-loopback IPv4 address, the bench command itself is run —
``--mqtt-port 1883 --host 0.0.0.0`` — and the module dials that address by IP, as a
real module on the bench does.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import airlab  # also registers airsim://
from airlab.cloud import RemoteCloud, load_endpoints
from airlab.cloud.fixtures import (
    TUTORIAL_DEVICE_NAME,
    TUTORIAL_DEVICE_SECRET,
    TUTORIAL_PRODUCT_KEY,
)
from airlab.cloud.service import primary_address
from airlab.session import ModemSession, recipes
from airlab.session.replay import ReplayReport, replay, replay_session
from airlab.sim.hosts import HostTable

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "data" / "captures"
SEEDS = sorted(p.name for p in CAPTURES.glob("seed_*.log"))
PK, DN = TUTORIAL_PRODUCT_KEY, TUTORIAL_DEVICE_NAME
MQTT_HOST = f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com"
TOPIC = f"/{PK}/{DN}/user/update"


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    endpoints_file: Path
    endpoints: dict
    banner: str

    def port(self, key: str) -> int:
        return int(str(self.endpoints[key]).rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=30)


def _free(port: int = 0, host: str = "127.0.0.1") -> int | None:
    """``port`` if it can be bound on ``host`` now (0: a free one), else None.  Like the
    emulator's listeners, SO_REUSEADDR: a closed link's TIME_WAIT does not count."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return None
        return int(probe.getsockname()[1])


def serve(folder: Path, *options: str, busy_skips: bool = False) -> Served:
    """Run ``airlab cloud serve`` with ``options`` until its banner is printed.
    ``busy_skips``: a port in use skips the test (the well-known ports of the bench
    command may be taken by another program between the probe and the bind)."""
    folder.mkdir(parents=True, exist_ok=True)
    ep = folder / "endpoints.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlab", "cloud", "serve", "--endpoints-file", str(ep),
         "--db", str(folder / "lab.db"), "--fixture", "tutorial", *options],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    while True:  # the banner is printed once every listener is bound (EOF: it failed)
        line = proc.stdout.readline().decode()
        lines.append(line)
        if not line or line.startswith("Ctrl-C stops it."):
            break
    banner = "".join(lines)
    if not line:
        proc.wait(timeout=30)
        if "Address already in use" in banner and busy_skips:  # taken since the probe
            pytest.skip(f"a port was taken meanwhile: {banner.strip()}")
        pytest.fail(f"airlab cloud serve {' '.join(options)} did not start:\n{banner}")
    return Served(proc, ep, load_endpoints(ep), banner)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = _free()
    assert port is not None
    cloud = serve(tmp_path_factory.mktemp("bench"), "--mqtt-port", str(port))
    try:
        assert cloud.port("mqtt") == port, cloud.banner
        yield cloud
    finally:
        cloud.stop()


def _one_port_route(cloud: Served, folder: Path) -> Path:
    """An endpoints file whose TLS and plain MQTT links both reach ``--mqtt-port``."""
    data = dict(cloud.endpoints, mqtts=cloud.endpoints["mqtt"])
    path = folder / "one-port.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _replay(cloud: Served, endpoints: Path, capture: Path) -> ReplayReport:
    if capture.name == "seed_dynamic_register.log":
        # the tutorial registered a device that had been reset (ResetThing) first
        remote = RemoteCloud(cloud.endpoints)
        try:
            remote.reset_registration(PK, DN)
        finally:
            remote.close()
    session = replay_session(None, endpoints=endpoints)
    try:
        # timing "none": the direct capture's 3.1 s CONNECT OK -> MCONNECT gap is inside
        # the server's window either way (tests/session/test_replay.py waits one out)
        return replay(capture, session, timing="none")
    finally:
        session.close()


# -- the simulator's route today: a TLS link to the mqtts port ---------------------------


def test_the_simulator_sends_sslmipstart_1883_to_the_tls_port(served: Served) -> None:
    table = HostTable.from_endpoints(served.endpoints_file)
    assert table.resolve(MQTT_HOST, 1883, tls=True) == ("127.0.0.1", served.port("mqtts"))
    assert table.resolve(MQTT_HOST, 1883, tls=False) == ("127.0.0.1", served.port("mqtt"))


@pytest.mark.parametrize("name", SEEDS)
def test_captures_replay_by_name_through_the_tls_port(served: Served, name: str) -> None:
    report = _replay(served, served.endpoints_file, CAPTURES / name)
    assert report.ok, report.summary()


# -- the bench's route: the tutorial's 1883 reaches the port that takes both -------------


@pytest.mark.parametrize("name", SEEDS)
def test_captures_replay_by_name_through_the_plain_port(
    served: Served, name: str, tmp_path: Path
) -> None:
    route = _one_port_route(served, tmp_path)
    table = HostTable.from_endpoints(route)
    port = served.port("mqtt")
    assert table.resolve(MQTT_HOST, 1883, tls=True) == ("127.0.0.1", port)  # TLS to P
    report = _replay(served, route, CAPTURES / name)
    assert report.ok, report.summary()
    sent = " ".join(step.sent for step in report.steps)
    if "SSLMIPSTART" in (CAPTURES / name).read_text(encoding="utf-8"):
        assert '.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883' in sent, sent


# -- third-party clients: plain and TLS on P, TLS on the TLS-only port -------------------


def _mosquitto_pub(
    cloud: Served, port: int, message: str, *tls: str
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("mosquitto_pub")
    if exe is None:
        pytest.skip("mosquitto_pub is not installed (apt-get install mosquitto-clients)")
    creds = airlab.direct_mqtt_credentials(PK, DN, TUTORIAL_DEVICE_SECRET)
    host = cloud.endpoints["address"]
    return subprocess.run(
        [exe, "-h", host, "-p", str(port), *tls, "-i", creds.client_id, "-u", creds.username,
         "-P", creds.password, "-t", TOPIC, "-m", message, "-q", "1"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("listener", "tls"),
    [("mqtt", False), ("mqtt", True), ("mqtts", True)],
    ids=["plain-on-P", "tls-on-P", "tls-on-mqtts"],
)
def test_mosquitto_pub_as_the_bench_checklist(served: Served, listener: str, tls: bool) -> None:
    options = ("--cafile", str(served.endpoints["ca_pem"])) if tls else ()
    message = f"checklist {listener} {'tls' if tls else 'plain'}"
    done = _mosquitto_pub(served, served.port(listener), message, *options)
    assert done.returncode == 0, done.stdout + done.stderr  # CONNACK 0 and PUBACK
    remote = RemoteCloud(served.endpoints)
    try:
        rows = remote.message_log((PK, DN))
    finally:
        remote.close()
    assert message in set(rows.text), rows.tail()


# -- the bench command itself: --mqtt-port 1883 --host 0.0.0.0, dialled by IP -----------


def _rewrite_hosts(capture: Path, address: str, folder: Path) -> Path:
    """The capture as a bench module would have typed it: the Aliyun names replaced by
    the emulator's address (the operator's DNS does not know the emulator)."""
    import re

    text = capture.read_text(encoding="utf-8")
    text = re.sub(r"[A-Za-z0-9]+\.iot-as-mqtt\.cn-shanghai\.aliyuncs\.com", address, text)
    text = text.replace("iot-auth.cn-shanghai.aliyuncs.com", address)
    path = folder / capture.name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if os.geteuid() != 0:
        pytest.skip("ports below 1024 need root (or CAP_NET_BIND_SERVICE)")
    address = primary_address()
    if address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    if _free(1883, "0.0.0.0") is None:
        pytest.skip("port 1883 is taken on this machine")
    options = ["--mqtt-port", "1883", "--host", "0.0.0.0"]
    if _free(443, "0.0.0.0") is not None:
        options += ["--https-port", "443"]
    cloud = serve(tmp_path_factory.mktemp("bench1883"), *options, busy_skips=True)
    try:
        assert cloud.endpoints["mqtt"] == f"{address}:1883", cloud.banner
        assert "listening on 0.0.0.0" in cloud.banner
        yield cloud
    finally:
        cloud.stop()


@pytest.mark.parametrize("tls", [True, False], ids=["SSLMIPSTART", "MIPSTART"])
def test_a_module_dials_the_bench_by_ip_on_1883(bench: Served, tls: bool) -> None:
    address = bench.endpoints["address"]
    # no host table: only dotted addresses resolve, as for a module on the operator's DNS
    with ModemSession(f"airsim://bench?profile=instant&imei={DN}") as session:
        recipes.attach(session)
        login = recipes.direct_mqtt(
            session, product_key=PK, device_name=DN, device_secret=TUTORIAL_DEVICE_SECRET,
            host=address, port=1883, tls=tls,
        )  # fmt: skip
        start = login.step("SSLMIPSTART" if tls else "MIPSTART")
        assert f'"{address}",1883' in start.command and start.urc == "CONNECT OK"
        assert login.step("MCONNECT").urc == "CONNACK OK"
        recipes.disconnect(session)


# the publish/subscribe capture starts on an open session (no dial of its own)
@pytest.mark.parametrize("name", [n for n in SEEDS if n != "seed_publish_subscribe.log"])
def test_captures_replay_by_ip_against_the_bench_command(
    bench: Served, name: str, tmp_path: Path
) -> None:
    if name != "seed_direct_mqtt.log" and bench.port("https") != 443:
        pytest.skip("port 443 is taken here: the HTTPS captures dial https://<address>/…")
    address = bench.endpoints["address"]
    capture = _rewrite_hosts(CAPTURES / name, address, tmp_path)
    if name == "seed_dynamic_register.log":
        remote = RemoteCloud(bench.endpoints)
        try:
            remote.reset_registration(PK, DN)
        finally:
            remote.close()
    with ModemSession(f"airsim://bench?profile=instant&imei={DN}") as session:
        report = replay(capture, session, timing="none")
    assert report.ok, report.summary()
    if name == "seed_direct_mqtt.log":
        sent = " ".join(step.sent for step in report.steps)
        assert f'AT+SSLMIPSTART="{address}",1883' in sent
