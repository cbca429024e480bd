"""ModemSession against raw pyserial and paho: issue 12's speed targets P1 and P2.

Measured side by side in one run, everything on 127.0.0.1:

* **P1** ``ModemSession.command("AT")`` per second on an ``airsim://?profile=instant``
  port, against a raw pyserial loop (``write(b"AT\\r\\n")`` then
  ``read_until(b"OK\\r\\n")``: what a loop that does not know the answer's length
  does) on the same port object before the session takes it.  Target: ratio >= 0.5.
  Also printed: the loop reading exactly ``len(answer)`` bytes (one ``read`` call), the
  floor of any Python code on this port.
* **P2** QoS1 publishes one at a time through the AT path (``session.publish(topic,
  payload, qos=1)``: ModemSession -> simulated module on the ``instant`` profile -> the
  cloud emulator, ``airlab cloud serve`` in its own process), against paho-mqtt
  publishing QoS1 one at a time (each waits for its PUBACK) to the same broker as the
  same device.  Also printed: this process's CPU time per message for both.  Target:
  ratio >= 0.5.
* **idle**: the CPU time of ``--idle-sessions`` open, idle sessions (default 50) over
  ``--idle-seconds`` (default 2 s), in ms of CPU per session per second (each session
  has a reader thread waiting on its port).

``--repeat N`` runs every measurement N times, interleaved, and prints the medians (the
machine is shared: one run can be off by a third).  ``--check`` exits 1 when P1 or P2 is
below its target.  Bounded: about ``5 * seconds + idle-seconds`` per repeat plus the
emulator's start (<= 30 s).

    $ .venv/bin/python benchmarks/bench_session.py [--seconds 1.0] [--repeat 3] [--check]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
import serial  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

import airlab  # noqa: E402, F401  (registers airsim://)
from airlab.aliyun import direct_mqtt_credentials  # noqa: E402
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN  # noqa: E402
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET as DS  # noqa: E402
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK  # noqa: E402
from airlab.session import ModemSession, recipes  # noqa: E402
from benchmarks.bench_cloud import wait_file  # noqa: E402
from benchmarks.bench_sim import rate  # noqa: E402

TARGET = 0.5  # P1 and P2: session / baseline
SIM_URL = "airsim://bench?profile=instant"
TOPIC = f"/{PK}/{DN}/user/update"
PAYLOAD = '{"id":"1","params":{"temperature":21.5}}'

Measure = tuple[float, float]  # calls per second, this process's CPU µs per call


def timed(fn: Callable[[], object], seconds: float) -> Measure:
    """``rate(fn, seconds)`` and this process's CPU time per call during it."""
    calls = 0

    def counted() -> None:
        nonlocal calls
        calls += 1
        fn()

    cpu0 = time.process_time()
    per_second = rate(counted, seconds)
    return per_second, (time.process_time() - cpu0) / calls * 1e6


# ---------------------------------------------------------------- P1


def bench_p1(seconds: float) -> tuple[Measure, Measure, Measure]:
    """(raw loop with read_until, raw loop with read(len), ModemSession.command) on one
    airsim:// port."""
    port = serial.serial_for_url(SIM_URL, timeout=1)
    try:
        port.write(b"AT\r\n")
        answer = port.read_until(b"OK\r\n")
        if not answer.endswith(b"OK\r\n"):
            raise SystemExit(f"airsim:// answered {answer!r} to AT")

        def raw() -> None:
            port.write(b"AT\r\n")
            if port.read_until(b"OK\r\n") != answer:
                raise SystemExit("unexpected answer on the raw loop")

        def raw_sized() -> None:
            port.write(b"AT\r\n")
            if port.read(len(answer)) != answer:
                raise SystemExit("unexpected answer on the raw loop")

        base = timed(raw, seconds)
        sized = timed(raw_sized, seconds)
        with ModemSession(port, close_port=False) as session:
            ours = timed(lambda: session.command("AT"), seconds)
        return base, sized, ours
    finally:
        port.close()


# ---------------------------------------------------------------- P2


class Emulator:
    """``airlab cloud serve`` (tutorial fixture, no throttle) in its own process."""

    def __init__(self, folder: Path) -> None:
        self.endpoints = folder / "ep.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airlab", "cloud", "serve", "--db", str(folder / "b.db"),
             "--endpoints-file", str(self.endpoints), "--fixture", "tutorial",
             "--no-throttle"],  # the 10 msg/s uplink limit would measure the throttle
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        ep = wait_file(self.endpoints, self.proc)
        self.mqtt_port = int(ep["mqtt"].rsplit(":", 1)[1])

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bench_paho(emulator: Emulator, seconds: float) -> Measure:
    creds = direct_mqtt_credentials(PK, DN, DS, host="127.0.0.1", port=emulator.mqtt_port)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=creds.client_id)
    client.username_pw_set(creds.username, creds.password)
    client.connect("127.0.0.1", emulator.mqtt_port, keepalive=120)
    client.loop_start()
    try:

        def publish() -> None:
            info = client.publish(TOPIC, PAYLOAD, qos=1)
            info.wait_for_publish(5)
            if not info.is_published():
                raise SystemExit("paho: no PUBACK within 5 s")

        return timed(publish, seconds)
    finally:
        client.disconnect()
        client.loop_stop()


