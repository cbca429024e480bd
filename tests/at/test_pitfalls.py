"""airlab.at.pitfalls: each tutorial warning found (and only where it applies), with its
line, its Chinese warning and a fix, and never a secret in a finding."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from airlab.at.formats import read_capture
from airlab.at.formats.sscom import parse_sscom
from airlab.at.pitfalls import (
    MCONNECT_WINDOW,
    PITFALLS,
    Finding,
    check_transcript,
    events_with_lines,
    format_findings,
)
from airlab.at.transcript import Transcript

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "data" / "captures"
BROKEN = ROOT / "data" / "broken_captures"

#: broken capture -> the warnings it must show (the HTTPS-auth ones also use the
#: tutorial's other-product host)
EXPECTED = {
    "log_a.log": {"httpdata-length", "mqtt-host"},
    "log_b.log": {"typed-not-copied"},
    "log_c.log": {"content-type-space", "mqtt-host"},
    "log_d.log": {"mconnect-late"},
    "log_e.txt": {"qos1-in-flight"},
    "log_f.log": {"cgatt-before-sapbr", "httpaction-status"},
    "log_g.log": {"mconfig-order", "mqtt-host"},
    "log_h.log": {"mqtt-host"},
    "log_i.log": {"httpaction-status"},
}
SECRETS = (
    "fef32adf6dad46c2c7cbf335d3a7b021",  # DeviceSecret
    "8LQwOYSZMwp3DFBd",  # ProductSecret
    "137eb0759ca248b79383a60c0b0e0f80",  # iotToken
    "0f655b12adf519b9a7a2b0a990f398b6",  # HTTPS sign / MQTT password
    "20558baadb2a0b04847767980f0ee67b",  # register sign
)


def sscom(text: str) -> Transcript:
    return parse_sscom(text, date="2024-07-22")


def ids(t: Transcript) -> list[str]:
    return [f.id for f in check_transcript(t)]


def test_every_pitfall_has_a_broken_capture() -> None:
    shown = set().union(*EXPECTED.values())
    assert shown == set(PITFALLS)
    assert sorted(p.name for p in BROKEN.iterdir() if p.suffix in (".log", ".txt")) == sorted(
        EXPECTED
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_capture_shows_its_pitfall(name: str) -> None:
    t = read_capture(BROKEN / name)
    assert t.format == ("llcom" if name.endswith(".txt") else "sscom")
    assert not t.unparsed()
    findings = check_transcript(t)
    assert {f.id for f in findings} == EXPECTED[name]
    for f in findings:
        assert f.line is not None and f.line > 0
        assert f.warning_zh == PITFALLS[f.id].warning_zh and f.fix == PITFALLS[f.id].fix
        assert f.explanation and "\n" not in f.explanation


@pytest.mark.parametrize("name", sorted(p.name for p in SEEDS.glob("seed_*.log")))
def test_tutorial_captures(name: str) -> None:
    # honest: the tutorial's HTTPS-auth capture logs in through another product's host
    want = ["mqtt-host"] if name == "seed_http_auth_then_mqtt.log" else []
    assert ids(read_capture(SEEDS / name)) == want


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_secret_in_findings(name: str) -> None:
    # the unredacted source: the findings of the seed-based edits must mask what they show
    text = (BROKEN / name).read_text(encoding="utf-8")
    assert not any(s in text for s in SECRETS)
    findings = check_transcript(read_capture(BROKEN / name))
    report = format_findings(findings)
    assert not any(s in report for s in SECRETS)


def test_no_secret_from_an_unredacted_capture() -> None:
    t = read_capture(SEEDS / "seed_http_auth_then_mqtt.log")
    swapped = Transcript(records=[], format="sscom")
    for r in t.records:
        data = r.data.replace(
            b'"2BGmgWFvoXlbi1Er9sk4k1hip0","137eb0759ca248b79383a60c0b0e0f80"',
            b'"137eb0759ca248b79383a60c0b0e0f80","2BGmgWFvoXlbi1Er9sk4k1hip0"',
        )
        swapped.append(dataclasses.replace(r, data=data))
    findings = check_transcript(swapped)
    assert "mconfig-order" in {f.id for f in findings}
    text = format_findings(findings) + "".join(f.explanation for f in findings)
    assert not any(s in text for s in SECRETS)


def test_finding_is_frozen_and_prints_its_line() -> None:
    f = check_transcript(read_capture(BROKEN / "log_d.log"))[0]
    assert isinstance(f, Finding)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.id = "x"  # type: ignore[misc]
    assert str(f).startswith(f"line {f.line}: [mconnect-late]")
    assert "6.4 s" in f.explanation


def test_lines_follow_the_log() -> None:
    t = read_capture(BROKEN / "log_a.log")
    events, lines = events_with_lines(t)
    assert len(events) == len(lines)
    (f,) = [f for f in check_transcript(t) if f.id == "httpdata-length"]
    src = (BROKEN / "log_a.log").read_text(encoding="utf-8").splitlines()
    assert "AT+HTTPDATA=110,20000" in src[f.line - 1]
    assert "110" in f.explanation and "112" in f.explanation and "2 byte" in f.explanation


# ---------------------------------------------------------------------------- variants

HTTP_HEAD = (
    "[03:10:05.246]发→◇AT+HTTPDATA={n},20000\n\n"
    "[03:10:05.249]收←◆AT+HTTPDATA={n},20000\n\nDOWNLOAD\n\n"
    "[03:10:10.735]发→◇productKey=pk&clientId=dn&deviceName=dn\n\n"
)


def test_httpdata_announced_too_many() -> None:
    (f,) = check_transcript(sscom(HTTP_HEAD.format(n=45)))
    assert f.id == "httpdata-length" and "45" in f.explanation and "39" in f.explanation


def test_httpdata_right_length_is_fine() -> None:
    assert ids(sscom(HTTP_HEAD.format(n=39))) == []


@pytest.mark.parametrize(
    ("header", "found"),
    [
        ("Content-type: application/x-www-form-urlencoded", False),
        ("Content-Type: application/x-www-form-urlencoded", False),
        ("Content-type:application/x-www-form-urlencoded", True),
        ("content-type:text/plain", True),
    ],
)
def test_content_type(header: str, found: bool) -> None:
    t = sscom(f'[03:09:57.667]发→◇AT+HTTPPARA="USER_DEFINED","{header}"\n\n')
    assert (ids(t) == ["content-type-space"]) is found


def _link(gap: float, closed: bool = False) -> Transcript:
    t = Transcript()
    t.add("sent", b'AT+SSLMIPSTART="pk.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883\r\n', 0.0, 0.0)
    t.add(
        "received", b'AT+SSLMIPSTART="pk.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883\r\n', 0.0, 0.0
    )
    t.add("received", b"\r\nOK\r\n", 0.01, 0.01)
    t.add("received", b"\r\nCONNECT OK\r\n", 1.0, 1.0)
    if closed:
        t.add("received", b"\r\nCLOSED\r\n", 1.0 + gap / 2, 1.0 + gap / 2)
    t.add("sent", b"AT+MCONNECT=1,120\r\n", 1.0 + gap, 1.0 + gap)
    return t


def test_mconnect_in_time_is_fine() -> None:
    assert ids(_link(3.1)) == []  # the tutorial's own direct capture waited 3.1 s


def test_mconnect_late() -> None:
    (f,) = check_transcript(_link(MCONNECT_WINDOW + 0.5))
    assert f.id == "mconnect-late" and "5.5 s" in f.explanation


def test_mconnect_after_closed() -> None:
    (f,) = check_transcript(_link(2.0, closed=True))
    assert f.id == "mconnect-late" and "CLOSED" in f.explanation


def test_mconnect_window_is_a_parameter() -> None:
    assert [f.id for f in check_transcript(_link(3.1), window=2.0)] == ["mconnect-late"]


def _pubs(*chunks: tuple[str, bytes]) -> Transcript:
    t = Transcript()
    for k, (d, data) in enumerate(chunks):
        t.add(d, data, float(k), float(k))
    return t


MPUB1 = b'AT+MPUB="/pk/dn/user/update",1,0,"a"\r\n'
MPUB0 = b'AT+MPUB="/pk/dn/user/update",0,0,"a"\r\n'


def test_qos1_after_puback_is_fine() -> None:
    t = _pubs(
        ("sent", MPUB1),
        ("received", MPUB1 + b"\r\nOK\r\n"),
        ("received", b"\r\nPUBACK\r\n"),
        ("sent", MPUB1),
    )
    assert ids(t) == []


def test_qos0_while_qos1_in_flight_is_fine() -> None:
    t = _pubs(("sent", MPUB1), ("received", MPUB1 + b"\r\nOK\r\n"), ("sent", MPUB0))
    assert ids(t) == []


def test_qos1_refused_first_frees_the_slot() -> None:
    t = _pubs(("sent", MPUB1), ("received", MPUB1 + b"\r\nERROR\r\n"), ("sent", MPUB1))
    assert ids(t) == []


def test_qos1_in_flight() -> None:
    t = _pubs(("sent", MPUB1), ("received", MPUB1 + b"\r\nOK\r\n"), ("sent", MPUB1))
    (f,) = check_transcript(t)
    assert f.id == "qos1-in-flight"


def test_sapbr_after_cgatt_is_fine() -> None:
    t = _pubs(
        ("sent", b"AT+CGATT?\r\n"),
        ("received", b"AT+CGATT?\r\n\r\n+CGATT: 1\r\n\r\nOK\r\n"),
        ("sent", b"AT+SAPBR=1,1\r\n"),
    )
    assert ids(t) == []


def test_sapbr_without_asking() -> None:
    (f,) = check_transcript(_pubs(("sent", b"AT+SAPBR=1,1\r\n"), ("sent", b"AT+SAPBR=2,1\r\n")))
    assert f.id == "cgatt-before-sapbr" and "never asked" in f.explanation


DIRECT_OK = (
    b'AT+MCONFIG="dn|securemode=3,signmethod=hmacmd5|","dn&pk",'
    b'"0f655b12adf519b9a7a2b0a990f398b6"\r\n'
)


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (DIRECT_OK, False),
        (b'AT+MCONFIG="dn&pk","dn|securemode=3|","0f655b12adf519b9a7a2b0a990f398b6"\r\n', True),
        (b'AT+MCONFIG="dn|securemode=3|","0f655b12adf519b9a7a2b0a990f398b6","dn&pk"\r\n', True),
    ],
)
def test_mconfig_direct_order(line: bytes, found: bool) -> None:
    findings = check_transcript(_pubs(("sent", line)))
    assert ("mconfig-order" in {f.id for f in findings}) is found
    assert not any("0f655b12" in f.excerpt for f in findings)


def test_host_follows_the_mconfig_product() -> None:
    ok = _pubs(
        ("sent", DIRECT_OK),
        ("sent", b'AT+SSLMIPSTART="pk.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883\r\n'),
    )
    bad = _pubs(
        ("sent", DIRECT_OK),
        ("sent", b'AT+SSLMIPSTART="other.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883\r\n'),
    )
    assert ids(ok) == [] and ids(bad) == ["mqtt-host"]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('AT+MCONFIG=\u201cdn\u201d,"dn&pk","x"', "LEFT DOUBLE QUOTATION MARK"),
        ('AT+SAPBR=3,1,"APN","CMI\u041eT"', "CYRILLIC CAPITAL LETTER O"),
        ("AT+MCONNECT=1, 120", "space outside the quotes"),
        ("AT +MCONNECT=1,120", "space outside the quotes"),
        ("AT+HTTPACTION=1 ", "start or end"),
        ("AT+SAPBR=1\uff0c1", "FULLWIDTH COMMA"),
    ],
)
def test_typed_not_copied(line: str, needle: str) -> None:
    t = _pubs(("sent", line.encode() + b"\r\n"))
    found = [f for f in check_transcript(t) if f.id == "typed-not-copied"]
    assert len(found) == 1 and needle in found[0].explanation


def test_spaces_inside_quotes_are_fine() -> None:
    line = b'AT+HTTPPARA="USER_DEFINED","Content-type: application/x-www-form-urlencoded"\r\n'
    assert ids(_pubs(("sent", line))) == []


def test_body_with_a_space() -> None:
    t = sscom(
        "[03:10:05.246]发→◇AT+HTTPDATA=10,20000\n\n"
        "[03:10:05.249]收←◆AT+HTTPDATA=10,20000\n\nDOWNLOAD\n\n"
        "[03:10:10.735]发→◇a=1& b=2&c\n\n"
    )
    (f,) = check_transcript(t)
    assert f.id == "typed-not-copied" and "form body" in f.explanation


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (b"\r\n+HTTPACTION: 1,601,0\r\n", "601: network error"),
        (b"\r\n+HTTPACTION: 1,603,0\r\n", "DNS"),
        (b"\r\n+HTTPACTION: 1,404,0\r\n", "no such path"),
    ],
)
def test_httpaction_status(reply: bytes, needle: str) -> None:
    t = _pubs(("sent", b"AT+HTTPACTION=1\r\n"), ("received", b"AT+HTTPACTION=1\r\n\r\nOK\r\n"))
    t.add("received", reply, 5.0, 5.0)
    (f,) = check_transcript(t)
    assert f.id == "httpaction-status" and needle in f.explanation


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"code":401,"message":"request auth error"}', "sign does not match"),
        (b'{"code":460,"message":"param error"}', "动态注册"),
        (b'{"code":5001,"message":"meta device not found"}', "no such productKey"),
    ],
)
def test_cloud_code_in_the_reply(body: bytes, needle: str) -> None:
    t = _pubs(
        ("sent", b"AT+HTTPREAD\r\n"),
        ("received", b"AT+HTTPREAD\r\n\r\n+HTTPREAD: %d\r\n" % len(body) + body + b"\r\nOK\r\n"),
    )
    (f,) = check_transcript(t)
    assert f.id == "httpaction-status" and needle in f.explanation


def test_format_findings_empty_and_full() -> None:
    assert format_findings([]) == "no warning of the tutorial found"
    text = format_findings(check_transcript(read_capture(BROKEN / "log_h.log")))
    assert "tutorial: 注意,第一个参数需要根据实际项目productKey修改" in text and "fix:" in text
    assert "fix:" not in format_findings(
        check_transcript(read_capture(BROKEN / "log_h.log")), fixes=False
    )
