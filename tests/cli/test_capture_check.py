"""`airlab capture check FILE`: run as a command, it prints the tutorial's warnings found
in a capture of any supported format and exits 1 when there is any (0 when none, 2 on a
usage error)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airlab.at.formats import read_capture, write_capture

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "data" / "broken_captures"
SEEDS = ROOT / "data" / "captures"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airlab", "capture", "check", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_findings_exit_1() -> None:
    res = run(str(BROKEN / "log_d.log"))
    assert res.returncode == 1, res.stderr
    out = res.stdout
    assert "(sscom): 1 warning(s) of the tutorial" in out
    assert "line 16: [mconnect-late]" in out
    assert "tutorial: 注意,收到CONNECT OK后立刻发送指令建立会话" in out
    assert "fix:" in out


def test_llcom_capture() -> None:
    res = run(str(BROKEN / "log_e.txt"))
    assert res.returncode == 1 and "(llcom)" in res.stdout and "[qos1-in-flight]" in res.stdout


def test_clean_capture_exit_0() -> None:
    res = run(str(SEEDS / "seed_direct_mqtt.log"))
    assert res.returncode == 0, res.stderr
    assert "no warning of the tutorial found" in res.stdout


def test_any_supported_format(tmp_path: Path) -> None:
    out = tmp_path / "late.jsonl"
    write_capture(read_capture(BROKEN / "log_d.log"), out)
    res = run(str(out), "--no-fix")
    assert res.returncode == 1 and "(jsonl)" in res.stdout and "[mconnect-late]" in res.stdout
    assert "fix:" not in res.stdout


def test_window_option() -> None:
    # the tutorial's own direct capture sent MCONNECT 3.1 s after CONNECT OK
    res = run(str(SEEDS / "seed_direct_mqtt.log"), "--window", "2")
    assert res.returncode == 1 and "[mconnect-late]" in res.stdout


def test_no_secret_printed() -> None:
    res = run(str(SEEDS / "seed_http_auth_then_mqtt.log"))
    assert res.returncode == 1 and "[mqtt-host]" in res.stdout
    for secret in ("fef32adf6dad46c2c7cbf335d3a7b021", "137eb0759ca248b79383a60c0b0e0f80"):
        assert secret not in res.stdout + res.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("missing.log",), "no such capture file"),
        ((str(SEEDS / "seed_direct_mqtt.log"), "--from", "pdf"), "unknown format"),
        ((str(SEEDS / "seed_direct_mqtt.log"), "--window", "0"), "positive"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], needle: str) -> None:
    res = run(*args)
    assert res.returncode == 2 and needle in res.stderr
    assert res.stderr.count("\n") == 1  # one line, no traceback
