"""Validation before computing: UsageError naming the Python parameter."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airlab.aliyun import (
    KNOWN_REGIONS,
    auth_host,
    check_signature,
    direct_mqtt_credentials,
    http_auth_request,
    mqtt_host,
    mqtt_register_credentials,
    parse_sign_method,
    register_request,
    validate_device_name,
    validate_region,
)
from airlab.errors import UsageError

OK = {"product_key": "k1hipglLdjU", "device_name": "868488076506128", "device_secret": "ds"}


def _direct(**overrides: object) -> Callable[[], object]:
    args = {**OK, **overrides}
    return lambda: direct_mqtt_credentials(
        args.pop("product_key"), args.pop("device_name"), args.pop("device_secret"), **args
    )


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"device_name": ""}, "device_name"),
        ({"device_name": "a&b"}, "device_name"),
        ({"device_name": "x" * 33}, "device_name"),
        ({"device_name": "a b"}, "device_name"),
        ({"product_key": ""}, "product_key"),
        ({"device_secret": ""}, "device_secret"),
        ({"sign_method": "hmacsha512"}, "sign_method"),
        ({"sign_method": "md5"}, "sign_method"),
        ({"secure_mode": "tls"}, "secure_mode"),
        ({"timestamp": "12:00"}, "timestamp"),
        ({"timestamp": "-5"}, "timestamp"),
        ({"timestamp": ""}, "timestamp"),
        ({"client_id": "x" * 65}, "client_id"),
        ({"client_id": "a|b"}, "client_id"),
        ({"region": "Shanghai"}, "region"),
        ({"extra_params": {"securemode": "2"}}, "extra_params"),
        ({"port": 0}, "port"),
    ],
)
def test_direct_bad_input_names_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(UsageError) as info:
        _direct(**overrides)()
    assert info.value.field == field
    assert info.value.option == "--" + field.replace("_", "-")


def test_tolerant_device_names() -> None:
    for name in ["868488076506128", "abc", "dev@home:1.a_b-c", "x" * 32]:
        assert validate_device_name(name) == name


@pytest.mark.parametrize("text", ["HmacMD5", "hmacmd5", "HMACSHA1", "hmacSha256", " hmacsha1 "])
def test_sign_method_any_case(text: str) -> None:
    assert parse_sign_method(text).value == text.strip().lower()


def test_sign_method_spelling_is_kept_on_the_wire() -> None:
    creds = direct_mqtt_credentials("pk", "dev1", "ds", sign_method="hmacSha256")
    assert "signmethod=hmacSha256" in creds.client_id
    lower = direct_mqtt_credentials("pk", "dev1", "ds", sign_method="hmacsha256")
    assert creds.password == lower.password


def test_http_auth_and_register_bad_input() -> None:
    with pytest.raises(UsageError) as info:
        http_auth_request("pk", "dn01", "ds", client_id="")
    assert info.value.field == "client_id"
    with pytest.raises(UsageError) as info:
        http_auth_request("pk", "dn01", "ds", field_order="c9")
    assert info.value.field == "field_order"
    with pytest.raises(UsageError) as info:
        register_request("pk", "dn01", "", random="1")
    assert info.value.field == "product_secret"
    with pytest.raises(UsageError) as info:
        register_request("pk", "dn01", "ps", random="")
    assert info.value.field == "random"
    with pytest.raises(UsageError) as info:
        register_request("pk", "dn01", "ps", random="1", sign_method="sha1")
    assert info.value.field == "sign_method"


def test_mqtt_register_bad_input() -> None:
    with pytest.raises(UsageError) as info:
        mqtt_register_credentials("pk", "dn01", "ps", random="1", auth_type="connwl")
    assert info.value.field == "auth_type"
    with pytest.raises(UsageError) as info:
        mqtt_register_credentials("pk", "dn01", "ps", random="1", secure_mode=3)
    assert info.value.field == "secure_mode"
    with pytest.raises(UsageError) as info:
        mqtt_register_credentials("pk", "dn01", "ps", random="1", instance_id="")
    assert info.value.field == "instance_id"


def test_check_signature_rejects_non_hex_expected() -> None:
    with pytest.raises(UsageError) as info:
        check_signature("ds", "content", "0f65zz")
    assert info.value.field == "expected"
    assert check_signature(
        "fef32adf6dad46c2c7cbf335d3a7b021",
        "clientId868488076506128deviceName868488076506128productKeyk1hipglLdjU",
        "0F655B12ADF519B9A7A2B0A990F398B6",
    )


def test_regions() -> None:
    assert len(KNOWN_REGIONS) == 8
    for region in [*KNOWN_REGIONS, "cn-shanghai-finance-1", "cn-hangzhou"]:
        assert validate_region(region) == region
        assert auth_host(region) == f"iot-auth.{region}.aliyuncs.com"
        assert mqtt_host("pk", region) == f"pk.iot-as-mqtt.{region}.aliyuncs.com"
    for bad in ["", "shanghai", "cn_shanghai", "CN-SHANGHAI", "cn-shanghai/x"]:
        with pytest.raises(UsageError):
            validate_region(bad)
