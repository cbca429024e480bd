"""Values shared by the cloud emulator's parts: decisions, explanations, log records.

The rules (:mod:`airlab.cloud.auth`) decide; the HTTP endpoints and the MQTT broker
carry the decision out on the wire; the registry stores what happened.  All values
here are frozen so they can cross threads freely.

Example:
    >>> d = ConnectDecision.refuse(4, rule="signature", message="password does not match")
    >>> d.accepted, d.return_code, d.explanation.rule
    (False, 4, 'signature')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

__all__ = [
    "CONNACK_MEANINGS",
    "CloudRules",
    "ConnectDecision",
    "ConnectKind",
    "ConnectRequest",
    "ConnectionEvent",
    "DeviceRef",
    "Explanation",
    "MessageRecord",
    "Permission",
    "PublishCounts",
    "Push",
]

#: MQTT 3.1.1 CONNACK return codes.
CONNACK_MEANINGS: Mapping[int, str] = MappingProxyType(
    {
        0: "accepted",
        1: "unacceptable protocol version",
        2: "identifier rejected",
        3: "server unavailable",
        4: "bad user name or password",
        5: "not authorized",
    }
)


@dataclass(frozen=True, slots=True, order=True)
class DeviceRef:
    """A device as the platform names it: (productKey, deviceName)."""

    product_key: str
    device_name: str

    def __str__(self) -> str:
        return f"{self.product_key}/{self.device_name}"


class ConnectKind(StrEnum):
    """How a CONNECT authenticated."""

    DEVICE = "device"  # HMAC of the device secret (securemode 2/3)
    TOKEN = "token"  # iotId/iotToken from /auth/devicename (securemode -1/0)
    REGISTER = "register"  # MQTT dynamic registration, pre-registered device
    REGNWL = "regnwl"  # MQTT dynamic registration without pre-registration
    CONNWL = "connwl"  # login with the deviceToken issued by regnwl


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why something was refused (or accepted), for people.

    ``rule`` is a short stable identifier (``"signature"``, ``"unknown_device"``,
    ``"keepalive"``, ``"client_id_format"``, ``"topic_permission"`` ...); ``message``
    one human sentence; ``details`` the facts behind it (sign content built, algorithm,
    what differs, the first characters of the expected and received signatures;
    secrets masked, never a whole signature).
    """

    rule: str
    message: str
    details: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "message": self.message, "details": dict(self.details)}


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """What the broker knows about an MQTT CONNECT when it must decide."""

    client_id: str
    username: str | None
    password: bytes | None
    keepalive: int
    protocol_level: int = 4  # 3 = MQTT 3.1 (MQIsdp), 4 = 3.1.1, 5 = MQTT 5
    clean_session: bool = True
    tls: bool = False
    remote: str = ""  # "ip:port" of the peer
    # the TLS server name (SNI) the client sent: the host it dialled (AT+SSLMIPSTART's);
    # None over plain TCP and when the client sent none (it dialled an IP address)
    server_name: str | None = None


@dataclass(frozen=True, slots=True)
class PublishCounts:
    """What a console publish (发布消息) did: sent to ``delivered`` connected clients and
    queued (QoS 1) for ``queued`` offline clean-session-0 sessions; ``queued`` is None
    when the broker does not say (it returned a bare count of delivered clients).

    The broker's ``console_publish`` (and ``EmulatedBroker.publish``) should return one
    of these (or a ``(delivered, queued)`` pair); :meth:`of` reads any of the forms.

    Example:
        >>> PublishCounts.of(2), PublishCounts.of((0, 1)).queued
        (PublishCounts(delivered=2, queued=None), 1)
    """

    delivered: int
    queued: int | None = None

    @classmethod
    def of(cls, result: object) -> PublishCounts:
        """The counts from what a broker returned: a PublishCounts, a ``(delivered,
        queued)`` pair or an int (delivered; queued unknown)."""
        if isinstance(result, PublishCounts):
            return result
        if isinstance(result, tuple) and len(result) == 2:
            return cls(int(result[0]), None if result[1] is None else int(result[1]))
        if isinstance(result, int) and not isinstance(result, bool):
            return cls(result)
        delivered = getattr(result, "delivered", None)
        if isinstance(delivered, int):
            queued = getattr(result, "queued", None)
            return cls(delivered, queued if isinstance(queued, int) else None)
        raise TypeError(f"a publish result must be a count, got {result!r}")


@dataclass(frozen=True, slots=True)
class Push:
    """A message the broker must deliver to the connecting client right after CONNACK."""

    topic: str
    payload: bytes
    qos: int = 0


@dataclass(frozen=True, slots=True)
class ConnectDecision:
    """The rules' answer to a CONNECT: the CONNACK code and what follows."""

    return_code: int
    device: DeviceRef | None = None
    kind: ConnectKind | None = None
    explanation: Explanation | None = None
    pushes: tuple[Push, ...] = ()
    close_after: float | None = None  # seconds; dynamic registration: 15
    ext: int = 0  # the client id's ``ext`` bitmap (bit1: /ext/notify wanted)
    keepalive_limit: float | None = None  # drop after this many idle seconds (1.5 x keepalive)

    @property
    def accepted(self) -> bool:
        return self.return_code == 0

    @classmethod
    def refuse(
        cls, code: int, *, rule: str, message: str, details: Mapping[str, str] | None = None
    ) -> ConnectDecision:
        return cls(code, explanation=Explanation(rule, message, dict(details or {})))


@dataclass(frozen=True, slots=True)
class Permission:
    """Whether a device may publish to / subscribe to a topic, and why not."""

    allowed: bool
    explanation: Explanation | None = None


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """One line of the connection log (MQTT connects, refusals, kicks, HTTP auth calls)."""

    time: float  # Unix epoch seconds
    protocol: str  # "mqtt" | "http"
    event: str  # connect | refused | disconnect | kicked | timeout | keepalive | auth | register
    accepted: bool
    device: DeviceRef | None = None
    client_id: str | None = None
    remote: str | None = None
    code: int | None = None  # CONNACK code or the HTTP JSON code
    reason: str | None = None
    explanation: Explanation | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One line of the message log."""

    time: float
    direction: str  # "up" (device -> cloud) | "down" (cloud -> device)
    topic: str
    qos: int
    payload: bytes
    accepted: bool
    device: DeviceRef | None = None
    client_id: str | None = None
    reason: str | None = None


class CloudRules(Protocol):
    """What the MQTT broker asks the rules (implemented by :class:`airlab.cloud.auth.Rules`)."""

    def decide_connect(self, request: ConnectRequest) -> ConnectDecision: ...

    def may_subscribe(self, device: DeviceRef, topic_filter: str) -> Permission: ...

    def may_publish(self, device: DeviceRef, topic: str, qos: int) -> Permission: ...

    def replies_to(self, device: DeviceRef, topic: str, payload: bytes) -> list[Push]:
        """Platform answers to an accepted uplink (Alink ``…_reply``, NTP response)."""
        ...

    def connected(self, device: DeviceRef, kind: ConnectKind) -> None:
        """A session was established (marks the device activated/online)."""
        ...

    def log_connection(
        self, event: ConnectionEvent, on_commit: Callable[[], None] | None = None
    ) -> None:
        """Record ``event``; call ``on_commit`` once it is stored for good."""
        ...

    def log_message(
        self, record: MessageRecord, on_commit: Callable[[], None] | None = None
    ) -> None:
        """Record ``record``; call ``on_commit`` once it is stored for good."""
        ...
