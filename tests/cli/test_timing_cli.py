"""`airlab timing`: readable table, CSV, formats, errors as one line."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from airlab.cli import main

ROOT = Path(__file__).resolve().parents[2]
PUBSUB = ROOT / "data" / "captures" / "seed_publish_subscribe.log"
TUTORIAL = ROOT / "data" / "tutorial"


def test_readable_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["timing", str(PUBSUB), "--date", "2024-07-22"]) == 0
    out = capsys.readouterr().out
    assert "echo→URC s" in out and "PUBACK" in out and "0.297" in out and "0.315" in out
    assert "4 commands: ok 4" in out


def test_csv_one_row_per_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["timing", str(TUTORIAL / "http_auth_then_mqtt.jsonl"), "--csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(df) == 13
    row = df[df.command == "AT+HTTPACTION=1"].iloc[0]
    assert row.echo_to_urc_s == 1.644 and row.http_status == 200
    assert df[df.command == "AT+MCONNECT=1,120"].iloc[0].echo_to_urc_s == 0.249


@pytest.mark.parametrize(
    "fmt,path", [("jsonl", "direct_mqtt.jsonl"), ("sscom", "direct_mqtt.sscom.log")]
)
def test_from_formats(fmt: str, path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["timing", str(TUTORIAL / path), "--from", fmt, "--csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df.kind.tolist() == ["mqtt_config", "mqtt_open", "mqtt_connect"]


def test_llcom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pubsub.txt"
    assert main(["capture", "convert", str(PUBSUB), str(out), "--to", "llcom"]) == 0
    capsys.readouterr()
    assert main(["timing", str(out), "--from", "llcom", "--csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df[df.kind == "subscribe"].iloc[0].echo_to_urc_s == 0.315


def test_out_file_and_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.parquet"
    assert main(["timing", str(PUBSUB), "--kind", "publish_qos1", "--out", str(out)]) == 0
    assert len(pd.read_parquet(out)) == 1


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["timing", str(tmp_path / "missing.log")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such file" in err
    assert main(["timing", str(PUBSUB), "--from", "word"]) == 2
    assert capsys.readouterr().err.startswith("airlab: error: --from:")
    assert main(["timing", str(PUBSUB), "--kind", "nope"]) == 2
    assert "--kind" in capsys.readouterr().err
    assert main(["timing", str(PUBSUB), "--out", str(tmp_path / "x.txt")]) == 2
    assert "--out" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly() -> None:
    """``airlab timing … | head -1``: no BrokenPipeError traceback, the SIGPIPE status.

    The reader is gone before the first write (a pipe whose read end is closed), so the
    write fails every time; a reader that leaves after one line lost the race whenever
    the whole table fitted in the pipe's buffer first (exit 0).
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    capture = (
        Path(__file__).resolve().parents[2] / "data" / "captures" / "seed_publish_subscribe.log"
    )
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "airlab", "timing", str(capture), "--date", "2024-07-22"],
            stdout=write_end, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err
