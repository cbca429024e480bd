"""The registry's rows as frozen dataclasses, and the small helpers that build them.

Example:
    >>> _ref("pk1", "dev1")
    DeviceRef(product_key='pk1', device_name='dev1')
    >>> len(_random_text(20))
    20
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import string
from dataclasses import dataclass

from airlab.aliyun import TopicClass, validate_topic_class
from airlab.cloud.model import DeviceRef, Explanation
from airlab.errors import UsageError

__all__ = [
    "PRODUCT_SWITCHES",
    "TOKEN_LIFETIME",
    "Device",
    "DeviceLike",
    "DeviceToken",
    "Product",
    "Seat",
    "Token",
]

TOKEN_LIFETIME = 7 * 24 * 3600.0
"""Seconds an iotToken from ``/auth/devicename`` stays valid (7 days)."""

_ALNUM = string.ascii_letters + string.digits

PRODUCT_SWITCHES = ("dynamic_registration", "host_check", "tls_required")
"""A product's on/off settings, in order: the :class:`Product` fields, the consoles'
``set_<name>`` methods and the fields of ``POST /admin/product``."""


@dataclass(frozen=True, slots=True)
class Product:
    """A product (产品): its key, secret (ProductSecret), region, the dynamic
    registration switch (动态注册) and ``host_check``: an emulator setting (off by
    default) under which an MQTT login over TLS must name this product's own host,
    ``<productKey>.iot-as-mqtt.<region>.aliyuncs.com``, as its server name (SNI);
    ``tls_required``: MQTT logins over plain TCP are refused (the platform's rule for
    accounts created since 2022-08-02), see :meth:`Registry.set_tls_required`."""

    product_key: str
    product_secret: str
    region: str
    dynamic_registration: bool
    created: float
    host_check: bool = False
    tls_required: bool = False


@dataclass(frozen=True, slots=True)
class Device:
    """A device (设备) with its DeviceSecret, state and the platform's iotId."""

    product_key: str
    device_name: str
    device_secret: str
    enabled: bool
    activated: bool
    created: float
    iot_id: str
    #: a dynamic registration (一型一密) has issued the current DeviceSecret since the
    #: device was added or its registration reset (ResetThing): 已注册
    registered: bool = False

    @property
    def ref(self) -> DeviceRef:
        """The (productKey, deviceName) pair."""
        return DeviceRef(self.product_key, self.device_name)


@dataclass(frozen=True, slots=True)
class Seat:
    """One student's seat in a class: the seat id (``"07"`` or a roster id), a label
    (the student's name, may be empty) and the seat's device."""

    class_name: str
    seat: str
    label: str
    product_key: str
    device_name: str

    @property
    def ref(self) -> DeviceRef:
        return DeviceRef(self.product_key, self.device_name)


@dataclass(frozen=True, slots=True)
class Token:
    """An iotId/iotToken pair issued by ``/auth/devicename`` (valid 7 days)."""

    iot_id: str
    iot_token: str
    device: DeviceRef
    issued: float
    expires: float

    def expired(self, now: float) -> bool:
        """True once ``now`` (epoch seconds) has reached the expiry."""
        return now >= self.expires


@dataclass(frozen=True, slots=True)
class DeviceToken:
    """A clientId + DeviceToken issued by MQTT dynamic registration ``regnwl``."""

    device: DeviceRef
    client_id: str
    device_token: str
    issued: float


DeviceLike = DeviceRef | Device | tuple[str, str]
"""A device given as a :class:`DeviceRef`, a :class:`Device` or ``(pk, dn)``."""


def _ref(device: DeviceLike | str, device_name: str | None = None) -> DeviceRef:
    if isinstance(device, str):
        if device_name is None:
            raise UsageError("device_name", "give the device name with the product key")
        return DeviceRef(device, device_name)
    if isinstance(device, DeviceRef):
        return device
    if isinstance(device, Device):
        return device.ref
    if isinstance(device, tuple) and len(device) == 2:
        return DeviceRef(str(device[0]), str(device[1]))
    raise UsageError("device", f"expected a DeviceRef, a Device or (pk, dn), got {device!r}")


def _random_text(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _explanation_json(explanation: Explanation | None) -> str | None:
    if explanation is None:
        return None
    return json.dumps(explanation.as_dict(), ensure_ascii=False)


def _explanation_from(text: str | None) -> Explanation | None:
    if not text:
        return None
    data = json.loads(text)
    return Explanation(data["rule"], data["message"], dict(data.get("details") or {}))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _token_list(text: object) -> list[str]:
    try:
        value = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _device(row: sqlite3.Row) -> Device:
    return Device(
        row["product_key"],
        row["device_name"],
        row["device_secret"],
        bool(row["enabled"]),
        bool(row["activated"]),
        row["created"],
        row["iot_id"],
        bool(row["registered"]),
    )


def _row_ref(row: sqlite3.Row) -> DeviceRef | None:
    if row["product_key"] is None or row["device_name"] is None:
        return None
    return DeviceRef(row["product_key"], row["device_name"])


def _as_class(value: TopicClass | tuple[str, str]) -> TopicClass:
    if isinstance(value, TopicClass):
        return validate_topic_class(value.template, value.permission)
    template, permission = value
    return validate_topic_class(template, permission)
