"""Benchmark: QoS 1 publish rate through the cloud emulator vs a plain mosquitto.

50 paho clients (by default) each publish ``--messages`` QoS 1 messages, one at a time
(each waits for its PUBACK before the next), on their own ``/pk/dn/user/update``:

* through the emulator, run as ``airlab cloud serve`` in its own process, the clients
  logging in with real credentials (50 devices created in its registry first, signed
  with :func:`airlab.aliyun.direct_mqtt_credentials`); every message is checked against
  the topic rules and written to the message log;
* through ``mosquitto -c conf`` (``listener <free port> 127.0.0.1``, ``allow_anonymous
  true``) with the same load.

Prints both rates (messages/s), each broker's CPU time per message (user + system time
of its process during the load, from /proc), and their ratios (emulator / mosquitto:
rate target ≥ 0.5, CPU per message target ≤ 2). ``--repeat N`` runs the brokers in turn
N times and prints the medians: on a shared 2-core machine one run's CPU figure can be
off by half.  ``--compare-ref REF`` also runs the emulator of another git revision
(checked out in a temporary worktree) under the same load in the same run, to measure
what a change costs (e.g. committing each uplink's log record before its PUBACK).
Everything runs on 127.0.0.1 and is bounded in count and time.

    $ .venv/bin/python benchmarks/bench_cloud.py [--clients 50] [--messages 100] [--check]
    $ .venv/bin/python benchmarks/bench_cloud.py --compare-ref 57e8708 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
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

from airlab.aliyun import direct_mqtt_credentials  # noqa: E402
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK  # noqa: E402
from airlab.cloud.registry import Registry  # noqa: E402

TARGET = 0.5  # rate: emulator / mosquitto
CPU_TARGET = 2.0  # CPU per message: emulator / mosquitto
START_TIMEOUT = 30.0
RUN_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # a server that is starting: polled with a deadline
    raise SystemExit(f"{what} did not listen on {port} within {START_TIMEOUT} s")


def wait_file(path: Path, proc: subprocess.Popen[bytes]) -> dict:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"airlab cloud serve exited with {proc.returncode}")
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.05)  # another process writes it: polled with a deadline
    raise SystemExit(f"no endpoints file within {START_TIMEOUT} s")


Login = tuple[str, str, str, str]  # client id, username, password, topic


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Result = tuple[float, float]  # messages per second, broker CPU microseconds per message


def median_result(results: list[Result]) -> Result:
    """The run with the median CPU per message (its rate with it)."""
    ordered = sorted(results, key=lambda r: r[1])
    return ordered[len(ordered) // 2]


def run_load(port: int, logins: list[Login], messages: int, pid: int) -> Result:
    """Connect every client, then publish in parallel; returns messages per second and
    the broker's CPU time per message."""
    clients: list[mqtt.Client] = []
    for client_id, username, password, _ in logins:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        c.username_pw_set(username, password)
        connected = threading.Event()
        c.on_connect = lambda cl, ud, fl, rc, pr, ev=connected: (
            ev.set() if not rc.is_failure else None
        )
        c.connect("127.0.0.1", port, keepalive=120)
        c.loop_start()
        if not connected.wait(10):
            raise SystemExit(f"client {client_id} was not accepted on port {port}")
        clients.append(c)
    start = threading.Barrier(len(clients) + 1)
    errors: list[str] = []

    def publisher(c: mqtt.Client, topic: str) -> None:
        start.wait()
        payload = b'{"id":"%d","params":{"temperature":21.5}}'
        for i in range(messages):
            info = c.publish(topic, payload % i, qos=1)
            info.wait_for_publish(timeout=10)
            if not info.is_published():
                errors.append(f"{topic}: no PUBACK for message {i}")
                return

    threads = [
        threading.Thread(target=publisher, args=(c, login[3]), daemon=True)
        for c, login in zip(clients, logins, strict=True)
    ]
    for t in threads:
        t.start()
    cpu_before = cpu_seconds(pid)
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join(RUN_TIMEOUT)
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds(pid) - cpu_before
    for c in clients:
        c.disconnect()
        c.loop_stop()
    if errors or any(t.is_alive() for t in threads):
        raise SystemExit(f"run failed: {errors[:3] or 'timeout'}")
    total = len(clients) * messages
    return total / elapsed, cpu / total * 1e6


