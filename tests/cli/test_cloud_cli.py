"""``airlab cloud ...``: serve as a real process, the console commands beside it."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from airlab.aliyun import direct_mqtt_credentials
from airlab.cli import main
from airlab.cloud.discovery import RemoteCloud, load_endpoints
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from tests.cloud.broker_helpers import Client

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["cloud", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], log: Path) -> dict:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.02)  # polling a file another process writes: no event to wait on
    raise AssertionError(f"no endpoints file within {START_TIMEOUT} s: {log.read_text()}")


def wait_until(check, what: str, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(0.02)  # another process's log: polled with a deadline
    raise AssertionError(f"timed out waiting for {what}")


def mqtt_client(ep: dict, dn: str, secret: str) -> Client:
    cred = direct_mqtt_credentials(PK, dn, secret)
    port = int(ep["mqtt"].rsplit(":", 1)[1])
    return Client(port, client_id=cred.client_id, username=cred.username,
                  password=cred.password, keepalive=120)  # fmt: skip


def test_serve_with_the_console_commands_then_ctrl_c(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, ep_file, out_file = tmp_path / "lab.db", tmp_path / "ep.json", tmp_path / "serve.out"
    with open(out_file, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airlab", "cloud", "serve", "--db", str(db),
             "--endpoints-file", str(ep_file), "--fixture", "tutorial"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    clients: list[Client] = []
    try:
        ep = wait_for_file(ep_file, proc, out_file)
        assert ep["pid"] == proc.pid and ep["db"] == str(db.resolve())
        assert ep["mqtt"].startswith("127.0.0.1:") and ep["http"].startswith("http://127.0.0.1:")
        printed = out_file.read_text()
        assert ep["mqtts"] in printed and ep["https"] in printed

        # a second service on the same endpoints file is refused
        code, _, err = run(capsys, "serve", "--endpoints-file", str(ep_file))
        assert code == 2 and "--endpoints-file" in err and str(proc.pid) in err

        # add-device on the same db while serving, then that device logs in
        code, out, _ = run(capsys, "add-device", "--db", str(db), "--product-key", PK,
                           "--device-name", "cli01")  # fmt: skip
        assert code == 0
        secret = json.loads(out)["device_secret"]
        assert len(secret) == 32
        c = mqtt_client(ep, "cli01", secret)
        clients.append(c)
        assert c.connect() == "Success"

        # publish through the running service reaches the subscribed device
        topic = f"/{PK}/cli01/user/get"
        assert c.subscribe(topic) == [1]
        code, out, _ = run(capsys, "publish", "--endpoints-file", str(ep_file), "--topic", topic,
                           "--payload", "hello cli", "--qos", "1")  # fmt: skip
        assert code == 0 and "delivered to 1 client" in out
        msg = c.get()
        assert (msg.topic, msg.payload) == (topic, b"hello cli")

        # a refused login shows in the log with its reason
        bad = mqtt_client(ep, DN, "0" * 32)
        clients.append(bad)
        assert bad.connect() == "Bad user name or password"
        remote = RemoteCloud(load_endpoints(ep_file))
        try:
            wait_until(lambda: None if remote.refusals().empty else True, "the refusal")
        finally:
            remote.close()
        code, out, _ = run(capsys, "log", "--db", str(db))
        assert code == 0
        assert "mqtt refused" in out and "why [signature]" in out
        assert f"sign_content: clientId{DN}deviceName{DN}productKey{PK}" in out
        assert "hello cli" in out
        code, out, _ = run(capsys, "log", "--db", str(db), "--csv")
        assert code == 0
        frame = pd.read_csv(io.StringIO(out))
        refused = frame[(frame["event"] == "refused")]
        assert list(refused["rule"]) == ["signature"] and list(refused["code"]) == [4]
        assert set(frame["kind"]) == {"connection", "message"}
        assert "sign_content" in refused["details"].iloc[0]
        code, out, _ = run(capsys, "log", "--db", str(db), "--device", f"{PK}/cli01")
        assert code == 0 and "why [signature]" not in out and "hello cli" in out
    finally:
        for c in clients:
            c.stop()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, out_file.read_text()
    assert not ep_file.exists() and not (tmp_path / "ep.ca.pem").exists()
    assert "stopped" in out_file.read_text()


def test_sigterm_stops_it_too(tmp_path: Path) -> None:
    ep_file, out_file = tmp_path / "ep.json", tmp_path / "serve.out"
    with open(out_file, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airlab", "cloud", "serve", "--endpoints-file", str(ep_file),
             "--fixture", "none"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_file(ep_file, proc, out_file)
        assert load_endpoints(ep_file)["db"] is None
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
    assert not ep_file.exists()


def test_registry_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "reg.db")
    code, out, _ = run(capsys, "add-product", "--db", db, "--product-key", "a1TestPk001",
                       "--dynamic-registration", "on")  # fmt: skip
    product = json.loads(out)
    assert code == 0 and product["dynamic_registration"] == "on"
    assert len(product["product_secret"]) == 16
    code, out, _ = run(capsys, "add-device", "--db", db, "--product-key", "a1TestPk001",
                       "--device-name", "dev1", "--device-secret", "abc123")  # fmt: skip
    assert code == 0 and json.loads(out)["device_secret"] == "abc123"
    code, out, _ = run(capsys, "log", "--db", db)
    assert code == 0 and "empty" in out
    code, _, err = run(capsys, "add-device", "--db", db, "--product-key", "a1TestPk001",
                       "--device-name", "dev1")  # fmt: skip
    assert code == 2 and err.startswith("airlab: error: --device-name:") and "exists" in err
    for hostile in ("${x}", "+", "a/b", "x1"):  # names outside the platform's rule
        code, _, err = run(capsys, "add-device", "--db", db, "--product-key", "a1TestPk001",
                           "--device-name", hostile)  # fmt: skip
        assert code == 2 and err.startswith("airlab: error: --device-name:")
        assert "not a valid DeviceName" in err


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["serve", "--http-port", "70000"], "--http-port"),
        (["serve", "--mqtt-port", "abc"], "--mqtt-port"),
        (["serve", "--fixture", "nope"], "--fixture"),
        (["serve", "--db", "/nonexistent/dir/x.db"], "--db"),
        (["publish", "--endpoints-file", "{tmp}/none.json", "--topic", "/a/b", "--payload", "x"],
         "--endpoints-file"),
        (["publish", "--endpoints-file", "{tmp}/stale.json", "--topic", "/a/b", "--payload", "x"],
         "--endpoints-file"),
        (["publish", "--topic", "/a/b", "--payload", "x", "--qos", "2"], "--qos"),
        (["log"], "--db"),
        (["log", "--db", "{tmp}/missing.db"], "--db"),
        (["add-device", "--db", "{tmp}/missing.db", "--product-key", "p", "--device-name", "d"],
         "--db"),
        (["add-product", "--db", "{tmp}/x.db", "--product-key", "pk1",
          "--dynamic-registration", "maybe"], "--dynamic-registration"),
        (["log", "--db", "{tmp}/x.db", "--device", "nodevice"], "--device"),
        (["log", "--db", "{tmp}/missing.db", "--follow"], "--db"),
        (["reset"], "--yes"),  # no terminal (pytest's stdin) and no --yes
        (["reset", "--yes"], "--db"),  # no lab registry in this HOME
        (["reset", "--db", "{tmp}/missing.db", "--yes"], "--db"),
        (["reset", "--db", "{tmp}/x.db", "--endpoints-file", "{tmp}/none.json", "--yes"],
         "--db"),
        (["reset", "--endpoints-file", "{tmp}/stale.json", "--yes"], "--endpoints-file"),
        (["product", "--product-key", "k1hipglLdjU"], "--db"),
    ],
)  # fmt: skip
def test_bad_input_gives_one_line_naming_the_option(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    option: str,
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # no lab registry there
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AIRLAB_CLOUD_ENDPOINTS", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal, even with -s
    from airlab.cloud.registry import Registry

    Registry(tmp_path / "x.db").close()
    stale = {k: "127.0.0.1:1" for k in ("mqtt", "mqtts")}
    stale.update(http="http://127.0.0.1:1", https="https://127.0.0.1:1", pid=os.getpid())
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    code, _, err = run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"airlab: error: {option}:"), err


@pytest.mark.parametrize(
    "name",
    [
        "airlab.cli.cloud",
        "airlab.cli.cloud_common",
        "airlab.cli.cloud_serve",
        "airlab.cli.cloud_console",
        "airlab.cli.cloud_log",
        "airlab.cli.cloud_reset",
    ],
)
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
