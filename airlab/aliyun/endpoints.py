"""Endpoint names per region (地域) for legacy public instances.

Example:
    >>> mqtt_host("k1hipglLdjU")
    'k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com'
    >>> auth_devicename_url("cn-beijing")
    'https://iot-auth.cn-beijing.aliyuncs.com/auth/devicename'
"""

from __future__ import annotations

import re

from airlab.errors import UsageError

__all__ = [
    "DEFAULT_MQTT_PORT",
    "DEFAULT_REGION",
    "KNOWN_REGIONS",
    "auth_devicename_url",
    "auth_host",
    "instance_mqtt_host",
    "mqtt_host",
    "register_device_url",
    "validate_region",
]

DEFAULT_REGION = "cn-shanghai"
DEFAULT_MQTT_PORT = 1883
KNOWN_REGIONS: tuple[str, ...] = (
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "ap-southeast-1",
    "ap-northeast-1",
    "us-west-1",
    "us-east-1",
    "eu-central-1",
)
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")


def validate_region(region: str, field: str = "region") -> str:
    """Return ``region`` if well-formed (``cn-shanghai``, ``ap-southeast-1``, any such id).

    Example:
        >>> validate_region("eu-central-1")
        'eu-central-1'
    """
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise UsageError(field, f"not a region id like 'cn-shanghai': {region!r}")
    return region


def _host_label(value: str, field: str) -> str:
    if not isinstance(value, str) or not _HOST_LABEL.fullmatch(value):
        raise UsageError(field, f"cannot be used in a host name: {value!r}")
    return value


def auth_host(region: str = DEFAULT_REGION) -> str:
    """The HTTPS auth/registration host, ``iot-auth.<region>.aliyuncs.com``.

    Example:
        >>> auth_host()
        'iot-auth.cn-shanghai.aliyuncs.com'
    """
    return f"iot-auth.{validate_region(region)}.aliyuncs.com"


def mqtt_host(product_key: str, region: str = DEFAULT_REGION) -> str:
    """The legacy public-instance MQTT host, ``<pk>.iot-as-mqtt.<region>.aliyuncs.com``.

    Example:
        >>> mqtt_host("a1Ze3BcsQ5x", "ap-southeast-1")
        'a1Ze3BcsQ5x.iot-as-mqtt.ap-southeast-1.aliyuncs.com'
    """
    label = _host_label(product_key, "product_key")
    return f"{label}.iot-as-mqtt.{validate_region(region)}.aliyuncs.com"


def instance_mqtt_host(instance_id: str) -> str:
    """The MQTT host of a new public / Enterprise instance, ``<id>.mqtt.iothub.aliyuncs.com``.

    Example:
        >>> instance_mqtt_host("iot-06z009y9rnab11u")
        'iot-06z009y9rnab11u.mqtt.iothub.aliyuncs.com'
    """
    return f"{_host_label(instance_id, 'instance_id')}.mqtt.iothub.aliyuncs.com"


def auth_devicename_url(region: str = DEFAULT_REGION) -> str:
    """URL of HTTPS device auth (一机一密, HTTP认证): ``POST .../auth/devicename``.

    Example:
        >>> auth_devicename_url()
        'https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename'
    """
    return f"https://{auth_host(region)}/auth/devicename"


def register_device_url(region: str = DEFAULT_REGION) -> str:
    """URL of HTTPS dynamic registration (一型一密): ``POST .../auth/register/device``.

    Example:
        >>> register_device_url()
        'https://iot-auth.cn-shanghai.aliyuncs.com/auth/register/device'
    """
    return f"https://{auth_host(region)}/auth/register/device"
