"""Benchmark P5: a fleet of simulated modems against N paho clients, same load, same broker.

For each fleet size N (default 10, 100, 500, 1000, 2000), in one run:

* ``airlab fleet``: N simulated Air780EP modems on one event loop, each logging in
  (``AT+MCONFIG`` / ``AT+SSLMIPSTART`` / ``AT+MCONNECT``) and publishing QoS 1 at
  ``--rate`` per second through ``AT+MPUB`` for ``--duration`` seconds, ``instant``
  profile; PUBACK latency = ``AT+MPUB`` written → ``PUBACK`` read;
* the baseline: N paho-mqtt clients doing the same (TLS, one QoS 1 message in flight
  each, ``--rate`` per second), all driven from one thread through paho's external-loop
  API (``socket()``, ``loop_read``/``loop_write``/``loop_misc``); PUBACK latency =
  ``publish()`` → ``on_publish``.

Both start their N clients over N/100 seconds (``airlab fleet run``'s default ramp: a
TLS login costs the emulator an RSA decryption) and talk to the same ``airlab cloud
serve`` (a process of its own, devices of their own, the platform's throttle on).
Printed per N: published/acked, p50 and p99 PUBACK (ms) of both, the CPU of the fleet's
process and of the emulator per second. Target (issue 12, P5): N = 1,000 at 1 Hz, p99
PUBACK ≤ 100 ms on this 2-core machine.

    $ .venv/bin/python benchmarks/bench_fleet.py [--sizes 10,100,1000] [--duration 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import ssl
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from bench_cloud import cpu_seconds  # noqa: E402  (benchmarks/: the script's folder)
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from airlab.aliyun import direct_mqtt_credentials  # noqa: E402
from airlab.fleet import Scenario, ServedCloud, run_fleet  # noqa: E402
from airlab.fleet.results import percentiles_ms  # noqa: E402

TARGET_N, TARGET_P99_MS = 1000, 100.0
RAMP_RATE = 100  # logins per second while the clients start (airlab fleet run's default)


def bench_fleet(n: int, rate: float, duration: float) -> dict[str, float | int | None]:
    samples: list[tuple[float, float, float]] = []  # (wall, own CPU, emulator CPU)
    with ServedCloud() as cloud:
        emu_pid = cloud.pid
        assert emu_pid is not None

        def sample(_progress: object) -> None:
            # run_fleet stops the emulator at the end: read its CPU while it runs
            with contextlib.suppress(OSError):
                samples.append((time.monotonic(), time.process_time(), cpu_seconds(emu_pid)))

        sample(None)
        result = run_fleet(
            Scenario(modems=n, rate=rate, duration=duration, ramp=n / RAMP_RATE),
            cloud=cloud,
            progress=sample,
        )
    (w0, own0, emu0), (w1, own1, emu1) = samples[0], samples[-1]
    s = result.summary
    return {
        "published": s["published"],
        "acked": s["acked"],
        "p50": s["puback_p50_ms"],
        "p99": s["puback_p99_ms"],
        "client_cpu": (own1 - own0) / (w1 - w0),
        "broker_cpu": (emu1 - emu0) / (w1 - w0),
    }


class _PahoFleet:
    """N paho clients on one selector, each publishing QoS 1 at ``rate`` with one
    message in flight."""

    def __init__(self, cloud: ServedCloud, n: int) -> None:
        host, port = cloud.endpoints["mqtts"].rsplit(":", 1)
        self.host, self.port = host.strip("[]"), int(port)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.clients: list[mqtt.Client] = []
        self.topics: list[str] = []
        self.sent: dict[int, float] = {}  # client index -> publish time of the one in flight
        self.latencies: list[float] = []
        self.acked = 0
        product = "b" + os.urandom(5).hex()
        cloud.add_product(product)
        for i in range(n):
            name = f"paho{i:05d}"
            secret = cloud.add_device(product, name)
            cred = direct_mqtt_credentials(product, name, secret)
            c = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=cred.client_id, protocol=mqtt.MQTTv311
            )
            c.username_pw_set(cred.username, cred.password)
            c.tls_set_context(self.ctx)
            c.on_publish = self._acked(i)
            self.clients.append(c)
            self.topics.append(f"/{product}/{name}/user/update")

    def _acked(self, i: int):  # type: ignore[no-untyped-def]
        def on_publish(client, userdata, mid, reason_code, properties):  # type: ignore[no-untyped-def]
            t = self.sent.pop(i, None)
            if t is not None:
                self.latencies.append(time.monotonic() - t)
                self.acked += 1

        return on_publish

    def run(self, rate: float, duration: float, ramp: float) -> int:
        sel = selectors.DefaultSelector()
        n = len(self.clients)
        start = time.monotonic()
        connect_at = [start + ramp * i / max(n - 1, 1) for i in range(n)]
        connected = [False] * n
        next_pub = [0.0] * n
        left = [round(rate * duration)] * n
        published = 0
        while True:
            now = time.monotonic()
            for i, c in enumerate(self.clients):
                if not connected[i] and now >= connect_at[i]:
                    c.connect(self.host, self.port, keepalive=120)
                    sel.register(c.socket(), selectors.EVENT_READ, i)
                    connected[i] = True
                    next_pub[i] = now + 0.5  # CONNACK first
                elif connected[i] and left[i] and i not in self.sent and now >= next_pub[i]:
                    self.sent[i] = now
                    c.publish(self.topics[i], b'{"id":"%d"}' % left[i], qos=1)
                    published += 1
                    left[i] -= 1
                    next_pub[i] += 1.0 / rate
                if connected[i] and c.want_write():
                    c.loop_write()
            if all(connected) and not any(left) and not self.sent:
                break
            if now - start > ramp + duration + 30:
                break
            for key, _ in sel.select(timeout=0.002):
                self.clients[key.data].loop_read()
            for i, c in enumerate(self.clients):
                if connected[i]:
                    c.loop_misc()
        for c in self.clients:
            c.disconnect()
        return published


def bench_paho(n: int, rate: float, duration: float) -> dict[str, float | int | None]:
    with ServedCloud() as cloud:
        emu_pid = cloud.pid
        assert emu_pid is not None
        fleet = _PahoFleet(cloud, n)
        emu0, own0, t0 = cpu_seconds(emu_pid), time.process_time(), time.monotonic()
        published = fleet.run(rate, duration, n / RAMP_RATE)
        wall = time.monotonic() - t0
        own, emu = time.process_time() - own0, cpu_seconds(emu_pid) - emu0
    q = percentiles_ms(fleet.latencies)
    return {
        "published": published,
        "acked": fleet.acked,
        "p50": q["p50"],
        "p99": q["p99"],
        "client_cpu": own / wall,
        "broker_cpu": emu / wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,500,1000,2000")
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--no-paho", action="store_true", help="the fleet only")
    parser.add_argument("--check", action="store_true", help="exit 1 when P5 is missed")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    if not all(1 <= n <= 5000 for n in sizes) or not 1 <= args.duration <= 600:
        parser.error("--sizes: 1..5000 each; --duration: 1..600 s")
    print(f"QoS 1 at {args.rate}/s per client for {args.duration:g} s, instant profile, TLS")
    head = f"{'N':>5}  {'who':<6} {'published':>9} {'acked':>7} {'p50 ms':>7} {'p99 ms':>7}"
    print(head + f" {'client CPU':>10} {'broker CPU':>10}")
    missed = False
    for n in sizes:
        rows = [("fleet", bench_fleet(n, args.rate, args.duration))]
        if not args.no_paho:
            rows.append(("paho", bench_paho(n, args.rate, args.duration)))
        for who, r in rows:
            print(
                f"{n:>5}  {who:<6} {r['published']:>9} {r['acked']:>7} {r['p50']!s:>7} "
                f"{r['p99']!s:>7} {r['client_cpu']:>10.2f} {r['broker_cpu']:>10.2f}"
            )
        fleet = rows[0][1]
        if n == TARGET_N:
            p99 = fleet["p99"]
            ok = p99 is not None and p99 <= TARGET_P99_MS and fleet["acked"] == fleet["published"]
            missed = missed or not ok
            print(f"P5 (N={TARGET_N}: p99 <= {TARGET_P99_MS:g} ms): {'met' if ok else 'MISSED'}")
    print("CPU: cores used on average (process CPU time / wall time)")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
