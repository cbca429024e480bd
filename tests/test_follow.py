"""airlab.follow: the tutorial's steps from its captures, and the checker's verdicts.

Pure tests feed parsed bytes (``parse_stream``); live tests type by hand
(``session.send_text``, raw mode) into the simulator against the in-process cloud
emulator, on a fresh device of the tutorial's product, correct and with mistakes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import airlab  # noqa: F401  (registers airsim://)
from airlab.aliyun import direct_mqtt_credentials, http_auth_request, register_request
from airlab.at import Direction, parse_stream
from airlab.at.events import FinalResult, Payload, Prompt
from airlab.errors import UsageError
from airlab.follow import (
    Method,
    TutorialFollower,
    Verdict,
    follow_events,
    split_turns,
    step_key,
    tutorial_steps,
)
from airlab.session import ModemSession

PK = "k1hipglLdjU"
PS = "8LQwOYSZMwp3DFBd"
TUTORIAL_DN = "868488076506128"
HOST = f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com"
ME = SimpleNamespace(
    product_key=PK,
    device_name="869480000000017",
    device_secret="0123456789abcdef0123456789abcdef",
    product_secret=PS,
    region="cn-shanghai",
)


# ---------------------------------------------------------------------------- helpers


def script(*pairs: tuple[str | bytes, str], start: float = 0.0, gap: float = 1.0) -> list:
    """Events of a typed exchange: (what the host wrote, what the module answered)."""
    chunks = []
    t = start
    for sent, got in pairs:
        data = sent if isinstance(sent, bytes) else (sent + "\r\n").encode()
        chunks.append((Direction.SENT, data, t, t))
        if got:
            chunks.append((Direction.RECEIVED, got.encode(), t + 0.1, t + 0.1))
        t += gap
    return parse_stream(chunks)


def echo(line: str, *answer: str) -> str:
    """The module's bytes for a command: echo, then each answer line."""
    return line + "\r\n" + "".join(f"\r\n{a}\r\n" for a in answer)


def row_for(report, key: str):
    return report.step(key)


# ---------------------------------------------------------------------------- tutorial steps


def test_steps_come_from_the_captures() -> None:
    steps = tutorial_steps(Method.HTTP_AUTH)
    assert [s.key for s in steps] == [
        "cgatt", "sapbr_contype", "sapbr_apn", "sapbr_open", "httpinit", "url", "header",
        "httpdata", "body", "httpaction", "httpread", "mconfig", "mipstart", "mconnect",
    ]  # fmt: skip
    body = steps[8]
    assert body.body and body.sent.startswith("productKey=k1hipglLdjU&sign=0f655b12")
    assert body.replies == ("OK",)
    assert steps[9].replies == ("OK", "+HTTPACTION: 1,200,124")
    assert steps[11].name_zh == "配置连接阿里云"
    assert steps[12].sent.startswith('AT+SSLMIPSTART="a1qsHBbKtmc.')
    assert steps[9].latency == pytest.approx(18.025 - 16.378, abs=1e-3)
    register = [s.key for s in tutorial_steps("dynamic_register")]
    assert register[-4:] == ["httpread", "mconfig", "mipstart", "mconnect"]
    assert [s.index for s in tutorial_steps("direct_mqtt")] == [1, 2, 3]
    assert [s.key for s in tutorial_steps("publish_subscribe")] == [
        "mpub0", "mpub1", "msub", "msgset",
    ]  # fmt: skip


def test_unknown_method_and_missing_captures() -> None:
    with pytest.raises(UsageError, match="unknown method"):
        tutorial_steps("carrier_pigeon")
    with pytest.raises(UsageError, match="AIRLAB_CAPTURES"):
        tutorial_steps("direct_mqtt", tempfile.mkdtemp())


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("AT+CGATT?", "cgatt"),
        ('AT+SAPBR=3,1,"CONTYPE","GPRS"', "sapbr_contype"),
        ('at+sapbr=3,1,"apn","CMNET"', "sapbr_apn"),
        ("AT+SAPBR=1,1", "sapbr_open"),
        ('AT+HTTPPARA="URL","https://x"', "url"),
        ('AT+HTTPPARA="USER_DEFINED","Content-type: a"', "header"),
        ("AT+HTTPDATA=112,20000", "httpdata"),
        ('AT+MIPSTART="h",1883', "mipstart"),
        ('AT+MPUB="/a/b/user/update",0,0,"x"', "mpub0"),
        ("AT+MQTTMSGSET=0", "msgset"),
        ("AT+CSQ", None),
        ("AT+MCONFIG", None),
        ("hello", None),
    ],
)
def test_step_key(line: str, key: str | None) -> None:
    assert step_key(line) == key


