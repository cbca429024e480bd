"""MQTT CONNECT credentials (client id, username, password, host, port) for the
device-secret methods: direct connect (一机一密直连) and the token connect that follows
HTTPS auth (HTTP认证二次连接).

Example:
    >>> creds = direct_mqtt_credentials("k1hipglLdjU", "868488076506128",
    ...                                 "fef32adf6dad46c2c7cbf335d3a7b021")
    >>> creds.client_id, creds.username
    ('868488076506128|securemode=3,signmethod=hmacmd5|', '868488076506128&k1hipglLdjU')
    >>> creds.password
    '0f655b12adf519b9a7a2b0a990f398b6'
    >>> creds.host, creds.port
    ('k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com', 1883)
"""

from __future__ import annotations

from dataclasses import dataclass

from airlab.aliyun.clientid import ClientIdParams, build_client_id, param_pairs
from airlab.aliyun.endpoints import DEFAULT_MQTT_PORT, DEFAULT_REGION, mqtt_host
from airlab.aliyun.identity import (
    validate_client_id,
    validate_device_name,
    validate_product_key,
    validate_secret,
    validate_secure_mode,
    validate_timestamp,
)
from airlab.aliyun.methods import DEFAULT_SIGN_METHOD, SignMethod, written_sign_method
from airlab.aliyun.signing import mqtt_sign_content, sign
from airlab.errors import UsageError

__all__ = [
    "MqttCredentials",
    "direct_mqtt_credentials",
    "mqtt_username",
    "token_mqtt_credentials",
]

_RESERVED_DIRECT_KEYS = ("securemode", "signmethod", "timestamp")


@dataclass(frozen=True, slots=True)
class MqttCredentials:
    """Everything ``AT+MCONFIG`` and ``AT+SSLMIPSTART`` need for one MQTT connect.

    ``sign_content`` is the text that was HMAC'd (empty for token connects, whose
    password is issued by the cloud); ``sign_method`` is None for those too.
    """

    client_id: str
    username: str
    password: str
    host: str
    port: int
    sign_content: str = ""
    sign_method: SignMethod | None = None

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict (the CLI prints it).

        Example:
            >>> sorted(MqttCredentials("c", "u", "p", "h", 1883).as_dict())
            ['client_id', 'host', 'password', 'port', 'sign_content', 'sign_method', 'username']
        """
        return {
            "client_id": self.client_id,
            "username": self.username,
            "password": self.password,
            "host": self.host,
            "port": self.port,
            "sign_content": self.sign_content,
            "sign_method": self.sign_method.value if self.sign_method else None,
        }


def mqtt_username(device_name: str, product_key: str) -> str:
    """The MQTT username of every device-secret or product-secret connect: ``dn&pk``.

    Example:
        >>> mqtt_username("XP001", "a1Ze3BcsQ5x")
        'XP001&a1Ze3BcsQ5x'
    """
    return f"{validate_device_name(device_name)}&{validate_product_key(product_key)}"


def direct_mqtt_credentials(
    product_key: str,
    device_name: str,
    device_secret: str,
    *,
    client_id: str | None = None,
    sign_method: SignMethod | str = DEFAULT_SIGN_METHOD,
    timestamp: str | int | None = None,
    secure_mode: int | str = 3,
    region: str = DEFAULT_REGION,
    host: str | None = None,
    port: int = DEFAULT_MQTT_PORT,
    upper: bool = False,
    extra_params: ClientIdParams = (),
    trailing_comma: bool = False,
) -> MqttCredentials:
    """Credentials for a direct MQTT connect with the device secret (一机一密直连).

    Defaults follow the tutorial: hmacmd5, no timestamp, the device name as client id,
    ``securemode=3``, region cn-shanghai, port 1883. The block is written
    ``securemode,signmethod[,timestamp]`` then ``extra_params`` in their order.
    ``sign_method`` is written as given (``hmacSha256`` stays so); ``client_id=""``
    gives the C SDK 4.x assigned-client-id form ``|...|``.

    Example:
        >>> c = direct_mqtt_credentials("pk", "device", "secret", client_id="12345",
        ...     sign_method="hmacsha1", timestamp="789", upper=True)
        >>> c.client_id
        '12345|securemode=3,signmethod=hmacsha1,timestamp=789|'
        >>> c.password
        'FAFD82A3D602B37FB0FA8B7892F24A477F851A14'
    """
    validate_product_key(product_key)
    validate_device_name(device_name)
    validate_secret(device_secret, "device_secret")
    method, method_text = written_sign_method(sign_method)
    mode = validate_secure_mode(secure_mode)
    ts = validate_timestamp(timestamp)
    cid = validate_client_id(device_name if client_id is None else client_id)
    extras = param_pairs(extra_params)
    for key, _ in extras:
        if key in _RESERVED_DIRECT_KEYS:
            raise UsageError("extra_params", f"{key!r} is set by its own parameter")
    params: list[tuple[str, str]] = [("securemode", str(mode)), ("signmethod", str(method_text))]
    if ts is not None:
        params.append(("timestamp", ts))
    params.extend(extras)
    content = mqtt_sign_content(cid, device_name, product_key, ts)
    return MqttCredentials(
        client_id=build_client_id(cid, params, trailing_comma=trailing_comma),
        username=mqtt_username(device_name, product_key),
        password=sign(device_secret, content, method, upper=upper, secret_field="device_secret"),
        host=host or mqtt_host(product_key, region),
        port=check_port(port),
        sign_content=content,
        sign_method=method,
    )


def token_mqtt_credentials(
    iot_id: str,
    iot_token: str,
    client_id: str,
    host: str,
    port: int = DEFAULT_MQTT_PORT,
    *,
    secure_mode: int | str | None = None,
) -> MqttCredentials:
    """Credentials for the MQTT connect after HTTPS auth: username = iotId, password =
    iotToken, client id = any device label (the tutorial uses the bare device name;
    ``secure_mode=-1`` (TLS) or ``0`` (TCP) adds a ``|securemode=..|`` block).

    Example:
        >>> c = token_mqtt_credentials("2BGmgWFvoXlbi1Er9sk4k1hip0",
        ...     "137eb0759ca248b79383a60c0b0e0f80", "868488076506128",
        ...     "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com")
        >>> c.client_id, c.username
        ('868488076506128', '2BGmgWFvoXlbi1Er9sk4k1hip0')
    """
    if not isinstance(iot_id, str) or not iot_id:
        raise UsageError("iot_id", "must not be empty")
    if not isinstance(iot_token, str) or not iot_token:
        raise UsageError("iot_token", "must not be empty")
    if not isinstance(host, str) or not host:
        raise UsageError("host", "must not be empty")
    validate_client_id(client_id, allow_empty=False)
    params = [] if secure_mode is None else [("securemode", str(validate_secure_mode(secure_mode)))]
    return MqttCredentials(
        client_id=build_client_id(client_id, params),
        username=iot_id,
        password=iot_token,
        host=host,
        port=check_port(port),
    )


def check_port(port: int) -> int:
    """Return ``port`` if it is an integer 1-65535, else raise UsageError('port')."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise UsageError("port", f"must be an integer from 1 to 65535, got {port!r}")
    return port
