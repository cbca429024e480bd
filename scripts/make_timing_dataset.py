"""Regenerate ``data/simulated/``: simulated runs for the timing-analysis lesson.

Drives the simulated Air780EP (``airsim://`` pyserial port, latency profile
``tutorial`` or ``flaky``) against the local cloud emulator with real AT commands, the
way a host program would, and records every chunk of both directions in a JSONL
transcript (:class:`airlab.at.TranscriptWriter`).  Per profile it writes:

* ``connections_<profile>.jsonl``: ``--connections`` full direct-MQTT connections
  (``AT+MCONFIG`` → ``AT+SSLMIPSTART`` → ``CONNECT OK`` → ``AT+MCONNECT`` →
  ``CONNACK OK`` → ``AT+MSUB`` → ``SUBACK``, then ``AT+MDISCONNECT`` / ``AT+MIPCLOSE``);
* ``publishes_<profile>.jsonl``: one connection, then ``--publishes`` QoS1
  ``AT+MPUB`` each waiting for its ``PUBACK`` (reconnecting after ``CLOSED``);
* ``<name>_<profile>.csv``: the pairing table of each transcript
  (:func:`airlab.analysis.pair_commands`).

``--clock real`` (the default) waits the profile's delays for real, so 1,000 QoS1
publishes at ~0.3 s take about 5 minutes per profile. ``--clock simulated`` drives the
same firmware on simulated time (:class:`airlab.fleet.FleetModem` on a
:class:`airlab.fleet.clock.VirtualTimeLoop`): the delays are scheduled, not slept, the
network to the emulator stays real, and both profiles regenerate in well under a minute.
The transcripts' stamps are then simulated time. Same ``--seed``, same delays and faults
(``tests/fleet/test_timing_dataset.py`` compares the command/result/URC sequence of the
two clocks).

Usage::

    .venv/bin/python scripts/make_timing_dataset.py --seed 1 [--clock simulated] \\
        [--publishes 1000] [--connections 50] [--profiles tutorial,flaky] [--out data/simulated]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from pathlib import Path

_FINAL = re.compile(rb"\r\n(OK|ERROR|\+CME ERROR: ?\d+)\r\n")


class Host:
    """A minimal host program: one command at a time, everything recorded."""

    def __init__(self, port, writer) -> None:  # type: ignore[no-untyped-def]
        self.port = port
        self.writer = writer
        self.t0 = time.monotonic()

    def _stamp(self) -> tuple[float, float]:
        return time.time(), time.monotonic() - self.t0

    def _read(self, buf: bytearray) -> None:
        data = self.port.read(self.port.in_waiting or 1)
        if data:
            wall, mono = self._stamp()
            self.writer.add("received", data, wall, mono)
            buf += data

    def command(self, line: str, urc: str | None = None, timeout: float = 10.0) -> str:
        """Send ``line``; wait for its final result and, when ``urc`` is set and the
        result is OK, for that URC (or ``CLOSED`` / ``ERROR``).  Returns what ended it."""
        wall, mono = self._stamp()
        data = line.encode() + b"\r\n"
        self.writer.add("sent", data, wall, mono)
        self.port.write(data)
        buf = bytearray()
        deadline = time.monotonic() + timeout
        final = None
        while time.monotonic() < deadline:
            self._read(buf)
            if final is None:
                m = _FINAL.search(buf)
                if m is None:
                    continue
                final = m.group(1).decode()
                if urc is None or final != "OK":
                    return final
                rest_from = m.end()
            tail = bytes(buf[rest_from:])
            for word in (urc, "ALREADY CONNECT", "CLOSED", "CONNECT FAIL", "ERROR"):
                if f"\r\n{word}\r\n".encode() in tail or tail.startswith(f"{word}\r\n".encode()):
                    return word
        return "timeout"

    def drain(self, seconds: float) -> None:
        buf = bytearray()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._read(buf)


class SimulatedHost:
    """The same host on simulated time: a FleetModem on a VirtualTimeLoop, driven from
    this thread one command at a time; its transcript goes to ``writer`` at the end."""

    def __init__(self, profile: str, seed: int, endpoints, writer, runner) -> None:  # type: ignore[no-untyped-def]
        from airlab.fleet import FleetModem
        from airlab.sim.hosts import HostTable

        self.writer = writer
        self.runner = runner  # the emulator's broker serves on the same loop
        hosts = HostTable.from_endpoints(endpoints)
        # this thread writes the next command when the last one is done: the clock must
        # not run on in between, as nothing on the loop knows that more is coming
        self._between_commands = True
        self.runner.loop.watch(lambda: self._between_commands)  # type: ignore[union-attr]

        def make() -> FleetModem:
            # the broker answers on this loop: no MQTT answer needs the clock held
            return FleetModem(
                "dataset", self.runner, hosts=hosts, profile=profile, seed=seed, held_by=()
            )

        self.modem = self.runner.call(make)

    async def _on_loop(self, work):  # type: ignore[no-untyped-def]
        self._between_commands = False
        try:
            return await work
        finally:
            self._between_commands = True  # set on the loop: no jump before we return

    def command(self, line: str, urc: str | None = None, timeout: float = 10.0) -> str:
        work = self.modem.command(line, urc=(urc,) if urc else (), timeout=timeout)
        ex = self.runner.run(self._on_loop(work), None)
        if ex.final == "timeout":
            return "timeout"
        if not ex.ok or urc is None:
            return ex.final if ex.code is None else f"{ex.final}: {ex.code}"
        return ex.urc or "timeout"

    def drain(self, seconds: float) -> None:
        import asyncio

        self.runner.run(self._on_loop(asyncio.sleep(seconds)), None)

    def close(self) -> None:
        self._between_commands = False
        self.runner.call(self.modem.close)
        for record in self.modem.transcript:
            self.writer.add(record.direction.value, record.data, record.wall, record.mono)


def _simulated_loop():  # type: ignore[no-untyped-def]
    from airlab.fleet.clock import VirtualTimeLoop
    from airlab.mqtt.loopthread import LoopThread

    return LoopThread("timing-dataset", VirtualTimeLoop).start()


def _connect(host, creds, topic_get: str) -> bool:  # type: ignore[no-untyped-def]
    host.command(f'AT+MCONFIG="{creds.client_id}","{creds.username}","{creds.password}"')
    opened = host.command(f'AT+SSLMIPSTART="{creds.host}",{creds.port}', "CONNECT OK", 30)
    if opened != "CONNECT OK":
        host.command("AT+MIPCLOSE")
        return False
    if host.command("AT+MCONNECT=1,120", "CONNACK OK", 15) != "CONNACK OK":
        host.command("AT+MIPCLOSE")
        return False
    return host.command(f'AT+MSUB="{topic_get}",0', "SUBACK", 15) == "SUBACK"


def _disconnect(host) -> None:  # type: ignore[no-untyped-def]
    host.command("AT+MDISCONNECT")
    host.command("AT+MIPCLOSE")


def run(
    profile: str, seed: int, connections: int, publishes: int, out: Path, clock: str = "real"
) -> list[Path]:
    import serial

    from airlab.aliyun import direct_mqtt_credentials
    from airlab.analysis import pair_commands
    from airlab.at import Transcript, TranscriptWriter
    from airlab.cloud.fixtures import (
        TUTORIAL_DEVICE_NAME,
        TUTORIAL_DEVICE_SECRET,
        TUTORIAL_PRODUCT_KEY,
    )
    from airlab.cloud.service import CloudEmulator
    from airlab.sim.urlhandler import register_url_handler

    register_url_handler()
    creds = direct_mqtt_credentials(
        product_key=TUTORIAL_PRODUCT_KEY,
        device_name=TUTORIAL_DEVICE_NAME,
        device_secret=TUTORIAL_DEVICE_SECRET,
    )
    base = f"/{TUTORIAL_PRODUCT_KEY}/{TUTORIAL_DEVICE_NAME}/user"
    written: list[Path] = []
    with contextlib.ExitStack() as outer:
        tmp = outer.enter_context(tempfile.TemporaryDirectory())
        runner = None
        if clock == "simulated":  # the emulator's broker and rules on the modem's clock
            runner = _simulated_loop()
            outer.callback(runner.stop)
            from airlab.fleet.clock import wall_clock

            cloud = outer.enter_context(
                CloudEmulator(
                    fixture="tutorial", clock=wall_clock(runner.loop), broker_runner=runner
                )
            )
        else:
            cloud = outer.enter_context(CloudEmulator(fixture="tutorial"))
        endpoints = cloud.write_endpoints(Path(tmp) / "endpoints.json")
        for name, count in (("connections", connections), ("publishes", publishes)):
            if count <= 0:
                continue
            path = out / f"{name}_{profile}.jsonl"
            path.unlink(missing_ok=True)
            meta = {"profile": profile, "seed": seed, "clock": clock,
                    "generator": "scripts/make_timing_dataset.py"}  # fmt: skip
            url = f"airsim://?profile={profile}&seed={seed}&cloud={endpoints}"
            t0 = time.monotonic()
            with contextlib.ExitStack() as stack:
                w = stack.enter_context(TranscriptWriter(path, meta=meta))
                host: Host | SimulatedHost
                if clock == "simulated":
                    host = SimulatedHost(profile, seed, cloud.endpoints, w, runner)
                    stack.callback(host.close)
                else:
                    port = stack.enter_context(serial.serial_for_url(url, timeout=0.05))
                    host = Host(port, w)
                host.drain(0.2)
                host.command("AT")
                if name == "connections":
                    for _ in range(count):
                        _connect(host, creds, f"{base}/get")
                        _disconnect(host)  # also after a failed attempt: start clean
                else:
                    connected = _connect(host, creds, f"{base}/get")
                    misses = 0
                    for i in range(count):
                        if not connected:
                            _disconnect(host)
                            connected = _connect(host, creds, f"{base}/get")
                            continue
                        end = host.command(f'AT+MPUB="{base}/update",1,0,"hello {i}"', "PUBACK", 10)
                        misses = misses + 1 if end == "timeout" else 0
                        # a dead session (CLOSED, errors, or two PUBACKs lost in a row)
                        if end in ("CLOSED", "ERROR") or end.startswith("+CME") or misses >= 2:
                            connected, misses = False, 0
                    _disconnect(host)
            table = pair_commands(Transcript.load(path))
            csv = path.with_suffix(".csv")
            table.to_csv(csv, index=False)
            print(
                f"{path.name}: {len(table)} commands in {time.monotonic() - t0:.0f} s; "
                f"outcomes {table.outcome.value_counts().to_dict()}",
                flush=True,
            )
            written += [path, csv]
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--publishes", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--profiles", default="tutorial,flaky")
    ap.add_argument("--clock", choices=("real", "simulated"), default="real")
    ap.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "data" / "simulated")
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for profile in args.profiles.split(","):
        run(profile, args.seed, args.connections, args.publishes, out, args.clock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
