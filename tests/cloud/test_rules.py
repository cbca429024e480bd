"""Rules: CONNECT decisions (forged table), HTTP decisions, platform replies, logging."""

from __future__ import annotations

import json

import pytest

from airlab.aliyun import (
    direct_mqtt_credentials,
    encode_form,
    hmac_hex,
    mqtt_register_credentials,
    parse_form,
)
from airlab.cloud.auth import Rules
from airlab.cloud.model import ConnectKind, ConnectRequest, DeviceRef, MessageRecord
from airlab.cloud.registry import TOKEN_LIFETIME, Registry

PK, DN = "k1hipglLdjU", "868488076506128"
DS, PS = "fef32adf6dad46c2c7cbf335d3a7b021", "8LQwOYSZMwp3DFBd"
REF = DeviceRef(PK, DN)
TUTORIAL_CID = f"{DN}|securemode=3,signmethod=hmacmd5|"
TUTORIAL_PW = b"0f655b12adf519b9a7a2b0a990f398b6"
AUTH_BODY = f"productKey={PK}&sign=0f655b12adf519b9a7a2b0a990f398b6&clientId={DN}&deviceName={DN}"
REGISTER_BODY = (
    f"productKey={PK}&deviceName={DN}&random=123456"
    "&sign=20558baadb2a0b04847767980f0ee67b&signMethod=HmacMD5"
)


def connect(
    rules: Rules,
    client_id: str = TUTORIAL_CID,
    username: str | None = f"{DN}&{PK}",
    password: bytes | None = TUTORIAL_PW,
    keepalive: int = 120,
    **kw: object,
):
    return rules.decide_connect(ConnectRequest(client_id, username, password, keepalive, **kw))


def refused(decision, code: int, rule: str) -> None:
    assert decision.return_code == code, decision
    assert decision.explanation is not None
    assert decision.explanation.rule == rule, decision.explanation
    assert decision.explanation.message


# -- direct device-secret connects --------------------------------------------------


def test_tutorial_direct_connect_accepted(rules: Rules) -> None:
    d = connect(rules)
    assert d.accepted and d.device == REF and d.kind is ConnectKind.DEVICE
    assert d.keepalive_limit == 180.0 and d.ext == 0 and d.explanation is None
    assert d.pushes == () and d.close_after is None


def test_uppercase_hex_timestamp_and_sdk_extras(rules: Rules) -> None:
    c = direct_mqtt_credentials(
        PK, DN, DS, client_id=f"{PK}.{DN}", sign_method="hmacsha256",
        timestamp=2524608000000, secure_mode=2, upper=True,
        extra_params=[("_ss", "1"), ("ext", "3"), ("_v", "sdk-c-4.1.0")], trailing_comma=True,
    )  # fmt: skip
    d = connect(rules, c.client_id, c.username, c.password.encode(), 1200, tls=True)
    assert d.accepted and d.ext == 3 and d.keepalive_limit == 1800.0


def test_no_signmethod_defaults_to_hmacmd5(rules: Rules) -> None:
    assert connect(rules, f"{DN}|securemode=3|").accepted
    assert connect(rules, DN).accepted  # bare client id, no block at all


def test_wrong_sign_explained_with_masked_secret(rules: Rules) -> None:
    d = connect(rules, password=b"0" * 32)
    refused(d, 4, "signature")
    details = d.explanation.details
    assert details["sign_content"] == f"clientId{DN}deviceName{DN}productKey{PK}"
    assert details["algorithm"] == "hmacmd5"
    assert details["expected"] == "0f65… (32 characters)"  # a prefix, never the password
    assert details["received"] == "0000… (32 characters)"
    assert details["differs"].startswith("the value:")
    assert details["secret"] == "fe****************************21"
    shown = json.dumps(d.explanation.as_dict(), ensure_ascii=False)
    assert DS not in shown and TUTORIAL_PW.decode() not in shown
    assert details["sign_content"] in d.explanation.message


