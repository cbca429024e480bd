"""LLCOM, console, bytes-repr logs and format detection."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from airlab.at.events import Direction
from airlab.at.formats import detect_format, read_capture, write_capture
from airlab.at.formats.llcom import escape_llcom, parse_llcom, unescape_llcom
from airlab.at.transcript import RecordKind, Transcript

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "data" / "captures" / "luat_docs"

# Built to LLCOM's source (github.com/chenxuuu/llcom, llcom/Tools/Global.cs,
# Uart_UartDataSent / Uart_UartDataRecived: `AddUartLogInfo($"<-{Byte2Readable(..)}")` then
# `AddUartLogDebug($"[HEX]{Byte2Hex(.., " ")}")`; Byte2Readable writes CR LF as `\r\n` plus a
# real CR LF; llcom/Tools/Logger.cs: Serilog's default file template, CRLF line ends,
# "[SRART]Logs by LLCOM. https://github.com/chenxuuu/llcom" / "[START]..." first entry,
# MainWindow.xaml.cs: `AddUartLogDebug($"[openPort]{isOpeningPort},{...}")`).
LLCOM_WITH_HEX = (
    "2024-08-22 10:20:35.000 +08:00 [INF] [START]Logs by LLCOM. https://github.com/chenxuuu/llcom\r\n"
    "2024-08-22 10:20:35.100 +08:00 [DBG] [openPort]False,COM5\r\n"
    "2024-08-22 10:20:36.670 +08:00 [INF] <-AT\\r\\n\r\n"
    "\r\n"
    "2024-08-22 10:20:36.670 +08:00 [DBG] [HEX]41 54 0D 0A\r\n"
    "2024-08-22 10:20:36.686 +08:00 [INF] ->AT\\r\\n\r\n\\r\\n\r\nOK\\r\\n\r\n"
    "\r\n"
    "2024-08-22 10:20:36.686 +08:00 [DBG] [HEX]41 54 0D 0A 0D 0A 4F 4B 0D 0A\r\n"
    "2024-08-22 10:20:38.100 +08:00 [INF] ->\ufffd\\r\\n\r\n"
    "\r\n"
    "2024-08-22 10:20:38.100 +08:00 [DBG] [HEX]FF 0D 0A\r\n"
)

# no [HEX] entries: the three text styles LLCOM versions wrote (escapes + real line
# breaks; control pictures, older Global.cs `symbols` table; raw text, EnableSymbol off)
LLCOM_NO_HEX = """\
garbage before any entry
2024-08-22 10:20:36.670 [INF] <-AT+CGATT?\\r\\n

2024-08-22 10:20:36.7 -05:30 [INF] ->AT+CGATT?\\r\\n
\\r\\n
+CGATT: 1\\r\\n
\\r\\n
OK\\r\\n
\\x1A\\e\\0
2024-08-22 10:20:37.000 +08:00 [INF] ->OK␍␊
␀␡
2024-08-22 10:20:38.000 +08:00 [INF] ->+CSQ: 20,0

OK

