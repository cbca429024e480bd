"""Exact answers of the simulated firmware, command by command."""

from __future__ import annotations

import datetime as dt

import pytest

from airlab.sim.actions import (
    CloseLink,
    HttpRequest,
    HttpResult,
    LinkClosed,
    LinkFailed,
    LinkOpened,
    MqttConnack,
    MqttConnect,
    MqttDisconnect,
    MqttMessage,
    MqttPuback,
    MqttPubcomp,
    MqttPublish,
    MqttPubrec,
    MqttSuback,
    MqttSubscribe,
    MqttUnsuback,
    MqttUnsubscribe,
    OpenLink,
    PdpLost,
    StartTimer,
    ToHost,
)
from airlab.sim.cmdline import ArgError, parse_command, split_args
from airlab.sim.firmware import Firmware, FirmwareConfig

UTC = dt.UTC
OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


def answer(drv, cmd: bytes) -> bytes:
    """Output after the echo of ``cmd`` (echo checked)."""
    out = drv.send(cmd)
    assert out.startswith(cmd), out
    return out[len(cmd) :]


# ---------------------------------------------------------------- framing and echo


def test_cgmi_cr_only_exact(drv):
    assert drv.send(b"AT+CGMI\r") == b'AT+CGMI\r\r\n+CGMI: "AirM2M"\r\n\r\nOK\r\n'


def test_crlf_echo_and_answer(drv):
    assert drv.send(b"AT+CGATT?\r\n") == b"AT+CGATT?\r\n\r\n+CGATT: 1\r\n\r\nOK\r\n"


def test_lf_only_terminator(drv):
    assert drv.send(b"AT\n") == b"AT\n\r\nOK\r\n"


@pytest.mark.parametrize("term", [b"\r", b"\r\n", b"\n"])
def test_byte_at_a_time_same_stream(make_driver, term):
    script = b"AT+CGMI" + term + b"ATI" + term + b"AT+CSQ" + term
    whole = make_driver().send(script)
    d = make_driver()
    for i in range(len(script)):
        d.send(script[i : i + 1])
    if term == b"\r\n":
        # the LF arrives in a later chunk than its CR: it is an empty line (not echoed)
        assert bytes(d.out) == make_driver().send(script.replace(b"\r\n", b"\r"))
    else:
        assert bytes(d.out) == whole


def test_partial_line_echoed_per_chunk(drv):
    assert drv.send(b"AT+CG") == b"AT+CG"
    assert drv.send(b"MM\r\n") == b'MM\r\n\r\n+CGMM: "Air780EP"\r\n\r\nOK\r\n'


def test_empty_lines_ignored_silently(drv):
    assert drv.send(b"\r\n\r\n\n\r") == b""
    assert drv.send(b"\r\nAT\r\n") == b"AT\r\n" + OK


def test_lowercase_and_leading_garbage(drv):
    assert drv.send(b"at\r") == b"at\r" + OK
    assert drv.send(b"xyzAT+CGMI\r") == b'xyzAT+CGMI\r\r\n+CGMI: "AirM2M"\r\n' + OK
    assert drv.send(b"ATi\r") == b"ATi\r\r\nAirM2M_780EP_V1007_LTE_AT\r\n" + OK


def test_non_at_line(make_driver):
    assert make_driver().send(b"hello\r") == b"hello\r"
    assert make_driver(non_at_line="error").send(b"hello\r") == b"hello\r" + ERROR


def test_echo_off_on(drv, make_driver):
    assert drv.send(b"ATE0\r") == b"ATE0\r" + OK
    assert drv.send(b"AT\r") == OK
    assert drv.send(b"ATE1\r") == OK
    assert drv.send(b"AT\r") == b"AT\r" + OK
    assert make_driver(echo=False).send(b"AT+CGMI\r") == b'\r\n+CGMI: "AirM2M"\r\n' + OK


def test_unknown_command_and_bad_forms(drv):
    assert answer(drv, b"AT+CIICRR\r\n") == ERROR
    assert answer(drv, b"AT+CGMI junk\r\n") == ERROR
    assert answer(drv, b"AT*FOO\r\n") == ERROR
    assert answer(drv, b"ATZ\r\n") == ERROR


def test_overlong_line_is_error(make_driver):
    d = make_driver(max_line=64)
    out = d.send(b"AT+MPUB=" + b"x" * 100 + b"\r")
    assert out.endswith(b"\r" + ERROR)
    assert d.send(b"AT\r") == b"AT\r" + OK


def test_concatenated_commands(drv):
    assert answer(drv, b"AT+IPR=115200;&W\r\n") == OK
    assert answer(drv, b"AT+IPR?\r\n") == b"\r\n+IPR: 115200\r\n" + OK
    assert answer(drv, b"AT+CGMI;+CGMM\r\n") == (
        b'\r\n+CGMI: "AirM2M"\r\n\r\n+CGMM: "Air780EP"\r\n' + OK
    )
    assert answer(drv, b"AT+FOO;+CGMI\r\n") == ERROR
    assert answer(drv, b"AT+CGMI;+MIPCLOSE\r\n") == ERROR


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("cmee", [0, 1, 2])
def test_each_line_of_a_chunk_is_answered_on_its_own(make_driver, strict, cmee):
    """Issue 8 item 6: b'\\xb2' ('²' in latin-1, str.isdigit() is True) is a bad
    parameter (ERROR), and the AT and ATI after it in the same chunk are answered."""
    d = make_driver(cmee=cmee)
    d.fw.strict = strict
    revision = d.fw.config.revision.encode()
    assert d.send(b"AT+CEREG=\xb2\r\nAT\r\nATI\r\n") == (
        b"AT+CEREG=\xb2\r\n" + ERROR + b"AT\r\n" + OK + b"ATI\r\n\r\n" + revision + b"\r\n" + OK
    )


@pytest.mark.parametrize(
    "value", ["\xb2", "\xb3", "\xb9", "\xb9\xb9", "1\xb2", "-1", "+1", "99999999999", "9" * 40, ""]
)
@pytest.mark.parametrize(
    "line",
    [
        "AT+CEREG={}",
        "AT+CMEE={}",
        "AT+IPR={}",
        "AT+CFUN={}",
        "AT+CGATT={}",
        "AT+SAPBR={},1",
        'AT+SAPBR=3,1,"RATE",{}',
        "AT+HTTPACTION={}",
        "AT+HTTPDATA={},1000",
        'AT+HTTPPARA="TIMEOUT",{}',
        'AT+MIPSTART="h",{}',
        'AT+MSUB="t",{}',
        'AT+MPUB="t",{},0,"x"',
        "AT+MCONNECT=1,{}",
    ],
)
def test_non_ascii_and_huge_numbers_are_parameter_errors(drv, line, value):
    drv.send(b"AT+HTTPINIT\r")
    text = line.format(value).encode("latin-1")
    assert answer(drv, text + b"\r\n") == ERROR
    assert answer(drv, b"AT\r\n") == OK