def test_wrong_algorithm(rules: Rules) -> None:
    d = connect(rules, f"{DN}|securemode=3,signmethod=hmacsha1|")
    refused(d, 4, "signature")
    assert d.explanation.details["algorithm"] == "hmacsha1"


def test_unknown_signmethod(rules: Rules) -> None:
    refused(connect(rules, f"{DN}|securemode=3,signmethod=hmacsha512|"), 2, "sign_method")


def test_timestamp_signed_only_if_present_no_clock_check(rules: Rules) -> None:
    c = direct_mqtt_credentials(PK, DN, DS, timestamp="1")
    assert connect(rules, c.client_id, password=c.password.encode()).accepted
    # the same password without the timestamp in the client id no longer matches
    refused(connect(rules, TUTORIAL_CID, password=c.password.encode()), 4, "signature")


def test_swapped_username_is_unknown_device(rules: Rules) -> None:
    d = connect(rules, username=f"{PK}&{DN}")
    refused(d, 5, "unknown_product")
    assert "swapped" in d.explanation.message


def test_username_without_ampersand(rules: Rules) -> None:
    # with securemode=3 it is a device-secret login: the username format is wrong
    refused(connect(rules, username="no-ampersand"), 4, "username_format")
    # without securemode it is read as an iotId (the tutorial's HTTPS-auth login)
    refused(connect(rules, DN, "no-ampersand"), 3, "token_invalid")


@pytest.mark.parametrize(
    ("username", "code", "rule"),
    [
        ("", 4, "username_format"),
        (None, 4, "username_format"),
        (f"ghost&{PK}", 5, "unknown_device"),
        (f"{DN}&nopk", 5, "unknown_product"),
    ],
)
def test_bad_usernames(rules: Rules, username: str | None, code: int, rule: str) -> None:
    refused(connect(rules, username=username), code, rule)


@pytest.mark.parametrize(
    "client_id",
    [
        "x" * 65 + "|securemode=3,signmethod=hmacmd5|",
        "x" * 65,
        "abc|securemode=3,signmethod=hmacmd5",  # block not closed
        "abc|securemode=3,signmethod|",  # item without '='
    ],
)
def test_bad_client_ids(rules: Rules, client_id: str) -> None:
    refused(connect(rules, client_id), 2, "client_id_format")


def test_64_char_client_id_ok(rules: Rules) -> None:
    c = direct_mqtt_credentials(PK, DN, DS, client_id="x" * 64)
    assert connect(rules, c.client_id, password=c.password.encode()).accepted


@pytest.mark.parametrize("keepalive", [0, 29, 1201])
def test_keepalive_out_of_range(rules: Rules, keepalive: int) -> None:
    d = connect(rules, keepalive=keepalive)
    refused(d, 2, "keepalive")
    assert str(keepalive) in d.explanation.message


@pytest.mark.parametrize("keepalive", [30, 1200])
def test_keepalive_bounds_ok(rules: Rules, keepalive: int) -> None:
    assert connect(rules, keepalive=keepalive).accepted


@pytest.mark.parametrize("level", [2, 5, 6])
def test_protocol_level(rules: Rules, level: int) -> None:
    refused(connect(rules, protocol_level=level), 1, "protocol_version")
    assert connect(rules, protocol_level=3).accepted


def test_disabled_device(rules: Rules, tutorial: Registry) -> None:
    tutorial.set_device_enabled(REF, False)
    refused(connect(rules), 5, "device_disabled")
    tutorial.set_device_enabled(REF, True)
    assert connect(rules).accepted


@pytest.mark.parametrize("mode", ["8", "1", "abc", "-2"])
def test_unsupported_securemode(rules: Rules, mode: str) -> None:
    refused(connect(rules, f"{DN}|securemode={mode}|"), 2, "secure_mode")


def test_unknown_auth_type(rules: Rules) -> None:
    refused(connect(rules, f"{DN}|securemode=2,authType=id2|"), 2, "auth_type")


