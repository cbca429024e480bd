"""AtParser on the tutorial captures and on hand-made byte streams."""

from __future__ import annotations

import json

import pytest
from at_wire import T07_JSON, find_capture

from airlab.at.events import (
    CommandSent,
    DataSent,
    Direction,
    Echo,
    Event,
    FinalResult,
    Garbage,
    InfoLine,
    Payload,
    Prompt,
    UnknownLine,
    Urc,
)
from airlab.at.parser import MAX_LINE, AtParser, parse_stream, split_args

S, R = Direction.SENT, Direction.RECEIVED


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def received(data: bytes) -> list[Event]:
    return parse_stream([(R, data, 1.0, 1.0)])


def blocks(name: str) -> list[bytes]:
    """The '# ----- next block -----' separated parts of a console log, as wire bytes."""
    text = find_capture(name).read_text(encoding="utf-8")
    parts = text.split("# ----- next block -----")
    out = []
    for part in parts:
        lines = [ln for ln in part.splitlines() if not ln.startswith(("SOURCE:", "# "))]
        body = "\n".join(lines).strip("\n") + "\n"
        body = body.replace(T07_JSON, "\x01")
        out.append(body.replace("\n", "\r\n").replace("\x01", T07_JSON).encode())
    return out


# ---------------------------------------------------------------------------- tutorial flows


def test_http_auth_then_mqtt_flow(sscom) -> None:
    events = parse_stream(sscom("seed_http_auth_then_mqtt"))
    assert all(isinstance(e, Event) for e in events)
    assert not [e for e in events if isinstance(e, UnknownLine | Garbage)]
    # first command: CommandSent / Echo / InfoLine / FinalResult
    assert kinds(events[:4]) == ["command", "echo", "info", "final"]
    assert events[0].line == "AT+CGATT?" and events[2].line == "+CGATT: 1"
    seq = [(type(e).__name__, getattr(e, "line", None) or getattr(e, "prompt", "")) for e in events]
    # the DOWNLOAD prompt, then exactly 112 data bytes, then OK
    i = next(i for i, e in enumerate(events) if isinstance(e, Prompt))
    assert events[i].prompt == "DOWNLOAD"
    data = events[i + 1]
    assert isinstance(data, DataSent)
    assert len(data.raw) == 112 and data.raw.startswith(b"productKey=k1hipglLdjU&sign=")
    assert data.for_command == "AT+HTTPDATA=112,20000"
    assert isinstance(events[i + 2], FinalResult) and events[i + 2].ok
    # +HTTPACTION URC, then the 124-byte JSON body
    urcs = [e for e in events if isinstance(e, Urc)]
    assert urcs[0].name == "+HTTPACTION" and urcs[0].args == ("1", "200", "124")
    (body,) = [e for e in events if isinstance(e, Payload)]
    assert body.source == "+HTTPREAD" and body.header == "+HTTPREAD: 124"
    assert len(body.data) == 124 and body.complete
    assert json.loads(body.data)["data"]["iotToken"] == "137eb0759ca248b79383a60c0b0e0f80"
    assert body.raw == body.data
    assert [u.name for u in urcs[1:]] == ["CONNECT OK", "CONNACK OK"]
    assert ("Echo", "AT+MCONNECT=1,120") in seq
    # the OK after HTTPREAD's body is a final result
    j = events.index(body)
    assert isinstance(events[j + 1], FinalResult) and events[j + 1].result == "OK"


def test_publish_subscribe_flow(sscom) -> None:
    events = parse_stream(sscom("seed_publish_subscribe"))
    assert [e.name for e in events if isinstance(e, Urc)] == ["PUBACK", "SUBACK"]
    cmds = [e.line for e in events if isinstance(e, CommandSent)]
    assert cmds[1] == 'AT+MPUB="/k1hipglLdjU/868488076506128/user/update",1,0,"HelloWorld"'
    assert sum(isinstance(e, FinalResult) and e.ok for e in events) == 4


def test_t01_whole_capture_and_stamps(sscom) -> None:
    chunks = sscom("T01")
    events = parse_stream(chunks)
    assert not [e for e in events if isinstance(e, UnknownLine | Garbage)]
    urc = next(e for e in events if isinstance(e, Urc) and e.name == "+HTTPACTION")
    # stamped with the chunk that carried the URC (03:10:18.025)
    assert urc.wall == pytest.approx(3 * 3600 + 10 * 60 + 18.025)
    names = [e.name for e in events if isinstance(e, Urc)]
    assert names.count("CONNACK OK") == 2 and "PUBACK" in names and "SUBACK" in names


