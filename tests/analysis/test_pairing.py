"""Pairing: acceptance figures, edge cases, the live path, every capture, fast == events."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from airlab.analysis import COLUMNS, pair_capture, pair_commands
from airlab.analysis.fast import Unsupported, lex_records, pair_records
from airlab.analysis.pairing import match_and_assemble
from airlab.at import Transcript, parse_stream, read_capture
from airlab.at.formats import detect_format, read_sscom_dataframe

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "data" / "captures"
TUTORIAL = ROOT / "data" / "tutorial"
HTTP = CAPTURES / "seed_http_auth_then_mqtt.log"
PUBSUB = CAPTURES / "seed_publish_subscribe.log"
T01 = CAPTURES / "luat_docs" / "T01_air780ep_v1007_http_post_mqtt_aliyun_sscom.txt"
ALL = sorted(p for p in CAPTURES.rglob("*") if p.is_file()) + sorted(TUTORIAL.glob("*"))


def _row(table: pd.DataFrame, prefix: str, kind: str | None = None) -> pd.Series:
    t = table[table.command.str.startswith(prefix)]
    if kind:
        t = t[t.kind == kind]
    assert len(t) == 1, t
    return t.iloc[0]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@pytest.fixture(scope="module")
def http_table() -> pd.DataFrame:
    return pair_capture(HTTP, date="2024-07-22")


@pytest.fixture(scope="module")
def pubsub_table() -> pd.DataFrame:
    return pair_capture(PUBSUB, date="2024-07-22")


def test_httpaction_to_urc(http_table: pd.DataFrame) -> None:
    r = _row(http_table, "AT+HTTPACTION")
    assert r.kind == "http_request" and r.urc == "+HTTPACTION" and r.outcome == "ok"
    assert r.echo_s < r.urc_s
    assert r.time.strftime("%H:%M:%S.%f")[:-3] == "03:10:16.378"
    echo = r.time + pd.Timedelta(milliseconds=_ms(r.sent_to_echo_s))
    assert echo.strftime("%H:%M:%S.%f")[:-3] == "03:10:16.381"
    urc = r.time + pd.Timedelta(milliseconds=_ms(r.sent_to_urc_s))
    assert urc.strftime("%H:%M:%S.%f")[:-3] == "03:10:18.025"
    assert _ms(r.echo_to_urc_s) == 1644 and _ms(r.sent_to_urc_s) == 1647
    assert (r.http_method, r.http_status, r.http_len) == (1, 200, 124)


def test_mpub_qos1_to_puback(pubsub_table: pd.DataFrame) -> None:
    r = _row(pubsub_table, "AT+MPUB", "publish_qos1")
    assert (r.qos, r.awaits, r.urc, r.outcome) == (1, "PUBACK", "PUBACK", "ok")
    assert _ms(r.echo_to_urc_s) == 297 and _ms(r.sent_to_urc_s) == 301
    q0 = _row(pubsub_table, "AT+MPUB", "publish_qos0")
    assert pd.isna(q0.awaits) and pd.isna(q0.urc) and q0.outcome == "ok"


def test_mconnect_to_connack(http_table: pd.DataFrame) -> None:
    r = _row(http_table, "AT+MCONNECT")
    assert r.urc == "CONNACK OK" and r.kind == "mqtt_connect"
    assert _ms(r.echo_to_urc_s) == 249 and _ms(r.sent_to_urc_s) == 252


def test_msub_to_suback(pubsub_table: pd.DataFrame) -> None:
    r = _row(pubsub_table, "AT+MSUB")
    assert r.urc == "SUBACK" and r.kind == "subscribe"
    assert _ms(r.echo_to_urc_s) == 315 and _ms(r.sent_to_urc_s) == 319


def test_t01_has_all_four() -> None:
    t = pair_capture(T01, date="2024-07-22")
    mins = t.groupby("kind", observed=True)["echo_to_urc_s"].min().dropna()
    got = {k: _ms(v) for k, v in mins.items()}
    assert got["http_request"] == 1644
    assert got["publish_qos1"] == 297
    assert got["subscribe"] == 315
    assert 249 in {_ms(v) for v in t.loc[t.kind == "mqtt_connect", "echo_to_urc_s"]}


def _events(*chunks: tuple[str, bytes, float]) -> list:
    return parse_stream([(d, b, t + 1000.0, t) for d, b, t in chunks])


def test_urc_between_echo_and_ok() -> None:
    evs = _events(
        ("sent", b"AT+MCONNECT=1,120\r\n", 0.0),
        ("received", b"AT+MCONNECT=1,120\r\n", 0.003),
        ("received", b"\r\n+CGEV: ME PDN ACT 1\r\n", 0.004),
        ("received", b"\r\nCONNACK OK\r\n", 0.005),
        ("received", b"\r\nOK\r\n", 0.006),
    )
    r = pair_commands(evs).iloc[0]
    assert (r.final, r.urc, r.outcome) == ("OK", "CONNACK OK", "ok")
    assert _ms(r.sent_to_final_s) == 6 and _ms(r.sent_to_urc_s) == 5


def test_httpaction_answer_before_ok_counts() -> None:
    evs = _events(
        ("sent", b"AT+HTTPACTION=0\r\n", 0.0),
        ("received", b"AT+HTTPACTION=0\r\n\r\n+HTTPACTION: 0,601,0\r\n\r\nOK\r\n", 0.5),
    )
    r = pair_commands(evs).iloc[0]
    assert (r.urc, r.outcome, r.code, r.detail) == ("+HTTPACTION", "error", 601, "network error")


def test_command_without_final_result() -> None:
    evs = _events(
        ("sent", b"AT+CSQ\r\n", 0.0),
        ("received", b"AT+CSQ\r\n", 0.002),
        ("sent", b"AT\r\n", 5.0),
        ("received", b"AT\r\n\r\nOK\r\n", 5.001),
    )
    t = pair_commands(evs)
    assert t.outcome.tolist() == ["timeout", "ok"]
    assert t.detail.iloc[0] == "no final result before the next command"
    assert pd.isna(t.final_s.iloc[0]) and _ms(t.sent_to_echo_s.iloc[0]) == 2


def test_capture_cut_in_the_middle() -> None:
    evs = _events(
        ("sent", b'AT+MPUB="t",1,0,"x"\r\n', 0.0),
        ("received", b'AT+MPUB="t",1,0,"x"\r\n\r\nOK\r\n', 0.004),
    )
    r = pair_commands(evs).iloc[0]
    assert r.outcome == "incomplete" and pd.isna(r.done_s)
    assert r.detail == "capture ended while waiting for PUBACK"
    cut = _events(("sent", b"AT+CGATT?\r\n", 0.0), ("received", b"AT+CGATT?\r\n", 0.001))
    assert pair_commands(cut).outcome.tolist() == ["incomplete"]


def test_urc_timeout_when_capture_goes_on() -> None:
    evs = _events(
        ("sent", b'AT+MPUB="t",1,0,"x"\r\n', 0.0),
        ("received", b'AT+MPUB="t",1,0,"x"\r\n\r\nOK\r\n', 0.004),
        ("sent", b"AT\r\n", 40.0),
        ("received", b"AT\r\n\r\nOK\r\n", 40.001),
    )
    assert pair_commands(evs).outcome.tolist() == ["timeout", "ok"]


def test_cme_error_767() -> None:
    evs = _events(
        ("sent", b"AT+MIPCLOSE\r\n", 0.0),
        ("received", b"AT+MIPCLOSE\r\n\r\n+CME ERROR: 767\r\n", 0.01),
    )
    r = pair_commands(evs).iloc[0]
    assert (r.outcome, r.final, r.code, r.detail) == (
        "error",
        "+CME ERROR",
        767,
        "operation failed",
    )


def test_closed_while_waiting() -> None:
    evs = _events(
        ("sent", b'AT+SSLMIPSTART="h",1883\r\n', 0.0),
        ("received", b'AT+SSLMIPSTART="h",1883\r\n\r\nOK\r\n', 0.003),
        ("received", b"\r\nCONNECT OK\r\n", 1.4),
        ("sent", b"AT+MCONNECT=1,120\r\n", 7.0),
        ("received", b"AT+MCONNECT=1,120\r\n\r\nOK\r\n", 7.003),
        ("received", b"\r\nCLOSED\r\n", 7.5),
    )
    t = pair_commands(evs)
    assert t.outcome.tolist() == ["ok", "closed"]
    assert t.urc.iloc[1] == "CLOSED" and _ms(t.sent_to_done_s.iloc[1]) == 500


def test_mconnect_error_after_ok_and_connect_fail() -> None:
    evs = _events(
        ("sent", b"AT+MCONNECT=1,120\r\n", 0.0),
        ("received", b"AT+MCONNECT=1,120\r\n\r\nOK\r\n", 0.003),
        ("received", b"\r\nERROR\r\n", 0.25),
        ("sent", b'AT+MIPSTART="h",1883\r\n', 1.0),
        ("received", b'AT+MIPSTART="h",1883\r\n\r\nOK\r\n', 1.003),
        ("received", b"\r\nSTATE: IP STATUS\r\n\r\nCONNECT FAIL\r\n", 3.0),
    )
    t = pair_commands(evs)
    assert t.outcome.tolist() == ["error", "error"]
    assert t.urc.tolist() == ["ERROR", "CONNECT FAIL"]
    assert t.detail.tolist() == ["ERROR", "CONNECT FAIL"]


def test_qos2_and_interleaved_pubacks() -> None:
    evs = _events(
        ("sent", b'AT+MPUB="t",2,0,"x"\r\n', 0.0),
        ("received", b'AT+MPUB="t",2,0,"x"\r\n\r\nOK\r\n', 0.004),
        ("received", b"\r\nPUBREC\r\n", 0.2),
        ("received", b"\r\nPUBCOMP\r\n", 0.4),
        ("sent", b'AT+MPUB="t",1,0,"a"\r\n', 1.0),
        ("received", b'AT+MPUB="t",1,0,"a"\r\n\r\nOK\r\n', 1.004),
        ("sent", b'AT+MPUB="t",1,0,"b"\r\n', 1.1),
        ("received", b'AT+MPUB="t",1,0,"b"\r\n\r\nOK\r\n\r\nPUBACK\r\n', 1.104),
        ("received", b"\r\nPUBACK\r\n", 1.3),
    )
    t = pair_commands(evs)
    assert t.kind.tolist() == ["publish_qos2", "publish_qos1", "publish_qos1"]
    assert t.urc.tolist() == ["PUBCOMP", "PUBACK", "PUBACK"]
    assert [_ms(v) for v in t.sent_to_urc_s] == [400, 104, 200]


def test_reset_waits_for_rdy() -> None:
    evs = _events(
        ("sent", b"AT+RESET\r\n", 0.0),
        ("received", b"AT+RESET\r\n\r\nOK\r\n", 0.01),
        ("received", b"\r\nRDY\r\n", 1.5),
    )
    r = pair_commands(evs).iloc[0]
    assert (r.kind, r.urc, _ms(r.sent_to_done_s)) == ("reset", "RDY", 1500)


def test_live_paths_agree() -> None:
    t = read_capture(HTTP, date="2024-07-22")
    from_transcript = pair_commands(t)
    from_list = pair_commands(list(t.events()))
    from_iter = pair_commands(iter(t.events()))
    pd.testing.assert_frame_equal(from_transcript, from_list)
    pd.testing.assert_frame_equal(from_transcript, from_iter)
    assert list(from_list.columns) == COLUMNS


def test_empty_inputs() -> None:
    assert len(pair_commands([])) == 0
    assert len(pair_commands(Transcript())) == 0


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_capture_pairs(path: Path) -> None:
    t = pair_capture(path, date="2024-07-22")
    assert list(t.columns) == COLUMNS
    assert set(t.outcome.astype(str)) <= {"ok", "error", "timeout", "closed", "incomplete"}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_fast_path_equals_event_path(path: Path) -> None:
    fmt = detect_format(path)
    if fmt == "sscom":
        df = read_sscom_dataframe(path, date="2024-07-22")
    else:
        df = read_capture(path, date="2024-07-22").to_dataframe("records")
    slow = pair_capture(path, date="2024-07-22", fast=False)
    pd.testing.assert_frame_equal(pair_records(df), slow)
    if path.name.startswith("seed_") or path.suffix == ".jsonl":
        # the tutorial's captures go through the vectorised lexer itself, no fallback
        pd.testing.assert_frame_equal(match_and_assemble(lex_records(df)), slow)


def test_fast_path_falls_back_on_prompt_phases() -> None:
    t = Transcript()
    t.add("sent", b'AT+MPUBEX="t",1,0,3\r\n', 1.0, 0.0)
    t.add("received", b'AT+MPUBEX="t",1,0,3\r\n\r\n>', 1.01, 0.01)
    t.add("sent", b"abc", 1.02, 0.02)
    t.add("received", b"\r\nOK\r\n\r\nPUBACK\r\n", 1.3, 0.3)
    df = t.to_dataframe("records")
    with pytest.raises(Unsupported):
        lex_records(df)
    pd.testing.assert_frame_equal(pair_records(df), pair_commands(t))
    assert pair_records(df).urc.tolist() == ["PUBACK"]


def test_fast_path_bodies_and_split_lines() -> None:
    body = b'{"a":1}\r\nOK\r\nPUBACK'  # body text that looks like lines
    t = Transcript()
    t.add("sent", b"AT+HTTPREAD\r\n", 1.0, 0.0)
    t.add("received", b"AT+HTTPREAD\r\n\r\n+HTTPREAD: %d\r\n" % len(body) + body, 1.01, 0.01)
    t.add("received", b"\r\nOK\r\n", 1.02, 0.02)
    t.add("sent", b'AT+MPUB="t",1,0,"x"\r\n', 2.0, 1.0)
    t.add("received", b'AT+MPUB="t",1,0,"x"\r\n\r\nOK\r\n\r\nPUB', 2.01, 1.01)
    t.add("received", b'ACK\r\n\r\n+MSUB: "t",9 byte,a\r\nPUBACK\r\n', 2.3, 1.3)
    df = t.to_dataframe("records")
    fast = match_and_assemble(lex_records(df))
    pd.testing.assert_frame_equal(fast, pair_commands(t))
    assert fast.final.tolist() == ["OK", "OK"] and fast.urc.tolist()[1] == "PUBACK"
