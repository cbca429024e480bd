"""sscom import / export, the fast DataFrame path, and the benchmark's generator."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

from airlab.at.events import Direction
from airlab.at.formats import read_capture, read_sscom_dataframe, write_capture
from airlab.at.formats.sscom import format_sscom, parse_sscom, read_sscom

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "data" / "captures"
DOCS = CAPTURES / "luat_docs"
SSCOM_FILES = sorted(CAPTURES.glob("seed_*.log")) + sorted(DOCS.glob("T0[1-5]_*.txt"))

# (records, sent records) per capture
EXPECTED_COUNTS = {
    "seed_direct_mqtt.log": (8, 3),
    "seed_dynamic_register.log": (23, 11),
    "seed_http_auth_then_mqtt.log": (31, 14),
    "seed_publish_subscribe.log": (10, 4),
    "T01": (72, 32),
    "T02": (14, 7),
    "T03": (35, 12),
    "T04": (36, 13),
    "T05": (52, 22),
}


def _key(path: Path) -> str:
    return path.name if path.name.startswith("seed") else path.name[:3]


@pytest.mark.parametrize("path", SSCOM_FILES, ids=lambda p: p.name[:24])
def test_every_sscom_capture_imports(path: Path) -> None:
    t = read_capture(path)
    assert t.format == "sscom"
    sent = sum(r.direction is Direction.SENT for r in t)
    assert (len(t), sent) == EXPECTED_COUNTS[_key(path)]
    assert t.unparsed() == []
    assert all(not math.isnan(r.wall) for r in t)
    assert t[0].mono == 0.0
    # fast DataFrame path == Transcript path
    pd.testing.assert_frame_equal(read_sscom_dataframe(path), t.to_dataframe("records"))


def _find(t, needle: bytes):
    return next(r for r in t if needle in r.data)


def test_seed_http_auth_bytes() -> None:
    t = read_sscom(CAPTURES / "seed_http_auth_then_mqtt.log", date="2024-07-22")
    assert t[0].data == b"AT+CGATT?\r\n" and t[0].direction is Direction.SENT
    assert t[1].data == b"AT+CGATT?\r\n\r\n+CGATT: 1\r\n\r\nOK\r\n"
    read = _find(t, b"+HTTPREAD: 124")
    head = b"AT+HTTPREAD\r\n\r\n+HTTPREAD: 124\r\n"
    assert read.data.startswith(head) and read.data.endswith(b"}\r\nOK\r\n")
    assert len(read.data) == len(head) + 124 + len(b"\r\nOK\r\n")
    urc = _find(t, b"+HTTPACTION: 1,200")
    assert urc.data == b"\r\n+HTTPACTION: 1,200,124\r\n"
    assert urc.wall == pd.Timestamp("2024-07-22 03:10:18.025", tz="UTC").timestamp()
    assert t[-1].data == b"\r\nCONNACK OK\r\n"  # last record runs to the end of the file
    assert t.meta["date_source"] == "argument"


def test_square_line_and_blank_line_layouts_agree() -> None:
    seed = read_sscom(CAPTURES / "seed_http_auth_then_mqtt.log")
    t01 = read_sscom(DOCS / "T01_air780ep_v1007_http_post_mqtt_aliyun_sscom.txt")
    n = len(seed)
    assert [r.data for r in t01.records[:n]] == [r.data for r in seed.records]


def test_t04_split_urc_and_garbage_byte() -> None:
    t = read_sscom(DOCS / "T04_air780ep_sim_reset_rdy_boot_urcs_sscom.txt")
    received = t.received()
    assert b"+CGEV: ME PDN ACT 1\r\n" in received
    assert any(r.data == b"?\r\nRDY\r\n" for r in t)
    assert _find(t, b": ME PDN ACT 1").data == b": ME PDN ACT 1\r\n"


def test_t05_indent_is_stripped() -> None:
    t = read_sscom(DOCS / "T05_air780ep_boot_sapbr_ftp_sscom.txt")
    assert t[0].data == b"\r\n^MODE: 17,17\r\n\r\n+E_UTRAN Service\r\n\r\n+CGEV: ME PDN ACT 1\r\n"
    assert t[2].data == b"AT\r\n" and t[0].line_no == 7
    assert len(t.meta["header"]) == 6


def test_header_lines_are_metadata() -> None:
    t = read_sscom(DOCS / "T02_air780e_cereg_csq_cesq_sscom.txt")
    assert t.meta["header"][0].startswith("SOURCE:")
    assert b"SOURCE" not in t.received() + t.sent()
    assert t[0].line_no == 7


def test_events_of_captures() -> None:
    def urc_names(path: Path) -> list[str]:
        return [e.name for e in read_capture(path).events() if e.kind == "urc"]

    http = read_capture(CAPTURES / "seed_http_auth_then_mqtt.log").events()
    assert [e.line for e in http if e.kind == "urc" and e.name == "+HTTPACTION"] == [
        "+HTTPACTION: 1,200,124"
    ]
    payloads = [e for e in http if e.kind == "payload"]
    assert [len(p.data) for p in payloads] == [124]
    assert payloads[0].data.startswith(b'{"code":200') and payloads[0].source == "+HTTPREAD"
    assert "CONNACK OK" in urc_names(CAPTURES / "seed_direct_mqtt.log")
    pubsub = urc_names(CAPTURES / "seed_publish_subscribe.log")
    assert "PUBACK" in pubsub and "SUBACK" in pubsub
    dyn = read_capture(CAPTURES / "seed_dynamic_register.log").events()
    assert [len(e.data) for e in dyn if e.kind == "payload"] == [149]


def test_date_rule_and_rollover(tmp_path: Path) -> None:
    text = "[23:59:59.900]发→◇AT\n\n[00:00:00.100]收←◆AT\n\nOK\n"
    t = parse_sscom(text)
    assert t.date == "2000-01-01" and t.meta["date_source"] == "default"
    assert t[1].wall - t[0].wall == pytest.approx(0.2)
    assert t[1].mono == pytest.approx(0.2)
    named = tmp_path / "log_2024-08-22.txt"
    named.write_text(text, encoding="utf-8")
    assert read_sscom(named).date == "2024-08-22"
    df = read_sscom_dataframe(named)
    assert df["time"].iloc[1] == pd.Timestamp("2024-08-23 00:00:00.100", tz="UTC")
    assert read_sscom(named, date="2023-01-02").date == "2023-01-02"


def test_bad_stamp_becomes_unparsed_with_line_number(tmp_path: Path) -> None:
    text = (
        "# header\n[03:10:18.025]发→◇AT\n\n[03:1x:18.030]收←◆AT\n\nOK\n\n"
        "[03:10:19.000]收←◆\nPUBACK\n"
    )
    path = tmp_path / "bad.log"
    path.write_text(text, encoding="utf-8")
    t = read_sscom(path)
    bad = t.unparsed()
    assert len(bad) == 1 and bad[0].line_no == 4
    assert bad[0].text.startswith("[03:1x:18.030]收←◆AT")
    assert t[-1].data == b"\r\nPUBACK\r\n"
    df = read_sscom_dataframe(path)
    assert df["unparsed"].tolist() == [False, True, False]
    pd.testing.assert_frame_equal(df, t.to_dataframe("records"))


def test_gb18030_and_crlf_files(tmp_path: Path) -> None:
    text = "[10:00:00.000]发→◇AT\r\n□\r\n[10:00:00.010]收←◆AT\r\n\r\nOK\r\n"
    path = tmp_path / "win.log"
    path.write_bytes(text.encode("gb18030"))
    t = read_capture(path)
    assert [r.data for r in t] == [b"AT\r\n", b"AT\r\n\r\nOK\r\n"]
    pd.testing.assert_frame_equal(read_sscom_dataframe(path), t.to_dataframe("records"))


@pytest.mark.parametrize("path", SSCOM_FILES, ids=lambda p: p.name[:24])
def test_sscom_jsonl_sscom_roundtrip(tmp_path: Path, path: Path) -> None:
    t = read_capture(path)
    write_capture(t, tmp_path / "a.jsonl")
    back = read_capture(tmp_path / "a.jsonl")
    for crlf_mark in (True, False):
        out = tmp_path / "b.log"
        out.write_text(format_sscom(back, crlf_mark=crlf_mark), encoding="utf-8")
        again = read_capture(out, date=t.date)
        assert [(r.direction, r.data, r.wall) for r in again] == [
            (r.direction, r.data, r.wall) for r in t
        ]


def test_tutorial_layout_written_back_verbatim(tmp_path: Path) -> None:
    src = DOCS / "T01_air780ep_v1007_http_post_mqtt_aliyun_sscom.txt"
    t = read_capture(src)
    assert format_sscom(t) == src.read_text(encoding="utf-8")


def test_benchmark_generator_tiny(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_capture_import", ROOT / "benchmarks" / "bench_capture_import.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    path = tmp_path / "gen.log"
    assert bench.generate_sscom(path, 0.05) >= 50_000
    df = read_sscom_dataframe(path)
    t = read_capture(path)
    pd.testing.assert_frame_equal(df, t.to_dataframe("records"))
    kinds = {e.kind for e in t.events()}
    assert {"command", "echo", "final", "urc", "payload", "data"} <= kinds
    assert not df["unparsed"].any()


# --------------------------------------------------------------------------- windowed fast path


def _windows_spy(monkeypatch: pytest.MonkeyPatch, window: int) -> list[tuple[int, int]]:
    """Shrink the fast path's window; record (bytes in the window, bytes consumed)."""
    from airlab.at.formats import sscom_fast

    monkeypatch.setattr(sscom_fast, "_WINDOW", window)
    seen: list[tuple[int, int]] = []
    real = sscom_fast._scan_window

    def spy(buf, fill, eof, line0, first):  # type: ignore[no-untyped-def]
        w = real(buf, fill, eof, line0, first)
        seen.append((fill, -1 if w is None else w.cut))
        return w

    monkeypatch.setattr(sscom_fast, "_scan_window", spy)
    return seen