def test_turns_route_a_late_puback_to_its_publish() -> None:
    pub = 'AT+MPUB="/k1hipglLdjU/869480000000017/user/update",1,0,"a"'
    events = parse_stream([
        (Direction.SENT, (pub + "\r\n").encode(), 0.0, 0.0),
        (Direction.RECEIVED, echo(pub, "OK").encode(), 0.1, 0.1),
        (Direction.SENT, b"AT+CSQ\r\n", 0.2, 0.2),
        (Direction.RECEIVED, echo("AT+CSQ", "+CSQ: 20,99", "OK").encode(), 0.3, 0.3),
        (Direction.RECEIVED, b"\r\nPUBACK\r\n", 0.4, 0.4),
    ])  # fmt: skip
    turns = split_turns(events)
    assert turns[0].reply_texts == ("OK", "PUBACK")
    assert turns[1].reply_texts == ("+CSQ: 20,99", "OK")


# ---------------------------------------------------------------------------- pure verdicts


def test_content_type_without_its_space() -> None:
    line = 'AT+HTTPPARA="USER_DEFINED","Content-type:application/x-www-form-urlencoded"'
    report = follow_events("http_auth_then_mqtt", ME, script((line, echo(line, "OK"))))
    row = report.rows[-1]
    assert row.step.key == "header" and row.verdict is Verdict.DIFFERS
    assert "one space after the colon" in row.why and "yours has 0" in row.why
    # the skipped steps before it are marked missing, CGATT with why it comes first
    assert report.step("cgatt").verdict is Verdict.MISSING
    assert "+CGATT: 1" in report.step("cgatt").findings[0].text


def test_header_case_is_a_note_not_a_mistake() -> None:
    line = 'AT+HTTPPARA="USER_DEFINED","Content-Type: application/x-www-form-urlencoded"'
    row = follow_events("http_auth_then_mqtt", ME, script((line, echo(line, "OK")))).rows[-1]
    assert row.verdict is Verdict.OK
    assert any("ignore case" in f.text for f in row.notes)


def test_httpdata_length_off_by_bytes() -> None:
    body = http_auth_request(PK, ME.device_name, ME.device_secret).body
    n = len(body) - 2
    events = script(
        (f"AT+HTTPDATA={n},20000", echo(f"AT+HTTPDATA={n},20000", "DOWNLOAD")),
        (body.encode(), "\r\nOK\r\n"),  # no CR LF: the last 2 bytes go to the interpreter
    )
    report = follow_events("http_auth_then_mqtt", ME, events)
    httpdata, sent_body = report.step("httpdata"), report.step("body")
    assert httpdata.verdict is Verdict.DIFFERS
    assert f"announced {n} bytes, the body you then typed has {len(body)}" in httpdata.why
    assert "2 bytes fewer" in httpdata.why
    assert sent_body.verdict is Verdict.DIFFERS
    assert "went to the command interpreter" in sent_body.why
    assert sent_body.sent == body  # the whole body the student typed


def test_body_signed_with_the_wrong_method_says_so() -> None:
    good = http_auth_request(PK, ME.device_name, ME.device_secret)
    sha1 = http_auth_request(PK, ME.device_name, ME.device_secret, sign_method="hmacsha1")
    wrong = good.body.replace(good.sign, sha1.sign)
    n = len(wrong)
    events = script(
        (f"AT+HTTPDATA={n},20000", echo(f"AT+HTTPDATA={n},20000", "DOWNLOAD")),
        (wrong.encode(), "\r\nOK\r\n"),
    )
    row = follow_events("http_auth_then_mqtt", ME, events).step("body")
    assert row.verdict is Verdict.DIFFERS
    assert "hmacsha1 of the right content" in row.why
    assert good.sign not in row.why and good.sign not in (row.expected or "")
    assert row.expected.startswith(f"productKey={PK}&sign={good.sign[:4]}…")


