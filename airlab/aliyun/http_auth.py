"""HTTPS auth then MQTT (一机一密, HTTP认证二次连接): the ``/auth/devicename`` form,
its JSON reply, and the MQTT credentials that follow.

Example:
    >>> req = http_auth_request("k1hipglLdjU", "868488076506128",
    ...                         "fef32adf6dad46c2c7cbf335d3a7b021")
    >>> req.body
    'productKey=k1hipglLdjU&sign=0f655b12adf519b9a7a2b0a990f398b6&clientId=868488076506128&deviceName=868488076506128'
    >>> req.length
    112
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from airlab.aliyun.endpoints import (
    DEFAULT_MQTT_PORT,
    DEFAULT_REGION,
    auth_devicename_url,
    mqtt_host,
)
from airlab.aliyun.forms import HttpFormRequest
from airlab.aliyun.identity import (
    validate_client_id,
    validate_device_name,
    validate_product_key,
    validate_secret,
    validate_timestamp,
)
from airlab.aliyun.methods import DEFAULT_SIGN_METHOD, SignMethod, written_sign_method
from airlab.aliyun.mqtt_credentials import MqttCredentials, token_mqtt_credentials
from airlab.aliyun.replies import MalformedReply, load_reply_object, raise_for_code, require_text
from airlab.aliyun.signing import mqtt_sign_content, sign
from airlab.errors import UsageError

__all__ = [
    "HttpAuthFieldOrder",
    "HttpAuthReply",
    "http_auth_request",
    "mqtt_credentials_after_http_auth",
    "parse_http_auth_reply",
]


class HttpAuthFieldOrder(StrEnum):
    """Field order of the ``/auth/devicename`` body.

    ``TUTORIAL``: ``productKey&sign&clientId&deviceName`` then the optional
    ``signmethod&timestamp&version&resources``. ``C_SDK_3``: the C SDK 3.x layout
    ``productKey&deviceName&signmethod&sign&version&clientId&timestamp&resources``
    (``signmethod`` always written).
    """

    TUTORIAL = "tutorial"
    C_SDK_3 = "c3"


_ORDERS: dict[HttpAuthFieldOrder, tuple[str, ...]] = {
    HttpAuthFieldOrder.TUTORIAL: (
        "productKey",
        "sign",
        "clientId",
        "deviceName",
        "signmethod",
        "timestamp",
        "version",
        "resources",
    ),
    HttpAuthFieldOrder.C_SDK_3: (
        "productKey",
        "deviceName",
        "signmethod",
        "sign",
        "version",
        "clientId",
        "timestamp",
        "resources",
    ),
}


def http_auth_request(
    product_key: str,
    device_name: str,
    device_secret: str,
    *,
    client_id: str | None = None,
    sign_method: SignMethod | str = DEFAULT_SIGN_METHOD,
    timestamp: str | int | None = None,
    version: str | None = None,
    resources: str | None = None,
    include_sign_method: bool | None = None,
    field_order: HttpAuthFieldOrder | str = HttpAuthFieldOrder.TUTORIAL,
    region: str = DEFAULT_REGION,
    upper: bool = False,
) -> HttpFormRequest:
    """The ``POST /auth/devicename`` form (sign over clientId, deviceName, productKey and
    timestamp when given; version, resources and signmethod are not signed).

    ``signmethod`` is written when ``include_sign_method`` is true, by default only when
    the method is not the platform default hmacmd5 (and always in the C SDK 3.x order).
    ``timestamp``, ``version`` and ``resources`` are written only when given.

    Example:
        >>> r = http_auth_request("pk", "dn", "ds", client_id="pk.dn", sign_method="hmacsha256",
        ...     timestamp=2524608000000, version="default", resources="mqtt",
        ...     field_order="c3", upper=True)
        >>> r.body.split("&")[:3]
        ['productKey=pk', 'deviceName=dn', 'signmethod=hmacsha256']
    """
    validate_product_key(product_key)
    validate_device_name(device_name)
    validate_secret(device_secret, "device_secret")
    method, method_text = written_sign_method(sign_method)
    ts = validate_timestamp(timestamp)
    cid = validate_client_id(device_name if client_id is None else client_id, allow_empty=False)
    try:
        order = HttpAuthFieldOrder(field_order)
    except ValueError:
        known = ", ".join(o.value for o in HttpAuthFieldOrder)
        raise UsageError("field_order", f"unknown order {field_order!r} (use {known})") from None
    for name, value in (("version", version), ("resources", resources)):
        if value is not None and (not isinstance(value, str) or not value):
            raise UsageError(name, "must be a non-empty string when given")
    content = mqtt_sign_content(cid, device_name, product_key, ts)
    signature = sign(device_secret, content, method, upper=upper, secret_field="device_secret")
    if include_sign_method is None:
        include_sign_method = (
            order is HttpAuthFieldOrder.C_SDK_3 or method is not DEFAULT_SIGN_METHOD
        )
    values: dict[str, str | None] = {
        "productKey": product_key,
        "deviceName": device_name,
        "clientId": cid,
        "sign": signature,
        "signmethod": str(method_text) if include_sign_method else None,
        "timestamp": ts,
        "version": version,
        "resources": resources,
    }
    fields = tuple((name, v) for name in _ORDERS[order] if (v := values[name]) is not None)
    return HttpFormRequest(
        url=auth_devicename_url(region), fields=fields, sign=signature, sign_content=content
    )


@dataclass(frozen=True, slots=True)
class HttpAuthReply:
    """A successful ``/auth/devicename`` reply. ``host``/``port`` come from
    ``data.resources.mqtt`` and are None when the reply has none (as in the tutorial)."""

    code: int
    message: str
    iot_id: str
    iot_token: str
    host: str | None = None
    port: int | None = None


def parse_http_auth_reply(text: str | bytes) -> HttpAuthReply:
    """Read the ``AT+HTTPREAD`` body of ``/auth/devicename``.

    Raises :class:`~airlab.errors.CloudRejected` (platform code and message) when
    ``code`` is not 200 and :class:`~airlab.aliyun.replies.MalformedReply` when the
    reply is not the expected JSON.

    Example:
        >>> r = parse_http_auth_reply('{"code":200,"data":{"iotId":"2BGmgWFvoXlbi1Er9sk4k1hip0",'
        ...     '"iotToken":"137eb0759ca248b79383a60c0b0e0f80"},"message":"success"}')
        >>> r.iot_id, r.host
        ('2BGmgWFvoXlbi1Er9sk4k1hip0', None)
    """
    reply = load_reply_object(text)
    raise_for_code(reply)
    data = reply.get("data")
    if not isinstance(data, dict):
        raise MalformedReply("reply has no 'data' object")
    host: str | None = None
    port: int | None = None
    resources: Any = data.get("resources")
    if resources is not None:
        mqtt = resources.get("mqtt") if isinstance(resources, dict) else None
        if mqtt is not None:
            if not isinstance(mqtt, dict):
                raise MalformedReply("reply data.resources.mqtt is not an object")
            host = require_text(mqtt, "host", "data.resources.mqtt")
            port = _port(mqtt.get("port"))
    return HttpAuthReply(
        code=200,
        message=str(reply.get("message", "")),
        iot_id=require_text(data, "iotId"),
        iot_token=require_text(data, "iotToken"),
        host=host,
        port=port,
    )


def _port(value: Any) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise MalformedReply(f"reply data.resources.mqtt.port is not a port: {value!r}") from None
    if not 0 < port < 65536:
        raise MalformedReply(f"reply data.resources.mqtt.port out of range: {port}")
    return port


def mqtt_credentials_after_http_auth(
    reply: HttpAuthReply,
    product_key: str,
    client_id: str,
    *,
    region: str = DEFAULT_REGION,
    secure_mode: int | str | None = None,
) -> MqttCredentials:
    """The MQTT connect after HTTPS auth: username iotId, password iotToken, the device
    label as client id; host and port from the reply's ``resources.mqtt`` when present,
    otherwise ``<pk>.iot-as-mqtt.<region>.aliyuncs.com:1883``.

    Example:
        >>> reply = HttpAuthReply(200, "success", "2BGmgWFvoXlbi1Er9sk4k1hip0",
        ...                       "137eb0759ca248b79383a60c0b0e0f80")
        >>> c = mqtt_credentials_after_http_auth(reply, "k1hipglLdjU", "868488076506128")
        >>> c.host, c.port
        ('k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com', 1883)
    """
    host = reply.host or mqtt_host(product_key, region)
    port = reply.port or DEFAULT_MQTT_PORT
    return token_mqtt_credentials(
        reply.iot_id, reply.iot_token, client_id, host, port, secure_mode=secure_mode
    )
