"""What the simulated firmware asks for, and what its network stack answers.

The firmware interpreter (:mod:`airlab.sim.firmware`) is pure: fed host bytes,
network events and timer expiries, it returns *actions*: bytes for the host, requests
for the network stack, timers.  The network stack (:mod:`airlab.sim.netstack`) carries
the requests out on real sockets and reports back with *network events*.  The device
(:mod:`airlab.sim.device`) wires the two together with a clock and a latency profile.

``link`` names one of the module's sockets: ``"mqtt"`` (MIPSTART/SSLMIPSTART) or
``"http"`` (one HTTPACTION at a time).  An MqttConnect's :class:`Will` is the codec's
(:class:`airlab.mqtt.codec.Will`).

Example:
    >>> ToHost(b"\\r\\nOK\\r\\n").latency
    'answer'
    >>> OpenLink("mqtt", "k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883, tls=True).tls
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from airlab.mqtt.codec import Will

__all__ = [
    "Action",
    "CancelTimer",
    "CloseLink",
    "HttpRequest",
    "HttpResult",
    "LinkClosed",
    "LinkFailed",
    "LinkOpened",
    "MqttConnack",
    "MqttConnect",
    "MqttDisconnect",
    "MqttMessage",
    "MqttPuback",
    "MqttPubcomp",
    "MqttPublish",
    "MqttPubrec",
    "MqttSuback",
    "MqttSubscribe",
    "MqttUnsuback",
    "MqttUnsubscribe",
    "NetEvent",
    "NetRequest",
    "OpenLink",
    "PdpLost",
    "StartTimer",
    "ToHost",
    "Will",
]


# ------------------------------------------------------------------ firmware -> device


class Action:
    """Base of everything the firmware returns."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ToHost(Action):
    """Bytes for the serial line.

    ``latency`` names the kind of delay the latency profile applies before these bytes
    go out: ``"echo"`` (none), ``"answer"`` (a query's answer: a few ms), ``"boot"``
    (boot URCs after a reset), ``"urc"`` (a URC caused by a network event: the network
    already took its time).  Actions are delivered in order; a delay holds back the
    actions after it too.
    """

    data: bytes
    latency: str = "answer"


@dataclass(frozen=True, slots=True)
class StartTimer(Action):
    """Call ``Firmware.timer(name)`` after ``seconds`` unless cancelled.

    Starting a timer that is already running restarts it.
    """

    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer(Action):
    name: str


class NetRequest(Action):
    """Base of the requests for the network stack."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class OpenLink(NetRequest):
    """Open a TCP (or TLS when ``tls``) connection; answered by LinkOpened / LinkFailed.

    ``attempt``: the firmware's number for this open; the stack copies it into every
    event of the link it opens, so an event of an abandoned attempt (closed by
    ``AT+MIPCLOSE`` and already on its way) is not taken for the next one's.  0: none.
    """

    link: str
    host: str
    port: int
    tls: bool = False
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class CloseLink(NetRequest):
    """Close the link (no answer; a later LinkClosed is not sent for a local close)."""

    link: str


@dataclass(frozen=True, slots=True)
class HttpRequest(NetRequest):
    """One HTTP/1.1 exchange on the ``"http"`` link; answered by HttpResult.

    ``url`` is as the host gave it (scheme optional: ``airtest.openluat.com``);
    ``headers`` in order, as given (USER_DEFINED lines split into name/value);
    ``byte_range`` from HTTPPARA BREAK/BREAKEND.
    """

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    timeout: float = 120.0
    byte_range: tuple[int, int] | None = None
    user_agent: str = "AM_MODULE"


@dataclass(frozen=True, slots=True)
class MqttConnect(NetRequest):
    """Send MQTT CONNECT on the open ``"mqtt"`` link; answered by MqttConnack or LinkClosed."""

    client_id: str
    username: str | None
    password: str | None
    keepalive: int
    clean_session: bool = True
    will: Will | None = None


@dataclass(frozen=True, slots=True)
class MqttSubscribe(NetRequest):
    packet_id: int
    topic: str
    qos: int


@dataclass(frozen=True, slots=True)
class MqttUnsubscribe(NetRequest):
    packet_id: int
    topic: str


@dataclass(frozen=True, slots=True)
class MqttPublish(NetRequest):
    """PUBLISH; ``packet_id`` is None for QoS 0."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    packet_id: int | None = None


@dataclass(frozen=True, slots=True)
class MqttDisconnect(NetRequest):
    """Send MQTT DISCONNECT (the link stays open until CloseLink)."""


# ------------------------------------------------------------------ network -> firmware


class NetEvent:
    """Base of what the network stack reports."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class LinkOpened(NetEvent):
    link: str
    attempt: int = 0  # the OpenLink's (0: unknown)


@dataclass(frozen=True, slots=True)
class LinkFailed(NetEvent):
    """The connection could not be made: ``reason`` is ``"dns"``, ``"refused"``,
    ``"timeout"``, ``"tls"`` or ``"network"`` (no PDP context)."""

    link: str
    reason: str
    attempt: int = 0  # the OpenLink's (0: unknown)


@dataclass(frozen=True, slots=True)
class LinkClosed(NetEvent):
    """The peer (or the network) closed an open link."""

    link: str
    attempt: int = 0  # the OpenLink's (0: unknown)


@dataclass(frozen=True, slots=True)
class HttpResult(NetEvent):
    """The outcome of an HttpRequest: an HTTP status, or a module code 600–606
    (601 network error, 603 DNS error, 605 SSL setup failed ...)."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MqttConnack(NetEvent):
    return_code: int


@dataclass(frozen=True, slots=True)
class MqttSuback(NetEvent):
    packet_id: int
    granted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _PacketAck(NetEvent):
    """An acknowledgement that carries only the packet id of what it acknowledges.

    Each kind is its own class (``MqttPuback(1) != MqttPubrec(1)``):

    >>> MqttPuback(7)
    MqttPuback(packet_id=7)
    """

    packet_id: int


@dataclass(frozen=True, slots=True)
class MqttUnsuback(_PacketAck):
    """UNSUBACK for an MqttUnsubscribe."""


@dataclass(frozen=True, slots=True)
class MqttPuback(_PacketAck):
    """PUBACK for a QoS 1 MqttPublish."""


@dataclass(frozen=True, slots=True)
class MqttPubrec(_PacketAck):
    """PUBREC for a QoS 2 MqttPublish."""


@dataclass(frozen=True, slots=True)
class MqttPubcomp(_PacketAck):
    """PUBCOMP for a QoS 2 MqttPublish."""


@dataclass(frozen=True, slots=True)
class MqttMessage(NetEvent):
    """An incoming PUBLISH (the stack has already acknowledged QoS 1)."""

    topic: str
    payload: bytes
    qos: int = 0


@dataclass(frozen=True, slots=True)
class PdpLost(NetEvent):
    """The network deactivated the PDP context (fault injection or the flaky profile)."""