def test_internal_error_is_logged_answered_error_and_the_rest_goes_on(
    make_driver, monkeypatch, caplog
):
    """The catch-all stays in production (the simulator keeps running) but is loud; with
    ``strict`` (set for every test here by conftest) the bug surfaces as an exception."""

    def broken(self, cmd):
        raise RuntimeError("a bug in a handler")

    monkeypatch.setattr(Firmware, "_h_cgmi", broken)
    d = make_driver()
    with pytest.raises(RuntimeError):
        d.send(b"AT+CGMI\r\n")
    d = make_driver()
    d.fw.strict = False
    caplog.clear()
    with caplog.at_level("ERROR", logger="airlab.sim.firmware"):
        out = d.send(b"AT+CGMI\r\nAT\r\n")
    assert out == b"AT+CGMI\r\n" + ERROR + b"AT\r\n" + OK
    (record,) = caplog.records
    assert record.levelname == "ERROR" and record.exc_info is not None
    assert "internal error" in record.getMessage() and "AT+CGMI" in record.getMessage()


def test_strict_is_on_in_these_tests():
    assert Firmware.strict is True
    assert Firmware().strict is True


# ---------------------------------------------------------------- errors


def test_cmee_modes(drv):
    d = drv
    d.fw = Firmware(FirmwareConfig(sim_inserted=False))
    assert answer(d, b"AT+CPIN?\r\n") == b"\r\n+CME ERROR: 10\r\n"
    assert answer(d, b"AT+CMEE?\r\n") == b"\r\n+CMEE: 1\r\n" + OK
    assert answer(d, b"AT+CMEE=2\r\n") == OK
    assert answer(d, b"AT+CPIN?\r\n") == b"\r\n+CME ERROR: SIM not inserted\r\n"
    assert answer(d, b"AT+CMEE=0\r\n") == OK
    assert answer(d, b"AT+CPIN?\r\n") == ERROR
    assert answer(d, b"AT+CMEE=3\r\n") == ERROR
    assert answer(d, b"AT+CMEE=?\r\n") == b"\r\n+CMEE: (0-2)\r\n" + OK


# ---------------------------------------------------------------- basic commands

BASIC = [
    (b"AT", b""),
    (b"ATI", b"\r\nAirM2M_780EP_V1007_LTE_AT\r\n"),
    (b"AT+CGMR", b'\r\n+CGMR: "AirM2M_780EP_V1007_LTE_AT"\r\n'),
    (b"AT+CGMM", b'\r\n+CGMM: "Air780EP"\r\n'),
    (b"AT+CGSN", b"\r\n868488076506128\r\n"),
    (b"AT+CIMI", b"\r\n460040765061280\r\n"),
    (b"AT+ICCID", b"\r\n+ICCID: 898604981022C0256459\r\n"),
    (b"AT+CCID", b"\r\n898604981022C0256459\r\n"),
    (b"AT+CPIN?", b"\r\n+CPIN: READY\r\n"),
    (b"AT+CSQ", b"\r\n+CSQ: 25,0\r\n"),
    (b"AT+CESQ", b"\r\n+CESQ: 99,99,255,255,22,48\r\n"),
    (b"AT+CREG?", b"\r\n+CREG: 0,1\r\n"),
    (b"AT+CEREG?", b"\r\n+CEREG: 0,1\r\n"),
    (b"AT+CGREG?", b"\r\n+CGREG: 0,1\r\n"),
    (b"AT+CEREG=?", b"\r\n+CEREG: (0,1,2,3,4,5)\r\n"),
    (b"AT+CGATT?", b"\r\n+CGATT: 1\r\n"),
    (b"AT+CGATT=?", b"\r\n+CGATT: (0-1)\r\n"),
    (b"AT+CGDCONT?", b'\r\n+CGDCONT: 1,"IP","cmiot","10.222.163.213"\r\n'),
    (b"AT+COPS?", b'\r\n+COPS: 0,2,"46000",7\r\n'),
    (b"AT+CFUN?", b"\r\n+CFUN: 1\r\n"),
    (b"AT+CGMI=?", b""),
    (b"AT+CSQ=?", b"\r\n+CSQ: (0-31,99),(0-7,99)\r\n"),
    (b"AT+SAPBR=?", b'\r\n+SAPBR: (0-4),(1-3),"ConParamTag","ConParamValue"\r\n'),
    (b"AT+HTTPACTION=?", b"\r\n+HTTPACTION: (0-2)\r\n"),
    (b"AT+HTTPSSL=?", b"\r\n+HTTPSSL: (0-1)\r\n"),
    (b"AT+MQTTMSGSET=?", b"\r\n+MQTTMSGSET:(0,1)\r\n"),
    (b"AT+MQTTMSGSET?", b"\r\n+MQTTMSGSET:0\r\n"),
    (b"AT+MCONNECT=?", b"\r\n+MCONNECT:(0-1),(1-65535)\r\n"),
    (b"AT+MQTTSTATU", b"\r\n+MQTTSTATU :0\r\n"),
]


@pytest.mark.parametrize(("cmd", "info"), BASIC)
def test_basic_answers(drv, cmd, info):
    assert answer(drv, cmd + b"\r\n") == info + OK


def test_registration_forms(drv):
    assert answer(drv, b"AT+CEREG=2\r\n") == OK
    assert answer(drv, b"AT+CEREG?\r\n") == b'\r\n+CEREG: 2,1,"4844","0EA2D0CA",7\r\n' + OK
    assert answer(drv, b"AT+CREG=2\r\n") == OK
    assert answer(drv, b"AT+CREG?\r\n") == b'\r\n+CREG: 2,1,"4844","0EA2D0CA",7\r\n' + OK
    assert answer(drv, b"AT+CEREG=6\r\n") == ERROR


def test_cops_formats_and_cgdcont_set(drv):
    assert answer(drv, b"AT+COPS=3,0\r\n") == OK
    assert answer(drv, b"AT+COPS?\r\n") == b'\r\n+COPS: 0,0,"CHINA MOBILE",7\r\n' + OK
    assert answer(drv, b'AT+CGDCONT=5,"IP","cmnet"\r\n') == OK
    assert answer(drv, b"AT+CGDCONT?\r\n") == (
        b'\r\n+CGDCONT: 1,"IP","cmiot","10.222.163.213"\r\n'
        b'+CGDCONT: 5,"IP","cmnet","0.0.0.0"\r\n' + OK
    )


