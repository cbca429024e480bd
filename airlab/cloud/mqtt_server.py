"""The asyncio shell around :class:`~airlab.cloud.mqtt_core.BrokerCore`: sockets in, actions out.

It only moves bytes and carries out the core's actions: one :class:`asyncio.Protocol` per
connection feeds ``data_received`` to the core; :class:`~airlab.cloud.mqtt_core.Send`
writes, :class:`~airlab.cloud.mqtt_core.Close` closes (flush, then abort after
:data:`CLOSE_GRACE`), :class:`~airlab.cloud.mqtt_core.StartTimer` is a ``call_later``,
:class:`~airlab.cloud.mqtt_core.LogConnection` / :class:`~airlab.cloud.mqtt_core.LogMessage`
go to the rules with an ``on_commit`` callback (called on any thread) that hands their
``then`` actions back to the loop — one wake-up per batch of commits, not per message.
The message records gathered for :data:`LOG_GROUP` seconds go over as one batch
(``rules.log_messages``), with one callback that sends all their PUBACKs; a connection
record first hands over the messages gathered before it, so the log keeps their order.
A refusal waits for its commit at most :data:`LOG_WAIT` seconds.

Listeners: TLS ones take the :class:`ssl.SSLContext` (SNI recorded by
:func:`airlab.cloud.tls.record_server_names` for the host rule); a plain listener given a
``sniff_tls`` context lets each connection's first byte decide (0x16, a ClientHello: TLS;
anything else: plain MQTT), like the platform's port 1883.

Example:
    >>> import asyncio
    >>> from airlab.cloud.mqtt_core import BrokerCore
    >>> class Nobody:
    ...     def log_connection(self, event, on_commit=None): pass
    >>> async def main():
    ...     server = MqttServer(BrokerCore(Nobody()), Nobody())
    ...     port = await server.listen("127.0.0.1", 0)
    ...     await server.close()
    ...     return port > 0
    >>> asyncio.run(main())
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

from airlab.cloud.model import CloudRules, DeviceRef
from airlab.cloud.mqtt_core import (
    Action,
    BrokerCore,
    Close,
    LogConnection,
    LogMessage,
    Send,
    StartTimer,
    Timer,
)
from airlab.cloud.tls import record_server_names, server_name_of

__all__ = ["CLOSE_GRACE", "LOG_GROUP", "LOG_WAIT", "MqttServer"]

log = logging.getLogger("airlab.cloud.broker")

CLOSE_GRACE = 1.0  # seconds before a closing transport is aborted
LOG_WAIT = 5.0  # seconds a refusal waits for its log record before it is answered anyway
# seconds the message records of the first one logged wait for others to share its commit
# (a commit costs as much as ~10 rows: one per loop turn would be one per message or two)
LOG_GROUP = 0.002
_RX_BUFFER = 64 * 1024  # bytes read from a socket at once


class _Link(asyncio.BufferedProtocol):
    """One TCP (or TLS) connection.

    A buffered protocol: the transport receives into the server's one buffer
    (``recv_into``) instead of allocating a 256 KiB bytes object per read, which costs a
    ``mmap``/``munmap`` pair per packet on the hot path.
    """

    __slots__ = ("cid", "closing", "gone", "server", "sniff", "sock", "timers", "transport")

    def __init__(self, server: MqttServer, cid: int = 0, sock: socket.socket | None = None):
        self.server = server
        self.cid = cid
        self.sock = sock  # a sniffing port's raw socket until its transport is made
        self.sniff: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.timers: list[asyncio.TimerHandle] = []
        self.closing = False
        self.gone = False

    # ---- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream server's, TLS or not
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = self.server
        if self.cid:  # accepted by a sniffing listener: already known to the core
            self.sock = None
            if ssl_object is not None:
                server.core.secured(self.cid, server_name_of(ssl_object))
            if self.closing:
                transport.abort()
            return
        peer = transport.get_extra_info("peername") or ("?", 0)
        tls = ssl_object is not None
        cid, actions = server.core.open(
            f"{peer[0]}:{peer[1]}", tls=tls, server_name=server_name_of(ssl_object) if tls else None
        )
        self.cid = cid
        server.links[cid] = self
        server.execute(actions)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.rx_view

    def buffer_updated(self, nbytes: int) -> None:
        server = self.server
        actions = server.core.receive(self.cid, bytes(server.rx_view[:nbytes]))
        if actions:
            server.execute(actions)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost()

    def pause_writing(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closing:
            with contextlib.suppress(Exception):
                self.transport.resume_reading()

    # ---- carried out for the core ----------------------------------------------------

    def lost(self) -> None:
        if self.gone:
            return
        self.gone = self.closing = True
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
        server = self.server
        if server.links.get(self.cid) is self:
            del server.links[self.cid]
        if self.cid:
            server.execute(server.core.connection_lost(self.cid))

    def close(self, abort: bool) -> None:
        transport = self.transport
        if transport is None:  # still sniffing: nothing was written, just drop it
            self.closing = True
            if self.sniff is not None:
                self.sniff.cancel()
            if self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.close()
            self.lost()
            return
        if abort:
            self.closing = True
            transport.abort()
        elif not self.closing:
            self.closing = True
            transport.close()
            self.timers.append(self.server.loop.call_later(CLOSE_GRACE, transport.abort))


class _Once:
    """``then`` actions run once: on commit or after :data:`LOG_WAIT`, whichever is first."""

    __slots__ = ("actions", "server", "timer")

    def __init__(self, server: MqttServer, actions: tuple[Action, ...]) -> None:
        self.server, self.actions = server, actions
        self.timer = server.loop.call_later(LOG_WAIT, self.run)

    def run(self) -> None:
        actions, self.actions = self.actions, ()
        self.timer.cancel()
        if actions:
            self.server.execute(actions)


class MqttServer:
    """Listeners and connections of one :class:`BrokerCore`; made on the loop it serves."""

    def __init__(self, core: BrokerCore, rules: CloudRules | Any) -> None:
        self.core = core
        self.rules = rules
        self.loop = asyncio.get_running_loop()
        self.links: dict[int, _Link] = {}
        # every connection reads into this buffer; its bytes are copied out at once
        self.rx_buffer = bytearray(_RX_BUFFER)
        self.rx_view = memoryview(self.rx_buffer)
        self._servers: list[asyncio.AbstractServer] = []
        self._sniffers: list[tuple[asyncio.Task[None], socket.socket]] = []
        self._handed: list[tuple[Action, ...] | _Once] = []
        self._handed_lock = threading.Lock()
        self._loop_thread = threading.get_ident()
        self._records: list[Any] = []  # message records gathered, not yet handed over
        self._then: list[Action] = []  # what to do once they are committed
        self.connect_timeout = core.connect_timeout
        # records handed to the rules whose commit has not been carried out yet; a loop
        # on simulated time (a fleet's) must not jump ahead while a writer thread commits
        self.pending_commits = 0
        watch = getattr(self.loop, "watch", None)
        self._unwatch = watch(lambda: self.pending_commits > 0) if watch is not None else None

    # ---- listeners -------------------------------------------------------------------

    async def listen(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        *,
        sniff_tls: ssl.SSLContext | None = None,
    ) -> int:
        """Serve MQTT on ``host:port`` (TLS with ``ssl_context``; plain and, with
        ``sniff_tls``, TLS by the first byte); -> the bound port."""
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if ssl_context is not None:
            record_server_names(ssl_context)  # the host rule reads the SNI
        if ssl_context is None and sniff_tls is not None:
            record_server_names(sniff_tls)
            return self._listen_sniffing(host, port, sniff_tls)
        server = await self.loop.create_server(
            lambda: _Link(self),
            host,
            port,
            reuse_address=True,
            ssl=ssl_context,
            ssl_handshake_timeout=max(self.connect_timeout, 1.0) if ssl_context else None,
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def _listen_sniffing(self, host: str, port: int, tls: ssl.SSLContext) -> int:
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
        task = self.loop.create_task(self._accept_loop(lsock, tls))
        self._sniffers.append((task, lsock))
        return int(lsock.getsockname()[1])

    async def _accept_loop(self, lsock: socket.socket, tls: ssl.SSLContext) -> None:
        loop = self.loop
        while True:
            try:
                sock, peer = await loop.sock_accept(lsock)
            except (OSError, asyncio.CancelledError):
                return
            sock.setblocking(False)
            cid, actions = self.core.open(f"{peer[0]}:{peer[1]}")
            link = _Link(self, cid, sock)
            self.links[cid] = link
            link.sniff = loop.create_task(self._sniff(link, sock, tls))
            self.execute(actions)  # the CONNECT window runs from the accept

    async def _sniff(self, link: _Link, sock: socket.socket, tls: ssl.SSLContext) -> None:
        loop = self.loop
        try:
            first = await _peek(loop, sock)
        except asyncio.CancelledError:
            return
        except OSError:
            first = b""
        if not first or link.closing:
            link.close(abort=True)
            return
        link.sniff = None
        ctx = tls if first == b"\x16" else None
        try:
            await loop.connect_accepted_socket(
                lambda: link,
                sock,
                ssl=ctx,
                ssl_handshake_timeout=max(self.connect_timeout, 1.0) if ctx else None,
            )
        except (OSError, ssl.SSLError, asyncio.CancelledError):
            with contextlib.suppress(OSError):
                sock.close()
            link.lost()

    async def close(self) -> None:
        """Close every connection (logged ``Emulator stopped``) and every listener."""
        for task, lsock in self._sniffers:
            task.cancel()
            with contextlib.suppress(OSError):
                lsock.close()
        self._sniffers.clear()
        for server in self._servers:
            server.close()
        self._servers.clear()
        self.execute(self.core.shutdown())
        self._hand_over_messages()
        for link in list(self.links.values()):
            if link.transport is not None:
                link.transport.abort()
            link.close(abort=True)
            link.lost()
        await asyncio.sleep(0)  # let the aborted transports call connection_lost
        if self._unwatch is not None:
            self._unwatch()

    # ---- console operations (on the loop) ----------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int) -> int:
        return self.publish_counts(topic, payload, qos)[0]

    def publish_counts(self, topic: str, payload: bytes, qos: int) -> tuple[int, int]:
        """(connected clients reached, offline clean-session-0 sessions queued for)."""
        count, actions = self.core.publish(topic, payload, qos)
        queued = self.core.last_queued
        self.execute(actions)
        self._hand_over_messages()  # logged when the console's call returns
        return count, queued

    def disconnect(self, device: DeviceRef) -> bool:
        done, actions = self.core.disconnect(device)
        self.execute(actions)
        self._hand_over_messages()
        return done

    # ---- actions -------------------------------------------------------------------------

    def execute(self, actions: list[Action] | tuple[Action, ...]) -> None:
        """Carry out the core's actions, in order."""
        links = self.links
        for action in actions:
            kind = type(action)
            if kind is Send:
                link = links.get(action.conn)  # type: ignore[union-attr]
                if link is not None and not link.closing and link.transport is not None:
                    link.transport.write(action.data)  # type: ignore[union-attr]
            elif kind is LogMessage:
                if not self._records:
                    self.loop.call_later(LOG_GROUP, self._hand_over_messages)
                self._records.append(action.record)  # type: ignore[union-attr]
                if action.then:  # type: ignore[union-attr]
                    self._then.extend(action.then)  # type: ignore[union-attr]
            elif kind is LogConnection:
                if self._records:
                    self._hand_over_messages()
                then = action.then  # type: ignore[union-attr]
                once = _Once(self, then) if then is not None else None
                self._log(self.rules.log_connection, action.event, once)  # type: ignore[union-attr]
            elif kind is Close:
                link = links.get(action.conn)  # type: ignore[union-attr]
                if link is not None:
                    link.close(action.abort)  # type: ignore[union-attr]
            elif kind is StartTimer:
                link = links.get(action.conn)  # type: ignore[union-attr]
                if link is not None and not link.gone:
                    link.timers.append(
                        self.loop.call_later(
                            action.delay,  # type: ignore[union-attr]
                            self._fire,
                            action.conn,  # type: ignore[union-attr]
                            action.timer,  # type: ignore[union-attr]
                        )
                    )

    def _hand_over_messages(self) -> None:
        """Log the message records gathered so far as one batch (one commit, one
        wake-up for all their PUBACKs)."""
        records, then = self._records, tuple(self._then)
        if not records:
            return
        self._records, self._then = [], []
        log_many = getattr(self.rules, "log_messages", None)
        if log_many is None:  # rules that log one record at a time
            for i, record in enumerate(records):
                last = i == len(records) - 1
                self._log(self.rules.log_message, record, then if last and then else None)
            return
        self._log(log_many, records, then or None)

    def _fire(self, cid: int, timer: Timer) -> None:
        self.execute(self.core.timer(cid, timer))

    def _log(
        self,
        log_fn: Callable[..., None],
        record: Any,
        then: tuple[Action, ...] | _Once | None,
    ) -> None:
        try:
            if then is None:
                log_fn(record)
            else:
                self.pending_commits += 1
                try:
                    log_fn(record, self._committed(then))
                except Exception:
                    self.pending_commits -= 1
                    raise
        except Exception:
            log.exception("rules.%s failed", getattr(log_fn, "__name__", "log"))

    def _committed(self, then: tuple[Action, ...] | _Once) -> Callable[[], None]:
        """A callback for any thread: carry out ``then`` on the loop, in commit order."""

        def call() -> None:
            if threading.get_ident() == self._loop_thread:  # committed on the loop itself
                self._carry_out(then)
                return
            with self._handed_lock:
                self._handed.append(then)
                if len(self._handed) > 1:  # a wake-up is already on its way
                    return
            with contextlib.suppress(RuntimeError):  # the loop has stopped meanwhile
                self.loop.call_soon_threadsafe(self._run_handed)

        return call

    def _run_handed(self) -> None:
        with self._handed_lock:
            work, self._handed = self._handed, []
        for then in work:
            try:
                self._carry_out(then)
            except Exception:
                log.exception("handed-over work failed")

    def _carry_out(self, then: tuple[Action, ...] | _Once) -> None:
        """What waited for a commit: a refusal's (once) or a batch's PUBACKs."""
        self.pending_commits -= 1
        if type(then) is _Once:
            then.run()
        else:
            self.execute(then)  # type: ignore[arg-type]


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _peek(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """The first byte the peer sent, left in the socket (empty: closed)."""
    while True:
        try:
            return sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock.fileno(), _set_once, ready)
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())
