"""sscom variants: HEX display mode, dated stamps, other markers, UartAssist headers.

Samples are synthetic, built to layouts seen in public sources (quoted per test).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from airlab.at.events import Direction
from airlab.at.formats import detect_format, read_capture, read_sscom_dataframe
from airlab.at.formats.sscom import parse_sscom


def _same_both_paths(tmp_path: Path, text: str, name: str = "v.log"):
    """Read ``text`` as a file through read_capture and the DataFrame path; they agree."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert detect_format(path) == "sscom"
    t = read_capture(path)
    pd.testing.assert_frame_equal(read_sscom_dataframe(path), t.to_dataframe("records"))
    return t


# A Qt program writing an sscom-style first line (GitHub code index):
#   QString::fromUtf8("[10:48:58.563]发→◇41 54 2B 53 54 41 52 54 0A □ ");
# Modbus comments: "[13:41:12.007]发→◇AA BB 06 01 00 00 00 00 94 □",
#   "[17:10:11.957]收←◆03 03 1E 37 02 36 ... AD D9 " (pairs, a trailing space).
HEX_LOG = (
    "[10:20:36.670]发→◇41 54 0D 0A □ \n"
    "[10:20:36.686]收←◆41 54 0D 0D 0A 4F 4B 0D 0A \n"
    "[10:20:37.000]发→◇41 54 2B 43 53 51 0D 0A □ \n"
    "[10:20:37.020]收←◆41 54 2B 43 53 51 0D 0D 0A 2B 43 53 51 3A 20 32 30 2C 30 0D 0A \n"
    "0D 0A 4F 4B 0D 0A \n"  # wrapped over two lines
    "[10:20:38.000]发→◇01 03 00 00 00 01 84 0A □ \n"
    "[10:20:38.040]收←◆FF \n"
)


def test_hex_display_mode_is_exact_bytes(tmp_path: Path) -> None:
    t = _same_both_paths(tmp_path, HEX_LOG)
    assert [(r.direction, r.data) for r in t] == [
        (Direction.SENT, b"AT\r\n"),
        (Direction.RECEIVED, b"AT\r\r\nOK\r\n"),
        (Direction.SENT, b"AT+CSQ\r\n"),
        (Direction.RECEIVED, b"AT+CSQ\r\r\n+CSQ: 20,0\r\n\r\nOK\r\n"),
        # no CR LF for the '□': a Modbus frame shown '01 03 00 00 00 01 84 0A □' was
        # answered, so nothing followed its CRC on the wire
        (Direction.SENT, b"\x01\x03\x00\x00\x00\x01\x84\x0a"),
        (Direction.RECEIVED, b"\xff"),
    ]
    assert t.unparsed() == []
    assert [e.kind for e in t.events()][:3] == ["command", "echo", "final"]


def test_text_that_looks_like_hex_stays_text(tmp_path: Path) -> None:
    text = "[10:00:00.000]发→◇AB CD\n□\n[10:00:00.010]收←◆AB CD\n\nOK\n"
    t = _same_both_paths(tmp_path, text)
    assert [r.data for r in t] == [b"AB CD\r\n", b"AB CD\r\n\r\nOK\r\n"]
    # one pair per record is not enough for a file-level decision either
    t = parse_sscom("[10:00:00.000]收←◆AB \n[10:00:01.000]收←◆CD \n")
    assert [r.data for r in t] == [b"AB ", b"CD \r\n"]


def test_mixed_file_switches_display_mode(tmp_path: Path) -> None:
    # text records, then HEX显示 switched on: a record with >= 3 pairs and a 0D/0A is hex
    text = (
        "[10:00:00.000]发→◇AT\n□\n[10:00:00.010]收←◆AT\n\nOK\n\n"
        "[10:00:01.000]发→◇41 54 0D 0A □ \n[10:00:01.010]收←◆41 54 0D 0D 0A 4F 4B 0D 0A \n"
        "[10:00:02.000]收←◆12 34 \n"  # 2 pairs, no 0D/0A: kept as text
    )
    t = _same_both_paths(tmp_path, text)
    assert [r.data for r in t] == [
        b"AT\r\n",
        b"AT\r\n\r\nOK\r\n",
        b"AT\r\n",
        b"AT\r\r\nOK\r\n",
        b"12 34 \r\n",
    ]


