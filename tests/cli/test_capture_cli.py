"""`airlab capture convert`: every from/to pair, errors as one line, and one subprocess run."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from airlab.at.formats import read_capture
from airlab.cli import main
from airlab.cli.capture import convert, main_convert

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "data" / "captures"
SEED = CAPTURES / "seed_http_auth_then_mqtt.log"
DOCS = CAPTURES / "luat_docs"

SOURCES = {
    "sscom": SEED,
    "console": DOCS / "T06_air780ep_v1007_tcp_errors_cipstart_cipsend.txt",
    "bytes": DOCS / "T11_air724ug_raw_bytes_echo_framing.txt",
}
EXTS = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet", "sscom": "log", "llcom": "txt"}


@pytest.mark.parametrize("src_fmt", sorted(SOURCES))
@pytest.mark.parametrize("to_fmt", sorted(EXTS))
def test_convert_every_pair(tmp_path: Path, src_fmt: str, to_fmt: str) -> None:
    src = SOURCES[src_fmt]
    out = tmp_path / f"out.{EXTS[to_fmt]}"
    old_umask = os.umask(0o022)
    try:
        rc = main_convert([str(src), str(out), "--from", src_fmt, "--to", to_fmt])
    finally:
        os.umask(old_umask)
    assert rc == 0 and out.exists()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it may hold signatures and tokens
    before = read_capture(src)
    after = read_capture(out)

    def rows(t, lossy: bool) -> list:
        # sscom shows lone CR / LF as line breaks: compare without CRs after that trip
        return [(r.direction, r.data.replace(b"\r", b"") if lossy else r.data) for r in t]

    lossy = to_fmt == "sscom" and src_fmt != "sscom"
    assert rows(after.data_records(), lossy) == rows(before.data_records(), lossy)


@pytest.mark.parametrize("mid", ["jsonl", "csv", "parquet", "llcom"])
def test_convert_from_each_written_format(tmp_path: Path, mid: str) -> None:
    mid_path = tmp_path / f"mid.{EXTS[mid]}"
    convert(str(SEED), str(mid_path), to_fmt=mid, date="2024-07-22")
    out = tmp_path / "back.jsonl"
    summary = convert(str(mid_path), str(out), from_fmt=mid)  # guessed --to from .jsonl
    assert "31 records, 0 unparsed" in summary
    assert read_capture(out).sent() == read_capture(SEED).sent()


def test_formats_guessed_and_events_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["capture", "convert", str(SEED), str(tmp_path / "a.jsonl")]) == 0
    assert "(sscom) ->" in capsys.readouterr().out
    assert main_convert([str(SEED), str(tmp_path / "ev.csv"), "--level", "events"]) == 0
    assert "+HTTPACTION" in (tmp_path / "ev.csv").read_text()


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (["{seed}", "{out}", "--from", "xml"], "--from: unknown format 'xml'", 2),
        (["{seed}", "{out}", "--to", "pdf"], "--to: unknown format 'pdf'", 2),
        (["{missing}", "{out}"], "no such file", 1),
        (["{seed}", "{out}", "--date", "22/08/2024"], "--date: expected YYYY-MM-DD", 2),
        (["{seed}", "{out}", "--level", "bytes"], "--level:", 2),
        (["{seed}", "{seed}"], "--out: output file must differ", 2),
        (["{seed}", "{nodir}"], "does not exist", 1),
    ],
)
def test_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str, code: int
) -> None:
    values = {
        "seed": str(SEED),
        "out": str(tmp_path / "o.jsonl"),
        "missing": str(tmp_path / "missing.log"),
        "nodir": str(tmp_path / "no" / "dir" / "o.jsonl"),
    }
    rc = main_convert([a.format(**values) for a in args])
    err = capsys.readouterr().err
    assert rc == code
    assert needle in err and err.count("\n") == 1 and err.startswith("airlab: error:")


def test_subprocess_convert(tmp_path: Path) -> None:
    out = tmp_path / "seed.csv"
    ok = subprocess.run(
        [sys.executable, "-m", "airlab", "capture", "convert", str(SEED), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert out.read_text().startswith("time,mono,direction")
    bad = subprocess.run(
        [sys.executable, "-m", "airlab", "capture", "convert", "nope.log", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert bad.returncode == 1 and bad.stderr.strip() == "airlab: error: nope.log: no such file"
