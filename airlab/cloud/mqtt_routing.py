"""Sessions and routing of the MQTT broker core: topic filters and wildcards, the
per-device sessions (subscriptions, QoS 1 in flight, the offline queue of a clean
session 0), SUBSCRIBE/UNSUBSCRIBE, and delivering a message to every matching
subscription.

:class:`RoutingMixin` is the part of :class:`~airlab.cloud.mqtt_core.BrokerCore` that
owns these tables. A refused filter's SUBACK waits for its log record, as every
refusal does (see :mod:`airlab.cloud.mqtt_core`).

Example:
    >>> s = _Session("pk/dn", clean=False)
    >>> s.packet_id(), s.packet_id()
    (1, 2)
"""

from __future__ import annotations

from collections import deque

from airlab.cloud.model import CloudRules, Explanation
from airlab.cloud.mqtt_states import (
    _CONNECTED,
    MAX_FILTERS_PER_SUBSCRIBE,
    MAX_OFFLINE_QUEUE,
    MAX_SUBSCRIPTIONS,
    LogConnection,
    Send,
    _Conn,
    _Emitter,
    _why,
)
from airlab.mqtt import codec as c

__all__ = ["RoutingMixin", "topic_matches", "valid_filter"]


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


class RoutingMixin(_Emitter):
    """The subscription tables (exact filters and wildcard filters, each
    ``filter -> {device key: session}``), the sessions by device key, and routing."""

    _sessions: dict[str, _Session]
    _exact: dict[str, dict[str, _Session]]
    _wild: dict[str, dict[str, _Session]]
    last_queued: int
    rules: CloudRules

    # ---- SUBSCRIBE, UNSUBSCRIBE and direct pushes ---------------------------------------

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

    def _push(self, conn: _Conn, topic: str, payload: bytes, qos: int) -> None:
        """Send directly to one client, no subscription needed."""
        if qos >= 1:
            assert conn.session is not None
            self._deliver1(conn, conn.session, c.Publish(topic, payload, 1, None))
        else:
            self._out.append(Send(conn.id, c.encode(c.Publish(topic, payload))))
        self._log_msg("down", topic, min(qos, 1), payload, True, conn.device, conn.client_id)

    # ---- the tables ------------------------------------------------------------------

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


def _dup(message: c.Publish, pid: int) -> c.Publish:
    return c.Publish(message.topic, message.payload, 1, pid, False, True)
