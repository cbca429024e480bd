"""airlab's own subscriber on a RabbitMQ node: every message a device publishes goes to
the registry's message log, as the embedded broker logs it (RabbitMQ shows the auth
service no payload).

:class:`RabbitObserver` logs in as :data:`~airlab.cloud.rabbitmq_auth.OBSERVER_USER`
with the password the auth service was given, subscribes to ``#`` at QoS 1 (so a record
keeps the publisher's QoS) and writes one ``"up"`` :class:`~airlab.cloud.model.MessageRecord`
per message, the device read from the topic (a device may publish only on its own
topics, so the first ``…/<productKey>/<deviceName>/…`` pair the registry knows is its
sender). It reconnects every ``retry`` seconds while the node is away (a node started
after the service, a restart): what is published meanwhile is not logged. The publisher's
client id is not known to a subscriber: records carry none. A QoS 1 delivery is
acknowledged once it is queued for the log. A message the console published through
the node (announced with :meth:`RabbitObserver.expect`) is not logged again: the console
logged it as ``"down"``.

It speaks MQTT 3.1.1 with airlab's own codec (:mod:`airlab.mqtt.codec`) on one thread.

Example:
    >>> device_in_topic("/k1hipglLdjU/868488076506128/user/update", lambda pk, dn: pk[0] == "k")
    DeviceRef(product_key='k1hipglLdjU', device_name='868488076506128')
    >>> device_in_topic("/sys/a/b/thing/event/property/post", lambda pk, dn: pk == "a")
    DeviceRef(product_key='a', device_name='b')
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from airlab.cloud.auth import Rules
from airlab.cloud.model import DeviceRef, MessageRecord
from airlab.cloud.rabbitmq_auth import OBSERVER_USER
from airlab.mqtt import codec as c

__all__ = ["RabbitObserver", "device_in_topic"]

log = logging.getLogger(__name__)

_KEEPALIVE = 60  # seconds; a PINGREQ after half of it without traffic
_TOPIC_MEMO = 10_000  # topics whose device is remembered
_EXPECT_FOR = 10.0  # seconds a console publish is awaited before it is forgotten


def device_in_topic(topic: str, known: Callable[[str, str], bool]) -> DeviceRef | None:
    """The first pair of adjacent topic levels that ``known(productKey, deviceName)``
    accepts, as a device; None when no pair is."""
    levels = topic.split("/")
    for pk, dn in itertools.pairwise(levels):
        if pk and dn and known(pk, dn):
            return DeviceRef(pk, dn)
    return None


class RabbitObserver:
    """Subscribe to everything on the RabbitMQ node at ``host``:``port`` and log it.

    ``rules``: the auth service's rules (their registry gets the records); ``password``:
    the observer password given to :class:`~airlab.cloud.rabbitmq_auth.RabbitAuth`;
    ``client_id``: unique per observer (the cluster kicks a repeated one);
    ``on_uplink(device, topic, payload)``: called (on the observer's thread) after each
    logged message of a known device, for the platform's answers. :attr:`ready` is set
    while subscribed.
    """

    def __init__(
        self,
        rules: Rules,
        host: str,
        port: int,
        password: str,
        *,
        client_id: str | None = None,
        retry: float = 1.0,
        clock: Callable[[], float] = time.time,
        on_uplink: Callable[[DeviceRef, str, bytes], None] | None = None,
    ) -> None:
        self.rules = rules
        self.on_uplink = on_uplink
        self.address = (host, port)
        self.password = password
        self.client_id = client_id or f"airlab-observer-{socket.gethostname()}-{os.getpid()}"
        self.retry = retry
        self._clock = clock
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._devices: dict[str, DeviceRef] = {}
        self._expected: list[tuple[float, str, bytes]] = []  # (until, topic, payload)
        self._expected_lock = threading.Lock()

    def start(self) -> RabbitObserver:
        """Run in a background thread (connecting, and reconnecting, by itself)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="rabbitmq-observer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Disconnect and end the thread."""
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendall(c.encode(c.DISCONNECT))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def expect(self, topic: str, payload: bytes) -> None:
        """The console is publishing this message: when it arrives (within 10 s), do not
        log it as ``"up"``."""
        with self._expected_lock:
            self._expected.append((time.monotonic() + _EXPECT_FOR, topic, bytes(payload)))

    def take_expected(self, topic: str, payload: bytes) -> bool:
        """Whether this message was announced by :meth:`expect` (forgetting it if so)."""
        now = time.monotonic()
        with self._expected_lock:
            self._expected = [e for e in self._expected if e[0] > now]
            for i, (_, t, p) in enumerate(self._expected):
                if t == topic and p == payload:
                    del self._expected[i]
                    return True
        return False

    def __enter__(self) -> RabbitObserver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the session ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with socket.create_connection(self.address, timeout=5.0) as sock:
                    self._sock = sock
                    self._session(sock)
            except (OSError, c.MalformedPacket, ConnectionError) as exc:
                if not self._stop.is_set():
                    log.debug("observer %s: %s; again in %g s", self.address, exc, self.retry)
            finally:
                self._sock = None
                self.ready.clear()
            self._stop.wait(self.retry)

    def _session(self, sock: socket.socket) -> None:
        login = c.Connect(
            self.client_id, OBSERVER_USER, self.password.encode(), keepalive=_KEEPALIVE
        )
        sock.sendall(c.encode(login))
        reader = c.PacketReader()
        sock.settimeout(_KEEPALIVE / 2)
        while not self._stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                sock.sendall(c.encode(c.PINGREQ))
                continue
            if not data:
                raise ConnectionError("closed by the node")
            for packet in reader.feed(data):
                self._on_packet(sock, packet)

    def _on_packet(self, sock: socket.socket, packet: c.Packet) -> None:
        if isinstance(packet, c.Connack):
            if packet.return_code != 0:
                raise ConnectionError(f"CONNACK {packet.return_code}: check the password")
            sock.sendall(c.encode(c.Subscribe(1, (("#", 1),))))
        elif isinstance(packet, c.Suback):
            if 0x80 in packet.return_codes:
                raise ConnectionError("SUBSCRIBE '#' refused")
            self.ready.set()
        elif isinstance(packet, c.Publish):
            device = None
            if not self.take_expected(packet.topic, packet.payload):
                device = self.device_of(packet.topic)
                record = MessageRecord(
                    self._clock(), "up", packet.topic, packet.qos, packet.payload, True, device
                )
                self.rules.log_message(record)
            if packet.qos == 1 and packet.packet_id is not None:
                sock.sendall(c.encode(c.Puback(packet.packet_id)))
            if device is not None and self.on_uplink is not None:
                try:
                    self.on_uplink(device, packet.topic, packet.payload)
                except Exception:  # an answer that cannot go out must not stop the log
                    log.exception("the platform's answer to %s failed", packet.topic)

    def device_of(self, topic: str) -> DeviceRef | None:
        """The registry's device whose topic this is (see :func:`device_in_topic`)."""
        known = self._devices.get(topic)
        if known is not None:
            return known
        registry = self.rules.registry
        found = device_in_topic(topic, lambda pk, dn: registry.get_device(pk, dn) is not None)
        if found is not None:  # an unknown one is looked for again: it may be added
            if len(self._devices) >= _TOPIC_MEMO:
                self._devices.clear()
            self._devices[topic] = found
        return found
