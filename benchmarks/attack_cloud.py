"""Attack the cloud emulator the way issue 8's audit did, and count what gets through.

Run on demand (bounded in count and time, 127.0.0.1 only); every figure must be 0:

* **forged logins accepted**: CONNECTs an attacker can build from what is public (the
  tutorial's ProductSecret, the device names, the log): random and wrong-key
  signatures, signatures for another client id, the product secret used as the device
  secret, every hex string the log shows after a refused login, and correctly signed
  CONNECTs with malformed ``securemode``/``signmethod`` values;
* **hostile devices created**: MQTT ``regnwl`` registrations of names such as ``${x}``,
  ``+``, ``#`` with the ProductSecret;
* **cross-device deliveries / publishes**: a device named ``${x}`` (written into the
  registry as an older airlab could have) subscribes to and publishes on other devices'
  topics while the console and the victims publish;
* **PUBACKed messages missing after kill -9**: ``airlab cloud serve`` is killed while
  3 clients publish QoS 1 with many messages in flight, ``--kill-runs`` times.

    $ .venv/bin/python benchmarks/attack_cloud.py [--forged 1100] [--kill-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from airlab.aliyun import SignMethod, direct_mqtt_credentials, hmac_hex  # noqa: E402
from airlab.aliyun.dynreg import mqtt_register_credentials  # noqa: E402
from airlab.cloud import CloudEmulator  # noqa: E402
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN  # noqa: E402
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as DS  # noqa: E402
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK  # noqa: E402
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_SECRET as PS  # noqa: E402
from airlab.cloud.fixtures import load_tutorial  # noqa: E402
from airlab.cloud.registry import Registry  # noqa: E402

WAIT = 5.0
HEX = re.compile(r"[0-9A-Fa-f]{16,}")


class Probe:
    """One paho client: CONNACK reason, messages received, SUBACK codes."""

    def __init__(self, port: int, client_id: str, username: str, password: str, tls=None):
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.c.username_pw_set(username, password)
        if tls is not None:
            self.c.tls_set_context(tls)
        self.connack = threading.Event()
        self.reason: object = None
        self.messages: list[tuple[str, bytes]] = []
        self.subacks: dict[int, list[int]] = {}
        self.cond = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.c.on_subscribe = self._on_subscribe
        self.port = port

    def _on_connect(self, client, userdata, flags, rc, props) -> None:  # type: ignore[no-untyped-def]
        self.reason = rc
        self.connack.set()

    def _on_subscribe(self, client, userdata, mid, codes, props) -> None:  # type: ignore[no-untyped-def]
        with self.cond:
            self.subacks[mid] = [c.value for c in codes]
            self.cond.notify_all()

    def connect(self) -> bool:
        self.c.connect("127.0.0.1", self.port, keepalive=120)
        self.c.loop_start()
        if not self.connack.wait(WAIT):
            return False
        return str(self.reason) == "Success"

    def subscribe(self, filters: list[str]) -> list[int]:
        _, mid = self.c.subscribe([(f, 1) for f in filters])
        with self.cond:
            self.cond.wait_for(lambda: mid in self.subacks, WAIT)
            return self.subacks.get(mid, [])

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def login(port: int, client_id: str, username: str, password: str, tls=None) -> bool:
    probe = Probe(port, client_id, username, password, tls)
    try:
        return probe.connect()
    finally:
        probe.stop()


def forged_logins(cloud: CloudEmulator, count: int, rng: random.Random) -> tuple[int, int]:
    port = int(cloud.endpoints["mqtt"].rsplit(":", 1)[1])
    cred = direct_mqtt_credentials(PK, DN, DS)
    content = f"clientId{DN}deviceName{DN}productKey{PK}"
    good = hmac_hex(DS, content, SignMethod.HMACMD5)
    attempts: list[tuple[str, str, str]] = []
    for mode in (" 3", "03", "+3", "３", "3 ", "3\t"):
        attempts.append((f"{DN}|securemode={mode},signmethod=hmacmd5|", cred.username, good))
    for method in ("hmacmd5 ", " hmacmd5", "hmacmd5\x00"):
        attempts.append((f"{DN}|securemode=3,signmethod={method}|", cred.username, good))
    for method in SignMethod:
        attempts.append((cred.client_id, cred.username, hmac_hex(PS, content, method)))
    other = direct_mqtt_credentials(PK, DN, DS, client_id="someone-else")
    attempts.append((cred.client_id, cred.username, other.password))
    attempts.append((cred.client_id, f"{PK}&{DN}", good))
    while len(attempts) < count:
        length = rng.choice((32, 40, 64))
        guess = "".join(rng.choice("0123456789abcdef") for _ in range(length))
        attempts.append((cred.client_id, cred.username, guess))
    accepted = sum(login(port, *a) for a in attempts[:count])
    # then every hex string the log shows, as a password
    cloud.flush()
    shown = cloud.explain_last_refusal() + cloud.refusals().to_json(date_format="iso")
    from_log = set(HEX.findall(shown))
    accepted += sum(login(port, cred.client_id, cred.username, h) for h in from_log)
    return accepted, count + len(from_log)


def hostile_registrations(cloud: CloudEmulator) -> int:
    port = int(cloud.endpoints["mqtts"].rsplit(":", 1)[1])
    created = 0
    for name in ("${x}", "${deviceName}", "+", "#", "a/b", "${productKey}"):
        cred = mqtt_register_credentials(PK, name, PS, random="r1", auth_type="regnwl")
        login(port, cred.client_id, cred.username, cred.password, cloud.ssl_client_context())
        created += cloud.registry.get_device(PK, name) is not None
    return created


def cross_device(cloud: CloudEmulator) -> tuple[int, int, int]:
    """(subscriptions granted on others' topics, deliveries of others' messages to the
    attacker, attacker publishes that reached a victim)."""
    port = int(cloud.endpoints["mqtt"].rsplit(":", 1)[1])
    registry = cloud.registry
    secret = "0123456789abcdef0123456789abcdef"
    victims = [f"victim{i:02d}" for i in range(3)]
    for v in victims:
        registry.add_device(PK, v, secret)
    with registry._lock:  # a row an older airlab could have written
        registry._conn.execute(
            "INSERT OR REPLACE INTO devices VALUES (?, ?, ?, 1, 1, 0, ?)",
            (PK, "${x}", secret, "legacy"),
        )
    probes = []
    for name in [*victims, "${x}"]:
        cred = direct_mqtt_credentials(PK, name, secret)
        probe = Probe(port, cred.client_id, cred.username, cred.password)
        assert probe.connect(), name
        probes.append(probe)
    *victim_probes, attacker = probes
    for v, probe in zip(victims, victim_probes, strict=True):
        probe.subscribe([f"/{PK}/{v}/user/get"])
    filters = [f"/{PK}/+/user/get", f"/{PK}/#", "#", f"/sys/{PK}/+/thing/service/+",
               f"/{PK}/${{deviceName}}/user/get", f"/{PK}/${{x}}/user/get"]  # fmt: skip
    filters += [f"/{PK}/{v}/user/{t}" for v in victims for t in ("get", "update")]
    filters += [f"/sys/{PK}/{v}/thing/service/property/set" for v in victims]
    granted = [f for f, code in zip(filters, attacker.subscribe(filters), strict=False)
               if code != 0x80 and "${x}" not in f]  # fmt: skip
    for v in victims:
        attacker.c.publish(f"/{PK}/{v}/user/get", b"forged", 1).wait_for_publish(WAIT)
        cloud.publish(f"/{PK}/{v}/user/get", f"console to {v}", 1)
    for v, probe in zip(victims, victim_probes, strict=True):
        deadline = time.monotonic() + WAIT
        while not any(p.startswith(b"console") for _, p in probe.messages):
            if time.monotonic() > deadline:
                raise SystemExit(f"{v} got no console message")
            time.sleep(0.01)  # a benchmark script: polled with a deadline
    leaked = sum(1 for t, _ in attacker.messages if "${x}" not in t)
    forged = sum(1 for probe in victim_probes for _, p in probe.messages if p == b"forged")
    for probe in probes:
        probe.stop()
    return len(granted), leaked, forged


def kill_run(folder: Path) -> tuple[int, int]:
    """(PUBACKed messages, of them missing from the log) for one kill -9."""
    db, ep_file = folder / "kill.db", folder / "kill.json"
    for old in folder.glob("kill.*"):
        old.unlink()
    with Registry(db) as setup:
        load_tutorial(setup)
        secrets = {f"kill{i:04d}": setup.add_device(PK, f"kill{i:04d}").device_secret
                   for i in range(3)}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlab", "cloud", "serve", "--db", str(db),
         "--endpoints-file", str(ep_file), "--no-throttle"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not ep_file.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("airlab cloud serve did not start")
        time.sleep(0.02)  # another process writes it: polled with a deadline
    port = int(json.loads(ep_file.read_text())["mqtt"].rsplit(":", 1)[1])
    acked: dict[str, set[int]] = {dn: set() for dn in secrets}
    sent: dict[str, dict[int, bytes]] = {dn: {} for dn in secrets}
    clients, stop = [], threading.Event()
    for dn, secret in secrets.items():
        cred = direct_mqtt_credentials(PK, dn, secret)
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cred.client_id)
        c.username_pw_set(cred.username, cred.password)
        c.max_inflight_messages_set(50)
        c.max_queued_messages_set(200)
        c.on_publish = lambda cl, u, mid, rc, p, dn=dn: acked[dn].add(mid)
        c.connect("127.0.0.1", port, keepalive=120)
        c.loop_start()
        clients.append((dn, c))

    def publish(dn: str, c: mqtt.Client) -> None:
        n = 0
        while not stop.is_set() and n < 60_000:
            payload = f"{dn}-{n}".encode()
            info = c.publish(f"/{PK}/{dn}/user/update", payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                stop.wait(0.001)
                continue
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return
            sent[dn][info.mid] = payload
            n += 1

    threads = [threading.Thread(target=publish, args=pair) for pair in clients]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while min(len(a) for a in acked.values()) < 3000 and time.monotonic() < deadline:
        time.sleep(0.01)  # counting acks of another process: polled with a deadline
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    for _, c in clients:
        c.loop_stop()
    payloads = {sent[dn][mid] for dn in secrets for mid in acked[dn] if mid in sent[dn]}
    with Registry(db) as after:
        logged = {m.payload for m in after.message_log() if m.direction == "up"}
    return len(payloads), len(payloads - logged)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forged", type=int, default=1100)
    parser.add_argument("--kill-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    if not 20 <= args.forged <= 5000 or not 0 <= args.kill_runs <= 10:
        parser.error("--forged must be 20..5000 and --kill-runs 0..10")
    rng = random.Random(args.seed)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="airlab-attack-") as tmp:
        folder = Path(tmp)
        with CloudEmulator(folder / "lab.db", fixture="tutorial") as cloud:
            cloud.registry.set_dynamic_registration(PK, True)
            accepted, tried = forged_logins(cloud, args.forged, rng)
            print(f"forged logins accepted:            {accepted} of {tried}")
            created = hostile_registrations(cloud)
            print(f"hostile devices created (regnwl):  {created} of 6")
            granted, leaked, forged = cross_device(cloud)
            print(f"subscriptions on others' topics:   {granted}")
            print(f"cross-device deliveries:           {leaked}")
            print(f"forged publishes delivered:        {forged}")
            failures += accepted + created + granted + leaked + forged
        for run in range(args.kill_runs):
            total, missing = kill_run(folder)
            print(f"kill -9 run {run + 1}: {missing} of {total} PUBACKed messages missing")
            failures += missing
    print("all zero" if failures == 0 else f"FAILED: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
