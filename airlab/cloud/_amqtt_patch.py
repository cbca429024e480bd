"""The amqtt 0.12.1 broker, bent to carry out the platform rules on the wire.

Internal to :mod:`airlab.cloud.broker`.  amqtt is pinned (``amqtt==0.12.1``) because this
module replaces parts of its connection handling and relies on its private state:

* ``Broker._start_listeners`` is replaced: our listeners take an :class:`ssl.SSLContext`
  object (amqtt wants certificate files) and call :meth:`EmuBroker._serve`.
* ``Broker._client_connected`` / ``_initialize_client_session`` / ``_handle_client_session``
  are never reached: :meth:`EmuBroker._serve` reads the CONNECT itself (with a deadline),
  asks the rules, and writes a CONNACK with exactly the rules' return code.  Only then is any
  session touched -- amqtt deletes the session of a clean-session client id *before* it
  authenticates, so a refused CONNECT reusing a live client's id wiped the live client's
  subscriptions.  Here sessions are keyed by the *device* (``pk/dn``), never by the client id.
* the per-connection read loop is ours (lean dispatch, keepalive watchdog, QoS 2 and
  malformed packets close the connection, SUBACK limits, ACL, message log); amqtt's
  :class:`BrokerProtocolHandler` is kept for outgoing QoS 1 flows (packet ids, in-flight
  table, PUBACK waiters), and its ``_sessions`` / ``_subscriptions`` tables, ``_matches`` and
  ``_servers`` are used as they are.
* ``Broker._session_monitor`` is disabled: clean sessions are removed on disconnect here, and
  its sweep raced with a reconnecting device.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker, RetainedApplicationMessage, Server
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.session import Session

from airlab.cloud.model import (
    CONNACK_MEANINGS,
    CloudRules,
    ConnectDecision,
    ConnectionEvent,
    ConnectKind,
    ConnectRequest,
    DeviceRef,
    Explanation,
    MessageRecord,
    Permission,
)
from airlab.cloud.tls import record_server_names, server_name_of

__all__ = ["MAX_PAYLOAD", "EmuBroker"]

log = logging.getLogger("airlab.cloud.broker")

MAX_PAYLOAD = 256 * 1024  # larger messages are discarded (platform limit)
#: Uplink messages per second per device (QoS0, QoS1); the excess is dropped silently.
UPLINK_LIMITS = (30, 10)
MAX_PACKET = 1024 * 1024 + 1024  # a bigger packet closes the connection
MAX_CONNECT = 64 * 1024
MAX_FILTERS_PER_SUBSCRIBE = 8
MAX_SUBSCRIPTIONS = 100
MAX_OFFLINE_QUEUE = 1000  # QoS1 messages kept for an offline persistent session
CLOSE_GRACE = 1.0  # seconds before a closing transport is aborted
KICK_WAIT = 3.0
LOG_WAIT = 5.0  # seconds a refusal waits for its log record before it is answered anyway
KICK_PAYLOAD = b'{"title":"kick","content":"Kicked by the same device"}'

# packet types
_CONNECT, _PUBLISH, _PUBACK, _PUBREC, _PUBREL, _PUBCOMP = 1, 3, 4, 5, 6, 7
_SUBSCRIBE, _UNSUBSCRIBE, _PINGREQ, _DISCONNECT = 8, 10, 12, 14
_PINGRESP = b"\xd0\x00"

#: why a connection ended -> (ConnectionEvent.event, accepted, reason)
_CLOSE_EVENTS: dict[str, tuple[str, bool, str]] = {
    "client": ("disconnect", True, "Device disconnect"),
    "eof": ("disconnect", True, "Connection reset by peer"),
    "kicked": ("kicked", False, "Kicked by the same device"),
    "keepalive": ("keepalive", False, "Keepalive timeout"),
    "protocol": ("disconnect", False, "Protocol error"),
    "close_after": ("disconnect", False, "Closed by the server after dynamic registration"),
    "console": ("disconnect", False, "Closed from the console"),
    "shutdown": ("disconnect", False, "Emulator stopped"),
    "error": ("disconnect", False, "Connection occurs exception"),
}


class _Malformed(Exception):
    """The peer broke the MQTT framing or grammar: close without answer."""


class _NoData(Exception):
    """The TCP connection closed before its first byte."""


class _Unsupported(Exception):
    """A CONNECT with a protocol name/level we do not speak: CONNACK 1."""


# --------------------------------------------------------------------------- wire helpers


def _u16(body: bytes, pos: int) -> int:
    if pos + 2 > len(body):
        raise _Malformed("packet too short")
    return (body[pos] << 8) | body[pos + 1]


def _binary(body: bytes, pos: int) -> tuple[bytes, int]:
    n = _u16(body, pos)
    end = pos + 2 + n
    if end > len(body):
        raise _Malformed("length field beyond the end of the packet")
    return body[pos + 2 : end], end


def _utf8(body: bytes, pos: int) -> tuple[str, int]:
    raw, pos = _binary(body, pos)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Malformed("string is not UTF-8") from exc
    if "\x00" in text:  # MQTT 3.1.1 §1.5.3: U+0000 is malformed
        raise _Malformed("string contains U+0000")
    return text, pos


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_bytes(topic: str, payload: bytes) -> bytes:
    """A QoS 0 PUBLISH packet, retain 0."""
    t = topic.encode("utf-8")
    body_len = 2 + len(t) + len(payload)
    return b"\x30" + _remaining_length(body_len) + struct.pack("!H", len(t)) + t + payload


def connack_bytes(code: int, session_present: bool = False) -> bytes:
    return bytes((0x20, 2, 1 if session_present and code == 0 else 0, code))


async def _length_tail(reader: asyncio.StreamReader, length: int) -> int:
    """The rest of an MQTT remaining length whose first byte (continuation bit set) gave
    ``length`` (its low 7 bits)."""
    shift = 7
    while True:
        b = (await reader.readexactly(1))[0]
        length |= (b & 0x7F) << shift
        if not b & 0x80:
            return length
        shift += 7
        if shift > 21:
            raise _Malformed("remaining length longer than 4 bytes")


async def _read_packet(reader: asyncio.StreamReader, limit: int) -> tuple[int, int, bytes]:
    """One MQTT packet: (type, flags, body).  EOF between packets -> IncompleteReadError."""
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if head[1] & 0x80:
        length = await _length_tail(reader, length)
    if length > limit:
        raise _Malformed(f"packet of {length} bytes exceeds {limit}")
    body = await reader.readexactly(length) if length else b""
    return head[0] >> 4, head[0] & 0x0F, body


@dataclass(frozen=True, slots=True)
class _Connect:
    proto_name: str
    level: int
    clean: bool
    keepalive: int
    client_id: str
    username: str | None
    password: bytes | None


async def _read_connect(reader: asyncio.StreamReader) -> _Connect:
    try:
        first = await reader.readexactly(1)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise _NoData from exc
    if first[0] != 0x10:
        if first[0] == 0x16:
            raise _Malformed("a TLS handshake arrived on the plain-TCP MQTT port")
        raise _Malformed(f"first packet is not CONNECT (byte 0x{first[0]:02x})")
    b = (await reader.readexactly(1))[0]
    length = b & 0x7F
    if b & 0x80:
        length = await _length_tail(reader, length)
    if length > MAX_CONNECT:
        raise _Malformed(f"CONNECT of {length} bytes")
    body = await reader.readexactly(length)
    return parse_connect(body)


def parse_connect(body: bytes) -> _Connect:
    """Parse a CONNECT body (MQTT 3.1 ``MQIsdp``/3 and 3.1.1 ``MQTT``/4)."""
    name, pos = _utf8(body, 0)
    if pos + 4 > len(body):
        raise _Malformed("CONNECT variable header truncated")
    level, flags = body[pos], body[pos + 1]
    keepalive = _u16(body, pos + 2)
    pos += 4
    if (name, level) not in (("MQTT", 4), ("MQIsdp", 3)):
        raise _Unsupported(f"protocol {name!r} level {level}")
    if flags & 0x01:
        raise _Malformed("CONNECT reserved flag set")
    will_qos = (flags >> 3) & 0x03
    if will_qos == 3:
        raise _Malformed("CONNECT with will QoS 3")
    if not flags & 0x04 and (will_qos or flags & 0x20):
        raise _Malformed("CONNECT with will QoS or will retain but no will flag")
    if flags & 0x40 and not flags & 0x80 and level == 4:
        raise _Malformed("CONNECT with a password but no user name")
    client_id, pos = _utf8(body, pos)
    if flags & 0x04:  # will: parsed, then ignored (not supported by the platform)
        _, pos = _utf8(body, pos)
        _, pos = _binary(body, pos)
    username = password = None
    if flags & 0x80:
        username, pos = _utf8(body, pos)
    if flags & 0x40:
        password, pos = _binary(body, pos)
    if pos != len(body):
        raise _Malformed(f"{len(body) - pos} bytes after the end of the CONNECT payload")
    return _Connect(name, level, bool(flags & 0x02), keepalive, client_id, username, password)


def _valid_filter(f: str) -> bool:
    if not f or "\x00" in f:
        return False
    levels = f.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _why(explanation: Explanation | None, default: str) -> str:
    if explanation is None:
        return default
    return f"{explanation.rule}: {explanation.message}"


# --------------------------------------------------------------------------- connections


@dataclass(eq=False)
class Conn:
    """One accepted MQTT connection (lives on the broker's loop)."""

    key: str
    device: DeviceRef
    client_id: str
    kind: ConnectKind | None
    remote: str
    tls: bool
    decision: ConnectDecision
    session: Session
    handler: BrokerProtocolHandler
    writer: asyncio.StreamWriter
    adapter: StreamWriterAdapter
    last_rx: float = 0.0
    close_reason: str | None = None
    close_detail: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    rate_second: int = -1  # the whole second the uplink counters below belong to
    rate_counts: list[int] = field(default_factory=lambda: [0, 0])  # QoS0, QoS1 this second

    def over_rate(self, qos: int, limits: tuple[int, int] | None, now: float) -> int | None:
        """Count one uplink; the current rate when it exceeds the platform's limit."""
        if limits is None:
            return None
        second = int(now)
        if second != self.rate_second:
            self.rate_second, self.rate_counts = second, [0, 0]
        self.rate_counts[qos] += 1
        return self.rate_counts[qos] if self.rate_counts[qos] > limits[qos] else None

    def write(self, data: bytes) -> None:
        if not self.adapter.is_closed:
            self.writer.write(data)

    def close(self, reason: str, detail: str | None = None) -> None:
        """Close from the server side; the read loop then ends and cleans up."""
        if self.close_reason is None:
            self.close_reason, self.close_detail = reason, detail
        _close_writer(self.writer, self.adapter)


def _close_writer(writer: asyncio.StreamWriter, adapter: StreamWriterAdapter | None = None) -> None:
    if adapter is not None:
        adapter.is_closed = True
    transport = writer.transport
    if not transport.is_closing():
        with contextlib.suppress(Exception):
            writer.close()
        asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.abort)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    """The first byte the peer sent, left in the socket (empty: closed)."""
    while True:
        try:
            return conn.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(conn.fileno(), _set_once, ready)
            try:
                await ready
            finally:
                loop.remove_reader(conn.fileno())


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()