def test_no_sim(make_driver):
    d = make_driver(sim_inserted=False)
    assert answer(d, b"AT+CPIN?\r\n") == b"\r\n+CME ERROR: 10\r\n"
    assert answer(d, b"AT+ICCID\r\n") == b"\r\n+CME ERROR: 10\r\n"
    assert answer(d, b"AT+CGATT?\r\n") == b"\r\n+CGATT: 0\r\n" + OK
    assert answer(d, b"AT+CFUN=0\r\n") == OK  # not attached: no ME DETACH (T04)


def test_cfun_cycle(drv):
    assert answer(drv, b"AT+CFUN=0\r\n") == OK + b"\r\n+CGEV: ME DETACH\r\n"
    assert answer(drv, b"AT+CGATT?\r\n") == b"\r\n+CGATT: 0\r\n" + OK
    assert answer(drv, b"AT+CFUN=1\r\n") == OK
    assert drv.timers == {"register": 1.5}
    out = drv.fire(
        "register", dt.datetime(2024, 8, 22, 15, 0, 2, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    )
    assert out == (
        b"\r\n^MODE: 17,17\r\n\r\n+E_UTRAN Service\r\n\r\n+CGEV: ME PDN ACT 1\r\n"
        b"\r\n+NITZ: 24/08/22,07:00:02+32,\r\n"
    )
    assert answer(drv, b"AT+CGATT?\r\n") == b"\r\n+CGATT: 1\r\n" + OK


def test_boot_urcs():
    fw = Firmware()
    acts = fw.boot(dt.datetime(2024, 8, 22, 7, 27, 15, tzinfo=UTC))
    assert [a.latency for a in acts] == ["boot", "boot", "boot"]
    assert b"".join(a.data for a in acts) == (
        b"\r\nRDY\r\n\r\n^MODE: 17,17\r\n\r\n+E_UTRAN Service\r\n\r\n+CGEV: ME PDN ACT 1\r\n"
        b"\r\n+NITZ: 24/08/22,07:27:15+32,\r\n"
    )


def test_at_reset_reboots_on_timer(drv):
    drv.connect_mqtt()
    out = drv.send(b"AT+RESET\r\n")
    assert out == b"AT+RESET\r\n" + OK
    assert CloseLink("mqtt") in drv.requests
    assert drv.fw.rebooting and drv.timers == {"reboot": 1.5}
    assert drv.send(b"AT\r\n") == b""  # ignored while rebooting
    out = drv.fire("reboot", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert out.startswith(b"\r\nRDY\r\n") and out.endswith(b"\r\n+NITZ: 24/01/02,03:04:05+32,\r\n")
    assert drv.fw.mqtt_state == "idle"
    assert drv.send(b"AT\r\n") == b"AT\r\n" + OK


def test_virtual_clock_advances_with_timers(drv):
    drv.fw.boot(dt.datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC))
    drv.send(b"AT+RESET\r\n")
    out = drv.fire("reboot")
    assert b"+NITZ: 24/01/01,00:00:01+32," in out


def test_reset_fault_injection(drv):
    drv.connect_mqtt()
    acts = drv.fw.reset(dt.datetime(2024, 1, 1, tzinfo=UTC))
    assert acts[0] == CloseLink("mqtt")
    assert drv.fw.mqtt_state == "idle"


# ---------------------------------------------------------------- bearer


def test_sapbr_flow(drv):
    assert answer(drv, b'AT+SAPBR=3,1,"CONTYPE","GPRS"\r\n') == OK
    assert answer(drv, b'AT+SAPBR=3,1,"APN","CMIOT"\r\n') == OK
    assert answer(drv, b"AT+SAPBR=2,1\r\n") == b'\r\n+SAPBR: 1,3,"0.0.0.0"\r\n' + OK
    assert answer(drv, b"AT+SAPBR=1,1\r\n") == OK
    assert answer(drv, b"AT+SAPBR=2,1\r\n") == b'\r\n+SAPBR: 1,1,"10.222.163.213"\r\n' + OK
    assert answer(drv, b"AT+SAPBR=4,1\r\n") == (
        b"\r\n+SAPBR:\r\nCONTYPE: GPRS\r\nAPN: CMIOT\r\nPHONENUM: \r\nUSER: \r\nPWD: \r\n"
        b"RATE: 2\r\n" + OK
    )
    assert answer(drv, b'AT+SAPBR=3,1,"FOO","x"\r\n') == ERROR
    assert answer(drv, b"AT+SAPBR=1,4\r\n") == ERROR
    assert answer(drv, b"AT+SAPBR=0,1\r\n") == OK


def test_sapbr_after_pdp_loss(drv):
    drv.send(b"AT+SAPBR=1,1\r\n")
    out = b"".join(a.data for a in drv.fw.lose_pdp() if isinstance(a, ToHost))
    assert out == b"\r\n+CGEV: NW PDN DEACT 1\r\n\r\n+SAPBR 1: DEACT\r\n"
    assert answer(drv, b"AT+SAPBR=0,1\r\n") == b"\r\n+CME ERROR: 3\r\n"
    assert answer(drv, b"AT+SAPBR=1,1\r\n") == OK


def test_sapbr_padded_ip(make_driver):
    d = make_driver(sapbr_ip_style="padded", ip="10.169.179.213")
    d.send(b"AT+SAPBR=1,1\r\n")
    assert answer(d, b"AT+SAPBR=2,1\r\n") == b"\r\n+SAPBR: 1,1,010.169.179.213\r\n" + OK


# ---------------------------------------------------------------- HTTP


def http_ready(drv, url=b"https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename"):
    """Bearer open (HTTP needs it), HTTPINIT, URL."""
    assert answer(drv, b"AT+SAPBR=1,1\r\n") == OK
    assert answer(drv, b"AT+HTTPINIT\r\n") == OK
    assert answer(drv, b'AT+HTTPPARA="URL",' + url + b"\r\n") == OK


def test_httpdata_exact_then_surplus_crlf(drv):
    http_ready(drv)
    assert answer(drv, b"AT+HTTPDATA=5,20000\r\n") == b"\r\nDOWNLOAD\r\n"
    assert drv.fw.in_data_mode and drv.timers == {"httpdata": 20.0}
    assert drv.send(b"a\r\n") == b""  # data is not echoed; CR LF count as data
    assert drv.send(b"bc\r\nAT\r\n") == OK + b"AT\r\n" + OK
    assert not drv.fw.in_data_mode and drv.timers == {}
    drv.send(b"AT+HTTPACTION=1\r\n")
    assert drv.last(HttpRequest).body == b"a\r\nbc"


def test_httpdata_timeout_keep_and_error(make_driver):
    d = make_driver()
    http_ready(d)
    d.send(b"AT+HTTPDATA=10,1000\r\nabc")
    assert d.fire("httpdata") == OK
    d.send(b"AT+HTTPACTION=1\r\n")
    assert d.last(HttpRequest).body == b"abc"
    e = make_driver(httpdata_short="error")
    http_ready(e)
    e.send(b"AT+HTTPDATA=10,1000\r\nabc")
    assert e.fire("httpdata") == ERROR
    assert e.send(b"AT\r") == b"AT\r" + OK


def test_httpdata_limits(drv):
    http_ready(drv)
    assert answer(drv, b"AT+HTTPDATA=3357,10000\r\n") == ERROR
    assert answer(drv, b"AT+HTTPDATA=10,999\r\n") == ERROR
    assert answer(drv, b"AT+HTTPDATA=0,10000\r\n") == OK
    assert answer(drv, b"AT+HTTPDATA=?\r\n") == b"\r\n+HTTPDATA: (0-3356),(1000-120000)\r\n" + OK


def test_http_post_headers_and_read(drv):
    http_ready(drv)
    drv.send(b'AT+HTTPPARA="USER_DEFINED","Content-type: application/x-www-form-urlencoded"\r\n')
    drv.send(b'AT+HTTPPARA="USER_DEFINED","X-A: 1"\r\n')
    drv.send(b'AT+HTTPPARA="UA","probe"\r\n')
    drv.send(b"AT+HTTPDATA=3,1000\r\nk=v")
    assert answer(drv, b"AT+HTTPACTION=1\r\n") == OK
    req = drv.last(HttpRequest)
    assert req == HttpRequest(
        "POST",
        "https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename",
        (("Content-type", "application/x-www-form-urlencoded"), ("X-A", "1")),
        b"k=v",
        120.0,
        None,
        "probe",
    )
    assert drv.fw.http_in_flight
    assert answer(drv, b"AT+HTTPACTION=1\r\n") == ERROR  # busy
    body = b'{"code":200}\r\nline2'
    assert drv.net(HttpResult(200, body)) == b"\r\n+HTTPACTION: 1,200,19\r\n"
    assert answer(drv, b"AT+HTTPREAD\r\n") == b"\r\n+HTTPREAD: 19\r\n" + body + OK
    assert answer(drv, b"AT+HTTPREAD=2,4\r\n") == b"\r\n+HTTPREAD: 4\r\ncode" + OK
    assert answer(drv, b"AT+HTTPREAD=100,4\r\n") == b"\r\n+HTTPREAD: 0\r\n" + OK
    assert answer(drv, b"AT+HTTPTERM\r\n") == OK
    assert answer(drv, b"AT+HTTPREAD\r\n") == ERROR


def test_http_errors_and_state(drv):
    assert answer(drv, b"AT+HTTPACTION=0\r\n") == ERROR  # no HTTPINIT
    assert answer(drv, b"AT+HTTPTERM\r\n") == ERROR
    assert answer(drv, b"AT+HTTPINIT\r\n") == OK
    assert answer(drv, b"AT+HTTPINIT\r\n") == ERROR
    assert answer(drv, b"AT+HTTPACTION=0\r\n") == ERROR  # no URL
    assert answer(drv, b"AT+HTTPREAD\r\n") == ERROR  # nothing to read
    assert answer(drv, b'AT+HTTPPARA="NOPE",1\r\n') == ERROR
    assert answer(drv, b'AT+HTTPPARA="CID",4\r\n') == ERROR
    assert answer(drv, b"AT+HTTPACTION=3\r\n") == ERROR


def test_http_busy_604_option(make_driver):
    d = make_driver(httpaction_busy="urc604")
    http_ready(d, b"airtest.openluat.com")
    d.send(b"AT+HTTPACTION=0\r\n")
    assert answer(d, b"AT+HTTPACTION=0\r\n") == OK + b"\r\n+HTTPACTION: 0,604,0\r\n"


def test_http_get_range_head_and_buffer(make_driver):
    d = make_driver(http_buffer=3072)
    http_ready(d, b'"http://example.com/f.zip"')
    d.send(b'AT+HTTPPARA="BREAK",0\r\nAT+HTTPPARA="BREAKEND",3071\r\n')
    d.send(b"AT+HTTPACTION=0\r\n")
    req = d.last(HttpRequest)
    assert (req.method, req.url, req.byte_range, req.body) == (
        "GET",
        "http://example.com/f.zip",
        (0, 3071),
        b"",
    )
    assert d.net(HttpResult(200, b"x" * 5000)) == b"\r\n+HTTPACTION: 0,200,5000\r\n"
    assert answer(d, b"AT+HTTPREAD\r\n").startswith(b"\r\n+HTTPREAD: 3072\r\n")
    d.send(b"AT+HTTPACTION=2\r\n")
    hdrs = (("Server", "AliyunOSS"), ("Content-Length", "5"))
    assert d.net(HttpResult(200, b"", hdrs)) == b"\r\n+HTTPACTION: 2,200,0\r\n"
    head = b"Server: AliyunOSS\r\nContent-Length: 5"
    assert answer(d, b"AT+HTTPHEAD\r\n") == b"\r\n+HTTPHEAD: %d\r\n" % len(head) + head + OK
    e = make_driver(http_len_reported="stored", http_buffer=10)
    http_ready(e, b"a.b")
    e.send(b"AT+HTTPACTION=0\r\n")
    assert e.net(HttpResult(200, b"y" * 50)) == b"\r\n+HTTPACTION: 0,200,10\r\n"


#: the HEAD answer of the Air780EP HTTP guide (S7, V1007), as printed there
S7_HEAD = (
    ("Accept-Ranges", "bytes"),
    ("ETag", 'W/"119345-1710117624106"'),
    ("Last-Modified", "Mon, 11 Mar 2024 00:40:24 GMT"),
    ("Content-Type", "application/octet-stream"),
    ("Content-Length", "119345"),
    ("Date", "Mon, 22 Jul 2024 03:34:24 GMT"),
    ("Keep-Alive", "timeout=20"),
    ("Connection", "keep-alive"),
)


@pytest.mark.parametrize("case", ["default", "lower"])
def test_httphead_case_air780ep_guide_and_780e_option(make_driver, case):
    """The Air780EP guide prints the headers as sent (+HTTPHEAD: 247); the Air780E
    document (T08) lower-cases them: ``httphead_case="lower"`` (also ``airsim://?…``)."""
    d = make_driver() if case == "default" else make_driver(httphead_case="lower")
    http_ready(d, b'"http://rcems.hzccs.com/upfile/ROBAM-M2-V13704A7-20240308-APP.bin"')
    d.send(b"AT+HTTPACTION=2\r\n")
    assert d.net(HttpResult(200, b"", S7_HEAD)) == b"\r\n+HTTPACTION: 2,200,0\r\n"
    head = "\r\n".join(f"{k}: {v}" for k, v in S7_HEAD).encode()
    if case == "lower":
        head = head.lower()
    else:
        assert len(head) == 247 and head.startswith(b"Accept-Ranges: bytes\r\nETag: W/")
    assert answer(d, b"AT+HTTPHEAD\r\n") == b"\r\n+HTTPHEAD: %d\r\n" % len(head) + head + OK


def test_httphead_case_from_airsim_url():
    from airlab.sim.urlhandler.protocol_airsim import AirsimURLError, parse_url

    assert parse_url("airsim://?httphead_case=lower")["config"].httphead_case == "lower"
    assert FirmwareConfig().httphead_case == "original"
    with pytest.raises(AirsimURLError):
        parse_url("airsim://?httphead_case=upper")


def test_httpssl_prefixes_scheme(drv):
    http_ready(drv, b'"airtest.openluat.com"')
    assert answer(drv, b"AT+HTTPSSL=1\r\n") == OK
    assert answer(drv, b"AT+HTTPSSL?\r\n") == b"\r\n+HTTPSSL: 1\r\n" + OK
    drv.send(b"AT+HTTPACTION=0\r\n")
    assert drv.last(HttpRequest).url == "https://airtest.openluat.com"


def test_http_pdp_loss_601(drv):
    drv.send(b"AT+SAPBR=1,1\r\n")
    http_ready(drv, b'"www.baidu.com"')
    drv.send(b"AT+HTTPACTION=0\r\n")
    out = b"".join(a.data for a in drv.fw.lose_pdp() if isinstance(a, ToHost))
    assert out == (
        b"\r\n+CGEV: NW PDN DEACT 1\r\n\r\n+SAPBR 1: DEACT\r\n\r\n+HTTPACTION: 0,601,0\r\n"
    )
    assert not drv.fw.http_in_flight
    assert drv.net(HttpResult(200, b"late")) == b""  # a stale result is ignored
    assert drv.net(LinkFailed("http", "dns")) == b""


def test_httpaction_without_bearer_601(drv):
    """No bearer (AT+SAPBR=2,1 shows status 3): OK then +HTTPACTION: 0,601,0 and no
    request leaves; opened with AT+SAPBR=1,1 the same request goes out (S7 step 1)."""
    assert answer(drv, b"AT+SAPBR=2,1\r\n") == b'\r\n+SAPBR: 1,3,"0.0.0.0"\r\n' + OK
    assert answer(drv, b"AT+HTTPINIT\r\n") == OK
    assert answer(drv, b'AT+HTTPPARA="URL","www.baidu.com"\r\n') == OK
    assert answer(drv, b"AT+HTTPACTION=0\r\n") == OK + b"\r\n+HTTPACTION: 0,601,0\r\n"
    assert not drv.fw.http_in_flight and not drv.requests
    assert answer(drv, b"AT+HTTPACTION=1\r\n") == OK + b"\r\n+HTTPACTION: 1,601,0\r\n"
    assert answer(drv, b"AT+SAPBR=1,1\r\n") == OK
    assert answer(drv, b"AT+HTTPACTION=0\r\n") == OK
    assert drv.last(HttpRequest).url == "www.baidu.com"


def test_httpaction_after_pdp_loss_601_until_bearer_reopened(drv):
    """S7: after "+SAPBR 1: DEACT" an HTTP request fails (601) until the PDP is
    activated again; the simulator's re-activation is AT+SAPBR=1,1."""
    http_ready(drv, b'"www.baidu.com"')
    drv.take(drv.fw.lose_pdp())
    for _ in range(2):
        assert answer(drv, b"AT+HTTPACTION=0\r\n") == OK + b"\r\n+HTTPACTION: 0,601,0\r\n"
    assert not drv.requests
    assert answer(drv, b"AT+SAPBR=2,1\r\n") == b'\r\n+SAPBR: 1,3,"0.0.0.0"\r\n' + OK
    assert answer(drv, b"AT+HTTPTERM\r\n") == OK
    assert answer(drv, b"AT+SAPBR=0,1\r\n") == b"\r\n+CME ERROR: 3\r\n"
    assert answer(drv, b"AT+SAPBR=1,1\r\n") == OK
    assert answer(drv, b"AT+HTTPINIT\r\n") == OK
    assert answer(drv, b'AT+HTTPPARA="URL","www.baidu.com"\r\n') == OK
    assert answer(drv, b"AT+HTTPACTION=0\r\n") == OK
    assert drv.net(HttpResult(200, b"x" * 7)) == b"\r\n+HTTPACTION: 0,200,7\r\n"


def test_httpaction_uses_the_bearer_of_httppara_cid(drv):
    http_ready(drv, b'"www.baidu.com"')  # bearer 1 open
    assert answer(drv, b'AT+HTTPPARA="CID",2\r\n') == OK
    assert answer(drv, b"AT+HTTPACTION=0\r\n") == OK + b"\r\n+HTTPACTION: 0,601,0\r\n"
    assert answer(drv, b"AT+SAPBR=1,2\r\n") == OK
    assert answer(drv, b"AT+HTTPACTION=0\r\n") == OK
    assert drv.fw.http_in_flight


def test_httpaction_after_detach_and_cfun_601(drv):
    http_ready(drv, b'"www.baidu.com"')
    assert answer(drv, b"AT+CGATT=0\r\n") == OK + b"\r\n+CGEV: ME DETACH\r\n"
    assert answer(drv, b"AT+CGATT=1\r\n") == OK
    assert answer(drv, b"AT+HTTPACTION=0\r\n") == OK + b"\r\n+HTTPACTION: 0,601,0\r\n"
    assert answer(drv, b"AT+SAPBR=1,1\r\n") == OK
    assert answer(drv, b"AT+HTTPACTION=0\r\n") == OK
    assert len(drv.requests) == 1


def test_http_bearer_ignored_option(make_driver):
    d = make_driver(http_bearer="ignored")
    d.send(b'AT+HTTPINIT\r\nAT+HTTPPARA="URL","a.b"\r\n')
    assert answer(d, b"AT+HTTPACTION=0\r\n") == OK
    assert d.last(HttpRequest).url == "a.b"


@pytest.mark.parametrize("name", [b"MIPSTART", b"SSLMIPSTART"])
def test_mipstart_needs_attach_not_the_sapbr_bearer(drv, name):
    """The MQTT guides (S6) open no SAPBR bearer and T07 reconnects right after
    "+CGEV: NW PDN DEACT 1": (SSL)MIPSTART uses the default context.  Detached, the
    manual's failure form: OK, STATE: <state>, CONNECT FAIL, and nothing is opened."""
    line = b"AT+" + name + b'="a1.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883\r\n'
    assert answer(drv, b"AT+SAPBR=2,1\r\n") == b'\r\n+SAPBR: 1,3,"0.0.0.0"\r\n' + OK
    assert answer(drv, line) == OK
    assert drv.last(OpenLink).tls == (name == b"SSLMIPSTART")
    drv.net(LinkOpened("mqtt"))
    assert answer(drv, b"AT+MIPCLOSE\r\n") == OK
    drv.take(drv.fw.lose_pdp())  # T07: the next MIPSTART connects
    assert answer(drv, line) == OK
    assert len([r for r in drv.requests if isinstance(r, OpenLink)]) == 2
    drv.net(LinkOpened("mqtt"))
    assert answer(drv, b"AT+MIPCLOSE\r\n") == OK
    assert answer(drv, b"AT+CGATT=0\r\n") == OK + b"\r\n+CGEV: ME DETACH\r\n"
    fail = b"\r\nSTATE: IP STATUS\r\n\r\nCONNECT FAIL\r\n"
    assert answer(drv, line) == OK + fail
    assert answer(drv, b"AT+CFUN=0\r\n") == OK
    assert answer(drv, line) == OK + fail
    assert len([r for r in drv.requests if isinstance(r, OpenLink)]) == 2


@pytest.mark.parametrize("name", [b"MIPSTART", b"SSLMIPSTART"])
def test_events_of_an_abandoned_open_attempt_are_ignored(drv, name):
    """AT+MIPCLOSE while a link is still opening, then the next (SSL)MIPSTART: the first
    attempt's LinkFailed / LinkOpened / LinkClosed, already on their way, belong to it
    (each OpenLink is numbered and its events carry the number), not to the new link:
    no "STATE: IP STATUS" / "CONNECT FAIL" and no early CONNECT OK for it."""
    line = b"AT+" + name + b'="a1.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883\r\n'
    assert answer(drv, line) == OK
    first = drv.last(OpenLink).attempt
    assert answer(drv, b"AT+MIPCLOSE\r\n") == OK
    assert answer(drv, line) == OK
    second = drv.last(OpenLink).attempt
    assert first and second and second != first
    assert drv.net(LinkFailed("mqtt", "timeout", first)) == b""
    assert drv.net(LinkOpened("mqtt", first)) == b""
    assert drv.fw.mqtt_state == "connecting"
    assert drv.net(LinkOpened("mqtt", second)) == b"\r\nCONNECT OK\r\n"
    assert drv.net(LinkClosed("mqtt", first)) == b""
    assert drv.fw.mqtt_state == "tcp"
    assert drv.net(LinkClosed("mqtt", second)) == b"\r\nCLOSED\r\n"
    # a reset keeps counting: an event of a link opened before it is still not current
    drv.take(drv.fw.reset(dt.datetime(2024, 7, 22, 3, 0, tzinfo=UTC)))
    assert answer(drv, line) == OK
    third = drv.last(OpenLink).attempt
    assert third not in (first, second)
    assert drv.net(LinkFailed("mqtt", "refused", second)) == b""
    assert drv.net(LinkFailed("mqtt", "refused", third)) == (
        b"\r\nSTATE: IP STATUS\r\n\r\nCONNECT FAIL\r\n"
    )


def test_http_link_failed_dns(drv):
    http_ready(drv, b"nowhere.invalid")
    drv.send(b"AT+HTTPACTION=0\r\n")
    assert drv.net(LinkFailed("http", "dns")) == b"\r\n+HTTPACTION: 0,603,0\r\n"


def test_httppara_read(drv):
    http_ready(drv, b'"a.b"')
    assert answer(drv, b"AT+HTTPPARA?\r\n") == (
        b"\r\n+HTTPPARA: \r\nCID: 1\r\nURL: a.b\r\nUA: AM_MODULE\r\nPROIP: 0.0.0.0\r\n"
        b"PROPORT: 0\r\nREDIR: 0\r\nBREAK: 0\r\nBREAKEND: 0\r\nTIMEOUT: 120\r\nCONTENT: \r\n"
        b"USERDATA: \r\n" + OK
    )


# ---------------------------------------------------------------- MQTT


def test_mqtt_connect_flow_exact(drv):
    assert answer(drv, b'AT+MCONFIG="868488076506128","user",""\r\n') == OK
    assert answer(drv, b'AT+MIPSTART=broker.example,"1883"\r\n') == OK
    assert drv.last(OpenLink) == OpenLink("mqtt", "broker.example", 1883, tls=False, attempt=1)
    assert drv.fw.mqtt_state == "connecting"
    assert answer(drv, b"AT+MQTTSTATU\r\n") == b"\r\n+MQTTSTATU :0\r\n" + OK
    assert drv.net(LinkOpened("mqtt")) == b"\r\nCONNECT OK\r\n"
    assert answer(drv, b"AT+MQTTSTATU\r\n") == b"\r\n+MQTTSTATU :2\r\n" + OK
    assert answer(drv, b"AT+MCONNECT=1,120\r\n") == OK
    assert drv.last(MqttConnect) == MqttConnect("868488076506128", "user", None, 120, True)
    assert drv.net(MqttConnack(0)) == b"\r\nCONNACK OK\r\n"
    assert answer(drv, b"AT+MQTTSTATU\r\n") == b"\r\n+MQTTSTATU :1\r\n" + OK
    assert answer(drv, b'AT+SSLMIPSTART="x",8883\r\n') == OK + b"\r\nALREADY CONNECT\r\n"
    assert answer(drv, b"AT+MCONNECT=1,120\r\n") == b"\r\n+CME ERROR: 767\r\n"
    assert answer(drv, b"AT+MDISCONNECT\r\n") == OK
    assert drv.last(MqttDisconnect) == MqttDisconnect()
    assert drv.net(LinkClosed("mqtt")) == b""  # expected after DISCONNECT
    assert answer(drv, b"AT+MIPCLOSE\r\n") == OK
    assert answer(drv, b"AT+MIPCLOSE\r\n") == ERROR


def test_mconfig_forms(drv):
    assert answer(drv, b"AT+MCONFIG=868488076771714,root,luat123456\r\n") == OK
    assert answer(drv, b'AT+MCONFIG="a","b"\r\n') == ERROR
    assert answer(drv, b'AT+MCONFIG="a","b","c",1,0,"will/t","bye"\r\n') == OK
    assert answer(drv, b'AT+MCONFIG="a","b","c",1,0,will/t,"bye"\r\n') == ERROR
    assert answer(drv, b'AT+MCONFIG="' + b"x" * 257 + b'"\r\n') == ERROR
    drv.auto = True
    drv.send(b'AT+MCONFIG="a","b","c",1,1,"will/t","bye"\r\nAT+MIPSTART="h",1\r\n')
    drv.send(b"AT+MCONNECT=0,60\r\n")
    c = drv.last(MqttConnect)
    assert (c.clean_session, c.will.topic, c.will.message, c.will.qos, c.will.retain) == (
        False,
        "will/t",
        b"bye",
        1,
        True,
    )


def test_mcconnect_without_link_and_connack_failure(drv):
    assert answer(drv, b"AT+MCONNECT=1,60\r\n") == b"\r\n+CME ERROR: 767\r\n"
    drv.send(b"AT+MIPSTART=h,1883\r\n")
    drv.net(LinkOpened("mqtt"))
    drv.send(b"AT+MCONNECT=1,60\r\n")
    assert drv.net(MqttConnack(5)) == ERROR
    assert drv.fw.mqtt_state == "tcp"
    assert answer(drv, b"AT+MCONNECT=1,0\r\n") == ERROR  # keepalive range


def test_connect_fail(drv):
    drv.send(b"AT+MIPSTART=h,1883\r\n")
    assert drv.net(LinkFailed("mqtt", "dns")) == b"\r\nSTATE: IP STATUS\r\n\r\nCONNECT FAIL\r\n"
    assert drv.fw.mqtt_state == "idle"
    assert answer(drv, b"AT+MIPCLOSE\r\n") == ERROR
    assert answer(drv, b"AT+MIPSTART=h,0\r\n") == ERROR


def test_a_stale_close_does_not_fail_the_next_link(drv):
    """The peer closed the old link while AT+MIPCLOSE and the next AT+SSLMIPSTART were on
    their way: its close arrives while the new link is opening (seen as a rare
    CONNECT FAIL under load); only the new link's own outcome decides."""
    drv.connect_mqtt()
    assert answer(drv, b"AT+MDISCONNECT\r\n") == OK
    assert answer(drv, b"AT+MIPCLOSE\r\n") == OK
    assert answer(drv, b'AT+SSLMIPSTART="h",1883\r\n') == OK
    assert drv.net(LinkClosed("mqtt")) == b""  # the old link's, late
    assert drv.fw.mqtt_state == "connecting"
    assert drv.net(LinkOpened("mqtt")) == b"\r\nCONNECT OK\r\n"


def test_passive_close_then_767(drv):
    drv.connect_mqtt()
    assert drv.net(LinkClosed("mqtt")) == b"\r\nCLOSED\r\n"
    assert answer(drv, b"AT+MQTTSTATU\r\n") == b"\r\n+MQTTSTATU :0\r\n" + OK
    assert answer(drv, b"AT+MCONNECT=1,60\r\n") == b"\r\n+CME ERROR: 767\r\n"
    assert answer(drv, b'AT+MPUB="t",0,0,"x"\r\n') == b"\r\n+CME ERROR: 767\r\n"
    assert answer(drv, b"AT+MIPCLOSE\r\n") == b"\r\n+CME ERROR: 767\r\n"
    assert answer(drv, b"AT+MIPCLOSE\r\n") == ERROR
    assert answer(drv, b"AT+MDISCONNECT\r\n") == ERROR


def test_late_mcconnect_after_closed(drv):
    drv.send(b"AT+MIPSTART=h,1883\r\n")
    drv.net(LinkOpened("mqtt"))
    assert drv.net(LinkClosed("mqtt")) == b"\r\nCLOSED\r\n"
    assert answer(drv, b"AT+MCONNECT=1,60\r\n") == b"\r\n+CME ERROR: 767\r\n"


def test_subscribe_publish_acks(drv):
    drv.connect_mqtt()
    assert answer(drv, b'AT+MSUB="/a/b",1\r\n') == OK
    sub = drv.last(MqttSubscribe)
    assert (sub.topic, sub.qos) == ("/a/b", 1)
    assert drv.net(MqttSuback(sub.packet_id, (1,))) == b"\r\nSUBACK\r\n"
    assert drv.net(MqttSuback(sub.packet_id, (1,))) == b""  # duplicate ignored
    drv.send(b'AT+MSUB="/deny",0\r\n')
    assert drv.net(MqttSuback(drv.last(MqttSubscribe).packet_id, (0x80,))) == ERROR
    assert answer(drv, b'AT+MPUB="/a/b",0,1,"HelloWorld"\r\n') == OK
    assert drv.last(MqttPublish) == MqttPublish("/a/b", b"HelloWorld", 0, True, None)
    assert answer(drv, b'AT+MPUB="/a/b",1,0,"x"\r\n') == OK
    pid = drv.last(MqttPublish).packet_id
    assert answer(drv, b'AT+MPUB="/a/b",1,0,"y"\r\n') == ERROR  # overlap
    assert answer(drv, b'AT+MPUB="/a/b",0,0,"z"\r\n') == OK  # QoS0 is always sent
    assert drv.net(MqttPuback(pid)) == b"\r\nPUBACK\r\n"
    assert answer(drv, b'AT+MPUB="/a/b",2,0,"q2"\r\n') == OK
    pid2 = drv.last(MqttPublish).packet_id
    assert drv.net(MqttPubrec(pid2), MqttPubcomp(pid2)) == b"\r\nPUBREC\r\n\r\nPUBCOMP\r\n"
    assert answer(drv, b'AT+MUNSUB="/a/b"\r\n') == OK
    unsub = drv.last(MqttUnsubscribe)
    assert unsub.topic == "/a/b"
    assert drv.net(MqttUnsuback(unsub.packet_id)) == b"\r\nUNSUBACK\r\n"


@pytest.mark.parametrize(
    ("option", "second"),
    [("error", ERROR), ("cme767", b"\r\n+CME ERROR: 767\r\n"), ("accept", OK)],
)
def test_qos1_overlap_option(make_driver, option, second):
    d = make_driver(qos1_overlap=option)
    d.connect_mqtt()
    d.send(b'AT+MPUB="t",1,0,"a"\r\n')
    assert answer(d, b'AT+MPUB="t",1,0,"b"\r\n') == second


def test_mpub_escapes_hex_and_quoting(drv):
    drv.connect_mqtt()
    assert answer(drv, b'AT+MPUB="t",0,0,"{\\22a\\22:1}\\0D\\0A\\5C,x"\r\n') == OK
    assert drv.last(MqttPublish).payload == b'{"a":1}\r\n\\,x'
    assert answer(drv, b'AT+MPUB="t",0,0,"a\\"b"\r\n') == ERROR  # C-style \" (X1)
    assert answer(drv, b'AT+MPUB="t",0,0,hello\r\n') == ERROR  # unquoted (X2)
    assert answer(drv, b'AT+MPUB="t",3,0,"a"\r\n') == ERROR
    assert answer(drv, b'AT+MPUB="t",0,0,"' + b"a" * 4101 + b'"\r\n') == ERROR
    assert answer(drv, b"AT+MQTTMODE=1\r\n") == OK
    assert answer(drv, b'AT+MPUB="t",0,0,"313233"\r\n') == OK
    assert drv.last(MqttPublish).payload == b"123"
    assert answer(drv, b'AT+MPUB="t",0,0,"31323"\r\n') == ERROR
    # UTF-8 topics and payloads pass through
    drv.send(b"AT+MQTTMODE=0\r\n")
    drv.send('AT+MPUB="主题",0,0,"数据"\r\n'.encode())
    assert drv.last(MqttPublish) == MqttPublish("主题", "数据".encode(), 0, False, None)


def test_not_connected_767(drv):
    assert answer(drv, b'AT+MSUB="t",0\r\n') == b"\r\n+CME ERROR: 767\r\n"
    assert answer(drv, b'AT+MUNSUB="t"\r\n') == b"\r\n+CME ERROR: 767\r\n"
    assert answer(drv, b'AT+MPUB="t",0,0,"a"\r\n') == b"\r\n+CME ERROR: 767\r\n"
    assert answer(drv, b'AT+MPUBEX="t",0,0,3\r\n') == b"\r\n+CME ERROR: 767\r\n"
    assert answer(drv, b"AT+MDISCONNECT\r\n") == ERROR


def test_mpubex_length_and_ctrl_z_and_idle(drv):
    drv.connect_mqtt()
    assert answer(drv, b'AT+MPUBEX="t",1,0,5\r\n') == b"\r\n> "
    assert drv.fw.in_data_mode
    assert drv.send(b"ab\r\n") == b""
    assert drv.send(b"cAT\r") == OK + b"AT\r" + OK
    assert drv.last(MqttPublish).payload == b"ab\r\nc"
    drv.net(MqttPuback(drv.last(MqttPublish).packet_id))
    assert answer(drv, b'AT+MPUBEX="t",0,0\r\n') == b"\r\n> "
    assert drv.timers == {"mpubex": 5.0}
    assert drv.send(b"bin\x00\xff\x1a") == OK
    assert drv.last(MqttPublish).payload == b"bin\x00\xff"
    assert drv.timers == {}
    drv.send(b'AT+MPUBEX="t",0,0\r\nxyz')
    assert drv.fire("mpubex") == OK
    assert drv.last(MqttPublish).payload == b"xyz"
    assert answer(drv, b'AT+MPUBEX="t",0,0,4101\r\n') == ERROR


def test_receive_direct_and_cache(drv):
    drv.connect_mqtt()
    msg = MqttMessage("mqtt/sub_topic", b'{\n  "msg": "hello"\n}')
    assert drv.net(msg) == b'\r\n+MSUB: "mqtt/sub_topic",20 byte,{\n  "msg": "hello"\n}\r\n'
    assert answer(drv, b"AT+MQTTMSGSET=1\r\n") == OK
    outs = [drv.net(MqttMessage("t", b"m%d" % i)) for i in range(6)]
    assert outs == [b"\r\n+MSUB: %d\r\n" % s for s in (0, 1, 2, 3, 0, 1)]
    assert answer(drv, b"AT+MQTTMSGGET?\r\n") == (
        b"\r\n+MQTTMSGGET: 0,VALID\r\n+MQTTMSGGET: 1,VALID\r\n+MQTTMSGGET: 2,VALID\r\n"
        b"+MQTTMSGGET: 3,VALID\r\n" + OK
    )
    assert answer(drv, b"AT+MQTTMSGGET\r\n") == (
        b'\r\n+MSUB: "t",2 byte,m4\r\n+MSUB: "t",2 byte,m5\r\n+MSUB: "t",2 byte,m2\r\n'
        b'+MSUB: "t",2 byte,m3\r\n' + OK
    )
    assert answer(drv, b"AT+MQTTMSGGET\r\n") == OK
    assert answer(drv, b"AT+MQTTMSGGET?\r\n").count(b"INVALID") == 4


def test_msub_unquoted_topic_option(make_driver):
    d = make_driver(msub_topic_quoted=False)
    d.connect_mqtt()
    assert d.net(MqttMessage("a/b", b"123456")) == b"\r\n+MSUB: a/b,6 byte,123456\r\n"


def test_pdp_loss_mqtt_silent_and_closed(make_driver):
    d = make_driver()
    d.connect_mqtt()
    assert d.net(PdpLost()) == (b"\r\n+CGEV: NW PDN DEACT 1\r\n")
    assert CloseLink("mqtt") in d.requests
    n = len(d.requests)
    assert answer(d, b'AT+MPUB="t",1,0,"lost"\r\n') == OK  # goes nowhere
    assert len(d.requests) == n
    assert answer(d, b"AT+MIPCLOSE\r\n") == OK
    e = make_driver(pdp_loss_mqtt="closed")
    e.connect_mqtt()
    out = b"".join(a.data for a in e.fw.lose_pdp() if isinstance(a, ToHost))
    assert out == b"\r\n+CGEV: NW PDN DEACT 1\r\n\r\nCLOSED\r\n"
    assert answer(e, b"AT+MIPCLOSE\r\n") == b"\r\n+CME ERROR: 767\r\n"


def test_timers_and_stale_events_are_harmless(drv):
    assert drv.fw.timer("nope") == []
    assert drv.net(MqttConnack(0)) == b""
    assert drv.net(MqttPuback(9)) == b""
    assert drv.net(LinkOpened("mqtt")) == b""
    assert drv.net(MqttMessage("t", b"x")) == b""
    assert drv.net(HttpResult(200, b"")) == b""


def test_start_timer_action_types(drv):
    http_ready(drv)
    acts = drv.fw.receive(b"AT+HTTPDATA=2,1500\r\n")
    assert StartTimer("httpdata", 1.5) in acts


# ---------------------------------------------------------------- tokenizer


def test_cmdline_tokenizer():
    assert parse_command("+CGMI").form == "exec"
    assert parse_command("+CGMI?").form == "read"
    assert parse_command("+CGMI=?").form == "test"
    assert parse_command("E0").args == "0"
    assert [a.text for a in split_args('"a,b",c,,"",d ')] == ["a,b", "c", "", "", "d"]
    for bad in ('"abc', '"a"b', 'a"b'):
        with pytest.raises(ArgError):
            split_args(bad)
    with pytest.raises(ArgError):
        parse_command("+CGMI?x")


def test_config_validation():
    with pytest.raises(ValueError):
        FirmwareConfig(qos1_overlap="maybe")
    with pytest.raises(ValueError):
        FirmwareConfig(cmee=5)