def bench_at_path(emulator: Emulator, seconds: float) -> Measure:
    with ModemSession(f"{SIM_URL}&cloud={emulator.endpoints}") as session:
        recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS, tls=False)
        try:
            return timed(lambda: session.publish(TOPIC, PAYLOAD, qos=1), seconds)
        finally:
            recipes.disconnect(session)


# ---------------------------------------------------------------- idle


def bench_idle(sessions: int, seconds: float) -> float:
    """CPU ms per idle session per second."""
    opened = [ModemSession(SIM_URL) for _ in range(sessions)]
    try:
        for s in opened:
            s.command("AT")  # every reader has run at least once
        cpu0, t0 = time.process_time(), time.perf_counter()
        time.sleep(seconds)  # the measurement: idle time
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        return cpu * 1e3 / sessions / wall
    finally:
        for s in opened:
            s.close()


# ---------------------------------------------------------------- main


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ratio: float) -> str:
    return f"target met: >= {TARGET}" if ratio >= TARGET else f"BELOW target {TARGET}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per rate measurement")
    parser.add_argument("--repeat", type=int, default=1, help="runs, interleaved; medians shown")
    parser.add_argument("--idle-sessions", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    parser.add_argument("--check", action="store_true", help=f"exit 1 below ratio {TARGET}")
    args = parser.parse_args(argv)
    if not 0.1 <= args.seconds <= 30 or not 1 <= args.repeat <= 20:
        parser.error("--seconds must be 0.1..30 and --repeat 1..20")
    if not 1 <= args.idle_sessions <= 500 or not 0.1 <= args.idle_seconds <= 30:
        parser.error("--idle-sessions must be 1..500 and --idle-seconds 0.1..30")
    runs: dict[str, list[Measure]] = {"raw": [], "sized": [], "command": [], "paho": [], "at": []}
    idle: list[float] = []
    with tempfile.TemporaryDirectory(prefix="airlab-bench-session-") as tmp:
        emulator = Emulator(Path(tmp))
        try:
            for i in range(args.repeat):
                raw, sized, command = bench_p1(args.seconds)
                runs["raw"].append(raw)
                runs["sized"].append(sized)
                runs["command"].append(command)
                runs["paho"].append(bench_paho(emulator, args.seconds))
                runs["at"].append(bench_at_path(emulator, args.seconds))
                idle.append(bench_idle(args.idle_sessions, args.idle_seconds))
                if args.repeat > 1:
                    print(
                        f"  run {i + 1}: P1 {command[0] / raw[0]:.2f}  "
                        f"P2 {runs['at'][-1][0] / runs['paho'][-1][0]:.2f}  "
                        f"idle {idle[-1]:.3f} ms",
                        flush=True,
                    )
        finally:
            emulator.close()
    rate_of = {k: median([r for r, _ in v]) for k, v in runs.items()}
    cpu_of = {k: median([c for _, c in v]) for k, v in runs.items()}
    label = f"median of {args.repeat} runs" if args.repeat > 1 else "one run"
    print(f"({label}; rates per second, this process's CPU per call)")
    names = {
        "raw": "raw pyserial AT loop, read_until OK",
        "sized": "raw pyserial AT loop, read(len)",
        "command": 'ModemSession.command("AT")',
        "paho": "paho QoS1 publish, one at a time",
        "at": "session.publish QoS1 (AT path)",
    }
    for key, name in names.items():
        print(f"{name:<36} {rate_of[key]:>9,.0f}/s  {cpu_of[key]:7.1f} µs CPU")
    p1 = rate_of["command"] / rate_of["raw"]
    p2 = rate_of["at"] / rate_of["paho"]
    print(f"P1 command/raw:  {p1:.2f} ({verdict(p1)})")
    print(f"   command/raw read(len): {rate_of['command'] / rate_of['sized']:.2f} (no target)")
    print(f"P2 AT path/paho: {p2:.2f} ({verdict(p2)})")
    print(
        f"idle: {median(idle):.3f} ms CPU per session per second "
        f"({args.idle_sessions} sessions, {args.idle_seconds:g} s)"
    )
    return 1 if args.check and min(p1, p2) < TARGET else 0


if __name__ == "__main__":
    raise SystemExit(main())
