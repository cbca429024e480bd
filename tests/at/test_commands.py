"""Command builders: exact strings of the tutorial captures, escapes, sizes, errors."""

from __future__ import annotations

import pytest

from airlab.at import commands as c
from airlab.errors import UsageError


def test_tutorial_strings() -> None:
    assert (
        c.mpub("/k1hipglLdjU/868488076506128/user/update", 1, 0, "HelloWorld")
        == 'AT+MPUB="/k1hipglLdjU/868488076506128/user/update",1,0,"HelloWorld"'
    )
    assert c.mconnect(1, 120) == "AT+MCONNECT=1,120" == c.mconnect()
    assert (
        c.msub("/k1hipglLdjU/868488076506128/user/get", 0)
        == 'AT+MSUB="/k1hipglLdjU/868488076506128/user/get",0'
    )
    assert (
        c.httppara("USER_DEFINED", "Content-type: application/x-www-form-urlencoded")
        == 'AT+HTTPPARA="USER_DEFINED","Content-type: application/x-www-form-urlencoded"'
    )
    assert (
        c.mipstart("k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883, tls=True)
        == 'AT+SSLMIPSTART="k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883'
    )
    assert c.mipstart("lbsmqtt.airm2m.com", 1884) == 'AT+MIPSTART="lbsmqtt.airm2m.com",1884'
    assert (
        c.mconfig(
            "868488076506128|securemode=3,signmethod=hmacmd5|",
            "868488076506128&k1hipglLdjU",
            "0f655b12adf519b9a7a2b0a990f398b6",
        )
        == 'AT+MCONFIG="868488076506128|securemode=3,signmethod=hmacmd5|",'
        '"868488076506128&k1hipglLdjU","0f655b12adf519b9a7a2b0a990f398b6"'
    )
    assert c.sapbr(3, 1, "CONTYPE", "GPRS") == 'AT+SAPBR=3,1,"CONTYPE","GPRS"'
    assert c.sapbr(3, 1, "APN", "CMIOT") == 'AT+SAPBR=3,1,"APN","CMIOT"'
    assert c.sapbr(1, 1) == "AT+SAPBR=1,1" and c.sapbr(2) == "AT+SAPBR=2,1"
    assert c.httpinit() == "AT+HTTPINIT" and c.httpterm() == "AT+HTTPTERM"
    assert (
        c.httppara(
            "URL", "https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename", quote_value=False
        )
        == 'AT+HTTPPARA="URL",https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename'
    )
    assert c.httpaction(1) == "AT+HTTPACTION=1" == c.httpaction("post")
    assert c.httpread() == "AT+HTTPREAD" and c.httpread(0, 3072) == "AT+HTTPREAD=0,3072"
    assert c.mqttmsgset(0) == "AT+MQTTMSGSET=0" and c.mqttmsgget() == "AT+MQTTMSGGET"
    assert c.mqttstatu() == "AT+MQTTSTATU"
    assert c.mdisconnect() == "AT+MDISCONNECT" and c.mipclose() == "AT+MIPCLOSE"
    assert c.cmee(1) == "AT+CMEE=1" and c.ate(True) == "ATE1" and c.ate(0) == "ATE0"
    assert c.at("+CGATT?") == "AT+CGATT?" and c.at("AT+CSQ") == "AT+CSQ"
    assert c.munsub("a/b") == 'AT+MUNSUB="a/b"'
    assert c.mqttmode(1) == "AT+MQTTMODE=1"


def test_httpdata_tutorial_body_is_112_bytes() -> None:
    body = (
        "productKey=k1hipglLdjU&sign=0f655b12adf519b9a7a2b0a990f398b6"
        "&clientId=868488076506128&deviceName=868488076506128"
    )
    line, data = c.httpdata(body)
    assert line == "AT+HTTPDATA=112,20000" and data == body.encode()


def test_httpdata_counts_bytes_not_characters() -> None:
    line, data = c.httpdata("中文", timeout_ms=10000)
    assert line == "AT+HTTPDATA=6,10000" and len(data) == 6
    assert c.httpdata(b"\x00\xff") == ("AT+HTTPDATA=2,20000", b"\x00\xff")


def test_httpdata_size_limit() -> None:
    c.httpdata("x" * 3356)
    with pytest.raises(UsageError) as exc:
        c.httpdata("x" * 3357)
    assert exc.value.field == "body"
    assert c.httpdata("x" * 5000, max_size=130048)[0] == "AT+HTTPDATA=5000,20000"
    with pytest.raises(UsageError) as exc:
        c.httpdata("x", timeout_ms=10)
    assert exc.value.field == "timeout_ms"


def test_mpub_escapes() -> None:
    assert c.escape_mpub('a"b\r\n\\c') == "a\\22b\\0D\\0A\\5Cc"
    assert c.escape_mpub(b'{"k":1}') == "{\\22k\\22:1}"
    assert c.mpub("t", 0, 0, '{"a":1}') == 'AT+MPUB="t",0,0,"{\\22a\\22:1}"'
    assert c.mpub("t", 2, True, "x") == 'AT+MPUB="t",2,1,"x"'
    with pytest.raises(UsageError) as exc:
        c.escape_mpub(b"\xff\xfe")
    assert exc.value.field == "message" and "hex" in exc.value.message


def test_mpub_hex_mode() -> None:
    assert c.hex_message(b"123") == "313233"
    assert c.hex_message("中") == "E4B8AD"
    assert c.mpub("t", 0, 0, b"\x00\xff", hex_mode=True) == 'AT+MPUB="t",0,0,"00FF"'


def test_mpub_size_limit_after_escaping() -> None:
    c.mpub("t", 0, 0, "x" * 4100)
    with pytest.raises(UsageError) as exc:
        c.mpub("t", 0, 0, "x" * 4101)
    assert exc.value.field == "message" and "mpubex" in exc.value.message
    # each '"' becomes 3 bytes as written
    with pytest.raises(UsageError):
        c.mpub("t", 0, 0, '"' * 1400)
    assert c.mpub("t", 0, 0, "x" * 3000, max_size=3000).endswith('"')
    with pytest.raises(UsageError):
        c.mpub("t", 0, 0, "x" * 2385, max_size=2384)


def test_mpubex() -> None:
    assert c.mpubex("t", 1, 0, 5) == 'AT+MPUBEX="t",1,0,5'
    assert c.mpubex("t", 0, 0) == 'AT+MPUBEX="t",0,0'
    with pytest.raises(UsageError) as exc:
        c.mpubex("t", 0, 0, 0)
    assert exc.value.field == "length"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: c.mpub("t", 3, 0, "x"), "qos"),
        (lambda: c.mpub("t", 0, 2, "x"), "retain"),
        (lambda: c.mpub("", 0, 0, "x"), "topic"),
        (lambda: c.mpub('a"b', 0, 0, "x"), "topic"),
        (lambda: c.msub("t", -1), "qos"),
        (lambda: c.mconnect(2, 120), "clean_session"),
        (lambda: c.mconnect(1, 0), "keepalive"),
        (lambda: c.mconnect(1, 65536), "keepalive"),
        (lambda: c.mconfig('a"b', "u", "p"), "client_id"),
        (lambda: c.mconfig("id", 'u"', "p"), "username"),
        (lambda: c.mconfig("id", "u", 'p"'), "password"),
        (lambda: c.mconfig("", "u", "p"), "client_id"),
        (lambda: c.mipstart("h", 0), "port"),
        (lambda: c.mipstart("", 1883), "host"),
        (lambda: c.httpaction("PUT"), "method"),
        (lambda: c.httpaction(3), "method"),
        (lambda: c.httpread(0), "size"),
        (lambda: c.sapbr(5), "cmd_type"),
        (lambda: c.sapbr(3, 1, "FOO", "x"), "tag"),
        (lambda: c.sapbr(3, 4, "APN", "x"), "cid"),
        (lambda: c.cmee(3), "n"),
        (lambda: c.ate(2), "on"),
        (lambda: c.mqttmsgset(2), "mode"),
        (lambda: c.at("AT\r\nAT"), "cmd"),
        (lambda: c.httppara("URL", 'a"b'), "value"),
        (lambda: c.mconnect(1, "120"), "keepalive"),
    ],
)
def test_errors_name_the_field(call, field: str) -> None:
    with pytest.raises(UsageError) as exc:
        call()
    assert exc.value.field == field


def test_quote_refuses_embedded_quote_and_points_to_escapes() -> None:
    assert c.quote("abc") == '"abc"' and c.quote(5) == '"5"'
    with pytest.raises(UsageError) as exc:
        c.quote('say "hi"')
    assert "\\22" in exc.value.message and "escape_mpub" in exc.value.message
