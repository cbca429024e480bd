"""HTTPS auth, dynamic registration (HTTPS and MQTT), replies, pushes, server checks."""

from __future__ import annotations

import pytest

from airlab.aliyun import (
    DeviceTokenGrant,
    HttpAuthReply,
    MalformedReply,
    RegisteredDevice,
    check_devicename_form,
    check_mqtt_connect,
    check_mqtt_register_connect,
    check_register_form,
    connwl_mqtt_credentials,
    http_auth_request,
    mask_secret,
    mqtt_credentials_after_http_auth,
    new_random,
    parse_form,
    parse_http_auth_reply,
    parse_register_push,
    parse_register_reply,
    register_request,
    verify_signature,
)
from airlab.errors import CloudRejected

PK, DN, DS, PS = (
    "k1hipglLdjU",
    "868488076506128",
    "fef32adf6dad46c2c7cbf335d3a7b021",
    "8LQwOYSZMwp3DFBd",
)
TUTORIAL_AUTH_REPLY = (
    '{"code":200,"data":{"iotId":"2BGmgWFvoXlbi1Er9sk4k1hip0",'
    '"iotToken":"137eb0759ca248b79383a60c0b0e0f80"},"message":"success"}'
)
TUTORIAL_REGISTER_REPLY = (
    '{"code":200,"data":{"deviceName":"868488076506128",'
    '"deviceSecret":"fef32adf6dad46c2c7cbf335d3a7b021","productKey":"k1hipglLdjU"},'
    '"message":"success"}'
)


def test_http_auth_optional_fields_are_appended_in_tutorial_order() -> None:
    request = http_auth_request(
        PK,
        DN,
        DS,
        sign_method="hmacsha256",
        timestamp="1700000000",
        version="default",
        resources="mqtt",
    )
    names = [name for name, _ in request.fields]
    assert names == [
        "productKey",
        "sign",
        "clientId",
        "deviceName",
        "signmethod",
        "timestamp",
        "version",
        "resources",
    ]
    assert request.sign_content.endswith("timestamp1700000000")
    assert check_devicename_form(parse_form(request.body), DS).ok


def test_http_auth_signmethod_written_only_when_needed_or_asked() -> None:
    assert "signmethod" not in http_auth_request(PK, DN, DS).body
    assert "signmethod=hmacmd5" in http_auth_request(PK, DN, DS, include_sign_method=True).body
    assert "signmethod=hmacsha1" in http_auth_request(PK, DN, DS, sign_method="hmacsha1").body


def test_http_auth_values_are_url_encoded_and_length_counts_bytes() -> None:
    request = http_auth_request(PK, "dev@home:1", DS, client_id="my id+1")
    assert "deviceName=dev%40home%3A1" in request.body
    assert "clientId=my+id%2B1" in request.body
    assert request.length == len(request.body.encode("utf-8"))
    assert check_devicename_form(parse_form(request.body), DS).ok


def test_parse_http_auth_reply_tutorial_and_resources() -> None:
    reply = parse_http_auth_reply(TUTORIAL_AUTH_REPLY + "\r\n")
    assert reply == HttpAuthReply(
        200, "success", "2BGmgWFvoXlbi1Er9sk4k1hip0", "137eb0759ca248b79383a60c0b0e0f80"
    )
    assert len(TUTORIAL_AUTH_REPLY) == 124  # +HTTPACTION: 1,200,124
    creds = mqtt_credentials_after_http_auth(reply, PK, DN)
    assert (creds.client_id, creds.username, creds.password) == (
        DN,
        "2BGmgWFvoXlbi1Er9sk4k1hip0",
        "137eb0759ca248b79383a60c0b0e0f80",
    )
    assert (creds.host, creds.port) == (f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883)
    with_host = parse_http_auth_reply(
        '{"code":200,"data":{"iotId":"i","iotToken":"t","resources":{"mqtt":'
        '{"host":"a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com","port":1883}}},'
        '"message":"success"}'
    )
    creds = mqtt_credentials_after_http_auth(with_host, PK, DN, secure_mode=-1)
    assert creds.host == "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com"
    assert creds.client_id == f"{DN}|securemode=-1|"


def test_http_auth_reply_error_code_raises_cloud_rejected() -> None:
    with pytest.raises(CloudRejected) as info:
        parse_http_auth_reply('{"code":401,"message":"request auth error"}')
    assert info.value.code == 401
    assert info.value.message == "request auth error"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<html>",
        "[1,2]",
        '{"message":"no code"}',
        '{"code":200}',
        '{"code":200,"data":{"iotId":"x"}}',
        '{"code":200,"data":{"iotId":"x","iotToken":"t","resources":{"mqtt":{"host":"h","port":"x"}}}}',
        b"\xff\xfe",
    ],
)
def test_malformed_http_auth_reply(text: str | bytes) -> None:
    with pytest.raises(MalformedReply):
        parse_http_auth_reply(text)


def test_parse_register_reply_tutorial() -> None:
    assert len(TUTORIAL_REGISTER_REPLY) == 149  # +HTTPREAD: 149
    assert parse_register_reply(TUTORIAL_REGISTER_REPLY) == RegisteredDevice(PK, DN, DS)
    with pytest.raises(CloudRejected) as info:
        parse_register_reply('{"code":460,"message":"request parameter error"}')
    assert info.value.code == 460
    with pytest.raises(MalformedReply):
        parse_register_reply('{"code":200,"data":null}')