def test_copied_tutorial_device_name() -> None:
    tut = direct_mqtt_credentials(PK, TUTORIAL_DN, "fef32adf6dad46c2c7cbf335d3a7b021")
    line = f'AT+MCONFIG="{tut.client_id}","{tut.username}","{tut.password}"'
    row = follow_events("direct_mqtt", ME, script((line, echo(line, "OK")))).rows[-1]
    assert row.verdict is Verdict.DIFFERS
    assert "868488076506128 is the tutorial's DeviceName" in row.why
    assert "tutorial device's sign" in row.why
    assert row.capture_sent == line  # the capture's line beside it


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda c: (c.username, c.client_id, c.password), "clientId (with its |securemode"),
        (lambda c: (c.client_id, f"{PK}&{ME.device_name}", c.password), "swapped"),
    ],
)
def test_mconfig_order_mistakes(mutate, expect: str) -> None:
    creds = direct_mqtt_credentials(PK, ME.device_name, ME.device_secret)
    a, b, c = mutate(creds)
    line = f'AT+MCONFIG="{a}","{b}","{c}"'
    row = follow_events("direct_mqtt", ME, script((line, echo(line, "OK")))).rows[-1]
    assert row.verdict is Verdict.DIFFERS and expect in row.why


def test_mconfig_sign_method_other_than_asked() -> None:
    creds = direct_mqtt_credentials(PK, ME.device_name, ME.device_secret)  # hmacmd5
    line = f'AT+MCONFIG="{creds.client_id}","{creds.username}","{creds.password}"'
    events = script((line, echo(line, "OK")))
    assert follow_events("direct_mqtt", ME, events).rows[-1].verdict is Verdict.OK
    row = follow_events("direct_mqtt", ME, events, sign_method="hmacsha1").rows[-1]
    assert row.verdict is Verdict.DIFFERS
    assert "asks for hmacsha1; your client id says hmacmd5" in row.why
    # a timestamp in the client id that was not signed: SignatureCheck's hint names it
    ts = direct_mqtt_credentials(PK, ME.device_name, ME.device_secret, timestamp="1700000000000")
    line = f'AT+MCONFIG="{ts.client_id}","{ts.username}","{creds.password}"'
    row = follow_events("direct_mqtt", ME, script((line, echo(line, "OK")))).rows[-1]
    assert "timestamp" in row.why and "signed too" in row.why


def test_host_without_the_product_key_and_the_captures_own_host() -> None:
    line = f'AT+SSLMIPSTART="{HOST.replace(PK, "a1qsHBbKtmc")}",1883'
    row = follow_events("direct_mqtt", ME, script((line, echo(line, "OK", "CONNECT OK")))).rows[-1]
    assert row.verdict is Verdict.DIFFERS
    assert "as the method-1 capture does" in row.why and HOST in row.why
    good = f'AT+SSLMIPSTART="{HOST}",1883'
    report = follow_events(
        "http_auth_then_mqtt", ME, script((good, echo(good, "OK", "CONNECT OK")))
    )
    row = report.step("mipstart")
    assert row.verdict is Verdict.OK
    assert any("belongs to another product" in f.text for f in row.notes)


def test_late_mconnect_from_the_stamps() -> None:
    start = f'AT+SSLMIPSTART="{HOST}",1883'
    events = script(
        (start, echo(start, "OK", "CONNECT OK")),
        ("AT+MCONNECT=1,120", echo("AT+MCONNECT=1,120", "+CME ERROR: 767")),
        gap=7.0,
    )
    row = follow_events("direct_mqtt", ME, events).step("mconnect")
    assert row.verdict is Verdict.DIFFERS
    assert "MCONNECT came 6.9 s after CONNECT OK" in row.why
    assert "+CME ERROR: 767 (operation failed)" in row.why


