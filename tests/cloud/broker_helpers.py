"""Test helpers for the broker: an allow-list rules object, a paho wrapper, TLS material."""

from __future__ import annotations

import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from airlab.cloud.model import (
    ConnectDecision,
    ConnectionEvent,
    ConnectKind,
    ConnectRequest,
    DeviceRef,
    Explanation,
    MessageRecord,
    Permission,
    Push,
)

PK = "pk1"
WAIT = 5.0


class Recorder:
    """Thread-safe log of what the broker reported, with waits instead of sleeps."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.connections: list[ConnectionEvent] = []
        self.messages: list[MessageRecord] = []
        self.connects: list[tuple[DeviceRef, ConnectKind]] = []

    def log_connection(
        self, event: ConnectionEvent, on_commit: Callable[[], None] | None = None
    ) -> None:
        with self._cond:
            self.connections.append(event)
            self._cond.notify_all()
        if on_commit is not None:  # recorded in memory: "committed" at once
            on_commit()

    def log_message(
        self, record: MessageRecord, on_commit: Callable[[], None] | None = None
    ) -> None:
        with self._cond:
            self.messages.append(record)
            self._cond.notify_all()
        if on_commit is not None:
            on_commit()

    def wait_for(self, items: str, pred: Callable[[Any], bool], timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in getattr(self, items):
                    if pred(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching {items} within {timeout} s: {getattr(self, items)!r}"
                    )
                self._cond.wait(left)

    def event(self, name: str, timeout: float = WAIT, **match: Any) -> ConnectionEvent:
        def pred(e: ConnectionEvent) -> bool:
            return e.event == name and all(getattr(e, k) == v for k, v in match.items())

        return self.wait_for("connections", pred, timeout)

    def message(self, timeout: float = WAIT, **match: Any) -> MessageRecord:
        return self.wait_for(
            "messages", lambda m: all(getattr(m, k) == v for k, v in match.items()), timeout
        )


@dataclass
class AllowRules(Recorder):
    """Rules by allow-list: username -> (password, decision); topics under ``/pk/dn/``."""

    accounts: dict[str, tuple[bytes, ConnectDecision]] = field(default_factory=dict)
    forced: dict[str, ConnectDecision] = field(default_factory=dict)  # client id -> decision
    forbidden_pub: set[str] = field(default_factory=set)
    replies: dict[str, list[Push]] = field(default_factory=dict)
    requests: list[ConnectRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        Recorder.__init__(self)

    def add(
        self,
        name: str,
        *,
        keepalive_limit: float | None = None,
        pushes: tuple[Push, ...] = (),
        close_after: float | None = None,
    ) -> DeviceRef:
        device = DeviceRef(PK, name)
        self.accounts[name] = (
            f"pw-{name}".encode(),
            ConnectDecision(
                0,
                device=device,
                kind=ConnectKind.DEVICE,
                keepalive_limit=keepalive_limit,
                pushes=pushes,
                close_after=close_after,
            ),
        )
        return device

    def decide_connect(self, request: ConnectRequest) -> ConnectDecision:
        self.requests.append(request)
        if request.client_id in self.forced:
            return self.forced[request.client_id]
        account = self.accounts.get(request.username or "")
        if account is None:
            return ConnectDecision.refuse(5, rule="unknown_device", message="no such device")
        if account[0] != request.password:
            return ConnectDecision.refuse(4, rule="signature", message="password mismatch")
        return account[1]

    def may_subscribe(self, device: DeviceRef, topic_filter: str) -> Permission:
        if topic_filter.startswith(f"/{device.product_key}/{device.device_name}/"):
            return Permission(True)
        return Permission(False, Explanation("topic_permission", f"not yours: {topic_filter}"))

    def may_publish(self, device: DeviceRef, topic: str, qos: int) -> Permission:
        mine = topic.startswith(f"/{device.product_key}/{device.device_name}/")
        if mine and topic not in self.forbidden_pub:
            return Permission(True)
        return Permission(False, Explanation("topic_permission", f"may not publish {topic}"))

    def replies_to(self, device: DeviceRef, topic: str, payload: bytes) -> list[Push]:
        return list(self.replies.get(topic, ()))

    def connected(self, device: DeviceRef, kind: ConnectKind) -> None:
        with self._cond:
            self.connects.append((device, kind))


def topic(name: str, rest: str = "user/get") -> str:
    return f"/{PK}/{name}/{rest}"


class Client:
    """A paho 2.x client whose callbacks feed events and queues (no sleeps)."""

    def __init__(
        self,
        port: int,
        name: str | None = None,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | bytes | None = None,
        keepalive: int = 60,
        tls: ssl.SSLContext | None = None,
        protocol: int = mqtt.MQTTv311,
        clean: bool = True,
        reconnect: bool = False,
    ) -> None:
        self.port = port
        self.keepalive = keepalive
        kwargs: dict[str, Any] = {"protocol": protocol, "reconnect_on_failure": reconnect}
        if protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id if client_id is not None else (name or "x"),
            **kwargs,
        )
        if name is not None and username is None:
            username = name
            password = f"pw-{name}" if password is None else password
        if username is not None:
            self.c.username_pw_set(username, password)
        if tls is not None:
            self.c.tls_set_context(tls)
        self.connack = threading.Event()
        self.reason: Any = None
        self.session_present: bool | None = None
        self.closed = threading.Event()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subacks: dict[int, list[int]] = {}
        self.acked: set[int] = set()
        self._cond = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish

    # callbacks (paho thread)
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self.reason = rc
        self.session_present = bool(getattr(flags, "session_present", False))
        if rc.is_failure:
            client.disconnect()
        self.connack.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self.closed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.put(msg)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: list[Any], props: Any
    ) -> None:
        with self._cond:
            self.subacks[mid] = [c.value for c in codes]
            self._cond.notify_all()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any
    ) -> None:
        with self._cond:
            self.acked.add(mid)
            self._cond.notify_all()

    # actions (test thread)
    def connect(self, timeout: float = WAIT) -> str:
        """Connect; returns the CONNACK reason name (e.g. ``"Success"``)."""
        self.c.connect("127.0.0.1", self.port, self.keepalive)
        self.c.loop_start()
        assert self.connack.wait(timeout), "no CONNACK"
        return str(self.reason)

    def subscribe(self, *filters: tuple[str, int] | str, timeout: float = WAIT) -> list[int]:
        subs = [(f, 1) if isinstance(f, str) else f for f in filters]
        _, mid = self.c.subscribe(subs)
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self.subacks, timeout), "no SUBACK"
            return self.subacks[mid]

    def publish(
        self, topic_: str, payload: bytes | str, qos: int = 1, timeout: float = WAIT, **kw: Any
    ) -> None:
        info = self.c.publish(topic_, payload, qos, **kw)
        if qos:
            with self._cond:
                assert self._cond.wait_for(lambda: info.mid in self.acked, timeout), "no PUBACK"

    def get(self, timeout: float = WAIT) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def nothing(self, timeout: float = 0.2) -> bool:
        """True when no message is waiting (used after a synchronising round trip)."""
        try:
            msg = self.messages.get(timeout=timeout)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected message {msg.topic} {msg.payload!r}")

    def stop(self) -> None:
        """Send DISCONNECT (if connected), wait until it is out, end paho's thread."""
        if not self.closed.is_set():
            self.c.disconnect()
            self.closed.wait(WAIT)
        self.c.loop_stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def raw_connect(port: int, timeout: float = WAIT) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s


def connect_packet(
    client_id: str,
    username: str | None = None,
    password: bytes | None = None,
    keepalive: int = 60,
    name: str = "MQTT",
    level: int = 4,
    clean: bool = True,
) -> bytes:
    def s(b: bytes) -> bytes:
        return len(b).to_bytes(2, "big") + b

    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0)
    flags |= 0x40 if password is not None else 0
    body = s(name.encode()) + bytes((level, flags)) + keepalive.to_bytes(2, "big")
    if level == 5:
        body += b"\x00"  # no properties
    body += s(client_id.encode())
    if username is not None:
        body += s(username.encode())
    if password is not None:
        body += s(password)
    return b"\x10" + bytes((len(body),)) + body


def read_until_eof(sock: socket.socket, timeout: float = WAIT) -> bytes:
    """Everything the server sends until it closes (raises on timeout)."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk
