"""Issue 8 items 4 and 12: the emulator answers only what its log already holds.

* A refusal (CONNACK 4, SUBACK 0x80, an HTTP error code) is committed before the device
  gets it: a lesson that asks ``explain_last_refusal()`` right after a failure — maybe
  from another process, reading the same registry — finds it.
* A QoS 1 uplink is PUBACKed only once its message-log record is committed: ``kill -9``
  of the emulator loses no acknowledged message.

The registry is read through a second connection (as another process would), which has
nothing of its own to flush, so only committed rows are visible.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from airlab.aliyun import direct_mqtt_credentials, http_auth_request
from airlab.cloud import CloudEmulator
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as DS
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.registry import Registry
from tests.cloud.broker_helpers import Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cloud(tmp_path: Path):
    with CloudEmulator(tmp_path / "lab.db", fixture="tutorial", uplink_limits=None) as emulator:
        yield emulator


@pytest.fixture
def reader(cloud: CloudEmulator):
    other = Registry(cloud.db)
    yield other
    other.close()


def device(cloud: CloudEmulator, secret: str = DS) -> Client:
    cred = direct_mqtt_credentials(PK, DN, secret)
    port = int(cloud.endpoints["mqtt"].rsplit(":", 1)[1])
    return Client(port, client_id=cred.client_id, username=cred.username,
                  password=cred.password, keepalive=120)  # fmt: skip


def refusals(reader: Registry) -> list:
    return [e for e in reader.connection_log() if not e.accepted]


def test_a_refused_login_is_logged_before_its_connack(cloud, reader) -> None:
    for attempt in range(1, 21):
        c = device(cloud, secret="0" * 32)
        try:
            assert c.connect() == "Bad user name or password"
            seen = [e for e in refusals(reader) if e.event == "refused"]
            assert len(seen) == attempt  # already committed when the CONNACK arrived
            assert seen[-1].explanation.rule == "signature"
        finally:
            c.stop()


def test_a_refused_subscription_is_logged_before_its_suback(cloud, reader) -> None:
    c = device(cloud)
    try:
        assert c.connect() == "Success"
        for attempt in range(1, 11):
            assert c.subscribe(f"/{PK}/someone{attempt:02d}/user/get") == [128]
            assert len([e for e in refusals(reader) if e.event == "subscribe"]) == attempt
    finally:
        c.stop()


def test_a_refused_http_auth_is_logged_before_the_reply(cloud, reader) -> None:
    port = int(cloud.endpoints["https"].rsplit(":", 1)[1])
    body = http_auth_request(PK, DN, "0" * 32).body.encode()
    for attempt in range(1, 11):
        conn = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=10, context=cloud.ssl_client_context()
        )
        conn.request("POST", "/auth/devicename", body=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert json.loads(conn.getresponse().read())["code"] == 401
        conn.close()
        assert len([e for e in refusals(reader) if e.protocol == "http"]) == attempt


def test_a_puback_follows_the_commit(cloud, reader) -> None:
    c = device(cloud)
    try:
        assert c.connect() == "Success"
        for i in range(30):
            topic = f"/{PK}/{DN}/user/update" if i % 3 else f"/{PK}/{DN}/user/get"  # some refused
            c.publish(topic, b"m%d" % i, 1)  # returns once PUBACKed
            logged = [m.payload for m in reader.message_log() if m.direction == "up"]
            assert logged[-1] == b"m%d" % i and len(logged) == i + 1
    finally:
        c.stop()


# -- kill -9 during QoS 1 traffic ------------------------------------------------------


def wait_for_endpoints(path: Path, proc: subprocess.Popen[bytes], log: Path) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.02)  # a file another process writes: polled with a deadline
    raise AssertionError(log.read_text())


class Publisher:
    """A paho client publishing numbered QoS 1 messages, many in flight; records which
    ones were PUBACKed."""

    def __init__(self, port: int, dn: str, secret: str) -> None:
        cred = direct_mqtt_credentials(PK, dn, secret)
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cred.client_id)
        self.c.username_pw_set(cred.username, cred.password)
        self.c.max_inflight_messages_set(50)
        self.c.max_queued_messages_set(200)
        self.acked_mids: set[int] = set()
        self.sent: dict[int, bytes] = {}
        self.lock = threading.Lock()
        self.enough = threading.Event()
        self.connected = threading.Event()
        self.c.on_connect = lambda *a: self.connected.set()
        self.c.on_publish = self._on_publish
        self.dn = dn
        self.c.connect("127.0.0.1", port, keepalive=120)
        self.c.loop_start()

    def _on_publish(self, client, userdata, mid, rc, props) -> None:  # type: ignore[no-untyped-def]
        with self.lock:  # never held while calling into paho (its lock is held here)
            self.acked_mids.add(mid)
            if len(self.acked_mids) >= 1500:
                self.enough.set()

    def run(self, stop: threading.Event) -> None:
        topic = f"/{PK}/{self.dn}/user/update"
        n = 0
        while not stop.is_set() and n < 60_000:  # packet ids must not wrap around
            payload = f"{self.dn}-{n}".encode()
            info = self.c.publish(topic, payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                stop.wait(0.001)  # paho's queue is full: let acks drain
                continue
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return
            self.sent[info.mid] = payload
            n += 1

    @property
    def acked(self) -> set[bytes]:
        with self.lock:
            return {self.sent[mid] for mid in self.acked_mids if mid in self.sent}


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_message(tmp_path: Path) -> None:
    db, ep_file, out = tmp_path / "lab.db", tmp_path / "ep.json", tmp_path / "serve.out"
    with Registry(db) as setup:
        from airlab.cloud.fixtures import load_tutorial

        load_tutorial(setup)
        secrets = {f"kill{i:04d}": setup.add_device(PK, f"kill{i:04d}").device_secret
                   for i in range(3)}  # fmt: skip
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airlab", "cloud", "serve", "--db", str(db),
             "--endpoints-file", str(ep_file), "--no-throttle"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    stop = threading.Event()
    publishers: list[Publisher] = []
    try:
        ep = wait_for_endpoints(ep_file, proc, out)
        port = int(ep["mqtt"].rsplit(":", 1)[1])
        publishers = [Publisher(port, dn, secret) for dn, secret in secrets.items()]
        assert all(p.connected.wait(10) for p in publishers)
        threads = [threading.Thread(target=p.run, args=(stop,)) for p in publishers]
        for t in threads:
            t.start()
        assert all(p.enough.wait(60) for p in publishers)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: messages in flight, batches open
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        stop.set()
        for p in publishers:
            p.c.loop_stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    with Registry(db) as after:
        logged = {m.payload for m in after.message_log() if m.direction == "up"}
    acked = set().union(*(p.acked for p in publishers))
    assert len(acked) >= 4500
    missing = acked - logged
    assert not missing, f"{len(missing)} PUBACKed messages are not in the log"