def bench_emulator(folder: Path, clients: int, messages: int, root: Path = ROOT) -> Result:
    db = folder / "bench.db"
    for old in folder.glob("bench.db*"):
        old.unlink()
    with Registry(db) as registry:
        from airlab.cloud.fixtures import load_tutorial

        load_tutorial(registry)
        secrets = {
            f"bench{i:03d}": registry.add_device(PK, f"bench{i:03d}").device_secret
            for i in range(clients)
        }
    ep_file = folder / "ep.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlab", "cloud", "serve", "--db", str(db),
         "--endpoints-file", str(ep_file), "--fixture", "tutorial",
         "--no-throttle"],  # same work as mosquitto: no uplink dropped by the 10/s limit
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    try:
        ep = wait_file(ep_file, proc)
        port = int(ep["mqtt"].rsplit(":", 1)[1])
        logins = []
        for dn, secret in secrets.items():
            cred = direct_mqtt_credentials(PK, dn, secret)
            logins.append((cred.client_id, cred.username, cred.password, f"/{PK}/{dn}/user/update"))
        result = run_load(port, logins, messages, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    with Registry(db) as registry:
        accepted = sum(1 for m in registry.message_log() if m.accepted and m.direction == "up")
    if accepted != clients * messages:
        raise SystemExit(
            f"the emulator logged {accepted} accepted uplinks, not {clients * messages}"
        )
    return result


def bench_mosquitto(folder: Path, clients: int, messages: int) -> Result:
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )
    if binary is None:
        raise SystemExit("mosquitto is not installed (Debian package mosquitto)")
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port, proc, "mosquitto")
        logins = [
            (f"bench{i:03d}", f"bench{i:03d}&{PK}", "x", f"/{PK}/bench{i:03d}/user/update")
            for i in range(clients)
        ]
        return run_load(port, logins, messages, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def worktree(ref: str, folder: Path) -> Path:
    """A checkout of ``ref`` of this repository in ``folder`` (removed by the caller)."""
    target = folder / "ref"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(target), ref],
        check=True,
        capture_output=True,
    )
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=100, help="QoS 1 messages per client")
    parser.add_argument("--check", action="store_true", help=f"exit 1 below ratio {TARGET}")
    parser.add_argument("--compare-ref", help="also run the emulator of this git revision")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each broker, interleaved; medians shown"
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 200 or not 1 <= args.messages <= 1000:
        parser.error("--clients must be 1..200 and --messages 1..1000")
    if not 1 <= args.repeat <= 20:
        parser.error("--repeat must be 1..20")
    with tempfile.TemporaryDirectory(prefix="airlab-bench-") as tmp:
        folder = Path(tmp)
        total = args.clients * args.messages
        print(f"{args.clients} clients x {args.messages} QoS 1 messages = {total} per broker")
        ref_root = worktree(args.compare_ref, folder) if args.compare_ref else None
        runs: dict[str, list[Result]] = {"mosquitto": [], "emulator": [], "ref": []}
        try:
            for i in range(args.repeat):  # interleaved: a busy spell hits every broker alike
                runs["mosquitto"].append(bench_mosquitto(folder, args.clients, args.messages))
                runs["emulator"].append(bench_emulator(folder, args.clients, args.messages))
                if ref_root is not None:
                    runs["ref"].append(
                        bench_emulator(folder, args.clients, args.messages, ref_root)
                    )
                if args.repeat > 1:
                    print(
                        f"  run {i + 1}: "
                        + "  ".join(f"{k} {v[-1][1]:.0f} µs" for k, v in runs.items() if v)
                    )
        finally:
            if ref_root is not None:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref_root)],
                    capture_output=True,
                )
        mosq, mosq_cpu = median_result(runs["mosquitto"])
        emu, emu_cpu = median_result(runs["emulator"])
        label = f"median of {args.repeat} runs" if args.repeat > 1 else "one run"
        print(f"({label})")
        print(f"mosquitto:          {mosq:8.0f} msg/s  {mosq_cpu:6.1f} µs CPU/msg")
        print(f"airlab cloud serve: {emu:8.0f} msg/s  {emu_cpu:6.1f} µs CPU/msg")
        if runs["ref"]:
            ref, ref_cpu = median_result(runs["ref"])
            print(f"airlab @ {args.compare_ref:<9}: {ref:8.0f} msg/s  {ref_cpu:6.1f} µs CPU/msg")
            print(
                f"this tree / {args.compare_ref}: rate {emu / ref:.2f}, "
                f"CPU per message {emu_cpu / ref_cpu:.2f}"
            )
    ratio = emu / mosq
    verdict = "target met" if ratio >= TARGET else "BELOW target"
    print(f"ratio emulator/mosquitto: {ratio:.2f} ({verdict}: >= {TARGET})")
    cpu_ratio = emu_cpu / mosq_cpu
    cpu_verdict = "target met" if cpu_ratio <= CPU_TARGET else "ABOVE target"
    print(f"CPU per message emulator/mosquitto: {cpu_ratio:.2f} ({cpu_verdict}: <= {CPU_TARGET})")
    return 1 if args.check and ratio < TARGET else 0


if __name__ == "__main__":
    raise SystemExit(main())
