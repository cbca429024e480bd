"""The console's publisher on a RabbitMQ node: what ``airlab cloud publish`` (发布消息)
does under ``airlab cloud serve --engine rabbitmq``.

:class:`RabbitPublisher` logs in as :data:`~airlab.cloud.rabbitmq_auth.CONSOLE_USER`
(the password the auth service was given; that user may publish to any topic and
subscribe to none) and publishes over MQTT 3.1.1 with airlab's own codec, like the
embedded broker's console publish. One connection is kept (keepalive off, so an idle one
is not closed) and made again once when it turns out dead (a node restart): a QoS 1
publish answers when the node sent its PUBACK, a QoS 0 one when it is written.

Why MQTT and not RabbitMQ's management API: the node's only authentication backend is
airlab's HTTP service (``auth_backends.1 = http``), so a management user would be one
more user of that service anyway, and the management plugin would cost every node
another listener and its memory; an MQTT publish reaches the devices' subscriptions by
the same exchange (``amq.topic``) and routing-key spelling as theirs do.

RabbitMQ does not say how many subscribers a message reached: :meth:`publish` returns
None (the admin route answers ``"result": null``).

Example:
    >>> RabbitPublisher("127.0.0.1", 1, "pw", timeout=0.5).publish("/a/b/user/get", b"x", 0)
    Traceback (most recent call last):
    ...
    ConnectionRefusedError: [Errno 111] Connection refused
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
from collections.abc import Callable

from airlab.cloud.rabbitmq_auth import CONSOLE_USER
from airlab.mqtt import codec as c

__all__ = ["RabbitPublisher"]


class RabbitPublisher:
    """Publish to the RabbitMQ node at ``host``:``port`` as the console.

    ``password``: the ``console_password`` given to
    :class:`~airlab.cloud.rabbitmq_auth.RabbitAuth`; ``timeout``: seconds for the
    connection, the CONNACK and a PUBACK. Safe to share between threads (one publish at
    a time).
    """

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        client_id: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.address = (host, port)
        self.password = password
        self.client_id = client_id or f"airlab-console-{socket.gethostname()}-{os.getpid()}"
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader = c.PacketReader()
        self._ids = itertools.cycle(range(1, 65536))
        self._lock = threading.Lock()

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Publish ``payload`` to ``topic`` at ``qos`` (0 or 1); raises
        :class:`OSError` (:class:`ConnectionError`) when the node cannot be reached or
        closes the connection (RabbitMQ's answer to a refused publish)."""
        with self._lock:
            if self._sock is not None and not _open(self._sock):
                self._close()
            try:
                self._publish(topic, payload, qos)
            except (OSError, c.MalformedPacket):
                self._close()
                self._publish(topic, payload, qos)  # once more, on a new connection

    def close(self) -> None:
        """Disconnect (the next publish connects again)."""
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.sendall(c.encode(c.DISCONNECT))
            self._close()

    def _publish(self, topic: str, payload: bytes, qos: int) -> None:
        sock = self._sock or self._connect()
        packet_id = next(self._ids) if qos else None
        sock.sendall(c.encode(c.Publish(topic, bytes(payload), qos, packet_id)))
        if packet_id is not None:
            self._wait(sock, lambda p: isinstance(p, c.Puback) and p.packet_id == packet_id)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=self.timeout)
        self._sock, self._reader = sock, c.PacketReader()
        login = c.Connect(self.client_id, CONSOLE_USER, self.password.encode(), keepalive=0)
        sock.sendall(c.encode(login))
        ack = self._wait(sock, lambda p: isinstance(p, c.Connack))
        if isinstance(ack, c.Connack) and ack.return_code != 0:
            raise ConnectionRefusedError(f"CONNACK {ack.return_code} for {CONSOLE_USER}")
        return sock

    def _wait(self, sock: socket.socket, wanted: Callable[[c.Packet], bool]) -> c.Packet:
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError("the node closed the console's connection")
            for packet in self._reader.feed(data):
                if wanted(packet):
                    return packet

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _open(sock: socket.socket) -> bool:
    """False when the peer has closed ``sock`` (a read would say end of stream)."""
    timeout = sock.gettimeout()
    try:
        sock.settimeout(0.0)
        try:
            return sock.recv(1, socket.MSG_PEEK) != b""
        finally:
            sock.settimeout(timeout)
    except BlockingIOError:
        return True
    except OSError:
        return False
