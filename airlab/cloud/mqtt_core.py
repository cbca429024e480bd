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

This module is the connection state machine; the states, timers and actions are in
:mod:`airlab.cloud.mqtt_states`, the sessions, subscriptions and routing in
:mod:`airlab.cloud.mqtt_routing` (every name is still importable from here).

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
from collections.abc import Callable, Iterable

from airlab.cloud.model import (
    CONNACK_MEANINGS,
    CloudRules,
    ConnectDecision,
    ConnectionEvent,
    ConnectRequest,
    DeviceRef,
    Explanation,
)
from airlab.cloud.mqtt_routing import RoutingMixin, _dup, _Session
from airlab.cloud.mqtt_routing import topic_matches as topic_matches
from airlab.cloud.mqtt_routing import valid_filter as valid_filter
from airlab.cloud.mqtt_states import (
    _AWAIT_CONNECT,
    _CLOSED,
    _CONNECTED,
    _PINGRESP,
    _REFUSING,
    CLOSE_EVENTS,
    KICK_PAYLOAD,
    KICK_TOPIC,
    MAX_PACKET,
    MAX_PAYLOAD,
    TRANSITIONS,
    UPLINK_LIMITS,
    Action,
    BrokerStateError,
    Close,
    CloseReason,
    ConnInput,
    ConnState,
    LogConnection,
    LogMessage,
    Send,
    StartTimer,
    Timer,
    _Conn,
    _why,
)
from airlab.cloud.mqtt_states import MAX_CONNECT as MAX_CONNECT
from airlab.cloud.mqtt_states import MAX_FILTERS_PER_SUBSCRIBE as MAX_FILTERS_PER_SUBSCRIBE
from airlab.cloud.mqtt_states import MAX_OFFLINE_QUEUE as MAX_OFFLINE_QUEUE
from airlab.cloud.mqtt_states import MAX_SUBSCRIPTIONS as MAX_SUBSCRIPTIONS
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


def _puback(packet_id: int) -> bytes:
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


# --------------------------------------------------------------------------- the core


class BrokerCore(RoutingMixin):
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

    # ---- refusals: logged first, answered once the record is committed -------------

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
        connack = c.encode(c.Connack(0, present and p.protocol_level == 4))
        self._out.append(Send(conn.id, connack))
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
            if isinstance(p, c.Publish):
                if self._on_publish(conn, p):
                    return
            elif isinstance(p, c.Puback):
                conn.last_rx = self.clock()
                assert conn.session is not None
                conn.session.inflight.pop(p.packet_id, None)
            elif isinstance(p, c.Pingreq):
                conn.last_rx = self.clock()
                self._out.append(Send(conn.id, _PINGRESP))
            elif isinstance(p, c.Subscribe):
                conn.last_rx = self.clock()
                self._on_subscribe(conn, p)
            elif isinstance(p, c.Unsubscribe):
                self._on_unsubscribe(conn, p)
            elif isinstance(p, c.Disconnect):
                self._close(conn, CloseReason.CLIENT, None)
                return
            elif isinstance(p, c.Connect):
                self._close(conn, CloseReason.PROTOCOL, "second CONNECT on one connection")
                return
            else:
                name = type(p).__name__.upper()
                self._close(conn, CloseReason.PROTOCOL, f"unexpected {name} from a client")
                return
        if conn.reader.error is not None and conn.state is _CONNECTED:
            self._close(conn, CloseReason.PROTOCOL, str(conn.reader.error))

    def _over_rate(self, conn: _Conn, qos: int) -> tuple[int, int] | None:
        """(limit, this second's count) when ``conn`` sent more uplinks of ``qos`` this
        second than ``uplink_limits`` allows; None when it did not."""
        limits = self.uplink_limits
        if limits is None:
            return None
        second = int(self.clock())
        if second != conn.rate_second:
            conn.rate_second, conn.rate_counts = second, [0, 0]
        counts = conn.rate_counts
        counts[qos] += 1
        return (limits[qos], counts[qos]) if counts[qos] > limits[qos] else None

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
        ack = None
        if qos == 1:
            assert p.packet_id is not None  # the codec refuses a QoS 1 PUBLISH without one
            ack = (Send(conn.id, _puback(p.packet_id)),)
        if len(payload) > MAX_PAYLOAD:
            reason = f"message of {len(payload)} bytes exceeds 256 KB: discarded"
            self._log_msg("up", topic, qos, payload, False, device, client_id, reason, ack)
            return False
        over = self._over_rate(conn, qos)
        if over is not None:
            # the platform drops throttled uplinks silently (log text as in its log service)
            limit, rate = over
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
            why = None if recipients else "no subscriber online"
            self._log_msg("down", push.topic, q, push.payload, True, device, client_id, why)
        return False

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
