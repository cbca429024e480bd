"""Throughput of the simulated Air780EP on its three ports, against same-run baselines.

Measures, with a plain pyserial write-and-read loop (``write(b"AT\\r")`` then
``read(len(answer))``):

* ``airsim://`` in-process          (target >= 20 k round trips/s)
  baseline: ``loop://`` (pyserial's in-process loopback, same write/read calls)
* the pty bridge via ``serial.Serial(path)``   (target >= 10 k/s)
  baseline: a bare pty whose other side answers OK from a thread (no simulator)
* the TCP bridge via ``socket://127.0.0.1:P``
  baseline: a bare TCP server answering OK from a thread
* QoS1 ``AT+MPUB`` -> ``PUBACK`` on the ``instant`` profile against mosquitto
  baseline: paho-mqtt publishing QoS1 and waiting for each PUBACK, same broker

Run: ``.venv/bin/python benchmarks/bench_sim.py [--seconds 1.0]``
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

import serial

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airlab.sim.bridges import PtyBridge, TcpBridge
from airlab.sim.device import SimulatedModule
from airlab.sim.urlhandler import register_url_handler

COMMAND = b"AT\r"
ANSWER = b"AT\r\r\nOK\r\n"


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls of ``fn`` per second over about ``seconds`` (after a short warm-up)."""
    for _ in range(50):
        fn()
    n, t0 = 0, time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(100):
            fn()
        n += 100
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - t0)


def round_trip(
    port: serial.SerialBase, command: bytes = COMMAND, answer: bytes = ANSWER
) -> Callable[[], None]:
    size = len(answer)

    def once() -> None:
        port.write(command)
        got = port.read(size)
        if got != answer:
            raise RuntimeError(f"unexpected answer {got!r}")

    return once


# ---------------------------------------------------------------- baselines


def _answer_ok(data: bytes) -> bytes:
    return data + b"\r\nOK\r\n"


class _PtyEcho:
    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                os.write(self.master, _answer_ok(os.read(self.master, 65536)))

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        os.close(self.master)
        os.close(self.slave)


class _TcpEcho:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn, _ = self.server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while data := conn.recv(65536):
                conn.sendall(_answer_ok(data))

    def close(self) -> None:
        self.server.close()


def _loop_rate(seconds: float) -> float:
    port = serial.serial_for_url("loop://", timeout=1)
    try:
        return rate(round_trip(port, COMMAND, COMMAND), seconds)
    finally:
        port.close()


# ---------------------------------------------------------------- MQTT


def _mosquitto(directory: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = directory / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                proc.terminate()
                return None
            time.sleep(0.01)


def _mpub_rate(broker: int, seconds: float) -> float:
    with SimulatedModule(profile="instant") as module:

        def send(line: bytes, until: bytes) -> None:
            module.write(line)
            out = module.read_until(until, 5)
            if not out.endswith(until):
                raise RuntimeError(f"{line!r}: {out!r}")

        send(b'AT+MCONFIG="bench-sim","",""\r', b"OK\r\n")
        send(f'AT+MIPSTART="127.0.0.1",{broker}\r'.encode(), b"CONNECT OK\r\n")
        send(b"AT+MCONNECT=1,60\r", b"CONNACK OK\r\n")
        line = b'AT+MPUB="bench/sim",1,0,"x"\r'
        return rate(lambda: send(line, b"PUBACK\r\n"), seconds)


def _paho_rate(broker: int, seconds: float) -> float | None:
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        return None
    try:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-paho")
    except AttributeError:  # paho < 2
        client = mqtt.Client(client_id="bench-paho")
    client.connect("127.0.0.1", broker)
    client.loop_start()
    try:
        return rate(lambda: client.publish("bench/paho", b"x", qos=1).wait_for_publish(5), seconds)
    finally:
        client.loop_stop()
        client.disconnect()


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args(argv)
    seconds = args.seconds
    register_url_handler()
    rows: list[tuple[str, float, str, float, float | None]] = []

    def row(
        name: str, value: float, base_name: str, base: float | None, target: float | None
    ) -> None:
        ratio = f"{value / base:5.2f}x {base_name}" if base else "   - (no baseline)"
        mark = (
            ""
            if target is None
            else ("  ok" if value >= target else f"  BELOW target {target:,.0f}/s")
        )
        print(f"{name:<34} {value:>10,.0f}/s   {ratio}{mark}", flush=True)
        rows.append((name, value, base_name, base or 0.0, target))

    base_loop = _loop_rate(seconds)
    print(f"{'baseline pyserial loop://':<34} {base_loop:>10,.0f}/s", flush=True)
    port = serial.serial_for_url("airsim://?profile=instant", timeout=1)
    try:
        row(
            "airsim:// AT->OK (in-process)",
            rate(round_trip(port), seconds),
            "loop://",
            base_loop,
            20_000,
        )
    finally:
        port.close()

    echo = _PtyEcho()
    try:
        host = serial.Serial(echo.path, timeout=1)
        base_pty = rate(round_trip(host), seconds)
        host.close()
    finally:
        echo.close()
    print(f"{'baseline bare pty + thread':<34} {base_pty:>10,.0f}/s", flush=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        SimulatedModule() as module,
        PtyBridge(module, Path(tmp) / "sim.pty") as bridge,
    ):
        host = serial.Serial(bridge.path, timeout=1)
        try:
            row("pty bridge AT->OK", rate(round_trip(host), seconds), "bare pty", base_pty, 10_000)
        finally:
            host.close()

    tcp_echo = _TcpEcho()
    host = serial.serial_for_url(f"socket://127.0.0.1:{tcp_echo.port}", timeout=1)
    try:
        base_tcp = rate(round_trip(host), seconds)
    finally:
        host.close()
        tcp_echo.close()
    print(f"{'baseline bare TCP + thread':<34} {base_tcp:>10,.0f}/s", flush=True)
    with SimulatedModule() as module, TcpBridge(module) as bridge:
        host = serial.serial_for_url(bridge.url, timeout=1)
        try:
            row("TCP bridge AT->OK", rate(round_trip(host), seconds), "bare TCP", base_tcp, None)
        finally:
            host.close()

    with tempfile.TemporaryDirectory() as tmp:
        started = _mosquitto(Path(tmp))
        if started is None:
            print("mosquitto not installed: QoS1 MPUB->PUBACK not measured", flush=True)
        else:
            proc, broker = started
            try:
                base_paho = _paho_rate(broker, seconds)
                if base_paho:
                    print(
                        f"{'baseline paho QoS1 publish+PUBACK':<34} {base_paho:>10,.0f}/s",
                        flush=True,
                    )
                row(
                    "AT+MPUB QoS1 -> PUBACK (instant)",
                    _mpub_rate(broker, seconds),
                    "paho",
                    base_paho,
                    None,
                )
            finally:
                proc.terminate()
                proc.wait(5)
    below = [r for r in rows if r[4] is not None and r[1] < r[4]]
    return 1 if below else 0


if __name__ == "__main__":
    raise SystemExit(main())
