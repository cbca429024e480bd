"""Published vectors: the tutorial's two, every vector in spec/aliyun_vectors.json, and
vectors produced by the official Python SDK (aliyun-iot-linkkit 1.2.13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlab.aliyun import (
    check_devicename_form,
    check_mqtt_connect,
    check_mqtt_register_connect,
    check_register_form,
    direct_mqtt_credentials,
    http_auth_request,
    mqtt_register_credentials,
    mqtt_sign_content,
    parse_client_id,
    parse_form,
    register_request,
    verify_signature,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "aliyun_vectors.json").read_text("utf-8"))

TUTORIAL_PK = "k1hipglLdjU"
TUTORIAL_DN = "868488076506128"
TUTORIAL_DS = "fef32adf6dad46c2c7cbf335d3a7b021"
TUTORIAL_PS = "8LQwOYSZMwp3DFBd"


# --- the tutorial ---------------------------------------------------------------------


def test_tutorial_direct_mqtt_vector() -> None:
    creds = direct_mqtt_credentials(TUTORIAL_PK, TUTORIAL_DN, TUTORIAL_DS)
    assert creds.client_id == "868488076506128|securemode=3,signmethod=hmacmd5|"
    assert creds.username == "868488076506128&k1hipglLdjU"
    assert creds.password == "0f655b12adf519b9a7a2b0a990f398b6"
    assert creds.sign_content == (
        "clientId868488076506128deviceName868488076506128productKeyk1hipglLdjU"
    )
    assert (creds.host, creds.port) == ("k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883)


def test_tutorial_http_auth_body_is_112_bytes() -> None:
    request = http_auth_request(TUTORIAL_PK, TUTORIAL_DN, TUTORIAL_DS)
    assert request.url == "https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename"
    assert request.body == (
        "productKey=k1hipglLdjU&sign=0f655b12adf519b9a7a2b0a990f398b6"
        "&clientId=868488076506128&deviceName=868488076506128"
    )
    assert request.length == 112


def test_tutorial_register_body_is_120_bytes() -> None:
    request = register_request(TUTORIAL_PK, TUTORIAL_DN, TUTORIAL_PS, random="123456")
    assert request.sign == "20558baadb2a0b04847767980f0ee67b"
    assert request.sign_content == "deviceName868488076506128productKeyk1hipglLdjUrandom123456"
    assert request.body == (
        "productKey=k1hipglLdjU&deviceName=868488076506128&random=123456"
        "&sign=20558baadb2a0b04847767980f0ee67b&signMethod=HmacMD5"
    )
    assert request.length == 120
    assert request.url == "https://iot-auth.cn-shanghai.aliyuncs.com/auth/register/device"


# --- spec/aliyun_vectors.json, every vector -------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_spec_vector(vector: dict) -> None:
    inputs = vector["inputs"]
    expected = vector["expected"]
    password = expected.get("password") or expected["password_lower"]
    creds = direct_mqtt_credentials(
        inputs["productKey"],
        inputs["deviceName"],
        inputs["deviceSecret"],
        client_id=inputs["clientId"],
        sign_method=vector["method"],
        timestamp=inputs.get("timestamp"),
        secure_mode=inputs.get("securemode", "3"),
    )
    assert creds.client_id == expected["mqttClientId"]
    assert creds.username == expected["username"]
    assert creds.password.lower() == password.lower()
    assert creds.sign_content == vector["sign_content"]
    upper = direct_mqtt_credentials(
        inputs["productKey"],
        inputs["deviceName"],
        inputs["deviceSecret"],
        client_id=inputs["clientId"],
        sign_method=vector["method"],
        timestamp=inputs.get("timestamp"),
        upper=True,
    )
    assert upper.password == password.upper()
    # and the server side accepts the published values in both cases
    for received in (password.lower(), password.upper()):
        check = check_mqtt_connect(
            expected["mqttClientId"], expected["username"], received, inputs["deviceSecret"]
        )
        assert check.ok, check.explain()
        assert check.sign_content == vector["sign_content"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_spec_vector_wrong_secret_is_refused(vector: dict) -> None:
    expected = vector["expected"]
    password = expected.get("password") or expected["password_lower"]
    check = check_mqtt_connect(expected["mqttClientId"], expected["username"], password, "wrong")
    assert not check.ok
    assert check.reason == "signature mismatch"


# --- official Python SDK, aliyun-iot-linkkit 1.2.13 -----------------------------------
# Produced by running the SDK's own code (`pip download --no-deps aliyun-iot-linkkit==1.2.13`,
# with paho-mqtt 1.6.1 in a throwaway venv): LinkKit(...)._LinkKit__config_mqtt_client_internal()
# with time.time patched to 1700000000.123 and __generate_random_str patched to return
# "Ab3dE5gH7jK9mN1"; client id / username / password read back from the paho client, and the
# HTTPS dynreg body captured from a patched urllib.request.urlopen. Note that 1.2.13 signs the
# direct connect with hmacsha1 (not hmacsha256) and uses "pk&dn" as the client id.

SDK_PY_DIRECT = [
    {
        "id": "py_direct_tls",
        "product_key": TUTORIAL_PK,
        "device_name": TUTORIAL_DN,
        "device_secret": TUTORIAL_DS,
        "client_id": "k1hipglLdjU&868488076506128|securemode=2,signmethod=hmacsha1,ext=1,_ss=1,"
        "lan=Python,_v=1.2.13,timestamp=1700000000|",
        "username": "868488076506128&k1hipglLdjU",
        "password": "4e4444e693387317e32cd326cbf39ddba7aa7d5d",
    },
    {
        "id": "py_direct_tcp",
        "product_key": "a1Ze3BcsQ5x",
        "device_name": "XP001",
        "device_secret": "amzS2Q9siGHpSVDVhvDV43661DmfdXtW",
        "client_id": "a1Ze3BcsQ5x&XP001|securemode=3,signmethod=hmacsha1,ext=1,_ss=1,"
        "lan=Python,_v=1.2.13,timestamp=1700000000|",
        "username": "XP001&a1Ze3BcsQ5x",
        "password": "c30fb79efd046d5523545ad33768d900cfc00cbb",
    },
    {
        # config_device_info("Eth|03ACDEFF0032|Eth|03ACDEFF0031"): '|' inside the block
        "id": "py_direct_sii",
        "product_key": TUTORIAL_PK,
        "device_name": TUTORIAL_DN,
        "device_secret": TUTORIAL_DS,
        "client_id": "k1hipglLdjU&868488076506128|securemode=2,signmethod=hmacsha1,ext=1,_ss=1,"
        "lan=Python,_v=1.2.13,sii=Eth|03ACDEFF0032|Eth|03ACDEFF0031,timestamp=1700000000|",
        "username": "868488076506128&k1hipglLdjU",
        "password": "4e4444e693387317e32cd326cbf39ddba7aa7d5d",
    },
]

SDK_PY_MQTT_REGISTER = [
    {
        "id": "py_mqtt_register",
        "auth_type": "register",
        "instance_id": None,
        "client_id": "868488076506128.k1hipglLdjU|random=Ab3dE5gH7jK9mN1,authType=register,"
        "securemode=2,signmethod=hmacsha256|",
        "host": "k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com",
    },
    {
        "id": "py_mqtt_regnwl",
        "auth_type": "regnwl",
        "instance_id": None,
        "client_id": "868488076506128.k1hipglLdjU|random=Ab3dE5gH7jK9mN1,authType=regnwl,"
        "securemode=2,signmethod=hmacsha256|",
        "host": "k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com",
    },
    {
        "id": "py_mqtt_register_instance",
        "auth_type": "register",
        "instance_id": "iot-06z00abcdefgh",
        "client_id": "868488076506128.k1hipglLdjU|random=Ab3dE5gH7jK9mN1,authType=register,"
        "securemode=2,signmethod=hmacsha256,instanceId=iot-06z00abcdefgh|",
        "host": "iot-06z00abcdefgh.mqtt.iothub.aliyuncs.com",
    },
]
SDK_PY_REGISTER_PASSWORD = "2444389cf11554a6d73477e1f35689f2e10a465cf2e2fdca03d46e87cfaacb6d"
SDK_PY_RANDOM = "Ab3dE5gH7jK9mN1"
SDK_PY_HTTPS_REGISTER_BODY = (
    "productKey=k1hipglLdjU&deviceName=868488076506128&random=Ab3dE5gH7jK9mN1"
    "&sign=2444389cf11554a6d73477e1f35689f2e10a465cf2e2fdca03d46e87cfaacb6d&signMethod=hmacsha256"
)


@pytest.mark.parametrize("vector", SDK_PY_DIRECT, ids=[v["id"] for v in SDK_PY_DIRECT])
def test_python_sdk_direct_connect_is_reproduced_and_accepted(vector: dict) -> None:
    parsed = parse_client_id(vector["client_id"])
    assert parsed.valid
    extras = [(k, v) for k, v in parsed.items if k not in ("securemode", "signmethod", "timestamp")]
    timestamp_last = [*extras, ("timestamp", parsed.timestamp)]
    from airlab.aliyun import build_client_id, sign

    # byte-exact client id (the SDK writes timestamp last, after its own keys)
    rebuilt = build_client_id(
        parsed.client_id,
        [("securemode", parsed.params["securemode"]), ("signmethod", "hmacsha1"), *timestamp_last],
    )
    assert rebuilt == vector["client_id"]
    content = mqtt_sign_content(
        parsed.client_id, vector["device_name"], vector["product_key"], parsed.timestamp
    )
    assert sign(vector["device_secret"], content, "hmacsha1") == vector["password"]
    # our builder (timestamp right after signmethod) signs the same content
    creds = direct_mqtt_credentials(
        vector["product_key"],
        vector["device_name"],
        vector["device_secret"],
        client_id=parsed.client_id,
        sign_method="hmacsha1",
        timestamp=1700000000,
        secure_mode=parsed.params["securemode"],
        extra_params=extras,
    )
    assert creds.password == vector["password"]
    assert creds.username == vector["username"]
    check = check_mqtt_connect(
        vector["client_id"], vector["username"], vector["password"], vector["device_secret"]
    )
    assert check.ok, check.explain()


@pytest.mark.parametrize(
    "vector", SDK_PY_MQTT_REGISTER, ids=[v["id"] for v in SDK_PY_MQTT_REGISTER]
)
def test_python_sdk_mqtt_register_is_byte_exact(vector: dict) -> None:
    creds = mqtt_register_credentials(
        TUTORIAL_PK,
        TUTORIAL_DN,
        TUTORIAL_PS,
        random=SDK_PY_RANDOM,
        auth_type=vector["auth_type"],
        instance_id=vector["instance_id"],
        sign_method="hmacsha256",
        layout="sdk",
    )
    assert creds.client_id == vector["client_id"]
    assert creds.username == "868488076506128&k1hipglLdjU"
    assert creds.password == SDK_PY_REGISTER_PASSWORD
    assert creds.host == vector["host"]
    check = check_mqtt_register_connect(
        vector["client_id"], creds.username, SDK_PY_REGISTER_PASSWORD.upper(), TUTORIAL_PS
    )
    assert check.ok, check.explain()


def test_python_sdk_https_register_body_is_byte_exact() -> None:
    request = register_request(
        TUTORIAL_PK, TUTORIAL_DN, TUTORIAL_PS, random=SDK_PY_RANDOM, sign_method="hmacsha256"
    )
    assert request.body == SDK_PY_HTTPS_REGISTER_BODY
    assert check_register_form(parse_form(SDK_PY_HTTPS_REGISTER_BODY), TUTORIAL_PS).ok


def test_python_sdk_connwl_client_id_is_accepted() -> None:
    # the format string of linkkit.py 1.2.13 for the connect after /ext/regnwl
    raw = (
        "9g55WSBuOZMNtMCJtktx000100|authType=connwl,securemode=-2,_ss=1,ext=3,lan=Python,_v=1.2.13|"
    )
    parsed = parse_client_id(raw)
    assert parsed.valid
    assert (parsed.client_id, parsed.auth_type, parsed.secure_mode) == (
        "9g55WSBuOZMNtMCJtktx000100",
        "connwl",
        -2,
    )


# --- C SDK formats (built with the stdlib hmac from the spec's format strings) --------

C_PK, C_DN, C_DS, C_PS = (
    "a1B2c3D4e5F",
    "sensor-01",
    "S3cr3tDeviceSecretValue0123456789",
    "PrOdSeCrEt123456",
)
C_TS = "2524608000000"


def _upper_hmac_sha256(key: str, content: str) -> str:
    import hashlib
    import hmac

    return hmac.new(key.encode(), content.encode(), hashlib.sha256).hexdigest().upper()


@pytest.mark.parametrize(
    "client_id",
    [
        f"{C_PK}.{C_DN}|timestamp={C_TS},_ss=1,_v=sdk-c-4.1.0,securemode=2,"
        "signmethod=hmacsha256,ext=3,|",
        f"|timestamp={C_TS},_ss=1,_v=sdk-c-4.1.0,securemode=2,signmethod=hmacsha256,ext=3,|",
        f"{C_PK}.{C_DN}|timestamp={C_TS},_v=sdk-c-3.0.1,securemode=2,signmethod=hmacsha256,"
        "lan=C,gw=0,ext=0|",
        f"{C_PK}.{C_DN}|timestamp={C_TS},_ss=1,_v=sdk-c-4.1.0,securemode=2,"
        "signmethod=hmacsha256,ext=3,_conn=tls_1f4|",
    ],
    ids=["c4", "c4_assigned_client_id", "c3", "c4_conn_stats"],
)
def test_c_sdk_connect_formats_are_accepted(client_id: str) -> None:
    prefix = client_id.split("|", 1)[0]
    content = f"clientId{prefix}deviceName{C_DN}productKey{C_PK}timestamp{C_TS}"
    password = _upper_hmac_sha256(C_DS, content)
    check = check_mqtt_connect(client_id, f"{C_DN}&{C_PK}", password, C_DS)
    assert check.ok, check.explain()
    assert check.sign_content == content
    assert verify_signature(C_DS, content, password, "hmacsha256")
    # and our builder produces the same password (upper-case hex, ms timestamp)
    creds = direct_mqtt_credentials(
        C_PK, C_DN, C_DS, client_id=prefix, sign_method="hmacsha256", timestamp=C_TS, upper=True
    )
    assert creds.password == password


def test_c3_https_preauth_body_is_byte_exact() -> None:
    content = f"clientId{C_PK}.{C_DN}deviceName{C_DN}productKey{C_PK}timestamp{C_TS}"
    sign = _upper_hmac_sha256(C_DS, content)
    expected_body = (
        f"productKey={C_PK}&deviceName={C_DN}&signmethod=hmacsha256&sign={sign}"
        f"&version=default&clientId={C_PK}.{C_DN}&timestamp={C_TS}&resources=mqtt"
    )
    request = http_auth_request(
        C_PK,
        C_DN,
        C_DS,
        client_id=f"{C_PK}.{C_DN}",
        sign_method="hmacsha256",
        timestamp=C_TS,
        version="default",
        resources="mqtt",
        field_order="c3",
        upper=True,
    )
    assert request.body == expected_body
    assert request.length == len(expected_body.encode())
    assert check_devicename_form(parse_form(expected_body), C_DS).ok


def test_c4_dynreg_uppercase_sign_and_decimal_random_are_accepted() -> None:
    content = f"deviceName{C_DN}productKey{C_PK}random692147492"
    sign = _upper_hmac_sha256(C_PS, content)
    form = {
        "productKey": C_PK,
        "deviceName": C_DN,
        "random": "692147492",
        "sign": sign,
        "signMethod": "hmacsha256",
    }
    assert check_register_form(form, C_PS).ok
    client_id = (
        f"{C_DN}.{C_PK}|random=692147492,authType=register,securemode=2,signmethod=hmacsha256|"
    )
    creds = mqtt_register_credentials(
        C_PK, C_DN, C_PS, random="692147492", upper=True, sign_method="hmacsha256", layout="sdk"
    )
    assert creds.client_id == client_id
    assert creds.password == sign
    assert check_mqtt_register_connect(client_id, f"{C_DN}&{C_PK}", sign, C_PS).ok