def test_password_not_utf8(rules: Rules) -> None:
    refused(connect(rules, password=b"\xff\xfe"), 4, "signature")
    refused(connect(rules, password=None), 4, "signature")


def test_rate_limit_opt_in(tutorial: Registry, clock) -> None:
    rules = Rules(tutorial, connect_rate_limit=5, clock=clock)
    for _ in range(5):
        assert connect(rules).accepted
    refused(connect(rules), 3, "rate_limit")
    clock.advance(61)
    assert connect(rules).accepted
    unlimited = Rules(tutorial, clock=clock)
    assert all(connect(unlimited).accepted for _ in range(20))


def test_connected_activates(rules: Rules, tutorial: Registry) -> None:
    rules.connected(REF, ConnectKind.REGISTER)
    assert not tutorial.get_device(REF).activated
    rules.connected(REF, ConnectKind.DEVICE)
    assert tutorial.get_device(REF).activated


# -- token (guider) connects --------------------------------------------------------------


def test_http_auth_then_token_connect(rules: Rules, clock) -> None:
    reply = rules.auth_devicename(parse_form(AUTH_BODY))
    data = reply.json["data"]
    # the tutorial's MCONFIG: bare client id, iotId/iotToken, securemode absent -> but the
    # guider connect carries securemode=-1 (TLS) or 0 (TCP) in SDKs
    for cid in (f"{DN}|securemode=-1|", f"{PK}.{DN}|securemode=0,signmethod=hmacsha256|"):
        d = connect(rules, cid, data["iotId"], data["iotToken"].encode())
        assert d.accepted and d.kind is ConnectKind.TOKEN and d.device == REF
    clock.advance(TOKEN_LIFETIME - 1)
    assert connect(rules, f"{DN}|securemode=-1|", data["iotId"], data["iotToken"].encode())
    clock.advance(2)
    d = connect(rules, f"{DN}|securemode=-1|", data["iotId"], data["iotToken"].encode())
    refused(d, 3, "token_expired")


def test_tutorial_guider_connect_with_bare_client_id(rules: Rules) -> None:
    """The tutorial: AT+MCONFIG="868488076506128","<iotId>","<iotToken>" (no block)."""
    data = rules.auth_devicename(parse_form(AUTH_BODY)).json["data"]
    d = connect(rules, DN, data["iotId"], data["iotToken"].encode())
    assert d.accepted and d.kind is ConnectKind.TOKEN and d.device == REF
    d = connect(rules, DN, data["iotId"], b"0" * 32)
    refused(d, 3, "token_invalid")
    assert "no '&'" in d.explanation.message


def test_wrong_token(rules: Rules) -> None:
    data = rules.auth_devicename(parse_form(AUTH_BODY)).json["data"]
    d = connect(rules, f"{DN}|securemode=-1|", data["iotId"], b"0" * 32)
    refused(d, 3, "token_invalid")
    assert "belongs to" in d.explanation.message
    refused(connect(rules, f"{DN}|securemode=0|", "nobody", b"x"), 3, "token_invalid")
    refused(connect(rules, f"{DN}|securemode=0|", None, None), 3, "token_invalid")


def test_token_of_disabled_device(rules: Rules, tutorial: Registry) -> None:
    data = rules.auth_devicename(parse_form(AUTH_BODY)).json["data"]
    tutorial.set_device_enabled(REF, False)
    d = connect(rules, f"{DN}|securemode=-1|", data["iotId"], data["iotToken"].encode())
    refused(d, 5, "device_disabled")


# -- MQTT dynamic registration ------------------------------------------------------------


def register_connect(rules: Rules, *, auth_type="register", tls=True, secret=PS, dn=DN, **kw):
    c = mqtt_register_credentials(
        PK, dn, secret, random="123456", sign_method="hmacmd5", auth_type=auth_type, **kw
    )
    return connect(rules, c.client_id, c.username, c.password.encode(), 0, tls=tls)


