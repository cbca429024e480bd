"""What the rules of :mod:`airlab.cloud.auth` share: the platform's codes and limits,
the HTTP reply, the signature details a refusal may show, the host rule's test, and
:class:`RulesBase` (the registry, the clock, the logs, the secret a registration hands
out) that the MQTT-connect, topic and HTTP rules build on.

Example:
    >>> HttpReply(200, b'{"code":200}').json
    {'code': 200}
    >>> _dumps({"message": "成功"})
    b'{"message":"\\xe6\\x88\\x90\\xe5\\x8a\\x9f"}'
    >>> host_carries_product_key("K1HIPGLLDJU.iot-as-mqtt.cn-shanghai.aliyuncs.com.",
    ...                          "k1hipglLdjU")
    True
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airlab.aliyun import (
    SignatureCheck,
    mqtt_host,
    signature_prefix,
)
from airlab.cloud.model import (
    ConnectionEvent,
    DeviceRef,
    Explanation,
    MessageRecord,
)
from airlab.cloud.registry import Device, Registry
from airlab.errors import UsageError

__all__ = [
    "HOST_REFUSAL_CODE",
    "JSON_CONTENT_TYPE",
    "KEEPALIVE_RANGE",
    "TLS_REFUSAL_CODE",
    "HttpReply",
    "RulesBase",
    "host_carries_product_key",
]

KEEPALIVE_RANGE = (30, 1200)
"""Keepalive seconds the platform accepts on normal connects."""
JSON_CONTENT_TYPE = "application/json;charset=utf-8"
RATE_WINDOW = 60.0
HOST_REFUSAL_CODE = 5
"""CONNACK code of the host rule: "not authorized" — the credentials may be right, but
this product is not served at the host the module dialled (as for an unknown product)."""
TLS_REFUSAL_CODE = 2
"""CONNACK code of the "TLS required" rule: the platform documents no code for it; 2 is
the one it documents for its other plain-TCP refusal (MQTT dynamic registration)."""


def host_carries_product_key(server_name: str, product_key: str) -> bool:
    """True when ``server_name`` is ``<product_key>.iot-as-mqtt.<…>`` (DNS names ignore
    letter case; a trailing dot is allowed).

    Example:
        >>> host_carries_product_key("k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com",
        ...                          "k1hipglLdjU")
        True
        >>> host_carries_product_key("a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com",
        ...                          "k1hipglLdjU")
        False
    """
    labels = server_name.rstrip(".").lower().split(".")
    return len(labels) >= 3 and labels[0] == product_key.lower() and labels[1] == "iot-as-mqtt"


def _expected_host(product_key: str, region: str) -> str:
    try:
        return mqtt_host(product_key, region)
    except UsageError:  # an odd registry row: still say what the form is
        return f"{product_key}.iot-as-mqtt.{region}.aliyuncs.com"


@dataclass(frozen=True, slots=True)
class HttpReply:
    """What an HTTP endpoint answers: status, body bytes, content type, and why."""

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    explanation: Explanation | None = None

    @property
    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sign_details(check: SignatureCheck, **extra: str) -> dict[str, str]:
    """What a refusal may show: never a whole signature, expected or received (either
    can be a valid password, and no timestamp window limits its use)."""
    details = {
        "sign_content": check.sign_content,
        "algorithm": check.sign_method.value if check.sign_method else "?",
        "differs": check.hint or check.reason or "?",
        "expected": signature_prefix(check.expected),
        "received": signature_prefix(check.received),
        "secret": check.secret_masked,
    }
    details.update(extra)
    return details


def _disabled_text(ref: DeviceRef) -> str:
    """What every login and registration refusal of a disabled (禁用) device says."""
    return f"device {ref} is disabled (禁用): enable it in the console first"


def _password_text(password: bytes | None) -> str | None:
    if password is None:
        return None
    try:
        return bytes(password).decode("utf-8")
    except UnicodeDecodeError:
        return None


class RulesBase:
    """The state every part of :class:`airlab.cloud.auth.Rules` reads: the registry,
    the optional connect rate limit and the clock; and the logs (see ``Rules``)."""

    def __init__(
        self,
        registry: Registry,
        *,
        connect_rate_limit: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if connect_rate_limit is not None and connect_rate_limit < 1:
            raise UsageError("connect_rate_limit", "must be at least 1 or None")
        self.registry = registry
        self.connect_rate_limit = connect_rate_limit
        self._clock = clock
        self._attempts: dict[DeviceRef, deque[float]] = {}
        self._attempts_lock = threading.Lock()

    # -- logs -----------------------------------------------------------------------------

    def log_connection(
        self, event: ConnectionEvent, on_commit: Callable[[], None] | None = None
    ) -> None:
        """Record a connection event in the registry (non-blocking); ``on_commit`` runs
        once it is committed (the broker answers a refusal only then)."""
        self.registry.log_connection(event, on_commit)

    def log_message(
        self, record: MessageRecord, on_commit: Callable[[], None] | None = None
    ) -> None:
        """Record a message in the registry (non-blocking); ``on_commit`` runs once it
        is committed (the broker sends the PUBACK only then)."""
        self.registry.log_message(record, on_commit)

    def log_messages(
        self, records: list[MessageRecord], on_commit: Callable[[], None] | None = None
    ) -> None:
        """Record several messages at once (non-blocking; one ``on_commit`` for all):
        what the broker's loop logged in one turn."""
        self.registry.log_messages(records, on_commit)

    def log_refusal(self, event: ConnectionEvent, timeout: float = 10.0) -> None:
        """Record ``event`` and wait until it is committed, for callers on their own
        thread (the HTTP handlers) that must log a refusal before they answer it.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> from airlab.cloud.auth import Rules
            >>> rules = Rules(Registry())
            >>> rules.log_refusal(ConnectionEvent(1.0, "http", "auth", False, code=401))
            >>> len(rules.registry.connection_log())
            1
        """
        done = threading.Event()
        self.registry.log_connection(event, done.set)
        done.wait(timeout)

    def _registration_secret(self, device: Device) -> str:
        """The secret this registration hands out (the current one the first time, a new
        one on each repeat: only the latest is valid); the device's own if it was deleted
        meanwhile."""
        try:
            return self.registry.registration_secret(device.ref)
        except UsageError:
            return device.device_secret
