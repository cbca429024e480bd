"""``airlab cloud log --follow``: a separate process prints new log lines as the running
emulator commits them (real processes, a real MQTT client; lines read with timeouts)."""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlab.aliyun import direct_mqtt_credentials
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from tests.cloud.broker_helpers import Client

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, Path]]:
    tmp = tmp_path_factory.mktemp("follow")
    db, ep_file, log = tmp / "lab.db", tmp / "ep.json", tmp / "serve.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airlab", "cloud", "serve", "--db", str(db),
             "--endpoints-file", str(ep_file)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT
        while not ep_file.exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)  # polling a file another process writes: no event to wait on
        yield json.loads(ep_file.read_text()), db
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0, log.read_text()


@pytest.fixture(scope="module")
def device(cloud: tuple[dict, Path]) -> Iterator[Client]:
    ep, _ = cloud
    cred = direct_mqtt_credentials(PK, DN, TUTORIAL_DEVICE_SECRET)
    c = Client(int(ep["mqtt"].rsplit(":", 1)[1]), client_id=cred.client_id,
               username=cred.username, password=cred.password, keepalive=120)  # fmt: skip
    assert c.connect() == "Success"
    yield c
    c.stop()


class Follower:
    """``airlab cloud log --follow`` as a child process; its lines through a queue."""

    def __init__(self, db: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airlab", "cloud", "log", "--db", str(db), "--follow", *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[tuple[float, str | None]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), line.rstrip("\n")))
        self.lines.put((time.monotonic(), None))

    def until(self, text: str, timeout: float = WAIT) -> tuple[float, str, list[str]]:
        """Read lines until one contains ``text``: (when it came, it, the lines before)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                when, line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} within {timeout} s: {seen}") from None
            assert line is not None, f"the follower ended: {seen} {self.stderr()}"
            if text in line:
                return when, line, seen
            seen.append(line)

    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_follow_prints_old_then_new_lines_masked_and_ctrl_c_ends_it(
    cloud: tuple[dict, Path], device: Client
) -> None:
    _, db = cloud
    f = Follower(db)
    try:
        f.until("time (UTC)")  # the header, once
        f.until("mqtt connect")  # the existing log: the device's login
        topic = f"/{PK}/{DN}/user/update"
        latencies = []
        for n in range(3):
            sent = time.monotonic()
            device.publish(topic, json.dumps({"n": n, "deviceSecret": SECRET}), qos=1)
            when, line, before = f.until(f'"n": {n}')
            latencies.append(when - sent)
            assert "msg up" in line and SECRET not in line and "*" in line  # masked
            assert not [b for b in before if "time (UTC)" in b]  # no second header
        print(f"publish -> follow line: {', '.join(f'{s * 1000:.0f} ms' for s in latencies)}")
        assert max(latencies) < 5.0
        if Path("/proc/self/stat").exists():  # idle: it checks a counter 10 times a second
            start, cpu = time.monotonic(), _cpu_seconds(f.proc.pid)
            time.sleep(1.0)  # a measuring window, not a wait for an event
            share = (_cpu_seconds(f.proc.pid) - cpu) / (time.monotonic() - start)
            print(f"idle CPU of the follower: {share:.2%}")
            assert share < 0.05
    finally:
        code = f.stop()
    assert code == 0  # Ctrl-C ends it with exit 0
    assert "Traceback" not in f.stderr()


def test_follow_csv_has_one_header(cloud: tuple[dict, Path], device: Client) -> None:
    _, db = cloud
    f = Follower(db, "--csv", "--device", f"{PK}/{DN}")
    try:
        _, header, _ = f.until("time,kind,protocol")
        topic = f"/{PK}/{DN}/user/update"
        device.publish(topic, json.dumps({"csv": 1, "deviceSecret": SECRET}), qos=1)
        _, first, before = f.until('""csv"": 1')
        device.publish(topic, json.dumps({"csv": 2}), qos=1)
        _, second, between = f.until('""csv"": 2')
    finally:
        assert f.stop() == 0
    rows = list(csv.DictReader(io.StringIO("\n".join([header, *before, first, *between, second]))))
    assert all(r["time"] != "time" for r in rows)  # the header is not repeated
    assert rows[-1]["kind"] == "message" and rows[-1]["payload"] == '{"csv": 2}'
    assert SECRET not in first and rows[-2]["device"] == f"{PK}/{DN}"


def test_follow_into_head_ends_quietly(cloud: tuple[dict, Path]) -> None:
    """``| head`` leaves after its lines; the follower notices without writing again
    (POLLERR on the pipe) and ends like SIGPIPE, without a traceback."""
    _, db = cloud
    err = db.with_name("follow.err")
    start = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", f'set -o pipefail; "{sys.executable}" -m airlab cloud log --db "{db}" '
         f'--follow 2>"{err}" | head -n 2'],
        cwd=ROOT, capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    print(f"follow | head -n 2 ended after {time.monotonic() - start:.2f} s")
    assert len(done.stdout.splitlines()) == 2
    assert done.returncode == 141, (done.returncode, err.read_text())  # 128 + SIGPIPE
    assert "Traceback" not in err.read_text()
