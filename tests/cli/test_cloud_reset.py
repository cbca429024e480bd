"""``airlab cloud reset``: back to the tutorial's product and device, on the file or
through a running service (real processes, real MQTT clients)."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlab.aliyun import direct_mqtt_credentials
from airlab.cli import main
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.model import ConnectionEvent, MessageRecord
from airlab.cloud.registry import Registry
from tests.cloud.broker_helpers import Client

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME: the lab registry and the default endpoints file live under it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AIRLAB_CLOUD_ENDPOINTS", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal
    return tmp_path


def lab_db(home: Path) -> Path:
    return home / "data" / "airlab" / "lab.db"


def crowd(db: Path) -> None:
    """Products, devices, tokens, logs, and a table the reset has never heard of."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with Registry(db) as reg:
        reg.reset("tutorial")
        reg.add_product("a1Other0001", dynamic_registration=True)
        reg.add_device("a1Other0001", "dev1")
        reg.add_device(PK, "dev2")
        reg.issue_token((PK, DN))
        reg.mark_activated((PK, DN))
        reg.set_host_check(PK, True)
        reg.log_connection(ConnectionEvent(1.0, "mqtt", "connect", True))
        reg.log_message(MessageRecord(2.0, "up", f"/{PK}/{DN}/user/update", 0, b"x", True))
    with sqlite3.connect(db) as conn:  # a table added later (seats for classes ...)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS later_table (pk TEXT, dn TEXT, "
            "FOREIGN KEY (pk, dn) REFERENCES devices(product_key, device_name))"
        )
        conn.execute("INSERT INTO later_table VALUES (?, 'dev2')", (PK,))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["cloud", "reset", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_reset_the_file_back_to_the_fixture(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = home / "my.db"
    crowd(db)
    code, out, err = run(capsys, "--db", str(db), "--yes")
    assert code == 0, err
    assert out.strip() == (
        f"reset {db}: removed 2 products, 3 devices, 2 log rows; loaded the tutorial fixture again"
    )
    with Registry(db) as reg:
        assert [p.product_key for p in reg.products()] == [PK]
        (device,) = reg.devices()
        assert (device.device_name, device.device_secret) == (DN, TUTORIAL_DEVICE_SECRET)
        assert not device.activated  # the fixture's state, not the one before
        product = reg.get_product(PK)
        assert product is not None and product.dynamic_registration and not product.host_check
        counts = reg.table_counts()
    assert counts["tokens"] == counts["connection_log"] == counts["message_log"] == 0
    assert counts["later_table"] == 0  # emptied without being named
    assert counts["topic_classes"] == 3  # the fixture's default topic classes


def test_logs_only_keeps_the_products(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = home / "my.db"
    crowd(db)
    code, out, _ = run(capsys, "--db", str(db), "--yes", "--logs-only")
    assert code == 0 and out.strip() == f"reset the logs of {db}: removed 2 log rows"
    with Registry(db) as reg:
        counts = reg.table_counts()
        assert len(reg.products()) == 2 and len(reg.devices()) == 3
    assert counts["connection_log"] == counts["message_log"] == 0
    assert counts["tokens"] == counts["later_table"] == 1


def test_default_is_the_lab_registry(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crowd(lab_db(home))
    code, out, err = run(capsys, "--yes")
    assert code == 0
    assert f"registry {lab_db(home)}" in err and out.startswith(f"reset {lab_db(home)}: ")


def _answer_on_a_terminal(db: Path, answer: bytes) -> tuple[int, str, str]:
    """Run the reset with a pty as stdin; returns (exit code, prompt seen, stdout)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlab", "cloud", "reset", "--db", str(db)],
        stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    os.close(slave)
    try:
        assert proc.stderr is not None
        prompt = b""
        deadline = time.monotonic() + WAIT
        while not prompt.endswith(b"[y/N] "):
            ready, _, _ = select.select([proc.stderr], [], [], deadline - time.monotonic())
            assert ready, f"no prompt within {WAIT} s: {prompt!r}"
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, f"stderr closed before the prompt: {prompt!r}"
            prompt += chunk
        os.write(master, answer)
        out, rest = proc.communicate(timeout=WAIT)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, (prompt + rest).decode(), out.decode()


def test_it_asks_on_a_terminal(home: Path) -> None:
    db = home / "my.db"
    crowd(db)
    code, err, out = _answer_on_a_terminal(db, b"n\n")
    assert f"reset {db}: 2 products, 3 devices, 2 log rows will be removed [y/N] " in err
    assert code == 1 and "nothing reset" in err and out == ""
    with Registry(db) as reg:
        assert len(reg.devices()) == 3
    code, err, out = _answer_on_a_terminal(db, b"y\n")
    assert code == 0 and out.startswith(f"reset {db}: removed 2 products"), err
    with Registry(db) as reg:
        assert len(reg.devices()) == 1


def test_without_a_terminal_it_wants_yes(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = home / "my.db"
    crowd(db)
    code, out, err = run(capsys, "--db", str(db))
    assert code == 2 and out == ""
    assert err.strip() == (
        "airlab: error: --yes: not a terminal, so nobody can confirm: add --yes to reset"
    )


# -- through a running service ------------------------------------------------------------


@pytest.fixture
def service(home: Path) -> Iterator[dict]:
    """``airlab cloud serve`` as ``make lab`` starts it: the lab registry, the default
    endpoints file (under this HOME)."""
    ep_file = home / "cache" / "airlab" / "cloud-endpoints.json"
    log = home / "serve.out"
    db = lab_db(home)
    db.parent.mkdir(parents=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airlab", "cloud", "serve", "--fixture", "tutorial",
             "--db", str(db), "--endpoints-file", str(ep_file)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT
        while not ep_file.exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)  # polling a file another process writes: no event to wait on
        yield json.loads(ep_file.read_text())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(15) == 0, log.read_text()
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def client(ep: dict, dn: str, secret: str) -> Client:
    cred = direct_mqtt_credentials(PK, dn, secret)
    return Client(int(ep["mqtt"].rsplit(":", 1)[1]), client_id=cred.client_id,
                  username=cred.username, password=cred.password, keepalive=120)  # fmt: skip


def test_through_the_running_service(
    home: Path, service: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = (main(["cloud", "add-device", "--product-key", PK, "--device-name", "dev3"]),
                    *capsys.readouterr())  # fmt: skip
    assert code == 0
    secret = json.loads(out)["device_secret"]
    clients = [client(service, "dev3", secret), client(service, DN, TUTORIAL_DEVICE_SECRET)]
    try:
        assert [c.connect() for c in clients] == ["Success", "Success"]
        code, out, err = run(capsys, "--yes")  # the lab registry, which the service runs on
        assert code == 0, err
        how = f"through the running cloud emulator (pid {service['pid']})"
        assert out.startswith(f"reset {lab_db(home)} {how}: removed 1 product, 2 devices, ")
        assert out.rstrip().endswith("; loaded the tutorial fixture again")
        for c in clients:  # the service disconnected both
            assert c.closed.wait(WAIT), "still connected after the reset"
        with Registry(lab_db(home)) as reg:
            assert [d.device_name for d in reg.devices()] == [DN]
            assert reg.connection_log() == []  # the disconnects came before the wipe
        again = client(service, "dev3", secret)  # a removed device is refused now
        clients.append(again)
        assert again.connect() == "Not authorized"  # no such device (code 5)
        tutorial = client(service, DN, TUTORIAL_DEVICE_SECRET)
        clients.append(tutorial)
        assert tutorial.connect() == "Success"
        code, out, _ = run(capsys, "--yes", "--logs-only")
        assert code == 0 and "through the running cloud emulator" in out
    finally:
        for c in clients:
            c.stop()
