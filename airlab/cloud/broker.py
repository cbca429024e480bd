"""The emulator's MQTT broker: our sans-IO core behind an asyncio shell, in its own thread.

:class:`~airlab.cloud.mqtt_core.BrokerCore` decides everything on the wire;
:class:`~airlab.cloud.mqtt_server.MqttServer` moves the bytes; this module runs both on a
:class:`~airlab.mqtt.loopthread.LoopThread` and offers thread-safe console operations.

The rules (:class:`airlab.cloud.model.CloudRules`, e.g. :class:`airlab.cloud.auth.Rules`)
decide; this broker enforces their decisions on the wire:

* CONNECT -> :class:`~airlab.cloud.model.ConnectRequest` -> ``rules.decide_connect`` -> a
  CONNACK with exactly ``decision.return_code`` (0-5), then the connection is closed when
  refused.  No session is touched before the decision (sessions are keyed by device,
  never by client id, so a refused CONNECT reusing a live client's id harms nobody).
* MQTT 3.1 (``MQIsdp``/3) and 3.1.1 are accepted; any other protocol name/level (MQTT 5
  included) gets CONNACK 1 and is closed.
* A TCP connection that sends no CONNECT within ``connect_timeout`` is closed (event
  ``timeout``).  A connection idle longer than ``decision.keepalive_limit`` (PUBLISH,
  SUBSCRIBE, PINGREQ and PUBACK reset the timer) is closed (event ``keepalive``).
* One session per device: a second accepted CONNECT of the same device gets the old
  connection ``/ext/notify`` ``{"title":"kick",...}`` (QoS 0) and closes it (event ``kicked``).
* ``decision.pushes`` go straight to the new client after CONNACK; ``decision.close_after``
  closes it that many seconds later (dynamic registration).
* SUBSCRIBE: at most 8 filters per packet and 100 per device, ``rules.may_subscribe`` per
  filter; refused filters get 0x80 and a :class:`ConnectionEvent` ``event="subscribe"``,
  ``accepted=False``, ``code=0x80`` with the reason and explanation; granted QoS is
  ``min(requested, 1)``.
* PUBLISH: QoS 2 closes the connection; retain is ignored (never stored); payloads over
  256 KB are discarded; ``rules.may_publish`` refusals are not routed but still PUBACKed;
  every uplink is logged as a ``MessageRecord`` (``accepted``/``reason``); accepted ones are
  routed (delivery QoS = the publisher's QoS: the platform ignores subscription QoS)
  and ``rules.replies_to`` answers are published on their topics.  Will messages are
  parsed and ignored.
* Every connect, refusal and disconnect is logged with ``rules.log_connection``; the
  ``reason`` of a disconnect uses the platform's log wording (``Device disconnect``,
  ``Connection reset by peer``, ``Kicked by the same device``, ``Keepalive timeout`` ...).

Rules are called on the broker's own thread (its event loop): they must be thread-safe and
quick (``log_message`` should be a queue put). ``log_connection``/``log_message`` take an
``on_commit`` callback (any thread) that they call once the record is stored for good: a
refusal (CONNACK, SUBACK 0x80) is answered and a QoS 1 uplink PUBACKed only then, so a
crash never loses an acknowledged message and a refusal is in the log before the device
learns of it.

Example:
    >>> from airlab.cloud.model import ConnectDecision
    >>> class DenyAll:  # a minimal rules object: refuses every CONNECT
    ...     def decide_connect(self, request):
    ...         return ConnectDecision.refuse(5, rule="demo", message="nobody gets in")
    ...     def log_connection(self, event, on_commit=None):
    ...         if on_commit:  # nothing to store: "committed" at once
    ...             on_commit()
    >>> with EmulatedBroker(DenyAll()) as broker:
    ...     broker.mqtt_port > 0, broker.online()
    (True, [])
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from airlab.cloud.model import CloudRules, DeviceRef, PublishCounts
from airlab.cloud.mqtt_core import UPLINK_LIMITS, BrokerCore
from airlab.cloud.mqtt_server import MqttServer
from airlab.mqtt.loopthread import LoopThread

__all__ = ["UPLINK_LIMITS", "EmulatedBroker"]

_CALL_TIMEOUT = 10.0


class EmulatedBroker:
    """An MQTT broker on its own thread and event loop, driven by cloud rules.

    Use as a context manager or call :meth:`start` / :meth:`stop`.  The bound ports are
    :attr:`mqtt_port` and :attr:`mqtts_port` (ask for port 0 to get a free one).
    """

    def __init__(
        self,
        rules: CloudRules,
        *,
        host: str = "127.0.0.1",
        mqtt_port: int = 0,
        mqtts_port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        uplink_limits: tuple[int, int] | None = UPLINK_LIMITS,
        runner: LoopThread | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """Prepare a broker; nothing is bound before :meth:`start`.

        ``mqtts_port`` is used only with ``ssl_context`` (default 0: a free port).
        ``uplink_limits`` are the platform's per-device uplink rates (QoS0, QoS1 messages
        per second, default 30 and 10): the excess is dropped silently, still PUBACKed,
        and logged ``Rate limit:<max>,current qps:<n>``.  ``None`` turns throttling off.

        ``runner``: a started :class:`~airlab.mqtt.loopthread.LoopThread` to serve on
        instead of a thread of the broker's own (it is left running on :meth:`stop`).
        The CONNECT window, keepalive, throttle windows and timers follow that loop's
        clock, so on a fleet's :class:`~airlab.fleet.clock.VirtualTimeLoop` they run on
        simulated time. ``wall`` stamps the records (epoch seconds).
        """
        self.rules = rules
        self.host = host
        self._want_mqtt = mqtt_port
        self._want_mqtts = (mqtts_port or 0) if ssl_context is not None else None
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.uplink_limits = uplink_limits
        self.mqtt_port: int | None = None
        self.mqtts_port: int | None = None
        self.wall = wall
        self._given = runner
        self._runner: LoopThread | None = None
        self._server: MqttServer | None = None
        self._lock = threading.Lock()

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, timeout: float = 10.0) -> EmulatedBroker:
        """Bind the listeners and serve; returns once both listeners are bound."""
        with self._lock:
            if self._runner is not None:
                raise RuntimeError("broker already started")
            runner = self._given or LoopThread("airlab-mqtt-broker").start(timeout)
            self._runner = runner
            try:
                server, ports = runner.run(self._astart(), timeout)
            except BaseException:
                if runner is not self._given:
                    runner.stop()
                self._runner = None
                raise
            self._server = server
            self.mqtt_port, self.mqtts_port = ports
        return self

    async def _astart(self) -> tuple[MqttServer, tuple[int, int | None]]:
        loop = asyncio.get_running_loop()
        core = BrokerCore(
            self.rules,
            clock=loop.time,
            wall=self.wall,
            connect_timeout=self.connect_timeout,
            uplink_limits=self.uplink_limits,
        )
        server = MqttServer(core, self.rules)
        try:
            # the plain port also takes TLS (first byte decides), like the platform's 1883
            mqtt = await server.listen(self.host, self._want_mqtt, sniff_tls=self.ssl_context)
            mqtts = None
            if self.ssl_context is not None:
                mqtts = await server.listen(self.host, self._want_mqtts or 0, self.ssl_context)
        except BaseException:
            await server.close()  # do not leave the first listener open
            raise
        return server, (mqtt, mqtts)

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection and both listeners, then end the thread (idempotent)."""
        with self._lock:
            runner, server = self._runner, self._server
            if runner is None:
                return
            self._server = None
            if server is not None:
                try:
                    runner.run(server.close(), timeout)
                except Exception:
                    import logging

                    logging.getLogger(__name__).exception("broker shutdown failed")
            if runner is not self._given:
                runner.stop(timeout)
            self._runner = None
            self.mqtt_port = self.mqtts_port = None

    def __enter__(self) -> EmulatedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"mqtt={self.mqtt_port} mqtts={self.mqtts_port}" if self.running else "stopped"
        return f"<EmulatedBroker {self.host} {state}>"

    # ---- thread-safe operations ----------------------------------------------------------

    def _server_and_runner(self) -> tuple[MqttServer, LoopThread]:
        server, runner = self._server, self._runner
        if server is None or runner is None:
            raise RuntimeError("broker is not running")
        return server, runner

    def publish(self, topic: str, payload: bytes | str, qos: int = 0) -> int:
        """Publish from the console to the subscribers of ``topic`` ("down" in the message log).

        QoS is capped at 1; returns the number of clients it was sent to.
        """
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        server, runner = self._server_and_runner()
        return runner.call(lambda: server.publish(topic, data, qos), _CALL_TIMEOUT)

    def publish_counts(self, topic: str, payload: bytes | str, qos: int = 0) -> PublishCounts:
        """:meth:`publish`, also saying for how many offline clean-session-0 sessions a
        QoS 1 message was queued (``airlab cloud publish`` prints both)."""
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        server, runner = self._server_and_runner()
        delivered, queued = runner.call(
            lambda: server.publish_counts(topic, data, qos), _CALL_TIMEOUT
        )
        return PublishCounts(delivered, queued)

    def online(self) -> list[tuple[DeviceRef, str]]:
        """The connected devices and their MQTT client ids."""
        server, runner = self._server_and_runner()
        return runner.call(server.core.online, _CALL_TIMEOUT)

    def disconnect(self, device: DeviceRef) -> bool:
        """Close the connection of ``device`` from the server side; False if it is offline."""
        server, runner = self._server_and_runner()
        return runner.call(lambda: server.disconnect(device), _CALL_TIMEOUT)

    def info(self) -> dict[str, Any]:
        """Listener addresses, for an endpoint file."""
        return {"host": self.host, "mqtt_port": self.mqtt_port, "mqtts_port": self.mqtts_port}