def test_mqtt_register_pushes_secret(rules: Rules) -> None:
    d = register_connect(rules, upper=True)
    assert d.accepted and d.kind is ConnectKind.REGISTER and d.close_after == 15.0
    assert d.keepalive_limit is None  # keepalive 0 is not checked for dynreg
    (push,) = d.pushes
    assert push.topic == "/ext/register"
    assert push.payload == (
        b'{"deviceSecret":"fef32adf6dad46c2c7cbf335d3a7b021",'
        b'"productKey":"k1hipglLdjU","deviceName":"868488076506128"}'
    )


def test_mqtt_register_refusals(rules: Rules, tutorial: Registry) -> None:
    refused(register_connect(rules, tls=False), 2, "dynreg_tls")
    refused(register_connect(rules, secret="wrong-secret"), 4, "signature")
    d = register_connect(rules, secret="wrong-secret")
    assert d.explanation.details["sign_content"] == f"deviceName{DN}productKey{PK}random123456"
    assert d.explanation.details["secret"] == "8L************Bd"
    refused(register_connect(rules, dn="not-there"), 5, "unknown_device")
    tutorial.mark_activated(REF)
    d = register_connect(rules)
    refused(d, 5, "already_activated")
    assert "reset" in d.explanation.message.lower()
    tutorial.reset_registration(REF)
    assert register_connect(rules).accepted
    tutorial.set_dynamic_registration(PK, False)
    refused(register_connect(rules), 5, "dynreg_disabled")


@pytest.mark.parametrize(
    ("client_id", "rule"),
    [
        (f"{DN}.{PK}|authType=register,securemode=2,signmethod=hmacmd5|", "dynreg_params"),
        (f"{DN}.{PK}|random=1,authType=register,securemode=2|", "dynreg_params"),
        (f"{DN}.{PK}|random=1,authType=register,securemode=3,signmethod=hmacmd5|", "dynreg_params"),
        (f"{DN}.{PK}|random=1,authType=register,securemode=2,signmethod=md4|", "sign_method"),
    ],
)
def test_mqtt_register_missing_params(rules: Rules, client_id: str, rule: str) -> None:
    refused(connect(rules, client_id, f"{DN}&{PK}", b"00", 60, tls=True), 2, rule)


def test_mqtt_register_unknown_product(rules: Rules) -> None:
    cid = "d.p|random=1,authType=register,securemode=2,signmethod=hmacmd5|"
    refused(connect(rules, cid, "dev1&nopk", b"00", 60, tls=True), 5, "unknown_product")


def test_regnwl_creates_device_then_connwl(rules: Rules, tutorial: Registry) -> None:
    d = register_connect(rules, auth_type="regnwl", dn="newdev01")
    assert d.accepted and d.kind is ConnectKind.REGNWL
    (push,) = d.pushes
    assert push.topic == "/ext/regnwl"
    grant = json.loads(push.payload)
    assert list(grant) == ["productKey", "deviceName", "clientId", "deviceToken"]
    assert grant["deviceName"] == "newdev01" and len(grant["clientId"]) == 26
    assert tutorial.get_device(PK, "newdev01") is not None
    cid = f"{grant['clientId']}|securemode=-2,authType=connwl,_ss=1,ext=3|"
    ok = connect(rules, cid, f"newdev01&{PK}", grant["deviceToken"].encode())
    assert ok.accepted and ok.kind is ConnectKind.CONNWL and ok.ext == 3
    bad = connect(rules, cid, f"newdev01&{PK}", b"^1^0^wrong")
    refused(bad, 4, "device_token")
    assert grant["deviceToken"] not in json.dumps(bad.explanation.as_dict())
    other = connect(
        rules, "otherclient|securemode=-2,authType=connwl|", f"newdev01&{PK}",
        grant["deviceToken"].encode(),
    )  # fmt: skip
    refused(other, 4, "device_token")
    refused(connect(rules, cid, f"ghost&{PK}", grant["deviceToken"].encode()), 5, "unknown_device")


# -- HTTP decisions -------------------------------------------------------------------------