@pytest.mark.parametrize(
    ("stamp", "wall"),
    [
        ("2024-07-22 10:20:36.670", "2024-07-22 10:20:36.670"),
        ("2024/07/22 10:20:36.670", "2024-07-22 10:20:36.670"),
        ("2024-07-22 10:20:36:670", "2024-07-22 10:20:36.670"),
        ("2024-07-22 10:20:36", "2024-07-22 10:20:36"),
        ("10:20:36", "2000-01-01 10:20:36"),
    ],
)
def test_dated_and_second_stamps(tmp_path: Path, stamp: str, wall: str) -> None:
    text = f"[{stamp}]发→◇AT\n□\n[{stamp}]收←◆AT\n\nOK\n"
    t = _same_both_paths(tmp_path, text)
    assert [r.data for r in t] == [b"AT\r\n", b"AT\r\n\r\nOK\r\n"]
    assert t[0].wall == pd.Timestamp(wall, tz="UTC").timestamp()
    if stamp[0] == "2":
        assert t.date == "2024-07-22" and t.meta["date_source"] == "stamp"


def test_stamp_date_wins_over_argument_and_rolls_over() -> None:
    text = "[2024-07-22 23:59:59.900]发→◇AT\n□\n[00:00:00.100]收←◆AT\n\nOK\n"
    t = parse_sscom(text, date="2023-01-01")
    assert t.date == "2024-07-22"
    assert t[1].wall == pd.Timestamp("2024-07-23 00:00:00.100", tz="UTC").timestamp()
    assert t[1].mono == pytest.approx(0.2)
    bad = parse_sscom("[2024-13-40 10:00:00.000]收←◆OK\n")
    assert bad[0].unparsed


def test_space_after_stamp_and_bare_markers(tmp_path: Path) -> None:
    # "[13:41:12.027] 收←◆AA BB 06 00 8B 0A 01 00 FF" (a C# comment, GitHub code index);
    # "收←◆5\n---- flash->eeprom init ok ----" next to "[11:39:52.133]收←◆write addr"
    # (sscom with its time stamps switched off, a README in the same index).
    text = (
        "[10:00:00.000]发→◇AT\n□\n[10:00:00.010] 收←◆AT\n\nOK\n\n"
        "收←◆5\nboot\n[10:00:01.000]收←◆RDY\n"
    )
    t = _same_both_paths(tmp_path, text)
    assert [r.data for r in t] == [b"AT\r\n", b"AT\r\n\r\nOK\r\n", b"5\r\nboot", b"RDY\r\n"]
    assert math.isnan(t[2].wall) and not t[2].unparsed
    assert t[3].wall - t[0].wall == pytest.approx(1.0)


def test_end_of_send_mark_on_the_text_line(tmp_path: Path) -> None:
    # "生成发送声明 -> [08:54:51.493]发→◇content□" (a C++ helper, GitHub code index):
    # no CR LF appended, the '□' follows the text.
    text = "[08:54:51.493]发→◇content□\n[08:54:51.500]收←◆ok\n"
    t = _same_both_paths(tmp_path, text)
    assert [r.data for r in t] == [b"content", b"ok\r\n"]


def test_uart_assist_headers(tmp_path: Path) -> None:
    # "[2019-07-13 11:21:44.870]# SEND ASCII>\n你好，服务器\n\n[...]# RECV ASCII>\n数据已收到",
    # "[2019-05-15 16:32:52.893]# RECV ASCII>\n\nSignal power:-784" and a Qt clone writing
    # "[%1]# RECV HEX>" (GitHub code index).
    text = (
        "[2019-05-15 16:32:52.800]# SEND ASCII>\nAT+NUESTATS\n\n"
        "[2019-05-15 16:32:52.893]# RECV ASCII>\n\nSignal power:-784\n\nOK\n\n"
        "[2019-05-15 16:32:53.000]# RECV HEX>\n0D 0A 4F 4B 0D 0A \n"
    )
    t = _same_both_paths(tmp_path, text, "uart.txt")
    assert [(r.direction, r.data) for r in t] == [
        (Direction.SENT, b"AT+NUESTATS\r\n"),
        (Direction.RECEIVED, b"\r\nSignal power:-784\r\n\r\nOK\r\n"),
        (Direction.RECEIVED, b"\r\nOK\r\n"),
    ]
    assert t.date == "2019-05-15"