def test_result_error_extra_command_and_pending() -> None:
    events = script(
        ("AT+CGATT?", echo("AT+CGATT?", "+CGATT: 1", "OK")),
        ("AT+HTTPINT", echo("AT+HTTPINT", "ERROR")),
        ('AT+SAPBR=3,1,"CONTYPE","GPRS"', 'AT+SAPBR=3,1,"CONTYPE","GPRS"\r\n'),
    )
    report = follow_events("http_auth_then_mqtt", ME, events)
    extra = report.rows[1]
    assert extra.verdict is Verdict.EXTRA and extra.step is None
    assert "answered ERROR" in str(extra.findings)
    assert report.rows[2].verdict is Verdict.PENDING  # no final result yet
    assert report.step("sapbr_apn").verdict is Verdict.TODO
    assert report.progress == "1/14 ok"


def test_second_qos1_before_puback() -> None:
    pub = f'AT+MPUB="/{PK}/{ME.device_name}/user/update",1,0,"HelloWorld"'
    events = parse_stream([
        (Direction.SENT, (pub + "\r\n" + pub + "\r\n").encode(), 0.0, 0.0),
        (Direction.RECEIVED, (echo(pub, "OK") + echo(pub, "ERROR")).encode(), 0.1, 0.1),
        (Direction.RECEIVED, b"\r\nPUBACK\r\n", 0.3, 0.3),
    ])  # fmt: skip
    report = follow_events("publish_subscribe", ME, events)
    first, second = report.rows[-2:]
    assert first.verdict is Verdict.MISSING or first.verdict is Verdict.OK
    assert second.verdict is Verdict.DIFFERS
    assert "one QoS1 in flight" in second.why
    assert report.step("mpub0").verdict is Verdict.MISSING


def test_follower_feeds_incrementally() -> None:
    f = TutorialFollower("direct_mqtt", ME)
    assert [s.verdict for s in f.report.steps] == [Verdict.TODO] * 3
    creds = direct_mqtt_credentials(PK, ME.device_name, ME.device_secret)
    line = f'AT+MCONFIG="{creds.client_id}","{creds.username}","{creds.password}"'
    f.feed(parse_stream([(Direction.SENT, (line + "\r\n").encode(), 0.0, 0.0)]))
    assert f.report.steps[0].verdict is Verdict.PENDING
    both = parse_stream([(Direction.SENT, (line + "\r\n").encode(), 0.0, 0.0),
                         (Direction.RECEIVED, echo(line, "OK").encode(), 0.1, 0.1)])  # fmt: skip
    f.feed(both[1:])
    assert f.report.steps[0].verdict is Verdict.OK
    assert creds.password not in (f.report.steps[0].expected or "")
    f.reset()
    assert f.events == []


# ---------------------------------------------------------------------------- live


@pytest.fixture(scope="module")
def cloud() -> Iterator[tuple[Any, Path]]:
    from airlab.cloud import CloudEmulator

    with CloudEmulator(fixture="tutorial", connect_timeout=1.0) as emu:
        yield emu, emu.write_endpoints(Path(tempfile.mkdtemp()) / "endpoints.json")


_counter = iter(range(10_000))


@pytest.fixture
def device(cloud) -> SimpleNamespace:
    """A fresh device of the tutorial's product (like ``lab.identity``)."""
    name = f"8694800{next(_counter):05d}{len(str(id(cloud))) % 10}"[:15].ljust(15, "0")
    secret = cloud[0].add_device(PK, name)
    return SimpleNamespace(
        product_key=PK, device_name=name, device_secret=secret, product_secret=PS,
        region="cn-shanghai",
    )  # fmt: skip


@pytest.fixture
def raw(cloud, device) -> Iterator[ModemSession]:
    url = f"airsim://follow?profile=instant&imei={device.device_name}&cloud={cloud[1]}"
    with ModemSession(url, guards=False) as s:
        yield s


def typed(s: ModemSession, text: str, *, end: str | None = None, urc: str | None = None):
    """Type ``text`` as sscom does; wait for its final result, prompt or URC."""
    mark = s.send_text(text, end=end)
    if urc:
        s.wait_for_urc(urc, 10, since=mark)
    else:
        s.wait_for_event(lambda e: isinstance(e, FinalResult | Prompt), 25, since=mark)
    return mark