# --------------------------------------------------------------------------- the broker


class EmuBroker(Broker):
    """amqtt's broker with the platform's connection handling (see the module docstring)."""

    def __init__(
        self,
        rules: CloudRules,
        listeners: dict[str, tuple[str, int, ssl.SSLContext | None]],
        connect_timeout: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0"}},
            "plugins": {},  # no $SYS stats, no packet logger, no anonymous auth
        }
        super().__init__(config, loop=loop)
        self.rules = rules
        self.emu_listeners = listeners
        self.connect_timeout = connect_timeout
        self.uplink_limits: tuple[int, int] | None = UPLINK_LIMITS
        self.conns: dict[str, Conn] = {}  # session key (pk/dn) -> live connection
        self.bound: dict[str, int] = {}
        #: TLS for a client that starts with a ClientHello on a plain listener (None: plain only)
        self.sniff_tls: ssl.SSLContext | None = None
        self._sniffers: list[tuple[asyncio.Task[Any], socket.socket]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bg: set[asyncio.Task[Any]] = set()
        self._accept_lock = asyncio.Lock()
        self._loop = loop
        # work handed over by other threads (the registry's writer): one wake-up of the
        # loop per batch of commits, not one per PUBACK
        self._handed: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._handed_lock = threading.Lock()

    # ---- amqtt overrides ------------------------------------------------------------

    async def _start_listeners(self) -> None:
        try:
            if self.sniff_tls is not None:
                record_server_names(self.sniff_tls)
            for name, (host, port, ctx) in self.emu_listeners.items():
                if ctx is not None:
                    record_server_names(ctx)  # the host rule reads the SNI
                if ctx is None and self.sniff_tls is not None:
                    self.bound[name] = await self._start_sniffing(host, port)
                    continue
                server = await asyncio.start_server(
                    self._serve,
                    host,
                    port,
                    reuse_address=True,
                    ssl=ctx,
                    ssl_handshake_timeout=max(self.connect_timeout, 1.0) if ctx else None,
                )
                self._servers[name] = Server(name, server)
                self.bound[name] = server.sockets[0].getsockname()[1]
        except BaseException:
            for bound in self._servers.values():  # do not leave the first listener open
                await bound.close_instance()
            self._servers.clear()
            self._stop_sniffing()
            raise

    # ---- one port for TLS and plain TCP (the platform's 1883) ---------------------------

    async def _start_sniffing(self, host: str, port: int) -> int:
        """Listen on ``host:port`` and let each connection's first byte decide: a TLS
        record (0x16, a ClientHello) gets TLS, anything else plain MQTT — like the
        platform's port 1883, where the tutorial's ``AT+SSLMIPSTART`` goes."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((host, port))
            lsock.listen(128)
            lsock.setblocking(False)
        except BaseException:
            lsock.close()
            raise
        task = loop.create_task(self._accept_loop(lsock))
        self._sniffers.append((task, lsock))
        return int(lsock.getsockname()[1])

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(lsock)
            except (OSError, asyncio.CancelledError):
                return
            task = loop.create_task(self._sniff(conn))
            self._bg.add(task)
            task.add_done_callback(self._bg.discard)

    async def _sniff(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        try:
            first = await asyncio.wait_for(_peek(loop, conn), self.connect_timeout)
        except TimeoutError:  # silent: logged like a plain port's missing CONNECT
            with contextlib.suppress(OSError):
                peer = conn.getpeername()
                await self._log_refusal(
                    "timeout",
                    remote=f"{peer[0]}:{peer[1]}",
                    reason=f"no CONNECT within {self.connect_timeout:g} s: closed",
                )
            first = b""
        except OSError:
            first = b""
        if not first:
            with contextlib.suppress(OSError):
                conn.close()
            return
        ctx = self.sniff_tls if first == b"\x16" else None
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader, self._serve)
        try:
            await loop.connect_accepted_socket(
                lambda: protocol,
                conn,
                ssl=ctx,
                ssl_handshake_timeout=max(self.connect_timeout, 1.0) if ctx else None,
            )
        except (OSError, ssl.SSLError):
            with contextlib.suppress(OSError):
                conn.close()

    def _stop_sniffing(self) -> None:
        for task, lsock in self._sniffers:
            task.cancel()
            with contextlib.suppress(OSError):
                lsock.close()
        self._sniffers.clear()

    async def _session_monitor(self) -> None:  # amqtt's sweep races with reconnects
        return

    async def shutdown(self) -> None:
        self._stop_sniffing()
        for server in self._servers.values():
            server.instance.close()
        for conn in list(self.conns.values()):
            conn.close("shutdown")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for task in list(self._bg):
            task.cancel()
        if self._bg:
            await asyncio.wait(list(self._bg), timeout=2)
        await super().shutdown()

    # ---- helpers ---------------------------------------------------------------------

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg_done)

    def _bg_done(self, task: asyncio.Task[Any]) -> None:
        self._bg.discard(task)
        if not task.cancelled():
            exc = task.exception()
            if exc is not None and not isinstance(exc, TimeoutError | asyncio.TimeoutError):
                log.debug("delivery task failed: %r", exc)

    def _log_conn(
        self, event: str, accepted: bool, on_commit: Callable[[], None] | None = None, **kw: Any
    ) -> None:
        record = ConnectionEvent(time.time(), "mqtt", event, accepted, **kw)
        try:
            if on_commit is None:
                self.rules.log_connection(record)
            else:
                self.rules.log_connection(record, on_commit)
        except Exception:
            log.exception("rules.log_connection failed")

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> Callable[[], None]:
        """A callback for another thread (the registry's writer) that runs ``fn(*args)``
        on this broker's loop, in the order such callbacks were called."""

        def call() -> None:
            with self._handed_lock:
                self._handed.append((fn, args))
                if len(self._handed) > 1:  # a wake-up is already on its way
                    return
            with contextlib.suppress(RuntimeError):  # the loop has stopped meanwhile
                self._loop.call_soon_threadsafe(self._run_handed)

        return call

    def _run_handed(self) -> None:
        with self._handed_lock:
            work, self._handed = self._handed, []
        for fn, args in work:
            try:
                fn(*args)
            except Exception:
                log.exception("handed-over work failed")

    async def _log_refusal(self, event: str, **kw: Any) -> None:
        """Log a refusal and wait until it is committed, so the device (and a lesson
        asking ``explain_last_refusal()`` right after) never learns of it first."""
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._log_conn(event, False, self._on_loop(_resolve, committed), **kw)
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(committed, LOG_WAIT)

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
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        record = MessageRecord(
            time.time(), direction, topic, qos, payload, accepted, device, client_id, reason
        )
        try:
            if on_commit is None:
                self.rules.log_message(record)
            else:
                self.rules.log_message(record, on_commit)
        except Exception:
            log.exception("rules.log_message failed")

    # ---- routing -----------------------------------------------------------------------

    def route(self, topic: str, payload: bytes, qos: int) -> list[Conn]:
        """Deliver to every matching subscription; -> recipients.

        Delivery QoS is the publisher's QoS (at most 1), not the subscription's: the
        platform does not honour subscription QoS (spec §5.2, [D-PROTO]).
        """
        targets: dict[str, tuple[Session, int]] = {}
        for filt, subs in self._subscriptions.items():
            if filt != topic and not (("+" in filt or "#" in filt) and self._matches(topic, filt)):
                continue
            for session, _granted in subs:
                q = min(qos, 1)
                prev = targets.get(session.client_id)  # type: ignore[arg-type]
                if prev is None or prev[1] < q:
                    targets[session.client_id] = (session, q)  # type: ignore[index]
        recipients: list[Conn] = []
        qos0: bytes | None = None
        for key, (session, q) in targets.items():
            conn = self.conns.get(key)
            if conn is None or conn.session is not session:
                if not session.clean_session and q >= 1:
                    queue = session.retained_messages
                    if queue.qsize() < MAX_OFFLINE_QUEUE:
                        queue.put_nowait(RetainedApplicationMessage(None, topic, payload, q))
                continue
            if q == 0:
                if qos0 is None:
                    qos0 = publish_bytes(topic, payload)
                conn.write(qos0)
            else:
                self.spawn(conn.handler.mqtt_publish(topic, payload, 1, retain=False))
            recipients.append(conn)
        return recipients

    def push(self, conn: Conn, topic: str, payload: bytes, qos: int) -> None:
        """Send directly to one client, no subscription needed."""
        if qos >= 1:
            self.spawn(conn.handler.mqtt_publish(topic, payload, 1, retain=False))
        else:
            conn.write(publish_bytes(topic, payload))
        self._log_msg("down", topic, min(qos, 1), payload, True, conn.device, conn.client_id)

    def console_publish(self, topic: str, payload: bytes, qos: int) -> int:
        recipients = self.route(topic, payload, min(qos, 1))
        devices = {c.device for c in recipients}
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
        return len(recipients)

    # ---- one TCP connection --------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = writer.get_extra_info("peername") or ("?", 0)
        remote = f"{peer[0]}:{peer[1]}"
        tls = writer.get_extra_info("ssl_object") is not None  # a sniffing port takes both
        conn: Conn | None = None
        try:
            try:
                connect = await asyncio.wait_for(_read_connect(reader), self.connect_timeout)
            except TimeoutError:
                await self._log_refusal(
                    "timeout",
                    remote=remote,
                    reason=f"no CONNECT within {self.connect_timeout:g} s: closed",
                )
                _abort(writer)
                return
            except _NoData:
                _abort(writer)
                return
            except _Unsupported as exc:
                await self._log_refusal(
                    "refused",
                    remote=remote,
                    code=1,
                    reason=CONNACK_MEANINGS[1],
                    explanation=Explanation(
                        "protocol_version",
                        f"unsupported {exc}; the emulator speaks MQTT 3.1 and 3.1.1",
                    ),
                )
                writer.write(connack_bytes(1))
                _close_writer(writer)
                return
            except (_Malformed, asyncio.IncompleteReadError, ConnectionError) as exc:
                reason = str(exc) if isinstance(exc, _Malformed) else "closed inside CONNECT"
                await self._log_refusal("refused", remote=remote, reason=reason)
                _abort(writer)
                return

            request = ConnectRequest(
                connect.client_id,
                connect.username,
                connect.password,
                connect.keepalive,
                connect.level,
                connect.clean,
                tls,
                remote,
                server_name_of(writer.get_extra_info("ssl_object")) if tls else None,
            )
            decision = self._decide(request)
            if not decision.accepted:
                await self._log_refusal(
                    "refused",
                    device=decision.device,
                    client_id=connect.client_id,
                    remote=remote,
                    code=decision.return_code,
                    reason=CONNACK_MEANINGS.get(decision.return_code),
                    explanation=decision.explanation,
                )
                writer.write(connack_bytes(decision.return_code))
                _close_writer(writer)
                return
            conn = await self._accept(request, decision, writer)
            await self._read_loop(conn, reader)
        except asyncio.CancelledError:
            if conn is not None:
                conn.close("shutdown")
            else:
                _abort(writer)
        except Exception:
            log.exception("MQTT connection from %s failed", remote)
            if conn is not None:
                conn.close("error")
            else:
                _abort(writer)
        finally:
            if conn is not None:
                self._finish(conn)
            self._tasks.discard(task)

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

    async def _accept(
        self, request: ConnectRequest, decision: ConnectDecision, writer: asyncio.StreamWriter
    ) -> Conn:
        device = decision.device
        assert device is not None
        key = str(device)
        loop = asyncio.get_running_loop()
        async with self._accept_lock:
            old = self.conns.get(key)
            if old is not None:  # one session per device: the newer kicks the older
                old.write(publish_bytes("/ext/notify", KICK_PAYLOAD))
                self._log_msg(
                    "down", "/ext/notify", 0, KICK_PAYLOAD, True, old.device, old.client_id
                )
                old.close(
                    "kicked",
                    f"a new connection from {request.remote} (client id {request.client_id!r})",
                )
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(old.done.wait(), KICK_WAIT)
            existing = self._sessions.get(key)
            present = False
            if request.clean_session or existing is None:
                if existing is not None:
                    self._drop_session(key, existing[0])
                session = Session()
            else:
                session, present = existing[0], True
            session.client_id = key
            session.clean_session = request.clean_session
            session.username = request.username
            session.remote_address, session.remote_port = request.remote.rsplit(":", 1)[0], 0
            session.keep_alive = 0  # our watchdog enforces decision.keepalive_limit
            handler = BrokerProtocolHandler(self.plugins_manager, loop=loop)
            adapter = StreamWriterAdapter(writer)
            handler.attach(session, StreamReaderAdapter(asyncio.StreamReader()), adapter)
            self._sessions[key] = (session, handler)
            conn = Conn(
                key,
                device,
                request.client_id,
                decision.kind,
                request.remote,
                request.tls,
                decision,
                session,
                handler,
                writer,
                adapter,
                last_rx=loop.time(),
            )
            self.conns[key] = conn
            # activated before the CONNACK: a device that reads "CONNACK OK" is activated
            try:
                if decision.kind is not None:
                    self.rules.connected(device, decision.kind)
            except Exception:
                log.exception("rules.connected failed")
            writer.write(connack_bytes(0, present and request.protocol_level == 4))
        self._log_conn(
            "connect",
            True,
            device=device,
            client_id=request.client_id,
            remote=request.remote,
            code=0,
            reason=CONNACK_MEANINGS[0],
            explanation=decision.explanation,
        )
        limit = decision.keepalive_limit
        if limit is not None and limit > 0:
            conn.timers.append(loop.call_later(limit, self._check_keepalive, conn, limit))
        for push in decision.pushes:
            self.push(conn, push.topic, push.payload, push.qos)
        if decision.close_after is not None:
            conn.timers.append(
                loop.call_later(
                    decision.close_after,
                    conn.close,
                    "close_after",
                    f"closed {decision.close_after:g} s after CONNACK",
                )
            )
        while not session.retained_messages.empty():  # queued while offline (clean session 0)
            msg = session.retained_messages.get_nowait()
            self.spawn(handler.mqtt_publish(msg.topic, msg.data, msg.qos, retain=False))
        return conn

    def _check_keepalive(self, conn: Conn, limit: float) -> None:
        if conn.close_reason is not None:
            return
        loop = asyncio.get_running_loop()
        idle = loop.time() - conn.last_rx
        if idle >= limit:
            conn.close("keepalive", f"no packet for {idle:.1f} s (limit {limit:g} s)")
        else:
            conn.timers.append(loop.call_later(limit - idle, self._check_keepalive, conn, limit))

    def _drop_session(self, key: str, session: Session) -> None:
        if self._sessions.get(key, (None, None))[0] is session:
            del self._sessions[key]
        for filt in [
            f for f, subs in self._subscriptions.items() if any(s is session for s, _ in subs)
        ]:
            subs = [(s, q) for s, q in self._subscriptions[filt] if s is not session]
            if subs:
                self._subscriptions[filt] = subs
            else:
                del self._subscriptions[filt]
        session.clear_queues()

    def _finish(self, conn: Conn) -> None:
        for timer in conn.timers:
            timer.cancel()
        conn.close(conn.close_reason or "eof")
        with contextlib.suppress(Exception):
            conn.handler._stop_waiters()
        if self.conns.get(conn.key) is conn:
            del self.conns[conn.key]
            if conn.session.clean_session:
                self._drop_session(conn.key, conn.session)
        event, accepted, reason = _CLOSE_EVENTS.get(
            conn.close_reason or "eof", _CLOSE_EVENTS["error"]
        )
        if conn.close_detail:
            reason = f"{reason}: {conn.close_detail}"
        self._log_conn(
            event,
            accepted,
            device=conn.device,
            client_id=conn.client_id,
            remote=conn.remote,
            reason=reason,
        )
        conn.done.set()

    # ---- packets after CONNACK ----------------------------------------------------------

    async def _read_loop(self, conn: Conn, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        writer = conn.writer
        try:
            while True:
                ptype, flags, body = await _read_packet(reader, MAX_PACKET)
                if ptype == _PUBLISH:
                    conn.last_rx = loop.time()
                    if self._on_publish(conn, flags, body):
                        return
                elif ptype == _PUBACK:
                    conn.last_rx = loop.time()
                    pid = _u16(body, 0)
                    waiter = conn.handler._puback_waiters.get(pid)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(PubackPacket.build(pid))
                elif ptype == _PINGREQ:
                    conn.last_rx = loop.time()
                    conn.write(_PINGRESP)
                elif ptype == _SUBSCRIBE:
                    conn.last_rx = loop.time()
                    await self._on_subscribe(conn, body)
                elif ptype == _UNSUBSCRIBE:
                    self._on_unsubscribe(conn, body)
                elif ptype == _DISCONNECT:
                    if conn.close_reason is None:
                        conn.close_reason = "client"
                    return
                elif ptype == _CONNECT:
                    raise _Malformed("second CONNECT on one connection")
                else:
                    raise _Malformed(f"unexpected packet type {ptype} from a client")
                if writer.transport.get_write_buffer_size() > 256 * 1024:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            if conn.close_reason is None:
                conn.close_reason = "eof"
        except _Malformed as exc:
            conn.close("protocol", str(exc))

    def _on_publish(self, conn: Conn, flags: int, body: bytes) -> bool:
        """Handle one PUBLISH; True when the connection must end."""
        qos = (flags >> 1) & 3
        topic, pos = _utf8(body, 0)
        if qos == 3:
            raise _Malformed("PUBLISH with QoS 3")
        pid = b""
        if qos:
            if pos + 2 > len(body):
                raise _Malformed("PUBLISH without packet id")
            pid, pos = body[pos : pos + 2], pos + 2
        if not topic or "+" in topic or "#" in topic:
            raise _Malformed(f"invalid topic name {topic!r} in PUBLISH")
        payload = body[pos:]
        if qos == 2:
            self._log_msg(
                "up",
                topic,
                2,
                payload,
                False,
                conn.device,
                conn.client_id,
                "QoS 2 is not supported by the platform: connection closed",
            )
            conn.close("protocol", "QoS 2 PUBLISH is not supported by the platform")
            return True
        # PUBACK even when the message is refused, and only once its log record is
        # committed: no acknowledged uplink can be missing from the log after a crash
        ack = self._on_loop(conn.write, b"\x40\x02" + pid) if qos == 1 else None
        if len(payload) > MAX_PAYLOAD:
            self._log_msg(
                "up",
                topic,
                qos,
                payload,
                False,
                conn.device,
                conn.client_id,
                f"message of {len(payload)} bytes exceeds 256 KB: discarded",
                ack,
            )
            return False
        rate = conn.over_rate(qos, self.uplink_limits, time.monotonic())
        if rate is not None:
            # the platform drops throttled uplinks silently (log text as in its log service)
            limit = self.uplink_limits[qos]  # type: ignore[index]
            reason = f"Rate limit:{limit},current qps:{rate}"
            self._log_msg(
                "up", topic, qos, payload, False, conn.device, conn.client_id, reason, ack
            )
            return False
        perm: Permission = self.rules.may_publish(conn.device, topic, qos)
        if not perm.allowed:
            self._log_msg(
                "up",
                topic,
                qos,
                payload,
                False,
                conn.device,
                conn.client_id,
                _why(perm.explanation, "No authorization"),
                ack,
            )
            return False
        self.route(topic, payload, qos)
        self._log_msg("up", topic, qos, payload, True, conn.device, conn.client_id, None, ack)
        for push in self.rules.replies_to(conn.device, topic, payload):
            recipients = self.route(push.topic, push.payload, min(push.qos, 1))
            self._log_msg(
                "down",
                push.topic,
                min(push.qos, 1),
                push.payload,
                True,
                conn.device,
                conn.client_id,
                None if recipients else "no subscriber online",
            )
        return False

    async def _on_subscribe(self, conn: Conn, body: bytes) -> None:
        _u16(body, 0)  # packet id, echoed from body[:2]
        pos = 2
        requested: list[tuple[str, int]] = []
        while pos < len(body):
            filt, pos = _utf8(body, pos)
            if pos >= len(body) or body[pos] > 2:
                raise _Malformed("SUBSCRIBE with an invalid requested QoS")
            requested.append((filt, body[pos]))
            pos += 1
        if not requested:
            raise _Malformed("SUBSCRIBE without topic filter")
        session = conn.session
        mine = {f for f, subs in self._subscriptions.items() if any(s is session for s, _ in subs)}
        codes = bytearray()
        for index, (filt, qos) in enumerate(requested):
            why: str | None = None
            explanation: Explanation | None = None
            if index >= MAX_FILTERS_PER_SUBSCRIBE:
                why = f"more than {MAX_FILTERS_PER_SUBSCRIBE} topic filters in one SUBSCRIBE"
            elif not _valid_filter(filt):
                why = "invalid topic filter"
            elif filt not in mine and len(mine) >= MAX_SUBSCRIPTIONS:
                why = f"the device already has {MAX_SUBSCRIPTIONS} subscriptions"
            else:
                perm = self.rules.may_subscribe(conn.device, filt)
                if not perm.allowed:
                    explanation = perm.explanation
                    why = _why(explanation, "No authorization")
            if why is not None:
                codes.append(0x80)
                await self._log_refusal(
                    "subscribe",
                    device=conn.device,
                    client_id=conn.client_id,
                    remote=conn.remote,
                    code=0x80,
                    reason=f"SUBSCRIBE {filt!r} refused: {why}",
                    explanation=explanation,
                )
                continue
            granted = min(qos, 1)
            subs = [(s, q) for s, q in self._subscriptions.get(filt, []) if s is not session]
            subs.append((session, granted))
            self._subscriptions[filt] = subs
            mine.add(filt)
            codes.append(granted)
            self._log_conn(  # the platform's log service records a granted Sub too
                "subscribe",
                True,
                device=conn.device,
                client_id=conn.client_id,
                remote=conn.remote,
                code=granted,
                reason=f"SUBSCRIBE {filt!r} granted QoS {granted}",
            )
        conn.write(b"\x90" + _remaining_length(2 + len(codes)) + body[:2] + bytes(codes))

    def _on_unsubscribe(self, conn: Conn, body: bytes) -> None:
        _u16(body, 0)
        pos = 2
        while pos < len(body):
            filt, pos = _utf8(body, pos)
            subs = self._subscriptions.get(filt)
            if subs is None:
                continue
            subs = [(s, q) for s, q in subs if s is not conn.session]
            if subs:
                self._subscriptions[filt] = subs
            else:
                del self._subscriptions[filt]
        conn.write(b"\xb0\x02" + body[:2])
