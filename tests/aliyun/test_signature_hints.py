"""What a refused signature's explanation says differs — without the expected value."""

from __future__ import annotations

import pytest

from airlab.aliyun import (
    SignMethod,
    check_devicename_form,
    check_mqtt_connect,
    hmac_hex,
    signature_prefix,
)

DN, PK, DS = "868488076506128", "k1hipglLdjU", "fef32adf6dad46c2c7cbf335d3a7b021"
CONTENT = f"clientId{DN}deviceName{DN}productKey{PK}"
GOOD = "0f655b12adf519b9a7a2b0a990f398b6"


def hint(client_id: str, password: str, username: str = f"{DN}&{PK}") -> str:
    check = check_mqtt_connect(client_id, username, password, DS)
    assert not check.ok
    text = check.explain()
    assert check.expected not in text and DS not in text
    assert check.hint is not None and check.hint in text
    return check.hint


def test_wrong_algorithm_is_named() -> None:
    sha1 = hmac_hex(DS, CONTENT, SignMethod.HMACSHA1)
    assert hint(f"{DN}|securemode=3,signmethod=hmacmd5|", sha1).startswith("the algorithm")


def test_whole_client_id_signed() -> None:
    cid = f"{DN}|securemode=3,signmethod=hmacmd5|"
    wrong = hmac_hex(DS, f"clientId{cid}deviceName{DN}productKey{PK}", SignMethod.HMACMD5)
    assert hint(cid, wrong).startswith("clientId:")


def test_timestamp_left_out() -> None:
    cid = f"{DN}|securemode=3,signmethod=hmacmd5,timestamp=789|"
    assert hint(cid, GOOD).startswith("timestamp:")


def test_swapped_names() -> None:
    wrong = hmac_hex(DS, f"clientId{DN}deviceName{PK}productKey{DN}", SignMethod.HMACMD5)
    assert hint(f"{DN}|securemode=3|", wrong).startswith("deviceName/productKey")


@pytest.mark.parametrize(
    ("password", "start"),
    [("", "the signature is empty"), (" " + GOOD, "the signature has spaces"),
     ("zz" * 16, "the signature is not hexadecimal"), ("ab" * 20, "the length")],
)  # fmt: skip
def test_format_problems(password: str, start: str) -> None:
    assert hint(f"{DN}|securemode=3|", password).startswith(start)


def test_unsigned_form_fields_signed() -> None:
    form = {"productKey": PK, "deviceName": DN, "clientId": DN, "signmethod": "hmacmd5",
            "version": "default"}  # fmt: skip
    wrong = hmac_hex(DS, f"clientId{DN}deviceName{DN}productKey{PK}signmethodhmacmd5"
                     "versiondefault", SignMethod.HMACMD5)  # fmt: skip
    check = check_devicename_form({**form, "sign": wrong}, DS)
    assert check.hint is not None and check.hint.startswith("the fields:")


def test_prefix_never_shows_a_whole_signature() -> None:
    assert signature_prefix(GOOD) == "0f65… (32 characters)"
    assert GOOD not in signature_prefix(GOOD)
