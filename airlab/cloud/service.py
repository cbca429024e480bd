"""The cloud emulator as one service: registry, rules, HTTP(S) endpoints and the MQTT
broker started together, plus the console operations a notebook uses.

:class:`CloudEmulator` binds four listeners (HTTP, HTTPS, MQTT, MQTT over TLS) on
``host`` (127.0.0.1 unless told otherwise; port 0 picks a free port), exposes them as
:attr:`CloudEmulator.endpoints` (the JSON that ``airlab cloud serve`` writes and that
the simulator's host table reads) and offers the console (控制台) operations: create
products and devices, publish to a device topic, list online devices, ResetThing, read
the connection and message logs as DataFrames, and explain refusals.

Endpoints JSON (``write_endpoints``)::

    {"http": "http://127.0.0.1:P", "https": "https://127.0.0.1:P",
     "mqtt": "127.0.0.1:P", "mqtts": "127.0.0.1:P",
     "bind": "127.0.0.1", "address": "127.0.0.1",
     "admin": {"url": "http://127.0.0.1:P/admin", "token": "..."},
     "ca_pem": "/path/to/<endpoints>.ca.pem", "ca": "-----BEGIN CERTIFICATE-----...",
     "db": "/abs/path.db" | null, "pid": 1234, "hostname": "...", "region": "cn-shanghai",
     "fixture": "tutorial" | null, "started": 1700000000.0, "version": 1}

When the service binds every interface (``host="0.0.0.0"``), the URLs carry
``address``: the ``advertise`` argument if given, else the host's primary IPv4 address
(the one its default route uses; 127.0.0.1 when there is none). That address is added
to the generated certificate, so a module in the room can verify it.

Example:
    >>> with CloudEmulator() as cloud:
    ...     sorted(k for k in cloud.endpoints if k in ("http", "https", "mqtt", "mqtts"))
    ...     cloud.add_device("k1hipglLdjU", "dev2", "0123456789abcdef0123456789abcdef")
    ['http', 'https', 'mqtt', 'mqtts']
    '0123456789abcdef0123456789abcdef'
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from airlab.aliyun import DEFAULT_REGION
from airlab.cloud.broker import EmulatedBroker
from airlab.cloud.console import CloudConsole, OnlineDevice
from airlab.cloud.console import DeviceArg as DeviceArg
from airlab.cloud.fixtures import FIXTURES
from airlab.cloud.http_api import HttpEndpoints
from airlab.cloud.model import DeviceRef, PublishCounts
from airlab.cloud.mqtt_core import UPLINK_LIMITS
from airlab.cloud.refusals import explain_refusal as explain_refusal
from airlab.cloud.registry import Registry
from airlab.cloud.service_support import (
    ServiceRules,
    _check_port,
    primary_address,
    write_json_atomic,
)
from airlab.cloud.tls import DEFAULT_HOSTNAMES, GeneratedCertificate, server_certificate
from airlab.errors import UsageError
from airlab.mqtt.loopthread import LoopThread

__all__ = [
    "ENDPOINTS_VERSION",
    "CloudConsole",
    "CloudEmulator",
    "OnlineDevice",
    "ServiceRules",
    "primary_address",
    "write_json_atomic",
]

ENDPOINTS_VERSION = 1
"""Version of the endpoints JSON layout."""

_ANY_HOSTS = ("", "0.0.0.0", "::")
_PORT_FIELDS = ("http_port", "https_port", "mqtt_port", "mqtts_port")


class CloudEmulator(CloudConsole):
    """The whole Alibaba Cloud IoT emulator: registry + rules + HTTP(S) + MQTT(S).

    ``db``: registry file (``":memory:"`` by default). ``fixture``: a name from
    :data:`airlab.cloud.fixtures.FIXTURES` loaded at start (``"tutorial"``) or None.
    Ports: 0 picks a free one. ``advertise``: the address written into the endpoints
    when ``host`` binds every interface (default: the primary IPv4 address).
    ``clock`` (epoch seconds) is what the rules, the registry and the broker's records
    read (token expiry, NTP answers, log times). ``broker_runner``: a started
    :class:`~airlab.mqtt.loopthread.LoopThread` for the MQTT broker instead of a thread of
    its own; its CONNECT window, keepalive and throttle then follow that loop's clock (a
    fleet on simulated time passes its :class:`~airlab.fleet.clock.VirtualTimeLoop`).

    :meth:`start` / :meth:`stop` may be called again (a file registry keeps devices and
    logs across restarts). Attributes while running: :attr:`registry`, :attr:`rules`,
    :attr:`broker`, :attr:`http`, :attr:`certificate` (the CA PEM clients trust),
    :attr:`admin_token`.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] = ":memory:",
        *,
        host: str = "127.0.0.1",
        fixture: str | None = "tutorial",
        http_port: int = 0,
        https_port: int = 0,
        mqtt_port: int = 0,
        mqtts_port: int = 0,
        connect_timeout: float = 5.0,
        connect_rate_limit: int | None = None,
        uplink_limits: tuple[int, int] | None = UPLINK_LIMITS,
        advertise: str | None = None,
        clock: Callable[[], float] = time.time,
        broker_runner: LoopThread | None = None,
    ) -> None:
        if fixture is not None and fixture not in FIXTURES:
            known = ", ".join(sorted(FIXTURES))
            raise UsageError("fixture", f"unknown fixture {fixture!r} (known: {known})")
        self.ports = {
            name: _check_port(value, name)
            for name, value in zip(
                _PORT_FIELDS, (http_port, https_port, mqtt_port, mqtts_port), strict=True
            )
        }
        if not isinstance(host, str):
            raise UsageError("host", f"must be an IP address, not {host!r}")
        if host not in _ANY_HOSTS and host != "localhost":
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise UsageError("host", f"{host!r} is not an IP address") from None
        if advertise is not None:
            try:
                ipaddress.ip_address(advertise)
            except ValueError:
                raise UsageError("advertise", f"{advertise!r} is not an IP address") from None
        if not connect_timeout > 0:
            raise UsageError("connect_timeout", "must be a positive number of seconds")
        self.db = str(db) if str(db) == ":memory:" else str(Path(db).expanduser().resolve())
        if self.db != ":memory:" and not Path(self.db).parent.is_dir():
            raise UsageError("db", f"the folder of {self.db} does not exist")
        self.host = host
        self.fixture = fixture
        self.connect_timeout = connect_timeout
        self.connect_rate_limit = connect_rate_limit
        self.uplink_limits = uplink_limits
        self.clock = clock
        self.broker_runner = broker_runner
        self.address = (
            (advertise or primary_address())
            if host in _ANY_HOSTS
            else ("127.0.0.1" if host == "localhost" else host)
        )
        self.registry: Registry | None = None  # type: ignore[assignment]
        self.rules: ServiceRules | None = None
        self.broker: EmulatedBroker | None = None
        self.http: HttpEndpoints | None = None
        self.admin_token: str | None = None
        self._cert: GeneratedCertificate | None = None
        self._started: float | None = None
        self._written: list[tuple[Path, Path]] = []
        self._lock = threading.RLock()

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.http is not None

    def start(self) -> CloudEmulator:
        """Open the registry, load the fixture and bind the four listeners."""
        with self._lock:
            if self.running:
                raise RuntimeError("the cloud emulator is already running")
            self._check_ports_free()
            try:
                self._start()
            except BaseException:
                self.stop()
                raise
        return self

    def _check_ports_free(self) -> None:
        bind = "0.0.0.0" if self.host in _ANY_HOSTS else self.host
        for name, port in self.ports.items():
            if port == 0:
                continue
            family = socket.AF_INET6 if ":" in bind else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((bind, port))
                except OSError as exc:
                    raise UsageError(
                        name, f"cannot listen on {bind}:{port}: {exc.strerror or exc}"
                    ) from None

    def _start(self) -> None:
        try:
            registry = Registry(self.db, clock=self.clock)
        except Exception as exc:
            raise UsageError("db", f"cannot open the registry {self.db}: {exc}") from None
        self.registry = registry
        if self.fixture is not None:
            FIXTURES[self.fixture](registry)
        self.rules = ServiceRules(
            registry, connect_rate_limit=self.connect_rate_limit, clock=self.clock
        )
        names = DEFAULT_HOSTNAMES
        if self.address not in names:
            names = (*names, self.address)
        self._cert = server_certificate(names)
        from airlab.cloud.tls import make_server_context

        context = make_server_context(certificate=self._cert)
        bind = "0.0.0.0" if self.host in ("", "0.0.0.0") else self.host
        self.broker = EmulatedBroker(
            self.rules,
            host=bind,
            mqtt_port=self.ports["mqtt_port"],
            mqtts_port=self.ports["mqtts_port"],
            ssl_context=context,
            connect_timeout=self.connect_timeout,
            uplink_limits=self.uplink_limits,
            runner=self.broker_runner,
            wall=self.clock,
        ).start()
        self.admin_token = secrets.token_urlsafe(24)
        http = HttpEndpoints(
            self.rules,
            host=bind,
            http_port=self.ports["http_port"],
            https_port=self.ports["https_port"],
            ssl_context=context,
            admin_token=self.admin_token,
            publisher=self._admin_publish,
        )
        http.console = self  # the admin console routes (/admin/online, /admin/reset ...)
        http.start()
        self.http = http
        self._started = time.time()

    def stop(self) -> None:
        """Stop the listeners, flush and close the registry, remove written files
        (idempotent)."""
        with self._lock:
            for path, ca in self._written:  # first, so nobody finds a service going away
                self._remove_written(path, ca)
            self._written = []
            http, self.http = self.http, None
            broker, self.broker = self.broker, None
            registry, self.registry = self.registry, None
            if http is not None:
                http.stop()
            if broker is not None:
                broker.stop()
            if registry is not None:
                registry.close()
            self.rules = None
            self.admin_token = None

    def __enter__(self) -> CloudEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        if not self.running:
            return f"<CloudEmulator {self.db} stopped>"
        ep = self.endpoints
        return f"<CloudEmulator {self.db} http={ep['http']} mqtt={ep['mqtt']}>"

    def _need(self) -> tuple[Registry, EmulatedBroker, HttpEndpoints]:
        registry, broker, http = self.registry, self.broker, self.http
        if registry is None or broker is None or http is None:
            raise UsageError("cloud", "the cloud emulator is not running: call start() first")
        return registry, broker, http

    # -- endpoints ----------------------------------------------------------------------

    @property
    def certificate(self) -> str:
        """The CA certificate (PEM) that TLS clients must trust."""
        if self._cert is None:
            raise UsageError("cloud", "the cloud emulator has not been started")
        return self._cert.ca_pem

    def ssl_client_context(self) -> Any:
        """An :class:`ssl.SSLContext` trusting :attr:`certificate` (for Python clients)."""
        import ssl

        return ssl.create_default_context(cadata=self.certificate)

    @property
    def endpoints(self) -> dict[str, Any]:
        """Where the listeners are (see the module docstring for the layout)."""
        _, broker, http = self._need()
        a = self.address if ":" not in self.address else f"[{self.address}]"
        http_url = f"http://{a}:{http.http_port}"
        return {
            "http": http_url,
            "https": f"https://{a}:{http.https_port}",
            "mqtt": f"{a}:{broker.mqtt_port}",
            "mqtts": f"{a}:{broker.mqtts_port}",
            "bind": self.host,
            "address": self.address,
            "admin": {"url": f"{http_url}/admin", "token": self.admin_token},
            "ca_pem": str(self._written[-1][1]) if self._written else None,
            "ca": self.certificate,
            "db": None if self.db == ":memory:" else self.db,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "region": DEFAULT_REGION,
            "fixture": self.fixture,
            "started": self._started,
            "version": ENDPOINTS_VERSION,
        }

    def write_endpoints(self, path: str | os.PathLike[str]) -> Path:
        """Write :attr:`endpoints` atomically to ``path`` (mode 0600: it holds the admin
        token) and the CA beside it (``<name>.ca.pem``); :meth:`stop` removes both."""
        target = Path(path).expanduser().resolve()
        data = self.endpoints
        ca_path = target.with_name(target.stem + ".ca.pem")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_ca = ca_path.with_name(f".{ca_path.name}.{os.getpid()}.tmp")
            write_ca.write_text(self.certificate, encoding="ascii")
            os.replace(write_ca, ca_path)
            data["ca_pem"] = str(ca_path)
            write_json_atomic(target, data)
        except OSError as exc:
            raise UsageError(
                "endpoints_file", f"cannot write {target}: {exc.strerror or exc}"
            ) from None
        self._written.append((target, ca_path))
        return target

    def _remove_written(self, path: Path, ca: Path) -> None:
        """Remove an endpoints file only if it is still ours (another service may have
        replaced it)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                path.unlink()
            with contextlib.suppress(OSError):
                ca.unlink()

    # -- console ------------------------------------------------------------------------

    def _admin_publish(self, topic: str, payload: bytes, qos: int) -> PublishCounts:
        return self.publish_counts(topic, payload, qos)

    def publish(self, topic: str, payload: str | bytes, qos: int = 0) -> int:
        """Publish to a device topic like the console's 发布消息 (QoS 0 or 1); returns the
        number of connected clients it was delivered to (0 is logged "no subscriber")."""
        return self.publish_counts(topic, payload, qos).delivered

    def publish_counts(self, topic: str, payload: str | bytes, qos: int = 0) -> PublishCounts:
        """:meth:`publish`, answering how many connected clients got the message and, when
        the broker says, for how many offline clean-session-0 sessions it was queued."""
        _, broker, _ = self._need()
        if not isinstance(topic, str) or not topic.startswith("/") or any(c in topic for c in "+#"):
            raise UsageError("topic", f"give a full topic such as /pk/dn/user/get, not {topic!r}")
        if isinstance(qos, bool) or qos not in (0, 1):
            raise UsageError("qos", f"must be 0 or 1, not {qos!r}")
        if not isinstance(payload, str | bytes | bytearray):
            raise UsageError("payload", "must be text or bytes")
        return broker.publish_counts(topic, payload, qos)

    def online_devices(self) -> list[OnlineDevice]:
        """The devices connected now (在线设备), with their client ids."""
        _, broker, _ = self._need()
        return sorted(
            OnlineDevice(ref.product_key, ref.device_name, client_id)
            for ref, client_id in broker.online()
            if ref is not None
        )

    def reset_registration(self, product_key: str, device_name: str) -> None:
        """The platform's ResetThing: the device counts as never activated again, so
        dynamic registration (一型一密) works for it once more."""
        registry, _, _ = self._need()
        registry.reset_registration(DeviceRef(product_key, device_name))

    def disconnect(self, product_key: str, device_name: str) -> bool:
        """Close the device's MQTT connection from the server side; False if offline."""
        _, broker, _ = self._need()
        return broker.disconnect(DeviceRef(product_key, device_name))

    def status(self) -> dict[str, Any]:
        """A small health summary (used by the admin ``/admin/status`` route)."""
        return {
            "pid": os.getpid(),
            "db": None if self.db == ":memory:" else self.db,
            "online": len(self.online_devices()),
            "started": self._started,
        }

    def flush(self) -> bool:
        """Wait until every queued log line is committed to the registry."""
        registry, _, _ = self._need()
        return registry.flush()

    def wipe(self, *, logs_only: bool = False, dry_run: bool = False) -> dict[str, int]:
        """Start clean (``airlab cloud reset`` through the admin route ``/admin/wipe``):
        every MQTT client is disconnected, remembered permissions and connect attempts
        are forgotten, every registry table is emptied (tokens, seats, logs ...) and the
        service's fixture is loaded again. ``logs_only``: only the connection and message
        logs are emptied, nobody is disconnected. ``dry_run``: nothing changes; returns
        what would be removed. Returns the rows removed per table.

        Example:
            >>> with CloudEmulator() as cloud:
            ...     _ = cloud.add_device("k1hipglLdjU", "dev2")
            ...     cloud.wipe()["devices"], len(cloud.registry.devices())
            (2, 1)
        """
        registry, broker, _ = self._need()
        if dry_run:
            return registry.table_counts(logs_only=logs_only)
        if not logs_only:
            for ref, _client_id in broker.online():
                broker.disconnect(ref)
            # their close lines are logged before the log is emptied, not after it
            deadline = time.monotonic() + 5.0
            while broker.online() and time.monotonic() < deadline:
                time.sleep(0.01)  # the broker's loop closes them; no event to wait on
            rules = self.rules
            if rules is not None:
                rules.forget_permissions()
                rules.forget_attempts()
        return registry.reset(self.fixture, logs_only=logs_only)
