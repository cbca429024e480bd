"""The MQTT broker core's vocabulary: a connection's states and their legal moves
(:data:`TRANSITIONS`, h11 style), the timers, the close reasons with the platform's
wording, the :data:`Action` values the core returns, and the connection record.

Example:
    >>> TRANSITIONS[ConnState.AWAIT_CONNECT][ConnInput.REFUSE]
    <ConnState.REFUSING: 'refusing'>
    >>> conn = _Conn(1, "10.0.0.1:5000", False, None)
    >>> conn.move(ConnInput.CLOSE); conn.move(ConnInput.ACCEPT)
    Traceback (most recent call last):
    ...
    airlab.cloud.mqtt_states.BrokerStateError: connection 1: ACCEPT in CLOSED
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from airlab.cloud.model import (
    ConnectDecision,
    ConnectionEvent,
    DeviceRef,
    Explanation,
    MessageRecord,
)
from airlab.mqtt import codec as c

if TYPE_CHECKING:
    from airlab.cloud.mqtt_routing import _Session

__all__ = [
    "CLOSE_EVENTS",
    "KICK_PAYLOAD",
    "MAX_PAYLOAD",
    "TRANSITIONS",
    "UPLINK_LIMITS",
    "Action",
    "BrokerStateError",
    "Close",
    "CloseReason",
    "ConnInput",
    "ConnState",
    "LogConnection",
    "LogMessage",
    "Send",
    "StartTimer",
    "Timer",
]

MAX_PAYLOAD = 256 * 1024  # larger messages are discarded (platform limit)
#: Uplink messages per second per device (QoS0, QoS1); the excess is dropped silently.
UPLINK_LIMITS = (30, 10)
MAX_PACKET = 1024 * 1024 + 1024  # a bigger packet closes the connection
MAX_CONNECT = 64 * 1024
MAX_FILTERS_PER_SUBSCRIBE = 8
MAX_SUBSCRIPTIONS = 100
MAX_OFFLINE_QUEUE = 1000  # QoS1 messages kept for an offline persistent session
KICK_TOPIC = "/ext/notify"
KICK_PAYLOAD = b'{"title":"kick","content":"Kicked by the same device"}'
_PINGRESP = c.encode(c.PINGRESP)


# --------------------------------------------------------------------------- states


class ConnState(Enum):
    """Where one connection is."""

    AWAIT_CONNECT = "await_connect"  # open, its CONNECT not complete yet
    REFUSING = "refusing"  # refused; answered once the refusal is logged; input ignored
    CONNECTED = "connected"  # CONNACK 0 sent: packets flow
    CLOSED = "closed"  # closed (by either side); forgotten when its transport is gone


class ConnInput(Enum):
    """What moves a connection."""

    ACCEPT = "accept"
    REFUSE = "refuse"
    CLOSE = "close"


#: state -> {input: next state}; anything else is a bug (:class:`BrokerStateError`)
TRANSITIONS: dict[ConnState, dict[ConnInput, ConnState]] = {
    ConnState.AWAIT_CONNECT: {
        ConnInput.ACCEPT: ConnState.CONNECTED,
        ConnInput.REFUSE: ConnState.REFUSING,
        ConnInput.CLOSE: ConnState.CLOSED,
    },
    ConnState.REFUSING: {ConnInput.CLOSE: ConnState.CLOSED},
    ConnState.CONNECTED: {ConnInput.CLOSE: ConnState.CLOSED},
    ConnState.CLOSED: {},
}


# module-level aliases: an Enum member lookup on the class is slow on the hot path
_AWAIT_CONNECT, _REFUSING = ConnState.AWAIT_CONNECT, ConnState.REFUSING
_CONNECTED, _CLOSED = ConnState.CONNECTED, ConnState.CLOSED


class BrokerStateError(RuntimeError):
    """An input that the connection's state does not allow (a bug of the broker)."""


class Timer(Enum):
    """The timers the core asks the adapter for."""

    CONNECT = "connect"  # the CONNECT window
    KEEPALIVE = "keepalive"  # 1.5 x keepalive without a packet
    CLOSE_AFTER = "close_after"  # dynamic registration: close some seconds after CONNACK


