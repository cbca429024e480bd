"""The Alibaba Cloud IoT emulator (物联网平台, local): registry, rules, HTTP(S) endpoints,
MQTT broker, the service that runs them together and the console operations.

Most lessons need only :func:`cloud_for_lesson` (the running ``airlab cloud serve`` /
``airlab lab`` service, or an in-process one) or :class:`CloudEmulator`.

Example:
    >>> from airlab.cloud import CloudEmulator
    >>> with CloudEmulator(fixture="tutorial") as cloud:
    ...     cloud.online_devices()
    []
"""

from __future__ import annotations

from airlab.cloud.auth import Rules
from airlab.cloud.broker import EmulatedBroker
from airlab.cloud.discovery import (
    ENDPOINTS_ENV,
    EndpointsError,
    RemoteCloud,
    cloud_for_lesson,
    default_endpoints_path,
    load_endpoints,
)
from airlab.cloud.fixtures import (
    FIXTURES,
    TUTORIAL_DEVICE_NAME,
    TUTORIAL_DEVICE_SECRET,
    TUTORIAL_PRODUCT_KEY,
    TUTORIAL_PRODUCT_SECRET,
    TUTORIAL_REGION,
    load_tutorial,
)
from airlab.cloud.http_api import HttpEndpoints
from airlab.cloud.model import (
    CONNACK_MEANINGS,
    ConnectDecision,
    ConnectionEvent,
    ConnectKind,
    ConnectRequest,
    DeviceRef,
    Explanation,
    MessageRecord,
    Permission,
    Push,
)
from airlab.cloud.registry import Device, DeviceToken, Product, Registry, Token
from airlab.cloud.service import CloudConsole, CloudEmulator, OnlineDevice
from airlab.cloud.tls import GeneratedCertificate, make_client_context, make_server_context

__all__ = [
    "CONNACK_MEANINGS",
    "ENDPOINTS_ENV",
    "FIXTURES",
    "TUTORIAL_DEVICE_NAME",
    "TUTORIAL_DEVICE_SECRET",
    "TUTORIAL_PRODUCT_KEY",
    "TUTORIAL_PRODUCT_SECRET",
    "TUTORIAL_REGION",
    "CloudConsole",
    "CloudEmulator",
    "ConnectDecision",
    "ConnectKind",
    "ConnectRequest",
    "ConnectionEvent",
    "Device",
    "DeviceRef",
    "DeviceToken",
    "EmulatedBroker",
    "EndpointsError",
    "Explanation",
    "GeneratedCertificate",
    "HttpEndpoints",
    "MessageRecord",
    "OnlineDevice",
    "Permission",
    "Product",
    "Push",
    "Registry",
    "RemoteCloud",
    "Rules",
    "Token",
    "cloud_for_lesson",
    "default_endpoints_path",
    "load_endpoints",
    "load_tutorial",
    "make_client_context",
    "make_server_context",
]