NET = (
    "AT+CGATT?",
    'AT+SAPBR=3,1,"CONTYPE","GPRS"',
    'AT+SAPBR=3,1,"APN","CMIOT"',
    "AT+SAPBR=1,1",
    "AT+HTTPINIT",
)
CT = 'AT+HTTPPARA="USER_DEFINED","Content-type: application/x-www-form-urlencoded"'


def post(s: ModemSession, url_line: str, body: str, length: int | None = None) -> None:
    for line in (*NET, url_line, CT):
        typed(s, line)
    typed(s, f"AT+HTTPDATA={len(body) if length is None else length},20000")
    typed(s, body, end="")
    typed(s, "AT+HTTPACTION=1", urc="+HTTPACTION")
    typed(s, "AT+HTTPREAD")


def reply(s: ModemSession, mark: int) -> dict:
    payload = [e for e in s.events_since(mark) if isinstance(e, Payload)][-1]
    return json.loads(payload.data)


def login(s: ModemSession, a: str, b: str, c: str, host: str = HOST) -> None:
    typed(s, f'AT+MCONFIG="{a}","{b}","{c}"')
    typed(s, f'AT+SSLMIPSTART="{host}",1883', urc="CONNECT OK")
    typed(s, "AT+MCONNECT=1,120", urc="CONNACK OK")


URL1 = 'AT+HTTPPARA="URL",https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename'
URL3 = 'AT+HTTPPARA="URL","https://iot-auth.cn-shanghai.aliyuncs.com/auth/register/device"'


def test_live_method1_typed_right(raw: ModemSession, device) -> None:
    mark = raw.mark()
    post(raw, URL1, http_auth_request(PK, device.device_name, device.device_secret).body)
    data = reply(raw, mark)["data"]
    login(raw, device.device_name, data["iotId"], data["iotToken"])
    report = follow_events("http_auth_then_mqtt", device, raw.events_since(mark))
    assert report.done, report.to_text()
    mconfig = report.step("mconfig")
    assert data["iotToken"] not in mconfig.expected  # shown by its first characters
    assert mconfig.capture_sent.startswith('AT+MCONFIG="868488076506128","2BGmg')
    assert all(data["iotToken"] not in g for g in report.step("httpread").got)


def test_live_method1_mistakes(raw: ModemSession, device) -> None:
    """No space in Content-type, a body 3 bytes longer than announced, the MCONFIG values
    in the tutorial's warned-about wrong order."""
    mark = raw.mark()
    for line in (*NET, URL1, CT.replace(": ", ":")):
        typed(raw, line)
    body = http_auth_request(PK, device.device_name, device.device_secret).body
    typed(raw, f"AT+HTTPDATA={len(body) - 3},20000")
    typed(raw, body, end="")
    typed(raw, "AT+HTTPACTION=1", urc="+HTTPACTION")  # runs into the body's last 3 bytes
    typed(raw, "AT+HTTPREAD")
    report = follow_events("http_auth_then_mqtt", device, raw.events_since(mark))
    assert "one space after the colon" in report.step("header").why
    assert "3 bytes fewer" in report.step("httpdata").why
    assert "went to the command interpreter" in report.step("body").why
    action = report.step("httpaction")
    assert action.sent.endswith("AT+HTTPACTION=1") and action.sent != "AT+HTTPACTION=1"
    assert any("ran into this line" in f.text and "still found" in f.text for f in action.notes)
    read = report.step("httpread")
    assert read.verdict is Verdict.DIFFERS and "the cloud answered code" in read.why
    # now right, then MCONFIG with iotId first
    mark2 = raw.mark()
    post(raw, URL1, body)
    data = reply(raw, mark2)["data"]
    typed(raw, f'AT+MCONFIG="{data["iotId"]}","{device.device_name}","{data["iotToken"]}"')
    report = follow_events("http_auth_then_mqtt", device, raw.events_since(mark2))
    assert report.step("httpread").verdict is Verdict.OK
    assert "第一个值为clientId" in report.step("mconfig").why


@pytest.mark.parametrize("timestamp", [None, "1700000000000"])
def test_live_method2_hmacsha1(raw: ModemSession, device, timestamp) -> None:
    mark = raw.mark()
    creds = direct_mqtt_credentials(
        PK, device.device_name, device.device_secret, sign_method="hmacsha1", timestamp=timestamp
    )
    login(raw, creds.client_id, creds.username, creds.password)
    report = follow_events("direct_mqtt", device, raw.events_since(mark), sign_method="hmacsha1")
    assert report.done, report.to_text()
    assert creds.password not in report.step("mconfig").expected