class CloseReason(Enum):
    """Why an accepted connection ended -> (ConnectionEvent.event, accepted, log wording)."""

    CLIENT = ("disconnect", True, "Device disconnect")
    EOF = ("disconnect", True, "Connection reset by peer")
    KICKED = ("kicked", False, "Kicked by the same device")
    KEEPALIVE = ("keepalive", False, "Keepalive timeout")
    PROTOCOL = ("disconnect", False, "Protocol error")
    CLOSE_AFTER = ("disconnect", False, "Closed by the server after dynamic registration")
    CONSOLE = ("disconnect", False, "Closed from the console")
    SHUTDOWN = ("disconnect", False, "Emulator stopped")
    ERROR = ("disconnect", False, "Connection occurs exception")


#: the platform's wording per close reason (kept as a table for readers and tests)
CLOSE_EVENTS: dict[CloseReason, tuple[str, bool, str]] = {r: r.value for r in CloseReason}


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` to connection ``conn`` (dropped if it is closed meanwhile)."""

    conn: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection ``conn``: flush then close (``abort``: reset at once)."""

    conn: int
    abort: bool = False


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Call :meth:`BrokerCore.timer` for ``conn`` and ``timer`` in ``delay`` seconds."""

    conn: int
    timer: Timer
    delay: float


@dataclass(frozen=True, slots=True)
class LogConnection:
    """``rules.log_connection(event)``; with ``then``: carry it out once committed."""

    event: ConnectionEvent
    then: tuple[Action, ...] | None = None


@dataclass(frozen=True, slots=True)
class LogMessage:
    """``rules.log_message(record)``; with ``then``: carry it out once committed."""

    record: MessageRecord
    then: tuple[Action, ...] | None = None


Action = Send | Close | StartTimer | LogConnection | LogMessage


class _Conn:
    """One connection as the core sees it."""

    __slots__ = (
        "client_id",
        "close_after",
        "decision",
        "device",
        "got_bytes",
        "id",
        "keepalive_limit",
        "key",
        "last_rx",
        "level",
        "rate_counts",
        "rate_second",
        "reader",
        "remote",
        "server_name",
        "session",
        "state",
        "tls",
    )

    def __init__(self, cid: int, remote: str, tls: bool, server_name: str | None) -> None:
        self.id = cid
        self.remote = remote
        self.tls = tls
        self.server_name = server_name
        self.state = _AWAIT_CONNECT
        self.reader = c.PacketReader(MAX_CONNECT)
        self.got_bytes = False
        self.key = ""
        self.device: DeviceRef | None = None
        self.client_id: str | None = None
        self.decision: ConnectDecision | None = None
        self.session: _Session | None = None
        self.level = 4
        self.last_rx = 0.0
        self.keepalive_limit: float | None = None
        self.close_after: float | None = None
        self.rate_second = -1
        self.rate_counts = [0, 0]

    def move(self, event: ConnInput) -> None:
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            why = f"connection {self.id}: {event.name} in {self.state.name}"
            raise BrokerStateError(why) from None


def _why(explanation: Explanation | None, default: str) -> str:
    if explanation is None:
        return default
    return f"{explanation.rule}: {explanation.message}"


class _Emitter:
    """Collects the actions of one call of the core (``_out``) and builds its log
    actions, stamped with the ``wall`` clock."""

    _out: list[Action]
    wall: Callable[[], float]

    def _log_conn(
        self,
        event: str,
        accepted: bool,
        then: tuple[Action, ...] | None = None,
        *,
        device: DeviceRef | None = None,
        client_id: str | None = None,
        remote: str | None = None,
        code: int | None = None,
        reason: str | None = None,
        explanation: Explanation | None = None,
    ) -> None:
        record = ConnectionEvent(
            self.wall(),
            "mqtt",
            event,
            accepted,
            device=device,
            client_id=client_id,
            remote=remote,
            code=code,
            reason=reason,
            explanation=explanation,
        )
        self._out.append(LogConnection(record, then))

    def _log_msg(
        self,
        direction: str,
        topic: str,
        qos: int,
        payload: bytes,
        accepted: bool,
        device: DeviceRef | None,
        client_id: str | None,
        reason: str | None = None,
        then: tuple[Action, ...] | None = None,
    ) -> None:
        record = MessageRecord(
            self.wall(), direction, topic, qos, payload, accepted, device, client_id, reason
        )
        self._out.append(LogMessage(record, then))
