"""One secret per product (一型一密): dynamic registration over HTTPS
(``/auth/register/device``) and over MQTT (``authType=register`` / ``regnwl``), the
replies and pushes that carry the result, and the ``connwl`` connect that follows
``regnwl``.

Example:
    >>> req = register_request("k1hipglLdjU", "868488076506128", "8LQwOYSZMwp3DFBd",
    ...                        random="123456")
    >>> req.sign, req.length
    ('20558baadb2a0b04847767980f0ee67b', 120)
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from enum import StrEnum

from airlab.aliyun.clientid import build_client_id
from airlab.aliyun.endpoints import (
    DEFAULT_MQTT_PORT,
    DEFAULT_REGION,
    instance_mqtt_host,
    mqtt_host,
    register_device_url,
)
from airlab.aliyun.forms import HttpFormRequest
from airlab.aliyun.identity import (
    validate_client_id,
    validate_secret,
    validate_secure_mode,
)
from airlab.aliyun.methods import SignMethod, written_sign_method
from airlab.aliyun.mqtt_credentials import MqttCredentials, check_port, mqtt_username
from airlab.aliyun.replies import MalformedReply, load_reply_object, raise_for_code, require_text
from airlab.aliyun.signing import register_sign_content, sign
from airlab.errors import UsageError

__all__ = [
    "REGISTER_PUSH_TOPIC",
    "REGNWL_PUSH_TOPIC",
    "TUTORIAL_REGISTER_SIGN_METHOD",
    "DeviceTokenGrant",
    "MqttRegisterAuthType",
    "RegisteredDevice",
    "connwl_mqtt_credentials",
    "mqtt_register_credentials",
    "new_random",
    "parse_register_push",
    "parse_register_reply",
    "register_request",
]

TUTORIAL_REGISTER_SIGN_METHOD = "HmacMD5"
"""The ``signMethod`` value as the tutorial (and Alibaba's doc sample) spells it."""
REGISTER_PUSH_TOPIC = "/ext/register"
REGNWL_PUSH_TOPIC = "/ext/regnwl"
_RANDOM_ALPHABET = string.digits + string.ascii_letters


class MqttRegisterAuthType(StrEnum):
    """``register``: pre-registered device, returns a DeviceSecret (预注册).
    ``regnwl``: no pre-registration, returns ClientID + DeviceToken (免预注册)."""

    REGISTER = "register"
    REGNWL = "regnwl"


def new_random(length: int = 15) -> str:
    """A fresh random nonce of ``[0-9A-Za-z]``, 15 characters like the Python SDK's.

    (Not used inside signing, which stays deterministic: pass the value in.)

    Example:
        >>> len(new_random()), new_random(4).isalnum()
        (15, True)
    """
    if length < 1:
        raise UsageError("length", "must be at least 1")
    return "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(length))


def register_request(
    product_key: str,
    device_name: str,
    product_secret: str,
    *,
    random: str,
    sign_method: SignMethod | str = TUTORIAL_REGISTER_SIGN_METHOD,
    region: str = DEFAULT_REGION,
    upper: bool = False,
) -> HttpFormRequest:
    """The ``POST /auth/register/device`` form in the tutorial's order
    ``productKey&deviceName&random&sign&signMethod`` (capital M in the name; the value
    is written as given, ``HmacMD5`` by default).

    Example:
        >>> register_request("k1hipglLdjU", "868488076506128", "8LQwOYSZMwp3DFBd",
        ...                  random="123456").body
        'productKey=k1hipglLdjU&deviceName=868488076506128&random=123456&sign=20558baadb2a0b04847767980f0ee67b&signMethod=HmacMD5'
    """
    validate_secret(product_secret, "product_secret")
    method, method_text = written_sign_method(sign_method)
    content = register_sign_content(device_name, product_key, random)
    signature = sign(product_secret, content, method, upper=upper, secret_field="product_secret")
    fields = (
        ("productKey", product_key),
        ("deviceName", device_name),
        ("random", random),
        ("sign", signature),
        ("signMethod", str(method_text)),
    )
    return HttpFormRequest(
        url=register_device_url(region), fields=fields, sign=signature, sign_content=content
    )


@dataclass(frozen=True, slots=True)
class RegisteredDevice:
    """The device triple issued by ``register`` (HTTPS reply or ``/ext/register`` push)."""

    product_key: str
    device_name: str
    device_secret: str


@dataclass(frozen=True, slots=True)
class DeviceTokenGrant:
    """What ``regnwl`` issues on ``/ext/regnwl``: the client id and DeviceToken to use
    for the ``connwl`` connect."""

    product_key: str
    device_name: str
    client_id: str
    device_token: str


def _registered_device(data: object, where: str) -> RegisteredDevice:
    if not isinstance(data, dict):
        raise MalformedReply(f"{where} is not an object")
    return RegisteredDevice(
        product_key=require_text(data, "productKey", where),
        device_name=require_text(data, "deviceName", where),
        device_secret=require_text(data, "deviceSecret", where),
    )


def parse_register_reply(text: str | bytes) -> RegisteredDevice:
    """Read the ``AT+HTTPREAD`` body of ``/auth/register/device``.

    Raises :class:`~airlab.errors.CloudRejected` for a ``code`` other than 200 and
    :class:`~airlab.aliyun.replies.MalformedReply` for anything unreadable.

    Example:
        >>> parse_register_reply('{"code":200,"data":{"deviceName":"868488076506128",'
        ...     '"deviceSecret":"fef32adf6dad46c2c7cbf335d3a7b021","productKey":"k1hipglLdjU"},'
        ...     '"message":"success"}').device_secret
        'fef32adf6dad46c2c7cbf335d3a7b021'
    """
    reply = load_reply_object(text)
    raise_for_code(reply)
    return _registered_device(reply.get("data"), "reply data")


def parse_register_push(topic: str, payload: str | bytes) -> RegisteredDevice | DeviceTokenGrant:
    """Read the push that ends MQTT dynamic registration: ``/ext/register`` gives a
    :class:`RegisteredDevice`, ``/ext/regnwl`` a :class:`DeviceTokenGrant`.

    Example:
        >>> parse_register_push("/ext/regnwl", '{"productKey":"pk","deviceName":"dn",'
        ...     '"clientId":"9g55WSBuOZMNtMCJtktx000100","deviceToken":"^1^1677597746541^9ffd"}')
        ... # doctest: +NORMALIZE_WHITESPACE
        DeviceTokenGrant(product_key='pk', device_name='dn',
            client_id='9g55WSBuOZMNtMCJtktx000100', device_token='^1^1677597746541^9ffd')
    """
    obj = load_reply_object(payload)
    if topic == REGISTER_PUSH_TOPIC:
        return _registered_device(obj, f"{topic} payload")
    if topic == REGNWL_PUSH_TOPIC:
        where = f"{topic} payload"
        return DeviceTokenGrant(
            product_key=require_text(obj, "productKey", where),
            device_name=require_text(obj, "deviceName", where),
            client_id=require_text(obj, "clientId", where),
            device_token=require_text(obj, "deviceToken", where),
        )
    raise MalformedReply(f"not a dynamic-registration push topic: {topic!r}")


def mqtt_register_credentials(
    product_key: str,
    device_name: str,
    product_secret: str,
    *,
    random: str,
    auth_type: MqttRegisterAuthType | str = MqttRegisterAuthType.REGISTER,
    sign_method: SignMethod | str = SignMethod.HMACMD5,
    secure_mode: int | str = 2,
    instance_id: str | None = None,
    client_id: str | None = None,
    region: str = DEFAULT_REGION,
    host: str | None = None,
    port: int = DEFAULT_MQTT_PORT,
    upper: bool = False,
    layout: str = "tutorial",
) -> MqttCredentials:
    """Credentials of the MQTT dynamic-registration CONNECT (must run over TLS).

    ``layout="tutorial"`` (default) writes what the tutorial shows: the device name as
    client id and the keys in the order ``securemode,authType,random,signmethod``, with
    ``hmacmd5``.  ``layout="sdk"`` writes what the Python and C 4.x SDKs send: client id
    ``<dn>.<pk>`` and ``random,authType,securemode,signmethod[,instanceId]`` (pass
    ``sign_method="hmacsha256"`` for their algorithm).  The password depends only on
    the sign content and algorithm.  ``securemode=2`` (``-2`` is accepted for new
    instances).  The host is ``<instanceId>.mqtt.iothub.aliyuncs.com`` when an
    instance id is given.

    Example:
        >>> c = mqtt_register_credentials("k1hipglLdjU", "868488076506128",
        ...     "8LQwOYSZMwp3DFBd", random="123456")
        >>> c.client_id
        '868488076506128|securemode=2,authType=register,random=123456,signmethod=hmacmd5|'
        >>> c.password
        '20558baadb2a0b04847767980f0ee67b'
        >>> mqtt_register_credentials("k1hipglLdjU", "868488076506128", "8LQwOYSZMwp3DFBd",
        ...     random="123456", layout="sdk").client_id
        '868488076506128.k1hipglLdjU|random=123456,authType=register,securemode=2,signmethod=hmacmd5|'
    """
    if layout not in ("tutorial", "sdk"):
        raise UsageError("layout", f"must be 'tutorial' or 'sdk', got {layout!r}")
    validate_secret(product_secret, "product_secret")
    try:
        kind = MqttRegisterAuthType(auth_type)
    except ValueError:
        raise UsageError(
            "auth_type", f"must be 'register' or 'regnwl', got {auth_type!r}"
        ) from None
    method, method_text = written_sign_method(sign_method)
    mode = validate_secure_mode(secure_mode)
    if mode not in (2, -2):
        raise UsageError("secure_mode", f"must be 2 or -2 for dynamic registration, got {mode}")
    content = register_sign_content(device_name, product_key, random)
    default_id = device_name if layout == "tutorial" else f"{device_name}.{product_key}"
    cid = validate_client_id(default_id if client_id is None else client_id, allow_empty=False)
    params = [
        ("random", random),
        ("authType", kind.value),
        ("securemode", str(mode)),
        ("signmethod", str(method_text)),
    ]
    if layout == "tutorial":
        params = [params[2], params[1], params[0], params[3]]
    if instance_id is not None:
        if not instance_id:
            raise UsageError("instance_id", "must not be empty when given")
        params.append(("instanceId", instance_id))
    if host is None:
        host = instance_mqtt_host(instance_id) if instance_id else mqtt_host(product_key, region)
    return MqttCredentials(
        client_id=build_client_id(cid, params),
        username=mqtt_username(device_name, product_key),
        password=sign(product_secret, content, method, upper=upper, secret_field="product_secret"),
        host=host,
        port=check_port(port),
        sign_content=content,
        sign_method=method,
    )


def connwl_mqtt_credentials(
    grant: DeviceTokenGrant,
    *,
    region: str = DEFAULT_REGION,
    host: str | None = None,
    port: int = DEFAULT_MQTT_PORT,
    extra_params: tuple[tuple[str, str], ...] = (),
) -> MqttCredentials:
    """The connect after ``regnwl``: ``<clientId>|securemode=-2,authType=connwl|``,
    username ``dn&pk``, password = the DeviceToken as is. ``extra_params`` are appended
    (the Python SDK adds ``_ss=1,ext=3,lan=Python,_v=...``).

    Example:
        >>> grant = DeviceTokenGrant("pk", "dn", "9g55WSBuOZMNtMCJtktx000100", "^1^16^9f")
        >>> c = connwl_mqtt_credentials(grant)
        >>> c.client_id, c.username, c.password
        ('9g55WSBuOZMNtMCJtktx000100|securemode=-2,authType=connwl|', 'dn&pk', '^1^16^9f')
    """
    if not grant.device_token:
        raise UsageError("device_token", "must not be empty")
    params = [("securemode", "-2"), ("authType", "connwl"), *extra_params]
    return MqttCredentials(
        client_id=build_client_id(validate_client_id(grant.client_id, allow_empty=False), params),
        username=mqtt_username(grant.device_name, grant.product_key),
        password=grant.device_token,
        host=host or mqtt_host(grant.product_key, region),
        port=check_port(port),
    )