2024-13-40 10:20:36.670 +08:00 [INF] ->bad date
"""


def test_llcom_with_hex_lines() -> None:
    t = parse_llcom(LLCOM_WITH_HEX)
    data = t.data_records()
    assert [(r.direction, r.data) for r in data] == [
        (Direction.SENT, b"AT\r\n"),
        (Direction.RECEIVED, b"AT\r\n\r\nOK\r\n"),
        (Direction.RECEIVED, b"\xff\r\n"),  # the HEX line wins over the U+FFFD text
    ]
    assert data[0].wall == pytest.approx(1724293236.670)
    assert data[1].mono == pytest.approx(1.686)
    assert data[1].line_no == 6
    markers = [r.text for r in t if r.kind is RecordKind.MARKER]
    assert len(markers) == 2 and "[START]Logs by LLCOM" in markers[0]
    assert "[openPort]" in markers[1]
    assert t.unparsed() == []
    assert [e.kind for e in t.events()][:3] == ["command", "echo", "final"]


def test_llcom_without_hex_offsets_and_bad_lines() -> None:
    t = parse_llcom(LLCOM_NO_HEX)
    assert (t[0].line_no, t[0].unparsed) == (1, True)
    assert t[1].data == b"AT+CGATT?\r\n"
    assert t[1].wall == pytest.approx(1724322036.670)  # no offset: UTC
    assert t[2].data == b"AT+CGATT?\r\n\r\n+CGATT: 1\r\n\r\nOK\r\n\x1a\x1b\x00"
    assert t[2].wall == pytest.approx(1724322036.7 + 5.5 * 3600)
    assert t[3].data == b"OK\r\n\x00\x7f"  # control pictures
    assert t[4].data == b"+CSQ: 20,0\r\n\r\nOK\r\n"  # raw text: a line break is CR LF
    assert [(r.line_no, r.unparsed) for r in t[5:]] == [(16, True)]


def test_llcom_raw_send_and_lone_controls() -> None:
    # Global.cs Uart_UartDataRawSent: "Raw<-" + "[Raw HEX]" (the data before the send
    # script): markers, not wire bytes.  A lone CR / LF is its escape + the character.
    text = (
        "2024-08-22 10:20:36.000 +08:00 [INF] Raw<-AT\r\n"
        "2024-08-22 10:20:36.000 +08:00 [DBG] [Raw HEX]41 54\r\n"
        "2024-08-22 10:20:36.001 +08:00 [INF] <-AT\\r\r\r\n"
        "2024-08-22 10:20:36.200 +08:00 [INF] ->A\\n\r\nB\\tC\tD\r\n"
    )
    t = parse_llcom(text)
    assert [r.kind for r in t] == [
        RecordKind.MARKER,
        RecordKind.MARKER,
        RecordKind.DATA,
        RecordKind.DATA,
    ]
    assert t[2].data == b"AT\r" and t[3].data == b"A\nB\tC\tD"


@pytest.mark.parametrize(
    "data", [b"", b"AT\r\n", b"\x00\x1a\xff\\x41\\", "温度\u2028".encode(), bytes(range(256))]
)
def test_llcom_escape_roundtrip(data: bytes) -> None:
    assert unescape_llcom(escape_llcom(data)) == data


def test_llcom_writer_roundtrip(tmp_path: Path) -> None:
    t = read_capture(ROOT / "data" / "captures" / "seed_publish_subscribe.log", date="2024-07-22")
    for hex_lines in (True, False):
        path = tmp_path / f"log{hex_lines}.txt"
        from airlab.at.formats.llcom import write_llcom

        write_llcom(t, path, hex_lines=hex_lines)
        assert detect_format(path) == "llcom"
        back = read_capture(path)
        assert [(r.direction, r.data) for r in back] == [(r.direction, r.data) for r in t]
        assert [r.wall for r in back] == pytest.approx([r.wall for r in t])


CONSOLE = sorted(DOCS.glob("T0[6-9]_*.txt")) + sorted(DOCS.glob("T12_*.txt"))


@pytest.mark.parametrize("path", CONSOLE, ids=lambda p: p.name[:3])
def test_console_captures_import(path: Path) -> None:
    t = read_capture(path)
    assert t.format == "console"
    assert t.unparsed() == []
    assert all(math.isnan(r.wall) and math.isnan(r.mono) for r in t)
    assert t.meta["header"][0].startswith("SOURCE:")
    assert b"SOURCE:" not in t.received()
    for rec in t.data_records():
        if rec.direction is Direction.SENT and rec.data[:2].upper() == b"AT":
            assert rec.data.endswith(b"\r\n")
    assert t.events()


def test_console_rules_t06() -> None:
    t = read_capture(DOCS / "T06_air780ep_v1007_tcp_errors_cipstart_cipsend.txt")
    assert t[0].direction is Direction.RECEIVED and t[0].data.startswith(b"^MODE: 17,17\r\n")
    i = next(i for i, r in enumerate(t) if r.data == b"AT\r\n")
    assert (t[i].direction, t[i + 1].direction) == (Direction.SENT, Direction.RECEIVED)
    assert t[i + 1].data == b"AT\r\n" and t[i + 2].data.startswith(b"\r\nOK\r\n")
    assert t[i].line_no == 15


def test_console_blocks_and_prompt_data_t09() -> None:
    t = read_capture(DOCS / "T09_air780e_v1169_mqtt_plain_and_ssl.txt")
    markers = [r for r in t if r.kind is RecordKind.MARKER]
    assert markers and all(r.text.startswith("#") for r in markers)
    certs = [r for r in t if r.direction is Direction.SENT and r.data.startswith(b"-----BEGIN")]
    assert [len(c.data) for c in certs] == [1212, 1212, 1127, 1679]  # = AT+FSWRITE lengths
    data_events = [e for e in t.events() if e.kind == "data"]
    assert len(data_events) >= 3


def test_bytes_repr_t11() -> None:
    path = DOCS / "T11_air724ug_raw_bytes_echo_framing.txt"
    assert detect_format(path) == "bytes"
    t = read_capture(path)
    assert [(r.direction.value, r.data) for r in t[:3]] == [
        ("sent", b"AT+CGMI\r"),
        ("received", b"AT+CGMI\r\r\n"),
        ("received", b'+CGMI: "AirM2M"\r\n'),
    ]
    assert t.sent() == b"AT+CGMI\rAT+CGMR\rAT+CSQ\r"
    ev = t.events()
    assert [e.result for e in ev if e.kind == "final"] == ["OK", "OK", "OK"]
    assert next(e.line for e in ev if e.kind == "info") == '+CGMI: "AirM2M"'


def test_bytes_repr_bad_line_kept(tmp_path: Path) -> None:
    path = tmp_path / "b.txt"
    path.write_text("b'OK\\r\\n'\nb'unterminated\nnot bytes\n")
    t = read_capture(path)
    assert [(r.line_no, r.unparsed) for r in t] == [(1, False), (2, True), (3, True)]


def test_detection(tmp_path: Path) -> None:
    assert detect_format(DOCS / "T01_air780ep_v1007_http_post_mqtt_aliyun_sscom.txt") == "sscom"
    assert detect_format(DOCS / "T06_air780ep_v1007_tcp_errors_cipstart_cipsend.txt") == "console"
    (tmp_path / "l.txt").write_text(LLCOM_WITH_HEX)
    assert detect_format(tmp_path / "l.txt") == "llcom"
    Transcript().save(tmp_path / "t.log")
    assert detect_format(tmp_path / "t.log") == "jsonl"
    for ext in ("jsonl", "csv", "parquet"):
        assert detect_format(tmp_path / f"x.{ext}") == ext


def test_write_capture_llcom_and_unknown(tmp_path: Path) -> None:
    from airlab.errors import UsageError

    t = parse_llcom(LLCOM_WITH_HEX)
    assert write_capture(t, tmp_path / "o.txt", "llcom") == "llcom"
    with pytest.raises(UsageError):
        write_capture(t, tmp_path / "o.txt", "xml")
