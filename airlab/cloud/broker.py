"""The emulator's MQTT broker: amqtt in its own thread, carrying out the platform rules.

The rules (:class:`airlab.cloud.model.CloudRules`, e.g. :class:`airlab.cloud.auth.Rules`)
decide; this broker enforces their decisions on the wire:

* CONNECT -> :class:`~airlab.cloud.model.ConnectRequest` -> ``rules.decide_connect`` -> a
  CONNACK with exactly ``decision.return_code`` (0-5), then the connection is closed when
  refused.  No session is touched before the decision (amqtt 0.12.1 wipes the session of a
  clean-session client id before authenticating; that is fixed here).
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
import concurrent.futures
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from airlab.cloud._amqtt_patch import UPLINK_LIMITS, EmuBroker
from airlab.cloud.model import CloudRules, DeviceRef

__all__ = ["EmulatedBroker"]

_T = TypeVar("_T")
_CALL_TIMEOUT = 10.0


def _quiet_amqtt() -> None:
    """amqtt logs routine events (bare TCP probes, disconnects) at INFO/ERROR: keep WARNING+."""
    for name in ("amqtt", "transitions"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


class EmulatedBroker:
    """An MQTT broker (amqtt) on its own thread and event loop, driven by cloud rules.

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
    ) -> None:
        """Prepare a broker; nothing is bound before :meth:`start`.

        ``mqtts_port`` is used only with ``ssl_context`` (default 0: a free port).
        ``uplink_limits`` are the platform's per-device uplink rates (QoS0, QoS1 messages
        per second, default 30 and 10): the excess is dropped silently, still PUBACKed,
        and logged ``Rate limit:<max>,current qps:<n>``.  ``None`` turns throttling off.
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: EmuBroker | None = None
        self._lock = threading.Lock()

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._broker is not None

    def start(self, timeout: float = 10.0) -> EmulatedBroker:
        """Bind the listeners and serve; returns once both listeners are bound."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("broker already started")
            _quiet_amqtt()
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="airlab-mqtt-broker", daemon=True)
            thread.start()
            ready.wait(timeout)
            self._loop, self._thread = loop, thread
            try:
                broker = asyncio.run_coroutine_threadsafe(self._astart(), loop).result(timeout)
            except BaseException:
                self._stop_loop()
                raise
            self._broker = broker
            self.mqtt_port = broker.bound["mqtt"]
            self.mqtts_port = broker.bound.get("mqtts")
        return self

    async def _astart(self) -> EmuBroker:
        listeners: dict[str, tuple[str, int, ssl.SSLContext | None]] = {
            "mqtt": (self.host, self._want_mqtt, None)
        }
        if self.ssl_context is not None:
            listeners["mqtts"] = (self.host, self._want_mqtts or 0, self.ssl_context)
        broker = EmuBroker(self.rules, listeners, self.connect_timeout, asyncio.get_running_loop())
        broker.uplink_limits = self.uplink_limits
        broker.sniff_tls = self.ssl_context  # the plain port also takes TLS, like 1883
        await broker.start()
        return broker

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection and both listeners, then end the thread (idempotent)."""
        with self._lock:
            if self._thread is None or self._loop is None:
                return
            broker, self._broker = self._broker, None
            if broker is not None:
                try:
                    asyncio.run_coroutine_threadsafe(broker.shutdown(), self._loop).result(timeout)
                except Exception:
                    logging.getLogger(__name__).exception("broker shutdown failed")
            self._stop_loop(timeout)
            self.mqtt_port = self.mqtts_port = None

    def _stop_loop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=2)

        if not loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(drain(), loop).result(timeout)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

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

    def _call(self, fn: Callable[[EmuBroker], _T]) -> _T:
        broker, loop, thread = self._broker, self._loop, self._thread
        if broker is None or loop is None or thread is None:
            raise RuntimeError("broker is not running")
        if threading.get_ident() == thread.ident:
            return fn(broker)
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(broker))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(_CALL_TIMEOUT)

    def publish(self, topic: str, payload: bytes | str, qos: int = 0) -> int:
        """Publish from the console to the subscribers of ``topic`` ("down" in the message log).

        QoS is capped at 1; returns the number of clients it was sent to.
        """
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, not {qos!r}")
        return self._call(lambda b: b.console_publish(topic, data, qos))

    def online(self) -> list[tuple[DeviceRef, str]]:
        """The connected devices and their MQTT client ids."""
        return self._call(lambda b: [(c.device, c.client_id) for c in b.conns.values()])

    def disconnect(self, device: DeviceRef) -> bool:
        """Close the connection of ``device`` from the server side; False if it is offline."""

        def close(b: EmuBroker) -> bool:
            conn = b.conns.get(str(device))
            if conn is None:
                return False
            conn.close("console")
            return True

        return self._call(close)

    def info(self) -> dict[str, Any]:
        """Listener addresses, for an endpoint file."""
        return {"host": self.host, "mqtt_port": self.mqtt_port, "mqtts_port": self.mqtts_port}
