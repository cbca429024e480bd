"""The emulator's MQTT broker as a sans-IO state machine: bytes in, actions out.

:class:`BrokerCore` knows no socket, thread or loop.  An adapter (:mod:`airlab.cloud.mqtt_server`)
tells it that a connection opened (:meth:`~BrokerCore.open`), sent bytes
(:meth:`~BrokerCore.receive`), lost its transport (:meth:`~BrokerCore.connection_lost`) or
that a timer it asked for fired (:meth:`~BrokerCore.timer`); every call returns the
:data:`Action` values to carry out, in order: :class:`Send` bytes, :class:`Close` a
connection, :class:`StartTimer`, :class:`LogConnection` / :class:`LogMessage` (hand the
record to ``rules.log_connection`` / ``rules.log_message`` and carry out ``then`` only once
it is committed — a refusal and a PUBACK never reach the device before their log record).
Time comes from the ``clock`` (monotonic seconds) and ``wall`` (epoch seconds) passed in.

The platform's questions go to the :class:`~airlab.cloud.model.CloudRules` object:
``decide_connect`` (its host rule reads ``ConnectRequest.server_name``, the SNI),
``may_subscribe``, ``may_publish``, ``replies_to``, ``connected``.

Each connection's state is a :class:`ConnState`; its legal moves are the table
:data:`TRANSITIONS` (h11 style: an input not in the table is a bug, raised as
:class:`BrokerStateError`)::

    AWAIT_CONNECT --accept--> CONNECTED --close--> CLOSED
          |                                          ^
          +--refuse--> REFUSING --close--------------+
    (AWAIT_CONNECT --close--> CLOSED: the peer left before its CONNECT was complete)

Sessions are keyed by the *device* (``pk/dn``), never by the client id, and no session is
touched before the rules accepted a CONNECT.

Example (a rules object that lets everybody in and keeps its logs in lists):

    >>> from airlab.cloud.model import ConnectDecision, DeviceRef, Permission
    >>> from airlab.mqtt import codec
    >>> class Open:
    ...     def decide_connect(self, request):
    ...         return ConnectDecision(0, device=DeviceRef("pk", request.client_id))
    ...     def may_subscribe(self, device, topic_filter): return Permission(True)
    ...     def may_publish(self, device, topic, qos): return Permission(True)
    ...     def replies_to(self, device, topic, payload): return []
    ...     def connected(self, device, kind): pass
    >>> core = BrokerCore(Open(), clock=lambda: 100.0, wall=lambda: 0.0)
    >>> a, _ = core.open("10.0.0.1:5000")
    >>> [type(x).__name__ for x in core.receive(a, codec.encode(codec.Connect("dev-a")))]
    ['Send', 'LogConnection']
    >>> b, _ = core.open("10.0.0.2:5000")
    >>> _ = core.receive(b, codec.encode(codec.Connect("dev-b")))
    >>> _ = core.receive(b, codec.encode(codec.Subscribe(1, (("news/#", 1),))))
    >>> acts = core.receive(a, codec.encode(codec.Publish("news/today", b"hi", 1, 9)))
    >>> [(type(x).__name__, getattr(x, "conn", None)) for x in acts]
    [('Send', 2), ('LogMessage', None)]
    >>> acts[1].then  # the PUBACK to dev-a, once the message is in the log
    (Send(conn=1, data=b'@\\x02\\x00\\t'),)
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from airlab.cloud.model import (
    CONNACK_MEANINGS,
    CloudRules,
    ConnectDecision,
    ConnectionEvent,
    ConnectRequest,
    DeviceRef,
    Explanation,
    MessageRecord,
)
from airlab.mqtt import codec as c

__all__ = [
    "CLOSE_EVENTS",
    "KICK_PAYLOAD",
    "MAX_PAYLOAD",
    "TRANSITIONS",
    "UPLINK_LIMITS",
    "Action",
    "BrokerCore",
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
    "topic_matches",
]

log = logging.getLogger("airlab.cloud.broker")

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


# --------------------------------------------------------------------------- topics


def valid_filter(f: str) -> bool:
    """Whether ``f`` is a well-formed MQTT topic filter.

    >>> valid_filter("a/+/b"), valid_filter("a/#"), valid_filter("a/#/b"), valid_filter("a+")
    (True, True, False, False)
    """
    if not f or "\x00" in f:
        return False
    levels = f.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def topic_matches(topic: str, topic_filter: str) -> bool:
    """Whether ``topic`` matches the (valid) ``topic_filter``.

    >>> topic_matches("a/b/c", "a/+/c"), topic_matches("a", "a/#"), topic_matches("a/b", "+")
    (True, True, False)
    >>> topic_matches("$SYS/x", "#")  # wildcards never match a leading $
    False
    """
    if topic_filter == topic:
        return True
    f, t = topic_filter.split("/"), topic.split("/")
    if topic.startswith("$") and f[0] in ("+", "#"):
        return False
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


# --------------------------------------------------------------------------- records


class _Session:
    """What the platform keeps per device: subscriptions, and for a persistent session
    (clean session 0) its QoS 1 messages in flight and those queued while offline."""

    __slots__ = ("clean", "conn", "filters", "inflight", "key", "next_id", "queue")

    def __init__(self, key: str, clean: bool) -> None:
        self.key = key
        self.clean = clean
        self.filters: dict[str, int] = {}  # filter -> granted QoS
        self.inflight: dict[int, c.Publish] = {}  # packet id -> QoS 1 PUBLISH not acked
        self.queue: deque[c.Publish] = deque()  # offline (persistent session only)
        self.next_id = 1
        self.conn: _Conn | None = None

    def packet_id(self) -> int | None:
        """A free packet id for an outgoing QoS 1 PUBLISH (None: 65535 in flight)."""
        for _ in range(65535):
            pid = self.next_id
            self.next_id = pid % 65535 + 1
            if pid not in self.inflight:
                return pid
        return None


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


def _puback(packet_id: int) -> bytes:
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


# --------------------------------------------------------------------------- the core


class BrokerCore:
    """The platform's MQTT broker, sans I/O (see the module docstring).

    ``connect_timeout``: seconds a new connection has for its CONNECT.  ``uplink_limits``:
    per-device uplink messages per second (QoS0, QoS1; ``None``: no throttling); the
    excess is dropped, still PUBACKed, and logged ``Rate limit:<max>,current qps:<n>``.
    """

    def __init__(
        self,
        rules: CloudRules,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        connect_timeout: float = 5.0,
        uplink_limits: tuple[int, int] | None = UPLINK_LIMITS,
    ) -> None:
        self.rules = rules
        self.clock = clock
        self.wall = wall
        self.connect_timeout = connect_timeout
        self.uplink_limits = uplink_limits
        self._ids = itertools.count(1)
        self._conns: dict[int, _Conn] = {}
        self._online: dict[str, _Conn] = {}  # device key -> its live connection
        self._sessions: dict[str, _Session] = {}
        self._exact: dict[str, dict[str, _Session]] = {}  # filter without wildcards -> subs
        self._wild: dict[str, dict[str, _Session]] = {}  # filter with + or # -> subs
        self._out: list[Action] = []
        self.last_queued = 0  # sessions the latest routed message was queued for (offline)

    # ---- what the adapter tells ----------------------------------------------------

    def open(
        self, remote: str, *, tls: bool = False, server_name: str | None = None
    ) -> tuple[int, list[Action]]:
        """A transport opened (``remote`` = "ip:port"); -> (connection id, actions)."""
        cid = next(self._ids)
        self._conns[cid] = _Conn(cid, remote, tls, server_name)
        return cid, [StartTimer(cid, Timer.CONNECT, self.connect_timeout)]

    def secured(self, cid: int, server_name: str | None) -> None:
        """The connection turned out to be TLS (a sniffing port): note its SNI."""
        conn = self._conns.get(cid)
        if conn is not None:
            conn.tls, conn.server_name = True, server_name

    def receive(self, cid: int, data: bytes) -> list[Action]:
        """Bytes from connection ``cid``."""
        conn = self._conns.get(cid)
        if conn is None or not data:
            return []
        out = self._out = []
        state = conn.state
        try:
            if state is _CONNECTED:
                self._packets(conn, data)
            elif state is _AWAIT_CONNECT:
                self._await_connect(conn, data)
        except Exception as exc:
            log.exception("MQTT connection from %s failed", conn.remote)
            if conn.state is _CONNECTED:
                self._close(conn, CloseReason.ERROR, repr(exc))
            elif conn.state is _AWAIT_CONNECT:
                conn.move(ConnInput.CLOSE)
                out.append(Close(cid, abort=True))
        return out

    def timer(self, cid: int, timer: Timer) -> list[Action]:
        """A timer asked for by :class:`StartTimer` fired."""
        conn = self._conns.get(cid)
        if conn is None:
            return []
        out = self._out = []
        if timer is Timer.CONNECT:
            if conn.state is _AWAIT_CONNECT:
                self._refuse(
                    conn,
                    ConnectionEvent(
                        self.wall(),
                        "mqtt",
                        "timeout",
                        False,
                        remote=conn.remote,
                        reason=f"no CONNECT within {self.connect_timeout:g} s: closed",
                    ),
                    (Close(cid, abort=True),),
                )
        elif conn.state is _CONNECTED:
            if timer is Timer.KEEPALIVE:
                limit = conn.keepalive_limit or 0.0
                idle = self.clock() - conn.last_rx
                if idle >= limit:
                    detail = f"no packet for {idle:.1f} s (limit {limit:g} s)"
                    self._close(conn, CloseReason.KEEPALIVE, detail)
                else:
                    out.append(StartTimer(cid, Timer.KEEPALIVE, limit - idle))
            elif timer is Timer.CLOSE_AFTER:
                detail = f"closed {conn.close_after:g} s after CONNACK"
                self._close(conn, CloseReason.CLOSE_AFTER, detail)
        return out

    def connection_lost(self, cid: int) -> list[Action]:
        """The transport of ``cid`` is gone (closed by either side); the core forgets it."""
        conn = self._conns.pop(cid, None)
        if conn is None:
            return []
        out = self._out = []
        if conn.state is _CONNECTED:
            self._close(conn, CloseReason.EOF, None, send_close=False)
        elif conn.state is _AWAIT_CONNECT:
            conn.move(ConnInput.CLOSE)
            if conn.got_bytes:  # a bare TCP probe is not a connection attempt
                self._log_conn("refused", False, remote=conn.remote, reason="closed inside CONNECT")
        elif conn.state is _REFUSING:
            conn.move(ConnInput.CLOSE)
        return out

    # ---- console operations ----------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int) -> tuple[int, list[Action]]:
        """Publish from the console ("down"); -> (number of recipients, actions).
        :attr:`last_queued` then says for how many offline clean-session-0 sessions the
        (QoS 1) message was queued."""
        out = self._out = []
        recipients = self._route(topic, payload, min(qos, 1))
        devices = {r.device for r in recipients}
        self._log_msg(
            "down",
            topic,
            min(qos, 1),
            payload,
            True,
            devices.pop() if len(devices) == 1 else None,
            recipients[0].client_id if len(recipients) == 1 else None,
            None if recipients else "no subscriber online",
        )
        return len(recipients), out

    def disconnect(self, device: DeviceRef) -> tuple[bool, list[Action]]:
        """Close the connection of ``device`` from the server side (False: offline)."""
        out = self._out = []
        conn = self._online.get(str(device))
        if conn is None:
            return False, out
        self._close(conn, CloseReason.CONSOLE, None)
        return True, out

    def online(self) -> list[tuple[DeviceRef, str]]:
        """The connected devices and their client ids."""
        return [(c.device, c.client_id or "") for c in self._online.values() if c.device]

    def shutdown(self) -> list[Action]:
        """Close every connection (accepted ones are logged ``Emulator stopped``)."""
        out = self._out = []
        for conn in list(self._conns.values()):
            if conn.state is _CONNECTED:
                self._close(conn, CloseReason.SHUTDOWN, None)
            elif conn.state is not _CLOSED:
                conn.move(ConnInput.CLOSE)
                out.append(Close(conn.id, abort=True))
        return out

    def state_of(self, cid: int) -> ConnState | None:
        """The state of connection ``cid`` (None: forgotten)."""
        conn = self._conns.get(cid)
        return None if conn is None else conn.state

    def subscriptions(self, device: DeviceRef) -> dict[str, int]:
        """The device's session's filters and granted QoS (empty: no session)."""
        session = self._sessions.get(str(device))
        return dict(session.filters) if session is not None else {}

    # ---- logging ---------------------------------------------------------------------

    def _log_conn(
        self, event: str, accepted: bool, then: tuple[Action, ...] | None = None, **kw: object
    ) -> None:
        record = ConnectionEvent(self.wall(), "mqtt", event, accepted, **kw)  # type: ignore[arg-type]
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

    def _refuse(self, conn: _Conn, event: ConnectionEvent, then: tuple[Action, ...]) -> None:
        """Refuse a connection: log ``event``; answer (``then``) once it is committed."""
        conn.move(ConnInput.REFUSE)
        self._out.append(LogConnection(event, then))

    # ---- before CONNACK ----------------------------------------------------------------

    def _await_connect(self, conn: _Conn, data: bytes) -> None:
        first_data = not conn.got_bytes
        conn.got_bytes = True
        if first_data and data[0] != 0x10:
            if data[0] == 0x16:
                why = "a TLS handshake arrived on the plain-TCP MQTT port"
            else:
                why = f"first packet is not CONNECT (byte 0x{data[0]:02x})"
            self._refuse_malformed(conn, why)
            return
        try:
            packets = conn.reader.feed(data)
        except c.UnsupportedProtocol as exc:
            explanation = Explanation(
                "protocol_version", f"unsupported {exc}; the emulator speaks MQTT 3.1 and 3.1.1"
            )
            event = ConnectionEvent(
                self.wall(),
                "mqtt",
                "refused",
                False,
                remote=conn.remote,
                code=1,
                reason=CONNACK_MEANINGS[1],
                explanation=explanation,
            )
            self._refuse(conn, event, (Send(conn.id, c.encode(c.Connack(1))), Close(conn.id)))
            return
        except c.MalformedPacket as exc:
            self._refuse_malformed(conn, str(exc))
            return
        if not packets:
            return
        connect = packets[0]
        assert isinstance(connect, c.Connect)  # the first byte was 0x10
        self._on_connect(conn, connect)
        if conn.state is _CONNECTED:
            conn.reader.limit = MAX_PACKET
            if len(packets) > 1 or conn.reader.error is not None:
                self._handle(conn, packets[1:])

    def _refuse_malformed(self, conn: _Conn, why: str) -> None:
        event = ConnectionEvent(
            self.wall(), "mqtt", "refused", False, remote=conn.remote, reason=why
        )
        self._refuse(conn, event, (Close(conn.id, abort=True),))

    def _decide(self, request: ConnectRequest) -> ConnectDecision:
        try:
            decision = self.rules.decide_connect(request)
        except Exception as exc:
            log.exception("rules.decide_connect failed")
            return ConnectDecision.refuse(
                3, rule="internal_error", message=f"the emulator's rules failed: {exc!r}"
            )
        if decision.return_code not in CONNACK_MEANINGS:
            return ConnectDecision.refuse(
                3, rule="internal_error", message=f"invalid CONNACK code {decision.return_code}"
            )
        if decision.accepted and decision.device is None:
            return ConnectDecision.refuse(
                3, rule="internal_error", message="rules accepted a CONNECT without a device"
            )
        return decision

    def _on_connect(self, conn: _Conn, p: c.Connect) -> None:
        request = ConnectRequest(
            p.client_id,
            p.username,
            p.password,
            p.keepalive,
            p.protocol_level,
            p.clean_session,
            conn.tls,
            conn.remote,
            conn.server_name if conn.tls else None,
        )
        decision = self._decide(request)
        if not decision.accepted:
            event = ConnectionEvent(
                self.wall(),
                "mqtt",
                "refused",
                False,
                device=decision.device,
                client_id=p.client_id,
                remote=conn.remote,
                code=decision.return_code,
                reason=CONNACK_MEANINGS.get(decision.return_code),
                explanation=decision.explanation,
            )
            connack = c.encode(c.Connack(decision.return_code))
            self._refuse(conn, event, (Send(conn.id, connack), Close(conn.id)))
            return
        device = decision.device
        assert device is not None
        key = str(device)
        old = self._online.get(key)
        if old is not None:  # one session per device: the newer kicks the older
            self._out.append(Send(old.id, c.encode(c.Publish(KICK_TOPIC, KICK_PAYLOAD))))
            self._log_msg("down", KICK_TOPIC, 0, KICK_PAYLOAD, True, old.device, old.client_id)
            detail = f"a new connection from {conn.remote} (client id {p.client_id!r})"
            self._close(old, CloseReason.KICKED, detail)
        session = self._sessions.get(key)
        present = False
        if p.clean_session or session is None:
            if session is not None:
                self._drop_session(session)
            session = _Session(key, p.clean_session)
            self._sessions[key] = session
        else:
            present = True
        session.clean = p.clean_session
        session.conn = conn
        conn.move(ConnInput.ACCEPT)
        conn.key, conn.device, conn.client_id = key, device, p.client_id
        conn.decision, conn.session, conn.level = decision, session, p.protocol_level
        conn.last_rx = self.clock()
        self._online[key] = conn
        try:  # activated before the CONNACK: a device that reads "CONNACK OK" is activated
            if decision.kind is not None:
                self.rules.connected(device, decision.kind)
        except Exception:
            log.exception("rules.connected failed")
        connack = c.Connack(0, present and p.protocol_level == 4)
        self._out.append(Send(conn.id, c.encode(connack)))
        self._log_conn(
            "connect",
            True,
            device=device,
            client_id=p.client_id,
            remote=conn.remote,
            code=0,
            reason=CONNACK_MEANINGS[0],
            explanation=decision.explanation,
        )
        limit = decision.keepalive_limit
        if limit is not None and limit > 0:
            conn.keepalive_limit = limit
            self._out.append(StartTimer(conn.id, Timer.KEEPALIVE, limit))
        for push in decision.pushes:
            self._push(conn, push.topic, push.payload, push.qos)
        if decision.close_after is not None:
            conn.close_after = decision.close_after
            self._out.append(StartTimer(conn.id, Timer.CLOSE_AFTER, decision.close_after))
        for pid, message in session.inflight.items():  # unacknowledged: again, as DUP
            self._out.append(Send(conn.id, c.encode(_dup(message, pid))))
        while session.queue:  # queued while offline (clean session 0)
            self._deliver1(conn, session, session.queue.popleft())

    # ---- after CONNACK -----------------------------------------------------------------

    def _packets(self, conn: _Conn, data: bytes) -> None:
        try:
            packets = conn.reader.feed(data)
        except c.MalformedPacket as exc:
            self._close(conn, CloseReason.PROTOCOL, str(exc))
            return
        self._handle(conn, packets)

    def _handle(self, conn: _Conn, packets: Iterable[c.Packet]) -> None:
        for p in packets:
            kind = type(p)
            if kind is c.Publish:
                if self._on_publish(conn, p):  # type: ignore[arg-type]
                    return
            elif kind is c.Puback:
                conn.last_rx = self.clock()
                assert conn.session is not None
                conn.session.inflight.pop(p.packet_id, None)  # type: ignore[union-attr]
            elif kind is c.Pingreq:
                conn.last_rx = self.clock()
                self._out.append(Send(conn.id, _PINGRESP))
            elif kind is c.Subscribe:
                conn.last_rx = self.clock()
                self._on_subscribe(conn, p)  # type: ignore[arg-type]
            elif kind is c.Unsubscribe:
                self._on_unsubscribe(conn, p)  # type: ignore[arg-type]
            elif kind is c.Disconnect:
                self._close(conn, CloseReason.CLIENT, None)
                return
            elif kind is c.Connect:
                self._close(conn, CloseReason.PROTOCOL, "second CONNECT on one connection")
                return
            else:
                name = type(p).__name__.upper()
                self._close(conn, CloseReason.PROTOCOL, f"unexpected {name} from a client")
                return
        if conn.reader.error is not None and conn.state is _CONNECTED:
            self._close(conn, CloseReason.PROTOCOL, str(conn.reader.error))

    def _over_rate(self, conn: _Conn, qos: int) -> int | None:
        limits = self.uplink_limits
        if limits is None:
            return None
        second = int(self.clock())
        if second != conn.rate_second:
            conn.rate_second, conn.rate_counts = second, [0, 0]
        counts = conn.rate_counts
        counts[qos] += 1
        return counts[qos] if counts[qos] > limits[qos] else None

    def _on_publish(self, conn: _Conn, p: c.Publish) -> bool:
        """One uplink; True when the connection ended."""
        conn.last_rx = self.clock()
        qos, topic, payload = p.qos, p.topic, p.payload
        device, client_id = conn.device, conn.client_id
        if qos == 2:
            reason = "QoS 2 is not supported by the platform: connection closed"
            self._log_msg("up", topic, 2, payload, False, device, client_id, reason)
            detail = "QoS 2 PUBLISH is not supported by the platform"
            self._close(conn, CloseReason.PROTOCOL, detail)
            return True
        # PUBACK even when the message is refused, and only once its log record is
        # committed: no acknowledged uplink can be missing from the log after a crash
        ack = (Send(conn.id, _puback(p.packet_id)),) if qos == 1 else None  # type: ignore[arg-type]
        if len(payload) > MAX_PAYLOAD:
            reason = f"message of {len(payload)} bytes exceeds 256 KB: discarded"
            self._log_msg("up", topic, qos, payload, False, device, client_id, reason, ack)
            return False
        rate = self._over_rate(conn, qos)
        if rate is not None:
            # the platform drops throttled uplinks silently (log text as in its log service)
            limit = self.uplink_limits[qos]  # type: ignore[index]
            reason = f"Rate limit:{limit},current qps:{rate}"
            self._log_msg("up", topic, qos, payload, False, device, client_id, reason, ack)
            return False
        assert device is not None
        perm = self.rules.may_publish(device, topic, qos)
        if not perm.allowed:
            reason = _why(perm.explanation, "No authorization")
            self._log_msg("up", topic, qos, payload, False, device, client_id, reason, ack)
            return False
        self._route(topic, payload, qos)
        self._log_msg("up", topic, qos, payload, True, device, client_id, None, ack)
        for push in self.rules.replies_to(device, topic, payload):
            q = min(push.qos, 1)
            recipients = self._route(push.topic, push.payload, q)
            reason = None if recipients else "no subscriber online"
            self._log_msg("down", push.topic, q, push.payload, True, device, client_id, reason)
        return False

    def _on_subscribe(self, conn: _Conn, p: c.Subscribe) -> None:
        session, device = conn.session, conn.device
        assert session is not None and device is not None
        codes = bytearray()
        last_refusal: int | None = None
        for index, (filt, qos) in enumerate(p.topics):
            why: str | None = None
            explanation: Explanation | None = None
            if index >= MAX_FILTERS_PER_SUBSCRIBE:
                why = f"more than {MAX_FILTERS_PER_SUBSCRIBE} topic filters in one SUBSCRIBE"
            elif not valid_filter(filt):
                why = "invalid topic filter"
            elif filt not in session.filters and len(session.filters) >= MAX_SUBSCRIPTIONS:
                why = f"the device already has {MAX_SUBSCRIPTIONS} subscriptions"
            else:
                perm = self.rules.may_subscribe(device, filt)
                if not perm.allowed:
                    explanation = perm.explanation
                    why = _why(explanation, "No authorization")
            if why is not None:
                codes.append(0x80)
                last_refusal = len(self._out)
                self._log_conn(
                    "subscribe",
                    False,
                    None,
                    device=device,
                    client_id=conn.client_id,
                    remote=conn.remote,
                    code=0x80,
                    reason=f"SUBSCRIBE {filt!r} refused: {why}",
                    explanation=explanation,
                )
                continue
            granted = min(qos, 1)
            self._add_subscription(session, filt, granted)
            codes.append(granted)
            self._log_conn(  # the platform's log service records a granted Sub too
                "subscribe",
                True,
                device=device,
                client_id=conn.client_id,
                remote=conn.remote,
                code=granted,
                reason=f"SUBSCRIBE {filt!r} granted QoS {granted}",
            )
        suback = Send(conn.id, c.encode(c.Suback(p.packet_id, tuple(codes))))
        if last_refusal is None:
            self._out.append(suback)
        else:  # answered once the (last) refusal is in the log
            refusal = self._out[last_refusal]
            assert isinstance(refusal, LogConnection)
            self._out[last_refusal] = LogConnection(refusal.event, (suback,))

    def _on_unsubscribe(self, conn: _Conn, p: c.Unsubscribe) -> None:
        session = conn.session
        assert session is not None
        for filt in p.filters:
            self._remove_subscription(session, filt)
        self._out.append(Send(conn.id, c.encode(c.Unsuback(p.packet_id))))

    # ---- sessions and routing ----------------------------------------------------------

    def _add_subscription(self, session: _Session, filt: str, granted: int) -> None:
        table = self._wild if ("+" in filt or "#" in filt) else self._exact
        table.setdefault(filt, {})[session.key] = session
        session.filters[filt] = granted

    def _remove_subscription(self, session: _Session, filt: str) -> None:
        if session.filters.pop(filt, None) is None:
            return
        table = self._wild if ("+" in filt or "#" in filt) else self._exact
        subs = table.get(filt)
        if subs is not None and subs.get(session.key) is session:
            del subs[session.key]
            if not subs:
                del table[filt]

    def _drop_session(self, session: _Session) -> None:
        for filt in list(session.filters):
            self._remove_subscription(session, filt)
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
        session.inflight.clear()
        session.queue.clear()

    def _route(self, topic: str, payload: bytes, qos: int) -> list[_Conn]:
        """Deliver to every matching subscription; -> the connections reached.

        Delivery QoS is the publisher's QoS (at most 1), not the subscription's: the
        platform does not honour subscription QoS (spec §5.2, [D-PROTO]).
        """
        targets: dict[str, _Session] = {}
        exact = self._exact.get(topic)
        if exact:
            targets.update(exact)
        for filt, subs in self._wild.items():
            if topic_matches(topic, filt):
                targets.update(subs)
        self.last_queued = 0
        if not targets:
            return []
        q = min(qos, 1)
        recipients: list[_Conn] = []
        qos0: bytes | None = None
        for session in targets.values():
            conn = session.conn
            if conn is None or conn.state is not _CONNECTED:
                if not session.clean and q and len(session.queue) < MAX_OFFLINE_QUEUE:
                    session.queue.append(c.Publish(topic, payload, 1, None))
                    self.last_queued += 1
                continue
            if q == 0:
                if qos0 is None:
                    qos0 = c.encode(c.Publish(topic, payload))
                self._out.append(Send(conn.id, qos0))
            else:
                self._deliver1(conn, session, c.Publish(topic, payload, 1, None))
            recipients.append(conn)
        return recipients

    def _deliver1(self, conn: _Conn, session: _Session, message: c.Publish) -> None:
        pid = session.packet_id()
        if pid is None:  # 65535 in flight: keep it for later
            if len(session.queue) < MAX_OFFLINE_QUEUE:
                session.queue.append(message)
            return
        message = c.Publish(message.topic, message.payload, 1, pid)
        session.inflight[pid] = message
        self._out.append(Send(conn.id, c.encode(message)))

    def _push(self, conn: _Conn, topic: str, payload: bytes, qos: int) -> None:
        """Send directly to one client, no subscription needed."""
        if qos >= 1:
            assert conn.session is not None
            self._deliver1(conn, conn.session, c.Publish(topic, payload, 1, None))
        else:
            self._out.append(Send(conn.id, c.encode(c.Publish(topic, payload))))
        self._log_msg("down", topic, min(qos, 1), payload, True, conn.device, conn.client_id)

    # ---- the end of a connection -------------------------------------------------------

    def _close(
        self, conn: _Conn, reason: CloseReason, detail: str | None, *, send_close: bool = True
    ) -> None:
        """End an accepted connection: close it, log why, drop a clean session."""
        conn.move(ConnInput.CLOSE)
        if send_close:
            self._out.append(Close(conn.id))
        if self._online.get(conn.key) is conn:
            del self._online[conn.key]
        session = conn.session
        if session is not None and session.conn is conn:
            session.conn = None
            if session.clean:
                self._drop_session(session)
        event, accepted, wording = reason.value
        if detail:
            wording = f"{wording}: {detail}"
        self._log_conn(
            event,
            accepted,
            device=conn.device,
            client_id=conn.client_id,
            remote=conn.remote,
            reason=wording,
        )


def _dup(message: c.Publish, pid: int) -> c.Publish:
    return c.Publish(message.topic, message.payload, 1, pid, False, True)