def _fast_is_used(path: Path) -> bool:
    from airlab.at.formats import sscom_fast

    with open(path, "rb") as fh:
        return sscom_fast._scan_bytes_fast(fh) is not None


def test_fast_path_windows_on_generated_log(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from bench_capture_import import generate_sscom

    path = tmp_path / "gen_2024-07-22.log"
    generate_sscom(path, 5)
    expected = read_capture(path).to_dataframe("records")
    seen = _windows_spy(monkeypatch, 1 << 16)
    assert _fast_is_used(path)
    seen.clear()
    df = read_sscom_dataframe(path)
    pd.testing.assert_frame_equal(df, expected)
    assert len(df) > 50_000 and not df["unparsed"].any()
    # many windows, and records cut at a window's end (carried to the next window)
    assert len(seen) > 50
    assert all(0 < cut < fill for fill, cut in seen[:-1])


@pytest.mark.parametrize("window", [600, 1000, 4096])
def test_fast_path_tiny_windows(tmp_path: Path, monkeypatch, window: int) -> None:
    """Records split across windows, longer than a window (it grows), CR LF split."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from bench_capture_import import generate_sscom

    path = tmp_path / "gen.log"
    generate_sscom(path, 0.03)
    text = path.read_text(encoding="utf-8")
    long_body = "x" * 2500 + "\n" + "中文" * 900
    text = text.replace("\nSUBACK\n", f"\nSUBACK\n{long_body}\n", 1)
    text = "# SOURCE comment\n\n" + text + "\n"
    for name, data in (
        ("lf.log", text.encode()),
        ("crlf.log", text.replace("\n", "\r\n").encode()),
        ("mixed.log", text.replace("\nOK\n", "\r\nOK\r\n\r").encode()),
    ):
        p = tmp_path / name
        p.write_bytes(data)
        expected = read_capture(p, date="2024-07-22").to_dataframe("records")
        seen = _windows_spy(monkeypatch, window)
        assert _fast_is_used(p), name
        assert any(cut == -1 for _, cut in seen)  # a window too small: grown
        pd.testing.assert_frame_equal(read_sscom_dataframe(p, date="2024-07-22"), expected)


# lines that are no header (the fast path reads them as text)
_TEXT_ONLY = (
    "text [10:00:05.000]收←◆ mid-line\n",
    "[1, 2, 3]\n",
    "  indented text\n\t[json]\n",
    "中文 收←◆\n",
)


@pytest.mark.parametrize(
    "late",
    [
        "  [10:00:05.000]收←◆indented\n",  # indented header: per-record path
        "收←◆bare marker\n",
        "[10:00:05.000] 收←◆space after the stamp\n",
        "[2024-07-22 10:00:05.000]收←◆dated\n",
        "[10:00:05]收←◆no ms\n",
        "[2019-07-13 11:21:44.870]# RECV ASCII>\nuart\n",
        "[10:61:05.000]收←◆bad stamp\n",
        "[10:00:05.000]收←◆41 54 0D 0A \n",  # HEX display
        "[10:00:05.000]收←◆\n\n41 42\n",
        *_TEXT_ONLY,
    ],
)
def test_fast_path_late_irregular_lines(tmp_path: Path, monkeypatch, late: str) -> None:
    """An irregular line far into the file (a later window) gives the same frame."""
    rec = "[10:00:00.000]发→◇AT+CSQ\n□\n[10:00:00.010]收←◆AT+CSQ\n\n+CSQ: 20,0\n\nOK\n\n"
    body = rec * 200
    data = body.encode() + late.encode() + rec.encode()
    path = tmp_path / "late.log"
    path.write_bytes(data)
    _windows_spy(monkeypatch, 2048)
    assert _fast_is_used(path) == (late in _TEXT_ONLY)
    t = read_capture(path, date="2024-07-22")
    pd.testing.assert_frame_equal(
        read_sscom_dataframe(path, date="2024-07-22"), t.to_dataframe("records")
    )


def test_fast_path_gives_up_on_late_non_utf8(tmp_path: Path, monkeypatch) -> None:
    rec = "[10:00:00.000]发→◇AT\n□\n[10:00:00.010]收←◆AT\n\nOK\n\n"
    path = tmp_path / "late.log"
    path.write_bytes((rec * 300).encode() + b"\xff\xfe\n" + rec.encode())
    _windows_spy(monkeypatch, 2048)
    assert not _fast_is_used(path)
    path.write_bytes((rec * 300).encode() + b"ok\n" + rec.encode())
    assert _fast_is_used(path)
