"""The simulated module's network stack: NetRequests carried out on real sockets.

One background thread runs its own asyncio loop (never the notebook kernel's), or, with
``runner``, a :class:`~airlab.mqtt.loopthread.LoopThread` that many stacks share (a
fleet of modems on one loop: :mod:`airlab.fleet`).  The firmware's requests arrive
through :meth:`NetStack.submit` (thread-safe); what the network does comes back as
:mod:`~airlab.sim.actions` events through the ``on_event`` callback, called from the
stack's thread.

* ``OpenLink``: TCP, or TLS when asked (no certificate verification unless configured —
  the module's default; SNI = the host name).  ``LinkOpened`` only once TCP/TLS is up;
  ``LinkFailed`` with reason ``"dns"`` (the :class:`~airlab.sim.hosts.HostTable` does
  not know the name), ``"refused"``, ``"timeout"`` or ``"tls"``.
* MQTT on the ``"mqtt"`` link: CONNECT is sent only on ``MqttConnect`` (so a late
  ``AT+MCONNECT`` meets a server that already dropped the idle link → ``LinkClosed``);
  SUBSCRIBE / UNSUBSCRIBE / PUBLISH / DISCONNECT as asked; an incoming QoS 1 PUBLISH is
  acknowledged by the stack (PUBACK; QoS 2: PUBREC/PUBREL/PUBCOMP) and reported as
  ``MqttMessage``; a PINGREQ goes out every keepalive once connected; a close by the
  server gives ``LinkClosed``.  :mod:`airlab.mqtt.codec` is the codec
  (:mod:`airlab.sim.mqtt_link`).  Topics go out as given: a PUBLISH to ``a/+`` is
  sent and the broker closes the connection (MQTT 3.1.1 §3.3.2.1) → ``LinkClosed``.
  A request that fails inside the stack (a bug) is logged and closes the link
  (``LinkClosed``), so the firmware never waits forever for its answer.
* ``HttpRequest``: one HTTP/1.1 exchange with :mod:`http.client` in a worker thread
  (:mod:`airlab.sim.http_link`), answered by ``HttpResult``.
* ``CloseLink``: a local close, never reported; answers still in flight for that link
  are dropped.

Latency: with a :class:`~airlab.sim.profiles.LatencySampler`, an answer is delivered at
``max(actual arrival, request time + sampled delay)`` (a minimum total); events of one
link keep their order (a delayed answer holds back the events after it on that link).
The sampler can also lose events (``lost("puback")``) and DNS lookups.

Example:
    >>> events = []
    >>> stack = NetStack(events.append)
    >>> stack.start()
    >>> stack.close()
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

from airlab.mqtt import codec as c
from airlab.mqtt.loopthread import LoopThread
from airlab.sim import actions as a
from airlab.sim import mqtt_link as m
from airlab.sim.hosts import HostNotFound, HostTable
from airlab.sim.http_link import perform
from airlab.sim.profiles import LatencySampler, event_kind

__all__ = ["NetStack"]

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT = 20.0

#: the server's acknowledgements that carry only a packet id: codec class -> (the kind
#: its request was timed under in ``_asked``, the event reported)
_PACKET_ACKS: dict[type, tuple[str, Callable[[int], a.NetEvent]]] = {
    c.Unsuback: ("unsuback", a.MqttUnsuback),
    c.Puback: ("puback", a.MqttPuback),
    c.Pubrec: ("pubrec", a.MqttPubrec),
    c.Pubcomp: ("pubcomp", a.MqttPubcomp),
}


@dataclass
class _Link:
    name: str
    gen: int
    host: str = ""
    tls: bool = False
    attempt: int = 0  # the OpenLink's, copied into the link's events
    writer: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    closed: bool = False  # closed locally (no LinkClosed to report)
    connected: bool = False  # TCP/TLS is up
    http_conn: Any = None


class NetStack:
    """Real sockets for the simulated module (see the module docstring).

    ``on_event(event)`` is called from the stack's thread, one event at a time.
    ``hosts``: name resolution (default: dotted IPv4 only).  ``sampler``: latency and
    loss (default: none).  ``tls_verify`` / ``cafile``: verify server certificates
    (default off, like the module without ``AT+SSLCFG``).
    """

    def __init__(
        self,
        on_event: Callable[[a.NetEvent], None],
        hosts: HostTable | None = None,
        *,
        sampler: LatencySampler | None = None,
        connect_timeout: float = _CONNECT_TIMEOUT,
        tls_verify: bool = False,
        cafile: str | None = None,
        runner: LoopThread | None = None,
    ) -> None:
        self._on_event = on_event
        self.hosts = hosts if hosts is not None else HostTable()
        self._sampler = sampler
        self.connect_timeout = connect_timeout
        if tls_verify:
            self._tls = ssl.create_default_context(cafile=cafile)
        else:  # no CA store to load: the module checks nothing by default
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._shared = runner is not None  # the loop is not ours to stop
        self._runner = runner if runner is not None else LoopThread("airlab-sim-net")
        self._start_lock = threading.Lock()
        self._links: dict[str, _Link] = {}
        self._gen = 0
        # (link, kind, packet id) -> request time, for minimum-total delays
        self._asked: dict[tuple[str, str, int], float] = {}
        self._queues: dict[str, collections.deque[tuple[float, int, a.NetEvent]]] = {}
        self._pumping: set[str] = set()
        self._closed = False

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the stack's thread and loop (idempotent)."""
        with self._start_lock:
            if self._thread is not None:
                return
            if self._closed:
                raise RuntimeError("network stack is closed")
            if not self._runner.running:
                self._runner.start()
            self._loop, self._thread = self._runner.loop, self._runner.thread

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._closed

    def close(self) -> None:
        """Close every link silently and stop the thread."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._shared:  # close our links only; the loop goes on for the others
            if threading.current_thread() is thread:
                self._close_all()
            else:
                with contextlib.suppress(Exception):
                    self._runner.call(self._close_all, 5)
            return
        if threading.current_thread() is thread:
            raise RuntimeError("NetStack.close() called from the stack's own thread")
        with contextlib.suppress(Exception):
            self._runner.run(self._shutdown(), 5)
        self._runner.stop(5)

    def __enter__(self) -> NetStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- public API (any thread)

    def submit(self, request: a.NetRequest) -> None:
        """Carry out ``request`` (returns at once; the answer comes through ``on_event``)."""
        if self._thread is None:
            self.start()
        assert self._loop is not None
        if self._closed:
            return
        if self._shared and threading.current_thread() is self._thread:
            # a fleet's modem, on the loop already: after the firmware's call returns
            self._loop.call_soon(self._handle, request, self._loop.time())
            return
        self._loop.call_soon_threadsafe(self._handle, request, self._loop.time())

    def drop_link(self, link: str) -> bool:
        """The server side closes ``link``: the socket is closed and ``LinkClosed`` reported.

        Returns whether the link was open.
        """
        return bool(self._call(self._drop, link))

    def close_links(self) -> None:
        """Close every link silently, dropping undelivered answers (PDP loss, reset).

        Does not wait: requests submitted afterwards are handled after the close.
        """
        if self._loop is not None and not self._closed:
            self._loop.call_soon_threadsafe(self._close_all)

    def awaiting_network(self, links: Container[str] | None = None) -> bool:
        """Whether a real answer is on its way: a link being opened, an HTTP exchange, or
        an MQTT request whose answer has not come on a link still open; only on ``links``
        (names, e.g. ``("http",)``) when given. (A fleet on simulated time holds its
        clock meanwhile: :mod:`airlab.fleet.clock`.)"""
        for name, state in self._links.items():
            if state.closed or (links is not None and name not in links):
                continue
            if not state.connected and state.tasks:  # TCP/TLS being opened
                return True
            if name == "http":
                return True
            if state.connected and any(key[0] == name for key in self._asked):
                return True
        return False

    def is_open(self, link: str) -> bool:
        """Whether ``link`` is connected (TCP/TLS up and not closed)."""
        state = self._links.get(link)
        return bool(state and state.connected and not state.closed)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._thread is None or self._closed or self._loop is None:
            return None
        if threading.current_thread() is self._thread:
            return fn(*args)

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # ---------------------------------------------------------------- delivery

    def _ask(self, link: str, kind: str, packet_id: int, t: float) -> None:
        self._asked[(link, kind, packet_id)] = t

    def _report(self, link: str, event: a.NetEvent, asked: float | None, gen: int) -> None:
        """Queue ``event`` for delivery no sooner than ``asked + profile delay``."""
        sampler = self._sampler
        assert self._loop is not None
        now = self._loop.time()  # the loop's clock: simulated in a fleet on simulated time
        due = now
        if sampler is not None:
            state = self._links.get(link)
            kind = event_kind(event, tls=bool(state and state.tls))
            if sampler.lost(kind):
                log.debug("profile lost %s on link %s", kind, link)
                return
            delay = sampler.net_delay(kind)
            if delay:
                due = max(now, (asked if asked is not None else now) + delay)
        queue = self._queues.setdefault(link, collections.deque())
        if queue:
            due = max(due, queue[-1][0])
        queue.append((due, gen, event))
        if link not in self._pumping:
            self._pump(link)

    def _pump(self, link: str) -> None:
        assert self._loop is not None
        self._pumping.discard(link)
        queue = self._queues.get(link)
        while queue:
            due, gen, event = queue[0]
            if due > self._loop.time():
                self._pumping.add(link)
                self._loop.call_at(due, self._pump, link)
                return
            queue.popleft()
            state = self._links.get(link)
            if state is None or state.gen != gen:
                continue  # the link was closed or reopened since: nobody waits for this
            self._emit(event)

    def _emit(self, event: a.NetEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a faulty consumer must not kill the stack
            log.exception("network event consumer failed on %r", event)

    # ---------------------------------------------------------------- request handling

    def _handle(self, request: a.NetRequest, t: float) -> None:
        if self._closed:
            return
        try:
            if isinstance(request, a.OpenLink):
                self._open(request, t)
            elif isinstance(request, a.CloseLink):
                self._close_link(request.link)
            elif isinstance(request, a.HttpRequest):
                self._http(request, t)
            elif isinstance(request, a.MqttConnect):
                self._ask("mqtt", "connack", 0, t)
                self._send("mqtt", m.connect_bytes(request), keepalive=request.keepalive)
            elif isinstance(request, a.MqttSubscribe):
                self._ask("mqtt", "suback", request.packet_id, t)
                self._send("mqtt", m.subscribe_bytes(request))
            elif isinstance(request, a.MqttUnsubscribe):
                self._ask("mqtt", "unsuback", request.packet_id, t)
                self._send("mqtt", m.unsubscribe_bytes(request))
            elif isinstance(request, a.MqttPublish):
                if request.qos == 1 and request.packet_id is not None:
                    self._ask("mqtt", "puback", request.packet_id, t)
                elif request.qos == 2 and request.packet_id is not None:
                    self._ask("mqtt", "pubrec", request.packet_id, t)
                    self._ask("mqtt", "pubcomp", request.packet_id, t)
                self._send("mqtt", m.publish_bytes(request))
            elif isinstance(request, a.MqttDisconnect):
                self._send("mqtt", m.disconnect_bytes())
            else:
                log.warning("unknown network request %r", request)
        except Exception:
            # never leave a link half-done (the firmware would wait forever for an
            # answer): an MQTT request that cannot be carried out closes the link, which
            # the firmware reports like any close (CLOSED) and which clears its state
            log.exception("network request %r failed: closing its link", request)
            if not isinstance(request, (a.OpenLink, a.CloseLink, a.HttpRequest)):
                state = self._links.get("mqtt")
                if state is not None:
                    self._lost(state)

    def _new_link(self, name: str) -> _Link:
        old = self._links.get(name)
        if old is not None:
            self._teardown(old)
        self._gen += 1
        state = _Link(name, self._gen)
        self._links[name] = state
        self._queues.pop(name, None)
        for key in [k for k in self._asked if k[0] == name]:
            del self._asked[key]
        return state

    def _teardown(self, state: _Link) -> None:
        state.closed = True
        state.connected = False
        for task in state.tasks:
            task.cancel()
        state.tasks.clear()
        if state.writer is not None:
            with contextlib.suppress(Exception):
                state.writer.transport.abort()
            state.writer = None
        if state.http_conn is not None:
            with contextlib.suppress(Exception):
                sock = state.http_conn.sock
                if sock is not None:
                    sock.shutdown(2)
            state.http_conn = None

    def _close_link(self, name: str) -> None:
        state = self._links.get(name)
        if state is not None:
            self._teardown(state)
            state.gen = -1  # drop whatever is still queued for it
        self._queues.pop(name, None)

    def _close_all(self) -> None:
        for name in list(self._links):
            self._close_link(name)

    def _drop(self, name: str) -> bool:
        state = self._links.get(name)
        if state is None or state.closed or not state.connected:
            return False
        gen = state.gen
        self._teardown(state)
        self._report(name, a.LinkClosed(name, state.attempt), None, gen)
        return True

    async def _shutdown(self) -> None:
        self._close_all()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---------------------------------------------------------------- links

    def _open(self, req: a.OpenLink, t: float) -> None:
        state = self._new_link(req.link)
        state.host, state.tls, state.attempt = req.host, req.tls, req.attempt
        assert self._loop is not None
        state.tasks.append(self._loop.create_task(self._connect(state, req, t)))

    async def _connect(self, state: _Link, req: a.OpenLink, t: float) -> None:
        reason, error = None, None
        try:
            if self._sampler is not None and self._sampler.lost("dns"):
                raise HostNotFound(req.host, "lookup lost (profile)")
            ip, port = self.hosts.resolve(req.host, req.port, tls=req.tls)
            kwargs: dict[str, Any] = {}
            if req.tls:
                kwargs = {"ssl": self._tls, "server_hostname": req.host}
                kwargs["ssl_handshake_timeout"] = self.connect_timeout
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(ip, port, **kwargs), self.connect_timeout
            )
        except HostNotFound as exc:
            reason, error = "dns", exc
        except ConnectionRefusedError as exc:
            reason, error = "refused", exc
        except TimeoutError as exc:
            reason, error = "timeout", exc
        except ssl.SSLError as exc:
            reason, error = "tls", exc
        except ConnectionError as exc:
            reason, error = ("tls" if req.tls else "refused"), exc
        except OSError as exc:
            reason, error = "refused", exc
        except Exception as exc:  # a bug, not the network: still answer, or MIPSTART hangs
            log.exception("opening link %s to %s:%s failed", req.link, req.host, req.port)
            reason, error = "refused", exc
        if reason is not None:
            # the module only prints CONNECT FAIL; say why for whoever reads the log
            log.info(
                "link %s to %s:%s failed: %s (%r)", req.link, req.host, req.port, reason, error
            )
            state.closed = True
            self._report(req.link, a.LinkFailed(req.link, reason, req.attempt), t, state.gen)
            return
        if state.closed:  # closed while connecting
            writer.transport.abort()
            return
        with contextlib.suppress(Exception):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state.writer = writer
        state.connected = True
        self._report(req.link, a.LinkOpened(req.link, req.attempt), t, state.gen)
        assert self._loop is not None
        state.tasks.append(self._loop.create_task(self._read_mqtt(state, reader)))

    def _send(self, name: str, data: bytes, *, keepalive: int | None = None) -> None:
        state = self._links.get(name)
        if state is None or state.writer is None or state.closed:
            log.debug("dropping %d bytes for link %s: not open", len(data), name)
            return
        try:
            state.writer.write(data)
        except Exception:
            self._lost(state)
            return
        if keepalive:
            state.tasks.append(
                asyncio.get_running_loop().create_task(self._keepalive(state, keepalive))
            )

    def _lost(self, state: _Link) -> None:
        """The server (or the network) closed an open link."""
        if state.closed:
            return
        gen = state.gen
        self._teardown(state)
        self._report(state.name, a.LinkClosed(state.name, state.attempt), None, gen)

    async def _keepalive(self, state: _Link, seconds: int) -> None:
        while not state.closed:
            await asyncio.sleep(seconds)
            if state.closed or state.writer is None or state.writer.transport.is_closing():
                return  # (on simulated time the next ping can come before the EOF is read)
            try:
                state.writer.write(m.pingreq_bytes())
            except Exception:
                self._lost(state)
                return

    async def _read_mqtt(self, state: _Link, reader: asyncio.StreamReader) -> None:
        name = state.name
        framer = c.PacketReader()
        try:
            while not state.closed:
                data = await reader.read(65536)
                if not data or state.closed:
                    break
                for packet in framer.feed(data):
                    if state.closed:
                        break
                    self._on_packet(state, packet)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, c.MalformedPacket):
            log.debug("MQTT link %s: closed or undecodable data, closing", name, exc_info=True)
        except Exception:
            log.debug("MQTT link %s: failed, closing", name, exc_info=True)
        self._lost(state)

    def _on_packet(self, state: _Link, packet: c.Packet) -> None:
        """Report one packet from the server (and answer what the module answers itself)."""
        name, kind = state.name, type(packet)
        event: a.NetEvent
        if kind is c.Publish:
            p: c.Publish = packet  # type: ignore[assignment]
            if p.qos == 1 and p.packet_id is not None:
                self._write(state, m.puback_bytes(p.packet_id))
            elif p.qos == 2 and p.packet_id is not None:
                self._write(state, m.pubrec_bytes(p.packet_id))
            self._report(name, a.MqttMessage(p.topic, bytes(p.payload), p.qos), None, state.gen)
            return
        if kind is c.Connack:
            asked = self._asked.pop((name, "connack", 0), None)
            event = a.MqttConnack(packet.return_code)  # type: ignore[union-attr]
        elif kind is c.Pubrel:
            self._write(state, m.pubcomp_bytes(packet.packet_id))  # type: ignore[union-attr]
            return
        elif kind is c.Suback:
            pid = packet.packet_id  # type: ignore[union-attr]
            asked = self._asked.pop((name, "suback", pid), None)
            event = a.MqttSuback(pid, packet.return_codes)  # type: ignore[union-attr]
        elif kind in _PACKET_ACKS:
            what, make = _PACKET_ACKS[kind]
            pid = packet.packet_id  # type: ignore[union-attr]
            if kind is c.Pubrec:
                self._write(state, m.pubrel_bytes(pid))
            asked = self._asked.pop((name, what, pid), None)
            event = make(pid)
        else:  # PINGRESP and anything else: nothing to report
            return
        self._report(name, event, asked, state.gen)

    def _write(self, state: _Link, data: bytes) -> None:
        if state.writer is not None and not state.closed:
            try:
                state.writer.write(data)
            except Exception:
                self._lost(state)

    # ---------------------------------------------------------------- HTTP

    def _http(self, req: a.HttpRequest, t: float) -> None:
        state = self._new_link("http")
        state.host = req.url
        state.tls = req.url.strip().lower().startswith("https://")
        loop = self._loop
        assert loop is not None
        dns_fails = self._sampler is not None and self._sampler.lost("dns")

        def keep(conn: Any) -> None:
            state.http_conn = conn

        def work() -> None:
            try:
                result = perform(
                    req, self.hosts, self._tls, dns_fails=dns_fails, on_connection=keep
                )
            except Exception:  # perform() never raises; if it did, still answer
                log.exception("HTTP request %r failed", req)
                result = a.HttpResult(601)
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(self._http_done, state, result, t)

        threading.Thread(target=work, name="airlab-sim-http", daemon=True).start()

    def _http_done(self, state: _Link, result: a.HttpResult, t: float) -> None:
        state.http_conn = None
        if state.closed:
            return
        state.closed = True
        self._report("http", result, t, state.gen)