def test_live_method2_wrong_secret_is_refused_and_explained(raw: ModemSession, device) -> None:
    mark = raw.mark()
    creds = direct_mqtt_credentials(PK, device.device_name, "f" * 32)
    typed(raw, f'AT+MCONFIG="{creds.client_id}","{creds.username}","{creds.password}"')
    typed(raw, f'AT+SSLMIPSTART="{HOST}",1883', urc="CONNECT OK")
    m = typed(raw, "AT+MCONNECT=1,120")
    raw.wait_for_event(lambda e: e.text.strip() in ("ERROR", "CLOSED"), 10, since=m + 2)
    report = follow_events("direct_mqtt", device, raw.events_since(mark))
    assert "check the secret" in report.step("mconfig").why
    assert "the broker refused the login" in report.step("mconnect").why


def test_live_late_mconnect(raw: ModemSession, device) -> None:
    mark = raw.mark()
    creds = direct_mqtt_credentials(PK, device.device_name, device.device_secret)
    typed(raw, f'AT+MCONFIG="{creds.client_id}","{creds.username}","{creds.password}"')
    m = typed(raw, f'AT+SSLMIPSTART="{HOST}",1883', urc="CONNECT OK")
    raw.wait_for_urc("CLOSED", 10, since=m)  # the emulator's 1 s window, waited out
    typed(raw, "AT+MCONNECT=1,120")
    report = follow_events("direct_mqtt", device, raw.events_since(mark), window=1.0)
    why = report.step("mconnect").why
    assert "after CONNECT OK" in why and "CLOSED" in why and "+CME ERROR: 767" in why


def test_live_method3_register_then_login(raw: ModemSession, device) -> None:
    mark = raw.mark()
    body = register_request(PK, device.device_name, PS, random="8812345").body
    post(raw, URL3, body)
    secret = reply(raw, mark)["data"]["deviceSecret"]
    creds = direct_mqtt_credentials(PK, device.device_name, secret)
    login(raw, creds.client_id, creds.username, creds.password)
    report = follow_events("dynamic_register", device, raw.events_since(mark))
    assert report.done, report.to_text()
    assert report.step("httpdata").expected == f"AT+HTTPDATA={len(body)},20000"
    assert all(secret not in g for g in report.step("httpread").got)


def test_live_method3_wrong_product_secret(raw: ModemSession, device) -> None:
    mark = raw.mark()
    body = register_request(PK, device.device_name, "x" * 16, random="123456").body
    post(raw, URL3, body)
    report = follow_events("dynamic_register", device, raw.events_since(mark))
    assert "the server would refuse this sign" in report.step("body").why
    assert report.step("httpread").verdict is Verdict.DIFFERS


def test_live_publish_subscribe(raw: ModemSession, device) -> None:
    creds = direct_mqtt_credentials(PK, device.device_name, device.device_secret)
    login(raw, creds.client_id, creds.username, creds.password)
    mark = raw.mark()
    topic = f"/{PK}/{device.device_name}/user"
    typed(raw, f'AT+MPUB="{topic}/update",0,0,"HelloWorld"')
    typed(raw, f'AT+MPUB="{topic}/update",1,0,"HelloWorld"', urc="PUBACK")
    typed(raw, f'AT+MSUB="{topic}/get",0', urc="SUBACK")
    typed(raw, "AT+MQTTMSGSET=0")
    report = follow_events("publish_subscribe", device, raw.events_since(mark))
    assert report.done, report.to_text()
    # two QoS1 back to back (one paste): the module's own ERROR, explained
    m2 = raw.mark()
    line = f'AT+MPUB="{topic}/update",1,0,"x"'
    first = raw.send_text(line + "\r\n" + line)
    raw.wait_for_urc("PUBACK", 5, since=first)
    rows = follow_events("publish_subscribe", device, raw.events_since(m2)).rows
    assert "one QoS1 in flight" in rows[-1].why and "answered ERROR" in rows[-1].why
