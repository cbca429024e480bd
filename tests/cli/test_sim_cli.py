"""``airlab sim serve``: a real process serving the simulated module on TCP and on a pty."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import serial

from airlab.cli import build_parser, main


@pytest.fixture
def endpoints(tmp_path: Path) -> Path:
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"http": "http://127.0.0.1:1", "mqtt": "127.0.0.1:2"}))
    return path


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlab", "sim", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the server says where it listens
    if not line:
        proc.wait(10)
        raise AssertionError(f"no banner; stderr: {proc.stderr.read() if proc.stderr else ''}")
    return proc, line


def _at(port: serial.SerialBase) -> bytes:
    port.write(b"AT\r")
    return port.read(9)


def test_serve_tcp_and_stop_on_sigterm(endpoints: Path) -> None:
    proc, banner = _start("--cloud", str(endpoints), "--tcp", "0", "--profile", "tutorial",
                          "--seed", "3", "--imei", "868488076500001")  # fmt: skip
    try:
        match = re.search(r"socket://127\.0\.0\.1:(\d+)", banner)
        assert match and "profile tutorial, seed 3" in banner
        port = serial.serial_for_url(match.group(0), timeout=5)
        try:
            assert _at(port) == b"AT\r\r\nOK\r\n"
            port.write(b"AT+CGSN\r")
            out = port.read_until(b"OK\r\n")
            assert b"868488076500001" in out
        finally:
            port.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert "stopped" in (proc.stderr.read() if proc.stderr else "")


def test_serve_pty_and_stop_on_ctrl_c(endpoints: Path, tmp_path: Path) -> None:
    link = tmp_path / "sim.pty"
    proc, banner = _start("--cloud", str(endpoints), "--pty", str(link))
    try:
        assert str(link) in banner and "/dev/pts/" in banner
        port = serial.Serial(str(link), timeout=5)
        try:
            assert _at(port) == b"AT\r\r\nOK\r\n"
        finally:
            port.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    assert not os.path.lexists(link)


def test_serve_in_process(endpoints: Path) -> None:
    from airlab.cli.sim import serve

    args = build_parser().parse_args(["sim", "serve", "--cloud", str(endpoints), "--tcp", "0"])
    ready, stop = threading.Event(), threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(serve(args, ready=ready, stop=stop)))
    thread.start()
    try:
        assert ready.wait(10)
    finally:
        stop.set()
        thread.join(10)
    assert result == [0]


def test_usage_errors(endpoints: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "serve", "--cloud", str(tmp_path / "missing.json"), "--tcp", "0"]) == 2
    assert "--cloud" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sim", "serve", "--cloud", str(endpoints)])  # neither --tcp nor --pty
    with pytest.raises(SystemExit):
        main(["sim", "serve", "--cloud", str(endpoints), "--tcp", "0", "--pty", "/tmp/x"])
    with pytest.raises(SystemExit):
        main(["sim", "serve", "--cloud", str(endpoints), "--tcp", "0", "--profile", "slow"])