def test_auth_devicename_tutorial(rules: Rules, tutorial: Registry) -> None:
    reply = rules.auth_devicename(parse_form(AUTH_BODY), remote="1.2.3.4:5")
    assert reply.status == 200 and len(reply.body) == 124
    assert reply.content_type == "application/json;charset=utf-8"
    body = reply.json
    assert list(body) == ["code", "data", "message"] and list(body["data"]) == [
        "iotId",
        "iotToken",
    ]
    iot_id = body["data"]["iotId"]
    assert len(iot_id) == 26 and iot_id.endswith("k1hip0")
    assert iot_id == tutorial.get_device(REF).iot_id
    assert tutorial.find_token(iot_id, body["data"]["iotToken"]) is not None
    (event,) = tutorial.connection_log()
    assert (event.protocol, event.event, event.accepted, event.code) == ("http", "auth", True, 200)
    assert event.remote == "1.2.3.4:5" and event.client_id == DN and event.device == REF


@pytest.mark.parametrize("key", ["resources", "resouces"])
def test_auth_devicename_resources(rules: Rules, key: str) -> None:
    form = parse_form(AUTH_BODY) | {key: "mqtt,codec", "version": "default"}
    data = rules.auth_devicename(form).json["data"]
    assert list(data) == ["iotId", "iotToken", "resources"]
    assert data["resources"] == {
        "mqtt": {"host": f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com", "port": 1883}
    }


def test_auth_devicename_c3_sdk_form(rules: Rules) -> None:
    content = f"clientId{PK}.{DN}deviceName{DN}productKey{PK}timestamp2524608000000"
    sign = hmac_hex(DS, content, "hmacsha256", upper=True)
    body = encode_form(
        [("productKey", PK), ("deviceName", DN), ("signmethod", "hmacsha256"), ("sign", sign),
         ("version", "default"), ("clientId", f"{PK}.{DN}"), ("timestamp", "2524608000000"),
         ("resources", "mqtt")]
    )  # fmt: skip
    reply = rules.auth_devicename(parse_form(body))
    assert reply.json["code"] == 200 and "resources" in reply.json["data"]


@pytest.mark.parametrize(
    ("change", "code", "rule"),
    [
        ({"sign": "0" * 32}, 401, "signature"),
        ({"sign": "0F655B12ADF519B9A7A2B0A990F398B6"}, 200, None),  # uppercase accepted
        ({"signmethod": "hmacsha1"}, 401, "signature"),  # wrong algorithm
        ({"signmethod": "hmacsha512"}, 460, "sign_method"),
        ({"sign": ""}, 460, "http_params"),
        ({"clientId": None}, 460, "http_params"),
        ({"clientId": "x" * 65}, 460, "http_params"),
        ({"deviceName": "ghost"}, 5001, "unknown_device"),
        ({"productKey": "nopk"}, 5001, "unknown_product"),
        ({"timestamp": "1"}, 401, "signature"),  # timestamp present => signed
    ],
)
def test_auth_devicename_forged(rules: Rules, change: dict, code: int, rule: str | None) -> None:
    form = parse_form(AUTH_BODY) | change
    form = {k: v for k, v in form.items() if v is not None}
    reply = rules.auth_devicename(form)
    assert reply.status == 200
    assert reply.json["code"] == code
    if rule is None:
        assert reply.explanation is None
        return
    assert reply.explanation.rule == rule
    assert "data" not in reply.json
    if rule == "signature":
        assert reply.explanation.details["secret"] == "fe****************************21"
        assert "clientId" in reply.explanation.details["sign_content"]
        assert reply.json["message"] == "request auth error"


def test_auth_devicename_disabled(rules: Rules, tutorial: Registry) -> None:
    tutorial.set_device_enabled(REF, False)
    reply = rules.auth_devicename(parse_form(AUTH_BODY))
    assert reply.json["code"] == 401 and reply.explanation.rule == "device_disabled"


def test_register_device_tutorial_exact(rules: Rules, tutorial: Registry) -> None:
    reply = rules.register_device(parse_form(REGISTER_BODY))
    assert reply.body == (
        b'{"code":200,"data":{"deviceName":"868488076506128",'
        b'"deviceSecret":"fef32adf6dad46c2c7cbf335d3a7b021","productKey":"k1hipglLdjU"},'
        b'"message":"success"}'
    )
    assert len(reply.body) == 149
    again = rules.register_device(parse_form(REGISTER_BODY))  # allowed before activation
    assert again.json["code"] == 200 and len(again.body) == 149
    events = tutorial.connection_log()
    assert [e.event for e in events] == ["register", "register"]


def _login(rules: Rules, secret: str):
    password = hmac_hex(secret, f"clientId{DN}deviceName{DN}productKey{PK}", "hmacmd5")
    return connect(rules, password=password.encode())


def test_register_again_issues_a_new_secret_only_the_latest_valid(
    rules: Rules, tutorial: Registry
) -> None:
    """help.aliyun.com doc 173007 (and the HTTPS one): before activation a device may
    register again and again; its DeviceSecret is the last one issued ("以最后一次为准"):
    the first registration hands out the console's secret, each repeat a new one, and a
    secret handed out earlier stops working."""
    first = rules.register_device(parse_form(REGISTER_BODY)).json["data"]["deviceSecret"]
    assert first == "fef32adf6dad46c2c7cbf335d3a7b021"  # the tutorial's capture
    second = rules.register_device(parse_form(REGISTER_BODY)).json["data"]["deviceSecret"]
    third = rules.register_device(parse_form(REGISTER_BODY)).json["data"]["deviceSecret"]
    assert len({first, second, third}) == 3 and len(third) == 32
    assert tutorial.get_device(REF).device_secret == third
    refused(_login(rules, first), 4, "signature")
    refused(_login(rules, second), 4, "signature")
    assert _login(rules, third).accepted
    # ResetThing: 未注册 again, so the next registration hands out the current secret
    tutorial.mark_activated(REF)
    tutorial.reset_registration(REF)
    assert not tutorial.get_device(REF).registered
    reply = rules.register_device(parse_form(REGISTER_BODY))
    assert reply.json["data"]["deviceSecret"] == third


def test_mqtt_register_again_issues_a_new_secret(rules: Rules, tutorial: Registry) -> None:
    pushed = []
    for _ in range(2):
        (push,) = register_connect(rules).pushes
        pushed.append(json.loads(push.payload)["deviceSecret"])
    https = rules.register_device(parse_form(REGISTER_BODY)).json["data"]["deviceSecret"]
    assert pushed[0] == "fef32adf6dad46c2c7cbf335d3a7b021"
    assert len({*pushed, https}) == 3
    assert tutorial.get_device(REF).device_secret == https
    refused(_login(rules, pushed[1]), 4, "signature")


@pytest.mark.parametrize(
    ("change", "code", "rule"),
    [
        ({"sign": "0" * 32}, 401, "signature"),
        ({"sign": "20558BAADB2A0B04847767980F0EE67B"}, 200, None),
        ({"signMethod": "hmacmd5"}, 200, None),
        ({"signMethod": None}, 200, None),  # default hmacmd5
        ({"signMethod": "HmacSHA256"}, 401, "signature"),
        ({"signMethod": "rsa"}, 460, "sign_method"),
        ({"random": None}, 460, "http_params"),
        ({"random": "654321"}, 401, "signature"),
        ({"productKey": "nopk"}, 5001, "unknown_product"),
    ],
)
def test_register_device_forged(rules: Rules, change: dict, code: int, rule: str | None) -> None:
    form = parse_form(REGISTER_BODY) | change
    form = {k: v for k, v in form.items() if v is not None}
    reply = rules.register_device(form)
    assert reply.status == 200 and reply.json["code"] == code
    assert (reply.explanation.rule if reply.explanation else None) == rule


def test_register_device_states(rules: Rules, tutorial: Registry) -> None:
    tutorial.set_dynamic_registration(PK, False)
    reply = rules.register_device(parse_form(REGISTER_BODY))
    assert reply.json["code"] == 460 and reply.explanation.rule == "dynreg_disabled"
    tutorial.set_dynamic_registration(PK, True)
    tutorial.mark_activated(REF)
    reply = rules.register_device(parse_form(REGISTER_BODY))
    assert reply.json["code"] == 460 and reply.explanation.rule == "already_activated"
    assert "ResetThing" in reply.explanation.message
    tutorial.reset_registration(REF)
    assert rules.register_device(parse_form(REGISTER_BODY)).json["code"] == 200
    # a device that does not exist (sign right for it)
    sign = hmac_hex(PS, f"deviceNameghostproductKey{PK}random1", "hmacmd5")
    form = {"productKey": PK, "deviceName": "ghost", "random": "1", "sign": sign}
    reply = rules.register_device(form)
    assert reply.json["code"] == 5001 and reply.explanation.rule == "unknown_device"
    # lowercase 'signmethod' is signed like any other field: refused with a hint
    form = parse_form(REGISTER_BODY)
    form["signmethod"] = form.pop("signMethod")
    reply = rules.register_device(form)
    assert reply.json["code"] == 401 and "capital M" in reply.explanation.message


# -- platform replies -------------------------------------------------------------------------


def test_property_post_reply(rules: Rules) -> None:
    topic = f"/sys/{PK}/{DN}/thing/event/property/post"
    payload = b'{"id":"123","version":"1.0","params":{"t":1},"method":"thing.event.property.post"}'
    (push,) = rules.replies_to(REF, topic, payload)
    assert push.topic == topic + "_reply"
    assert push.payload == (
        b'{"code":200,"data":{},"id":"123","message":"success",'
        b'"method":"thing.event.property.post","version":"1.0"}'
    )
    assert rules.replies_to(REF, topic, b'{"id":"1","sys":{"ack":0},"params":{}}') == []
    (bad,) = rules.replies_to(REF, topic, b"not json")
    assert json.loads(bad.payload)["code"] == 460


def test_event_post_reply_and_others(rules: Rules) -> None:
    topic = f"/sys/{PK}/{DN}/thing/event/alarm/post"
    (push,) = rules.replies_to(REF, topic, b'{"id":7,"params":{}}')
    body = json.loads(push.payload)
    assert body["id"] == 7 and body["method"] == "thing.event.alarm.post"
    assert rules.replies_to(REF, f"/{PK}/{DN}/user/update", b"HelloWorld") == []
    other = f"/sys/{PK}/other/thing/event/property/post"
    assert rules.replies_to(REF, other, b'{"id":"1"}') == []


@pytest.mark.parametrize(("sent", "kind"), [('"1700000000000"', str), ("1700000000000", int)])
def test_ntp_reply_keeps_json_type(rules: Rules, clock, sent: str, kind: type) -> None:
    clock.now = 1_700_000_001.5
    (push,) = rules.replies_to(
        REF, f"/ext/ntp/{PK}/{DN}/request", f'{{"deviceSendTime":{sent}}}'.encode()
    )
    assert push.topic == f"/ext/ntp/{PK}/{DN}/response"
    body = json.loads(push.payload)
    assert list(body) == ["deviceSendTime", "serverRecvTime", "serverSendTime"]
    assert all(isinstance(v, kind) for v in body.values())
    assert int(body["serverRecvTime"]) == 1_700_000_001_500
    assert rules.replies_to(REF, f"/ext/ntp/{PK}/{DN}/request", b"garbage") == []


def test_log_message_through_rules(rules: Rules, tutorial: Registry) -> None:
    rules.log_message(MessageRecord(1.0, "up", f"/{PK}/{DN}/user/update", 1, b"Hi", True, REF))
    (record,) = tutorial.message_log(REF)
    assert record.payload == b"Hi" and record.device == REF
