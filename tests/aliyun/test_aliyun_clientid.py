"""Client id building and the platform's parsing rules (spec §7 item 2)."""

from __future__ import annotations

import dataclasses

import pytest

from airlab.aliyun import (
    SignMethod,
    build_client_id,
    check_mqtt_connect,
    connect_sign_content,
    direct_mqtt_credentials,
    parse_client_id,
    verify_signature,
)
from airlab.errors import UsageError


def test_bare_client_id_without_bar_is_valid() -> None:
    parsed = parse_client_id("868488076506128")
    assert parsed.valid and not parsed.has_block
    assert parsed.client_id == "868488076506128"
    assert dict(parsed.params) == {}
    assert parsed.sign_method is SignMethod.HMACMD5  # default when absent


def test_bar_inside_block_stays_in_value() -> None:
    parsed = parse_client_id("c|sii=a|b|c,timestamp=5|")
    assert parsed.valid
    assert parsed.params["sii"] == "a|b|c"
    assert parsed.timestamp == "5"


@pytest.mark.parametrize("raw", ["c|securemode=3", "c|securemode=3|x", "|", "c|a=1|b=2"])
def test_block_not_ending_with_bar_is_invalid(raw: str) -> None:
    parsed = parse_client_id(raw)
    assert not parsed.valid
    assert parsed.has_block
    assert "must end with '|'" in (parsed.reason or "")


def test_empty_block_is_valid() -> None:
    parsed = parse_client_id("c||")
    assert parsed.valid and parsed.has_block and dict(parsed.params) == {}


def test_trailing_empty_item_of_c_sdk_4_is_skipped() -> None:
    parsed = parse_client_id("pk.dn|securemode=2,signmethod=hmacsha256,ext=3,|")
    assert parsed.valid
    assert list(parsed.params) == ["securemode", "signmethod", "ext"]
    assert parsed.secure_mode == 2


def test_unknown_keys_are_kept_in_order() -> None:
    parsed = parse_client_id("c|zz=1,securemode=3,_v=x,a=b=c|")
    assert parsed.items == (("zz", "1"), ("securemode", "3"), ("_v", "x"), ("a", "b=c"))


@pytest.mark.parametrize("length, valid", [(64, True), (65, False)])
def test_client_id_part_length_limit(length: int, valid: bool) -> None:
    parsed = parse_client_id("x" * length + "|securemode=3|")
    assert parsed.valid is valid
    if not valid:
        assert "65 characters" in (parsed.reason or "")
    assert parse_client_id("x" * length).valid is valid


def test_item_without_equals_is_invalid() -> None:
    parsed = parse_client_id("c|securemode|")
    assert not parsed.valid
    assert "key=value" in (parsed.reason or "")


def test_unknown_sign_method_and_non_int_secure_mode() -> None:
    parsed = parse_client_id("c|signmethod=hmacsha512,securemode=x|")
    assert parsed.sign_method is None
    assert parsed.secure_mode is None
    assert parse_client_id("c|signmethod=HmacSHA256|").sign_method is SignMethod.HMACSHA256


def test_parse_never_raises_on_odd_input() -> None:
    for raw in ["", "|||", ",|,|", "=|=|", "\x00|a=\x01|", 123]:
        parse_client_id(raw)  # type: ignore[arg-type]


def test_parsed_client_id_is_frozen() -> None:
    parsed = parse_client_id("c|a=1|")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.client_id = "d"  # type: ignore[misc]
    with pytest.raises(TypeError):
        parsed.params["a"] = "2"  # type: ignore[index]


def test_build_with_trailing_comma_and_empty_client_id() -> None:
    assert build_client_id("", [("timestamp", "1"), ("ext", "3")], trailing_comma=True) == (
        "|timestamp=1,ext=3,|"
    )


@pytest.mark.parametrize("key", ["", "a=b", "a,b", "a|b", "a b"])
def test_build_rejects_bad_keys(key: str) -> None:
    with pytest.raises(UsageError) as info:
        build_client_id("c", [(key, "1")])
    assert info.value.field == "extra_params"


def test_build_rejects_comma_in_value_and_bar_in_client_id() -> None:
    with pytest.raises(UsageError):
        build_client_id("c", [("k", "1,2")])
    with pytest.raises(UsageError) as info:
        build_client_id("a|b", [("k", "1")])
    assert info.value.field == "client_id"


@pytest.mark.parametrize("method", list(SignMethod))
@pytest.mark.parametrize("timestamp", [None, "1700000000", "2524608000000"])
@pytest.mark.parametrize("client_id", ["dev-1", ""])
@pytest.mark.parametrize("upper", [False, True])
def test_round_trip_build_parse_sign_content_verify(
    method: SignMethod, timestamp: str | None, client_id: str, upper: bool
) -> None:
    creds = direct_mqtt_credentials(
        "pk1",
        "dev-1",
        "ds",
        client_id=client_id,
        sign_method=method,
        timestamp=timestamp,
        upper=upper,
        extra_params={"ext": "3", "_v": "sdk-c-4.1.0"},
        trailing_comma=True,
    )
    parsed = parse_client_id(creds.client_id)
    assert parsed.valid
    assert parsed.client_id == client_id
    assert parsed.timestamp == timestamp
    assert parsed.sign_method is method
    content = connect_sign_content(parsed, creds.username)
    assert content == creds.sign_content
    assert content.startswith("clientId" + client_id + "deviceName")
    assert ("timestamp" in content) is (timestamp is not None)
    assert verify_signature("ds", content, creds.password, method)
    assert check_mqtt_connect(creds.client_id, creds.username, creds.password, "ds").ok


def test_timestamp_absent_is_not_signed_but_present_is() -> None:
    without = direct_mqtt_credentials("pk", "dn01", "ds")
    with_ts = direct_mqtt_credentials("pk", "dn01", "ds", timestamp=0)
    assert "timestamp" not in without.sign_content
    assert with_ts.sign_content.endswith("timestamp0")
    assert without.password != with_ts.password
    assert "timestamp=0" in with_ts.client_id