def test_register_keeps_sign_method_spelling_and_upper_hex() -> None:
    request = register_request(PK, DN, PS, random="123456", sign_method="hmacmd5", upper=True)
    assert request.body.endswith("sign=20558BAADB2A0B04847767980F0EE67B&signMethod=hmacmd5")
    assert check_register_form(parse_form(request.body), PS).ok


def test_register_push_payloads() -> None:
    # key order of a real log: deviceSecret, productKey, deviceName
    push = parse_register_push(
        "/ext/register", f'{{"deviceSecret":"{DS}","productKey":"{PK}","deviceName":"{DN}"}}'
    )
    assert push == RegisteredDevice(PK, DN, DS)
    grant = parse_register_push(
        "/ext/regnwl",
        b'{"productKey":"pk","deviceName":"dn01","clientId":"9g55WSBuOZMNtMCJtktx000100",'
        b'"deviceToken":"^1^1677597746541^9ffd7c5bcf0c87f"}',
    )
    assert isinstance(grant, DeviceTokenGrant)
    creds = connwl_mqtt_credentials(grant)
    assert creds.client_id == "9g55WSBuOZMNtMCJtktx000100|securemode=-2,authType=connwl|"
    assert (creds.username, creds.password) == ("dn01&pk", "^1^1677597746541^9ffd7c5bcf0c87f")
    with pytest.raises(MalformedReply):
        parse_register_push("/ext/notify", "{}")
    with pytest.raises(MalformedReply):
        parse_register_push("/ext/regnwl", '{"productKey":"pk"}')


def test_new_random_is_alnum() -> None:
    values = {new_random() for _ in range(20)}
    assert len(values) == 20
    assert all(len(v) == 15 and v.isalnum() and v.isascii() for v in values)


# --- server-side checks ----------------------------------------------------------------


def test_devicename_form_excludes_unsigned_params() -> None:
    form = parse_form(http_auth_request(PK, DN, DS).body)
    extra = {**form, "version": "default", "resources": "mqtt", "signmethod": "HmacMD5"}
    assert check_devicename_form(extra, DS).ok
    tampered = {**form, "clientId": "other"}
    assert not check_devicename_form(tampered, DS).ok
    missing = {k: v for k, v in form.items() if k != "clientId"}
    assert "clientId" in (check_devicename_form(missing, DS).reason or "")
    assert check_devicename_form({**form, "signmethod": "rsa"}, DS).reason == (
        "unknown sign method 'rsa'"
    )


def test_register_form_excludes_sign_and_sign_method_only() -> None:
    form = parse_form(register_request(PK, DN, PS, random="123456").body)
    assert check_register_form(form, PS).ok
    assert not check_register_form({**form, "extra": "1"}, PS).ok  # any other param is signed


def test_verify_signature_never_raises() -> None:
    content = "clientId868488076506128deviceName868488076506128productKeyk1hipglLdjU"
    assert verify_signature(DS, content, "0f655b12adf519b9a7a2b0a990f398b6")
    assert not verify_signature(DS, content, "not hex at all")
    assert not verify_signature(DS, content, "0f655b12adf519b9a7a2b0a990f398b")
    assert not verify_signature(DS, content, "")
    assert not verify_signature(DS, content, "０f655b12adf519b9a7a2b0a990f398b6")
    assert not verify_signature("", content, "0f655b12adf519b9a7a2b0a990f398b6")
    assert not verify_signature(DS, content, "0f655b12adf519b9a7a2b0a990f398b6", "hmacsha512")


def test_mqtt_connect_check_explains_refusals() -> None:
    bad = check_mqtt_connect(f"{DN}|securemode=3|", f"{DN}&{PK}", "00", DS)
    assert not bad and bad.reason == "signature mismatch"
    text = bad.explain()
    assert "clientId868488076506128" in text
    assert DS not in text and mask_secret(DS) in text
    assert bad.expected == "0f655b12adf519b9a7a2b0a990f398b6"  # for local use only
    assert bad.expected not in text and bad.expected not in repr(bad)
    assert "0f65…" in text and "differs:      the length" in text
    fmt = check_mqtt_connect("x" * 65 + "|a=1|", f"{DN}&{PK}", "00", DS)
    assert "65 characters" in (fmt.reason or "")
    user = check_mqtt_connect(DN, "nouser", "00", DS)
    assert "username" in (user.reason or "")


def test_mqtt_register_check_requires_items() -> None:
    ok_id = f"{DN}.{PK}|random=123456,authType=register,securemode=2,signmethod=hmacmd5|"
    good = "20558baadb2a0b04847767980f0ee67b"
    assert check_mqtt_register_connect(ok_id, f"{DN}&{PK}", good, PS).ok
    no_random = f"{DN}.{PK}|authType=register,securemode=2,signmethod=hmacmd5|"
    assert check_mqtt_register_connect(no_random, f"{DN}&{PK}", good, PS).reason == (
        "random is missing"
    )
    no_method = f"{DN}.{PK}|random=123456,authType=register,securemode=2|"
    assert check_mqtt_register_connect(no_method, f"{DN}&{PK}", good, PS).reason == (
        "signmethod is missing"
    )
    wrong_type = ok_id.replace("register", "connwl")
    assert "authType" in (
        check_mqtt_register_connect(wrong_type, f"{DN}&{PK}", good, PS).reason or ""
    )