def test_torn_connack_at_end_of_capture(sscom) -> None:
    chunks = sscom("seed_direct_mqtt")
    # make sure the last record really is torn (no CRLF after CONNACK OK)
    last = chunks[-1]
    chunks[-1] = (last[0], last[1].rstrip(b"\r\n"), last[2], last[3])
    events = parse_stream(chunks)
    assert isinstance(events[-1], Urc) and events[-1].name == "CONNACK OK"


def test_dynamic_register_flow(sscom) -> None:
    events = parse_stream(sscom("seed_dynamic_register"))
    (data,) = [e for e in events if isinstance(e, DataSent)]
    assert len(data.raw) == 120
    (body,) = [e for e in events if isinstance(e, Payload)]
    assert len(body.data) == 149
    assert json.loads(body.data)["data"]["deviceSecret"] == "fef32adf6dad46c2c7cbf335d3a7b021"


def test_t11_cr_only_echo() -> None:
    events = parse_stream(
        [
            (S, b"AT+CGMI\r", 0.0, 0.0),
            (R, b'AT+CGMI\r\r\n+CGMI: "AirM2M"\r\n\r\nOK\r\n', 0.1, 0.1),
            (S, b"AT+CSQ\r", 0.2, 0.2),
            (R, b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n", 0.3, 0.3),
        ]
    )
    assert kinds(events) == ["command", "echo", "info", "final"] * 2
    assert events[2].line == '+CGMI: "AirM2M"'
    assert events[1].raw == b"AT+CGMI"


# ---------------------------------------------------------------------------- boot and URCs


def test_t03_hotplug_and_boot_urcs(sscom) -> None:
    events = parse_stream(sscom("T03"))
    urcs = [(e.name, e.args) for e in events if isinstance(e, Urc)]
    assert ("+CPIN", ("SIM REMOVED 0",)) in urcs and ("+CPIN", ("READY 0",)) in urcs
    assert ("^MODE", ("0", "0")) in urcs and ("+NO Service", ()) in urcs
    assert ("+CGEV", ("NW PDN DEACT 1",)) in urcs and ("+CGEV", ("ME PDN ACT 1,0",)) not in urcs
    assert ("+CGEV", ("ME PDN ACT 1", "0")) in urcs
    # +CPIN: READY answering AT+CPIN? is an info line, +CME ERROR: 10 a final result
    infos = [e.line for e in events if isinstance(e, InfoLine)]
    assert "+CPIN: READY" in infos and "+SIMCROSS:1" in infos
    cme = [e for e in events if isinstance(e, FinalResult) and e.result == "+CME ERROR"]
    assert cme[0].code == 10 and cme[0].meaning == "SIM not inserted"
    assert not [e for e in events if isinstance(e, UnknownLine | Garbage)]


def test_t04_split_cgev_reset_and_garbage_before_rdy(sscom) -> None:
    events = parse_stream(sscom("T04"))
    cgev = [e for e in events if isinstance(e, Urc) and e.name == "+CGEV"]
    assert cgev[0].line == "+CGEV: ME PDN ACT 1" and cgev[0].args == ("ME PDN ACT 1",)
    # split over two chunks: stamped with the first one (15:00:03.830)
    assert cgev[0].wall == pytest.approx(15 * 3600 + 3.830)
    # AT+RESE sent, AT+RESET echoed
    i = next(i for i, e in enumerate(events) if isinstance(e, CommandSent) and e.line == "AT+RESE")
    assert isinstance(events[i + 1], Echo) and events[i + 1].line == "AT+RESET"
    assert isinstance(events[i + 2], FinalResult)
    assert isinstance(events[i + 3], Garbage)
    assert isinstance(events[i + 4], Urc) and events[i + 4].name == "RDY"
    assert not [e for e in events if isinstance(e, UnknownLine)]


def test_question_mark_noise_is_garbage() -> None:
    events = received(b"\r\nOK\r\n?\r\nRDY\r\n\x00\x00\r\n\xffRDY\r\n")
    assert kinds(events) == ["final", "garbage", "urc", "garbage", "garbage", "urc"]
    assert events[3].raw == b"\x00\x00" and events[4].raw == b"\xff"


def test_t05_boot_sapbr_ftp(sscom) -> None:
    events = parse_stream(sscom("T05"))
    urcs = [(e.name, e.args) for e in events if isinstance(e, Urc)]
    assert ("+FTPLIST", ("1", "1")) in urcs and ("+FTPGET", ("1", "1")) in urcs
    assert ("+NITZ", ("24/08/09", "01:34:58+32", "0")) in urcs
    infos = [e.line for e in events if isinstance(e, InfoLine)]
    assert '+SAPBR: 1,1,"10.222.163.213"' in infos
    ftpget = [e for e in events if isinstance(e, Payload) and e.source == "+FTPGET"]
    assert ftpget and ftpget[0].data == b"23noianfdiasfhnpqw39"


def test_t06_errors_cifsr_and_cipsend(console) -> None:
    events = received(console("T06"))
    finals = [e for e in events if isinstance(e, FinalResult)]
    assert any(e.code == 65535 and e.meaning == "other error" for e in finals)
    # ' ERROR' (leading space) after the mistyped AT+CIICRR
    i = next(i for i, e in enumerate(events) if isinstance(e, Echo) and e.line == "AT+CIICRR")
    assert isinstance(events[i + 1], FinalResult) and events[i + 1].result == "ERROR"
    assert events[i + 1].raw == b" ERROR"
    # AT+CIFSR answers the bare IP, no OK
    j = next(i for i, e in enumerate(events) if isinstance(e, Echo) and e.line == "AT+CIFSR")
    assert isinstance(events[j + 1], InfoLine) and events[j + 1].line == "10.17.70.180"
    assert isinstance(events[j + 2], Echo)
    pdp = next(e for e in events if isinstance(e, Urc) and e.name == "+PDP")
    assert pdp.args == ("DEACT",)
    k = next(i for i, e in enumerate(events) if isinstance(e, Echo) and e.line == "AT+CIPSEND")
    assert isinstance(events[k + 1], Prompt) and events[k + 1].prompt == ">"
    assert events[k + 1].raw == b"    >"
    accept = next(e for e in events if isinstance(e, FinalResult) and e.result == "DATA ACCEPT")
    assert accept.code == 8 and accept.ok
    names = [e.name for e in events if isinstance(e, Urc)]
    assert names.count("STATE") == 2 and "CONNECT FAIL" in names
    assert any(isinstance(e, FinalResult) and e.result == "SHUT OK" for e in events)


def test_t07_cache_mode_multiline_msub_and_767(console) -> None:
    events = received(console("T07"))
    slots = [e for e in events if isinstance(e, Urc) and e.name == "+MSUB" and e.payload is None]
    assert [e.args for e in slots] == [("0",), ("0",), ("0",), ("1",)]
    infos = [e.line for e in events if isinstance(e, InfoLine)]
    assert infos[:4] == [
        "+MQTTMSGGET: 0,VALID",
        "+MQTTMSGGET: 1,INVALID",
        "+MQTTMSGGET: 2,INVALID",
        "+MQTTMSGGET: 3,INVALID",
    ]
    cached = [e for e in events if isinstance(e, Payload)]
    assert cached[0].data == b"publish 1 payload" and cached[0].topic == "mqtt/pub_topic"
    json_msgs = [e for e in cached if e.topic == "mqtt/sub_topic"]
    assert len(json_msgs) == 3
    assert all(e.data == T07_JSON.encode() and len(e.data) == 20 for e in json_msgs)
    direct = [e for e in events if isinstance(e, Urc) and e.payload is not None]
    assert [(e.topic, e.payload) for e in direct] == [
        ("mqtt/pub_topic", b"publish 1 payload"),
        ("mqtt/sub_topic", b"123456"),
    ]
    assert direct[1].args == ("mqtt/sub_topic", "6 byte")
    i = next(i for i, e in enumerate(events) if isinstance(e, Urc) and e.name == "CLOSED")
    assert isinstance(events[i + 1], Echo) and events[i + 1].line == "AT+MIPCLOSE"
    err = events[i + 2]
    assert isinstance(err, FinalResult) and err.code == 767 and err.meaning == "operation failed"


def test_t08_sapbr_deact_then_601() -> None:
    block = next(b for b in blocks("T08") if b"+SAPBR 1: DEACT" in b)
    events = received(block)
    urcs = [(e.name, e.args) for e in events if isinstance(e, Urc)]
    i = urcs.index(("+SAPBR 1", ("DEACT",)))
    assert urcs[i + 1] == ("+HTTPACTION", ("0", "601", "0"))
    cme = [e for e in events if isinstance(e, FinalResult) and e.result == "+CME ERROR"]
    assert cme[0].code == 3


def test_t08_httpexget_and_head() -> None:
    ex = next(b for b in blocks("T08") if b"HTTPEXACTION" in b)
    events = received(ex)
    # the doc elides the 3880 announced bytes: the body runs to the end, incomplete
    i = next(i for i, e in enumerate(events) if isinstance(e, Urc) and e.name == "+HTTPEXGET")
    assert isinstance(events[i + 1], Echo) and events[i + 1].line == "AT+HTTPEXGET"
    body = events[i + 2]
    assert isinstance(body, Payload) and body.header == "+HTTPEXGET: 3880"
    assert not body.complete and body.data.endswith(b"+HTTPEXACTION: 0,200\r\n")


def test_t09_fswrite_prompt_and_msub(console) -> None:
    events = received(console("T09"))
    assert sum(isinstance(e, Prompt) and e.prompt == ">" for e in events) >= 3
    msgs = [e for e in events if isinstance(e, Urc) and e.name == "+MSUB"]
    assert msgs and all(m.payload == b"data from tcp server" for m in msgs)
    assert msgs[0].topic == "mqtt/pub"


def test_t12_fota_urcs(console) -> None:
    events = received(console("T12"))
    names = {e.name for e in events if isinstance(e, Urc)}
    assert {"+UPGRADEIND", "+QIND", "^boot.rom", "RDY", "^MODE", "+NITZ"} <= names
    qind = next(e for e in events if isinstance(e, Urc) and e.name == "+QIND")
    assert qind.args == ("FOTA", "START")
    fail = next(e for e in events if isinstance(e, Urc) and e.name == "+UPGRADEIND")
    assert fail.args == ("-1003",)
    # hand-edited '+CSQ:18' while AT+CPIN? is pending: an info line
    assert any(isinstance(e, InfoLine) and e.line == "+CSQ:18" for e in events)


# ---------------------------------------------------------------------------- classification rules


def test_cereg_info_when_answering_urc_otherwise(sscom) -> None:
    events = parse_stream(sscom("T02"))
    cereg = [(type(e).__name__, e.line) for e in events if "CEREG" in getattr(e, "line", "")]
    assert ("InfoLine", "+CEREG: 0,1") in cereg
    assert ("Urc", "+CEREG: 0") in cereg and ("Urc", "+CEREG: 1") in cereg
    assert ("Urc", '+CEREG: 1,"4844","01a2c315",7') in cereg
    assert ("InfoLine", '+CEREG: 2,1,"4844","0EA2D0CA",7') in cereg


def test_final_result_forms() -> None:
    wire = (
        b"OK\r\nERROR\r\n+CME ERROR: operation not allowed\r\n+CMS ERROR: 500\r\n"
        b"SHUT OK\r\nCLOSE OK\r\nSEND OK\r\nSEND FAIL\r\nDATA ACCEPT:0,12\r\n"
        b"1, SEND OK\r\nNO CARRIER\r\n+CME ERROR:4\r\n"
    )
    events = received(wire)
    assert all(isinstance(e, FinalResult) for e in events)
    got = [(e.result, e.code, e.detail) for e in events]
    assert got == [
        ("OK", None, None),
        ("ERROR", None, None),
        ("+CME ERROR", None, "operation not allowed"),
        ("+CMS ERROR", 500, None),
        ("SHUT OK", None, None),
        ("CLOSE OK", None, None),
        ("SEND OK", None, None),
        ("SEND FAIL", None, None),
        ("DATA ACCEPT", 12, None),
        ("SEND OK", None, None),
        ("NO CARRIER", None, None),
        ("+CME ERROR", 4, None),
    ]
    assert events[2].meaning == "operation not allowed"


def test_urc_forms() -> None:
    wire = (
        b"+SAPBR 1: DEACT\r\n+PDP DEACT\r\nTCP ERROR:3\r\nUDP ERROR: 2\r\n"
        b'+HTTPGETTOFS: 200,39968\r\n+HTTPEXPOST: 10\r\n+QIND: "FOTA","UPDATING",13\r\n'
        b"^boot.rom'v'!\r\n0, CONNECT OK\r\nALREADY CONNECT\r\nUNSUBACK\r\nPUBREC\r\nPUBCOMP\r\n"
        b"+CREG: 1\r\n+CGREG: 5\r\n"
    )
    got = [(e.name, e.args) for e in received(wire)]
    assert got == [
        ("+SAPBR 1", ("DEACT",)),
        ("+PDP DEACT", ()),
        ("TCP ERROR", ("3",)),
        ("UDP ERROR", ("2",)),
        ("+HTTPGETTOFS", ("200", "39968")),
        ("+HTTPEXPOST", ("10",)),
        ("+QIND", ("FOTA", "UPDATING", "13")),
        ("^boot.rom", ()),
        ("CONNECT OK", ("0",)),
        ("ALREADY CONNECT", ()),
        ("UNSUBACK", ()),
        ("PUBREC", ()),
        ("PUBCOMP", ()),
        ("+CREG", ("1",)),
        ("+CGREG", ("5",)),
    ]


def test_two_phase_mipstart_failure_state_urc() -> None:
    events = parse_stream(
        [
            (S, b'AT+MIPSTART="h",1883\r\n', 0, 0),
            (R, b'AT+MIPSTART="h",1883\r\n\r\nOK\r\n', 0, 0),
            (R, b"\r\nSTATE: IP STATUS\r\n\r\nCONNECT FAIL\r\n", 1, 1),
        ]
    )
    assert kinds(events) == ["command", "echo", "final", "urc", "urc"]
    assert events[3].args == ("IP STATUS",)


def test_unknown_vs_info_lines() -> None:
    events = parse_stream(
        [
            (R, b"\r\nhello\r\n", 0, 0),
            (S, b"AT+CGSN\r\n", 0, 0),
            (R, b"AT+CGSN\r\n\r\n359759002514931\r\n\r\nOK\r\n", 0, 0),
            (S, b"ATI\r\n", 0, 0),
            (R, b"ATI\r\n\r\nAirM2M_780EP_V1007_LTE_AT\r\n\r\nOK\r\n", 0, 0),
        ]
    )
    assert kinds(events) == ["unknown"] + ["command", "echo", "info", "final"] * 2
    assert events[3].line == "359759002514931"


def test_mqttstatu_space_before_colon_is_info() -> None:
    events = parse_stream(
        [(S, b"AT+MQTTSTATU\r", 0, 0), (R, b"AT+MQTTSTATU\r\r\n+MQTTSTATU :1\r\n\r\nOK\r\n", 0, 0)]
    )
    assert kinds(events) == ["command", "echo", "info", "final"]


def test_echo_off_info_line_starting_with_at_after_echo() -> None:
    # sent side known, echo already seen: a second AT-looking line is an answer
    events = parse_stream(
        [(S, b"AT+X\r\n", 0, 0), (R, b"AT+X\r\n\r\nATTENTION\r\n\r\nOK\r\n", 0, 0)]
    )
    assert kinds(events) == ["command", "echo", "info", "final"]


def test_split_args_quotes_and_commas() -> None:
    assert split_args('"a,b", c ,"d"') == ("a,b", "c", "d")
    assert split_args("") == ()
    assert split_args('1,"x"') == ("1", "x")
    assert split_args('"x",') == ("x", "")


# ---------------------------------------------------------------------------- bodies


def test_httpread_no_space_zero_and_lf_only() -> None:
    events = received(
        b"+HTTPREAD:5\r\nab\r\nc\r\nOK\r\n+HTTPREAD: 0\r\n\r\nOK\r\n+HTTPHEAD: 3\nxyz\nOK\n"
    )
    assert kinds(events) == ["payload", "final", "payload", "final", "payload", "final"]
    assert events[0].data == b"ab\r\nc" and events[0].header == "+HTTPREAD:5"
    assert events[2].data == b"" and events[2].complete
    assert events[4].data == b"xyz" and events[4].source == "+HTTPHEAD"


def test_ftplist_body_and_urc() -> None:
    events = received(b"\r\n+FTPLIST: 1,1\r\n+FTPLIST: 2,6\r\nl1\r\nl2\r\nOK\r\n")
    assert kinds(events) == ["urc", "payload", "final"]
    assert events[1].data == b"l1\r\nl2"


def test_httpexget_body_only_when_answering() -> None:
    events = parse_stream(
        [
            (R, b"\r\n+HTTPEXGET: 4\r\n", 0, 0),
            (S, b"AT+HTTPEXGET\r\n", 0, 0),
            (R, b"AT+HTTPEXGET\r\n\r\n+HTTPEXGET: 4\r\nab\r\n\r\nOK\r\n", 0, 0),
        ]
    )
    assert kinds(events) == ["urc", "command", "echo", "payload", "final"]
    assert events[3].data == b"ab\r\n"


def test_msub_old_firmware_forms() -> None:
    events = received(
        b"+MSUB: mqtt/topic,9 byte,SSSSddddd\r\n+MSUB:mqtt/sub_topic,6 byte,123456\r\n"
    )
    assert [(e.topic, e.payload) for e in events] == [
        ("mqtt/topic", b"SSSSddddd"),
        ("mqtt/sub_topic", b"123456"),
    ]
    assert events[0].raw == b"+MSUB: mqtt/topic,9 byte,SSSSddddd"


def test_msub_payload_with_crlf_and_zero_length() -> None:
    events = received(b'\r\n+MSUB: "a/b",7 byte,x\r\nOK\r\n\r\n+MSUB: "a/b",0 byte,\r\n')
    assert kinds(events) == ["urc", "urc"]
    assert events[0].payload == b"x\r\nOK\r\n"
    assert events[1].payload == b""


def test_msub_non_numeric_length_is_plain_urc() -> None:
    events = received(b'\r\n+MSUB: "a/b",abc byte,hello\r\n')
    assert kinds(events) == ["urc"]
    assert events[0].payload is None and events[0].args == ("a/b", "abc byte", "hello")


def test_ipd_body() -> None:
    events = received(b"\r\n+IPD,5:a\r\nbc\r\n+IPD,2,TCP:xy\r\n")
    assert [(e.name, e.payload) for e in events] == [("+IPD", b"a\r\nbc"), ("+IPD", b"xy")]


def test_incomplete_body_at_close() -> None:
    p = AtParser()
    assert p.feed_received(b"\r\n+HTTPREAD: 10\r\nabc", 1.0, 1.0) == []
    (ev,) = p.close(2.0, 2.0)
    assert isinstance(ev, Payload) and ev.data == b"abc" and not ev.complete
    assert ev.wall == 1.0
    p = AtParser()
    p.feed_received(b'+MSUB: "t",10 byte,abc', 1.0, 1.0)
    (ev,) = p.close(2.0, 2.0)
    assert isinstance(ev, Urc) and ev.payload == b"abc" and ev.topic == "t"


def test_huge_announced_length_is_not_framed() -> None:
    events = received(b"\r\n+HTTPREAD: 99999999\r\nabc\r\nOK\r\n")
    assert kinds(events) == ["unknown", "unknown", "final"]
    events = received(b'\r\n+MSUB: "t",999999999 byte,abc\r\n')
    assert kinds(events) == ["urc"] and events[0].payload is None


# ---------------------------------------------------------------------------- prompts and data


def test_mpubex_prompt_and_length_data() -> None:
    events = parse_stream(
        [
            (S, b'AT+MPUBEX="t",1,0,5\r\n', 0, 0),
            (R, b'AT+MPUBEX="t",1,0,5\r\n\r\n> ', 1, 1),
            (S, b"a\r\nbc", 2, 2),
            (S, b"\r\n", 2, 2),
            (R, b"\r\nOK\r\n\r\nPUBACK\r\n", 3, 3),
        ]
    )
    assert kinds(events) == ["command", "echo", "prompt", "data", "final", "urc"]
    assert events[2].raw == b">" and events[2].wall == 1
    assert events[3].raw == b"a\r\nbc" and events[3].for_command == 'AT+MPUBEX="t",1,0,5'


def test_cipsend_ctrl_z_and_escape() -> None:
    events = parse_stream(
        [
            (S, b"AT+CIPSEND\r\n", 0, 0),
            (R, b"AT+CIPSEND\r\n\r\n> ", 0, 0),
            (S, b"hello\x1a", 0, 0),
            (R, b"\r\nSEND OK\r\n", 0, 0),
            (S, b"AT+CIPSEND\r\n", 0, 0),
            (R, b"AT+CIPSEND\r\n>", 0, 0),
            (S, b"oops\x1b", 0, 0),
            (R, b"\r\nOK\r\n", 0, 0),
            (S, b"AT\r\n", 0, 0),
        ]
    )
    assert kinds(events) == ["command", "echo", "prompt", "data", "final"] * 2 + ["command"]
    assert events[3].raw == b"hello" and events[8].raw == b"oops"


def test_fswrite_and_indented_prompt_split_over_chunks() -> None:
    events = parse_stream(
        [
            (S, b'AT+FSWRITE="ca.crt",0,4,15\r\n', 0, 0),
            (R, b'AT+FSWRITE="ca.crt",0,4,15\r\n\r\n  ', 1, 1),
            (R, b"  >", 2, 2),
            (R, b" ", 3, 3),
            (S, b"abcd", 4, 4),
            (R, b"\r\nOK\r\n", 5, 5),
        ]
    )
    assert kinds(events) == ["command", "echo", "prompt", "data", "final"]
    assert events[2].raw == b"    >" and events[2].wall == 1


def test_data_sent_before_prompt_is_classified_by_length() -> None:
    p = AtParser()
    out = p.feed_sent(b"AT+HTTPDATA=4,1000\r\nab\r\n", 0, 0)
    out += p.feed_received(b"AT+HTTPDATA=4,1000\r\n\r\nDOWNLOAD\r\n\r\nOK\r\n", 1, 1)
    assert kinds(out) == ["command", "data", "echo", "prompt", "final"]
    assert out[1].raw == b"ab\r\n"


def test_failed_data_command_cancels_data_phase() -> None:
    events = parse_stream(
        [
            (S, b'AT+MPUBEX="t",1,0,5\r\n', 0, 0),
            (R, b'AT+MPUBEX="t",1,0,5\r\n\r\n+CME ERROR: 767\r\n', 0, 0),
            (S, b"AT+MQTTSTATU\r\n", 0, 0),
        ]
    )
    assert kinds(events) == ["command", "echo", "final", "command"]


REFUSED_DATA_COMMANDS = [
    (b"AT+HTTPDATA=5000,1000", b"ERROR"),  # DOWNLOAD phase, length out of range
    (b'AT+MPUBEX="t",0,0,50', b"+CME ERROR: 767"),  # '>' phase, MQTT down
    (b"AT+CIPSEND=5", b"ERROR"),  # '>' phase, no link
]


@pytest.mark.parametrize(("line", "final"), REFUSED_DATA_COMMANDS)
@pytest.mark.parametrize("echo", [True, False], ids=["ATE1", "ATE0"])
def test_refused_data_command_sent_with_cr_cr_lf_ends_the_data_phase(
    line: bytes, final: bytes, echo: bool
) -> None:
    # Audit item 8: the CR LF after the CR used to start the data phase, so the
    # refusal did not cancel it and the next command was taken as payload.
    echoed = line + b"\r\r\n" if echo else b""
    nxt = b"AT\r\n" if echo else b""
    events = parse_stream(
        [
            (S, line + b"\r\r\n", 0, 0),
            (R, echoed + final + b"\r\n", 1, 1),  # the simulator's exact bytes
            (S, b"AT\r\n", 2, 2),
            (R, nxt + b"\r\nOK\r\n", 3, 3),
        ]
    )
    expected = ["command", "echo", "final", "command", "echo", "final"]
    assert kinds(events) == (expected if echo else ["command", "final", "command", "final"])
    assert not [e for e in events if isinstance(e, DataSent)]
    assert [e.line for e in events if isinstance(e, CommandSent)] == [line.decode(), "AT"]


def test_refused_data_command_returns_early_data_to_the_command_parser() -> None:
    # bytes written before the module refused the data phase are what its AT
    # interpreter reads next: commands, not payload
    events = parse_stream(
        [
            (S, b'AT+MPUBEX="t",0,0,20\r\nAT+CSQ\r\n', 0, 0),
            (R, b'AT+MPUBEX="t",0,0,20\r\n\r\n+CME ERROR: 767\r\n', 1, 1),
            (R, b"AT+CSQ\r\n\r\n+CSQ: 25,0\r\n\r\nOK\r\n", 2, 2),
        ]
    )
    assert kinds(events) == ["command", "echo", "final", "command", "echo", "info", "final"]
    assert events[3].line == "AT+CSQ" and events[3].mono == 0


def test_final_result_after_the_prompt_ends_a_short_data_phase() -> None:
    # fewer bytes than announced: the module's timer expires, it answers OK and reads
    # commands again; the bytes sent so far are one (short) DataSent
    events = parse_stream(
        [
            (S, b"AT+HTTPDATA=10,1000\r\n", 0, 0),
            (R, b"AT+HTTPDATA=10,1000\r\n\r\nDOWNLOAD\r\n", 1, 1),
            (S, b"abc", 2, 2),
            (R, b"\r\nOK\r\n", 3, 3),
            (S, b"AT\r\n", 4, 4),
            (R, b"AT\r\n\r\nOK\r\n", 5, 5),
        ]
    )
    first, then = ["command", "echo", "prompt", "data", "final"], ["command", "echo", "final"]
    assert kinds(events) == [*first, *then]
    assert events[3].raw == b"abc" and events[3].mono == 2


def test_accepted_data_command_with_cr_cr_lf_takes_the_crlf_as_data() -> None:
    # like the module (and the simulator): the command ends at the first CR, the
    # CR LF after it are the first two data bytes
    events = parse_stream(
        [
            (S, b"AT+HTTPDATA=5,1000\r\r\n", 0, 0),
            (R, b"AT+HTTPDATA=5,1000\r\r\nDOWNLOAD\r\n", 1, 1),
            (S, b"abcde", 2, 2),
            (R, b"\r\nOK\r\nde", 3, 3),
        ]
    )
    assert kinds(events)[:5] == ["command", "echo", "prompt", "data", "final"]
    assert events[3].raw == b"\r\nabc"


def test_sent_side_line_endings() -> None:
    p = AtParser()
    out = p.feed_sent(b"AT\r", 0, 0)
    out += p.feed_sent(b"\nATI\n\nAT+CSQ\r\r\n", 0, 0)
    assert [e.line for e in out] == ["AT", "ATI", "AT+CSQ"]
    assert p.feed_sent(b"AT+CGM", 0, 0) == []
    (ev,) = p.close(1, 1)
    assert isinstance(ev, CommandSent) and ev.line == "AT+CGM"


def test_httpdata_zero_and_query_have_no_data_phase() -> None:
    events = parse_stream([(S, b"AT+HTTPDATA=0,1000\r\nAT+HTTPDATA=?\r\nAT\r\n", 0, 0)])
    assert [e.line for e in events] == ["AT+HTTPDATA=0,1000", "AT+HTTPDATA=?", "AT"]


def test_gt_is_not_a_prompt_without_prompt_command() -> None:
    events = received(b"\r\n> not a prompt\r\n")
    assert kinds(events) == ["unknown"]


# ---------------------------------------------------------------------------- malformed input


def test_binary_junk_and_nuls_never_raise() -> None:
    events = received(b"\x00\x01\xff\xfe\r\n\x00OK\x00\r\n\xc3\r\n")
    assert all(isinstance(e, Garbage) for e in events)
    assert b"".join(e.raw for e in events) == b"\x00\x01\xff\xfe\x00OK\x00\xc3"


def test_huge_line_is_capped() -> None:
    p = AtParser()
    out: list[Event] = []
    for _ in range(40):
        out += p.feed_received(b"x" * 4096, 0, 0)
    assert len(p._rbuf) <= MAX_LINE
    out += p.feed_received(b"\r\nOK\r\n", 0, 0)
    assert [e.kind for e in out] == ["garbage", "garbage", "garbage", "final"]
    assert sum(len(e.raw) for e in out[:3]) == 40 * 4096


def test_huge_sent_line_is_capped() -> None:
    p = AtParser()
    out: list[Event] = []
    for _ in range(40):
        out += p.feed_sent(b"A" * 4096, 0, 0)
    assert len(p._sbuf) <= MAX_LINE
    out += p.feed_sent(b"\r", 0, 0)
    assert sum(len(e.raw) for e in out) == 40 * 4096


def test_feed_dispatch_and_empty_chunks() -> None:
    p = AtParser()
    assert p.feed(S, b"", 0, 0) == [] and p.feed(R, b"", 0, 0) == []
    assert kinds(p.feed("sent", b"AT\r", 0, 0)) == ["command"]
    assert kinds(p.feed("received", b"AT\r\r\nOK\r\n", 0, 0)) == ["echo", "final"]


def test_received_only_stream_tracks_commands_from_echo() -> None:
    events = received(b"AT+CEREG?\r\n\r\n+CEREG: 0,1\r\n\r\nOK\r\n\r\n+CEREG: 1\r\n")
    assert kinds(events) == ["echo", "info", "final", "urc"]


def test_cpin_ready_urc_when_not_answering() -> None:
    events = received(b"\r\n+CPIN: READY\r\n")
    assert kinds(events) == ["urc"] and events[0].args == ("READY",)


def test_cgreg_answering_cereg_on_780epv_is_info() -> None:
    events = parse_stream(
        [(S, b"AT+CEREG?\r\n", 0, 0), (R, b"\r\n+CGREG: 0,5\r\n\r\nOK\r\n", 0, 0)]
    )
    assert kinds(events) == ["command", "info", "final"]
