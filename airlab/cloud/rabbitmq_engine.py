"""The cloud service with a RabbitMQ node (or cluster) as its MQTT broker: what
``airlab cloud serve --engine rabbitmq`` runs.

:class:`RabbitEngine` is the :class:`~airlab.cloud.service.CloudEmulator` (registry,
rules, HTTP(S) auth and dynamic-registration endpoints, admin console, endpoints file)
with :class:`RabbitNode` standing where the embedded broker stands: the rules served to
the node's ``rabbitmq_auth_backend_http`` (:class:`~airlab.cloud.rabbitmq_auth.RabbitAuthServer`),
airlab's own subscriber writing the message log
(:class:`~airlab.cloud.rabbitmq_observer.RabbitObserver`) and the console's publisher
(:class:`~airlab.cloud.rabbitmq_console.RabbitPublisher`). The endpoints send the Aliyun
MQTT host names to the node's listeners (``mqtt``; ``mqtts``: its TLS listener, which
:meth:`RabbitEngine.write_rabbitmq_config` sets up with airlab's certificate) and the
auth host to airlab's HTTP(S) endpoints; they add ``engine`` (``"rabbitmq"``) and
``rules`` (the four check URLs). The platform's answers to an uplink (Alink
``…/post_reply``, NTP ``/ext/ntp/…/response``) go out through the console's publisher
once the observer has seen the uplink, as the embedded broker sends them.

What RabbitMQ does not tell airlab: who is online (:meth:`RabbitEngine.online_devices`
raises, ``status()["online"]`` is None; ``rabbitmqctl list_mqtt_connections`` knows),
how many subscribers a console publish reached (0 in-process, ``"result": null`` over
the admin API), and whether a client came over TLS (a "TLS required" product is refused).
It cannot close a device's connection either (:meth:`RabbitEngine.disconnect` raises).

Example:
    >>> with RabbitEngine(node_mqtt_port=1883) as cloud:  # no node needed to start
    ...     ep = cloud.endpoints
    ...     ep["engine"], ep["mqtt"], ep["mqtts"], sorted(ep["rules"])
    ('rabbitmq', '127.0.0.1:1883', '127.0.0.1:8883', ['resource', 'topic', 'user', 'vhost'])
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airlab.cloud.fixtures import FIXTURES
from airlab.cloud.http_api import HttpEndpoints
from airlab.cloud.model import DeviceRef, MessageRecord, PublishCounts
from airlab.cloud.rabbitmq_auth import RabbitAuth, RabbitAuthServer
from airlab.cloud.rabbitmq_config import (
    rabbitmq_conf,
    rabbitmq_endpoints,
    tls_listener_conf,
    write_rabbitmq_config,
)
from airlab.cloud.rabbitmq_console import RabbitPublisher
from airlab.cloud.rabbitmq_observer import RabbitObserver
from airlab.cloud.registry import Registry
from airlab.cloud.service import CloudEmulator, OnlineDevice
from airlab.cloud.service_support import ServiceRules, _check_port
from airlab.cloud.tls import DEFAULT_HOSTNAMES, make_server_context, server_certificate
from airlab.errors import UsageError

if TYPE_CHECKING:
    from airlab.cloud.broker import EmulatedBroker

__all__ = ["DEFAULT_MQTTS_PORT", "DEFAULT_MQTT_PORT", "RabbitEngine", "RabbitNode", "open_registry"]

DEFAULT_MQTT_PORT = 1883
"""The node's MQTT port when none is given."""
DEFAULT_MQTTS_PORT = 8883
"""The node's MQTT-over-TLS port when none is given."""
_EMBEDDED_ONLY = frozenset(
    {"mqtt_port", "mqtts_port", "connect_timeout", "uplink_limits", "broker_runner"}
)
TLS_FOLDER = "tls"
"""Where :meth:`RabbitEngine.write_rabbitmq_config` puts the certificate, in its folder."""


def open_registry(db: str, fixture: str | None) -> Registry:
    """The registry file ``db`` (``":memory:"``) opened, with ``fixture`` loaded;
    :class:`~airlab.errors.UsageError` (``db`` or ``fixture``) when it cannot be.

    Example:
        >>> len(open_registry(":memory:", "tutorial").devices())
        1
    """
    if fixture is not None and fixture not in FIXTURES:
        raise UsageError("fixture", f"unknown fixture {fixture!r} (known: {', '.join(FIXTURES)})")
    try:
        registry = Registry(db)
    except Exception as exc:
        raise UsageError("db", f"cannot open the registry {db}: {exc}") from None
    if fixture is not None:
        try:
            FIXTURES[fixture](registry)
        except BaseException:
            registry.close()
            raise
    return registry


class RabbitNode:
    """airlab's side of a RabbitMQ node: the rules server it asks, the observer and the
    console's publisher, connected to the node's MQTT listener at ``host``:``mqtt_port``
    (``mqtts_port``: its TLS listener, for the endpoints). Offers what
    :class:`~airlab.cloud.service.CloudEmulator` asks of its broker.
    """

    def __init__(
        self,
        auth: RabbitAuthServer,
        host: str,
        mqtt_port: int,
        mqtts_port: int,
        *,
        observer_password: str,
        console_password: str,
    ) -> None:
        self.auth = auth
        self.host = host
        self.mqtt_port = mqtt_port
        self.mqtts_port = mqtts_port
        rules = auth.auth.rules
        self.observer = RabbitObserver(
            rules, host, mqtt_port, observer_password, on_uplink=self._answer
        )
        self.publisher = RabbitPublisher(host, mqtt_port, console_password)

    def start(self) -> RabbitNode:
        """Serve the rules and start the observer (it connects once the node is up)."""
        self.auth.start()
        self.observer.start()
        return self

    def stop(self) -> None:
        """Stop the observer, the publisher and the rules server."""
        self.observer.stop()
        self.publisher.close()
        self.auth.stop()

    def publish_counts(self, topic: str, payload: bytes | str, qos: int = 0) -> PublishCounts:
        """Publish through the node as the console and log it ``"down"``; RabbitMQ does
        not say how many got it (``delivered`` 0)."""
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        qos = min(qos, 1)
        self.observer.expect(topic, data)  # logged here, not again as "up"
        try:
            self.publisher.publish(topic, data, qos)
        except BaseException:
            self.observer.take_expected(topic, data)  # it will not come
            raise
        device = self.observer.device_of(topic)
        self.auth.auth.rules.log_message(
            MessageRecord(time.time(), "down", topic, qos, data, True, device)
        )
        return PublishCounts(0)

    def _answer(self, device: DeviceRef, topic: str, payload: bytes) -> None:
        """The platform's answers to an uplink (``rules.replies_to``: Alink
        ``…/post_reply``, NTP ``/ext/ntp/…/response``), published through the node as
        the embedded broker publishes them, and logged ``"down"``."""
        for push in self.auth.auth.rules.replies_to(device, topic, payload):
            self.publish_counts(push.topic, push.payload, push.qos)

    def online(self) -> list[tuple[DeviceRef, str]]:
        """Nobody, as far as airlab knows (RabbitMQ does not say)."""
        return []

    def disconnect(self, device: DeviceRef) -> bool:
        raise UsageError(
            "disconnect",
            f"airlab cannot close {device}'s connection on a RabbitMQ node: "
            "use 'rabbitmqctl close_connection' there",
        )


class RabbitEngine(CloudEmulator):
    """The cloud service with the RabbitMQ node at ``node_host`` as its broker.

    ``db`` and ``options`` as for :class:`~airlab.cloud.service.CloudEmulator`
    (``host``, ``fixture``, ``http_port``, ``https_port``, ``connect_rate_limit``,
    ``advertise``, ``clock``; not its broker's ``mqtt_port``, ``mqtts_port``,
    ``connect_timeout``, ``uplink_limits``), plus: ``rules_port``, the port of the
    rules server the node asks (0: a free one);
    ``node_mqtt_port`` / ``node_mqtts_port``, the node's MQTT and MQTT-over-TLS ports
    (0: 1883 and 8883); ``vhost``, the MQTT plugin's virtual host. Attributes while
    running: as the emulator's, :attr:`broker` being a :class:`RabbitNode`, and
    :attr:`rule_urls`.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] = ":memory:",
        *,
        rules_port: int = 0,
        node_host: str = "127.0.0.1",
        node_mqtt_port: int = 0,
        node_mqtts_port: int = 0,
        vhost: str = "/",
        **options: Any,
    ) -> None:
        embedded = sorted(_EMBEDDED_ONLY.intersection(options))
        if embedded:
            raise UsageError(embedded[0], "is an option of the embedded broker")
        super().__init__(db, uplink_limits=None, **options)
        self.rules_port = _check_port(rules_port, "rules_port")
        self.node_host = node_host
        self.node_mqtt_port = _check_port(node_mqtt_port, "mqtt_port") or DEFAULT_MQTT_PORT
        self.node_mqtts_port = _check_port(node_mqtts_port, "mqtts_port") or DEFAULT_MQTTS_PORT
        self.vhost = vhost

    def _start(self) -> None:
        self.registry = registry = open_registry(self.db, self.fixture)
        self.rules = rules = ServiceRules(
            registry, connect_rate_limit=self.connect_rate_limit, clock=self.clock
        )
        bind = "0.0.0.0" if self.host in ("", "0.0.0.0") else self.host
        observer_password, console_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        auth = RabbitAuth(
            rules,
            vhost=self.vhost,
            observer_password=observer_password,
            console_password=console_password,
            clock=self.clock,
        )
        try:
            server = RabbitAuthServer(auth, host=bind, port=self.rules_port)
        except OSError as exc:
            raise UsageError(
                "rules_port", f"cannot listen on {bind}:{self.rules_port}: {exc}"
            ) from None
        node = RabbitNode(
            server,
            self.node_host,
            self.node_mqtt_port,
            self.node_mqtts_port,
            observer_password=observer_password,
            console_password=console_password,
        )
        self.broker = cast("EmulatedBroker", node.start())  # see RabbitNode
        names = dict.fromkeys((*DEFAULT_HOSTNAMES, self.address, self.node_host))
        self._cert = server_certificate(names)
        self.admin_token = secrets.token_urlsafe(24)
        http_port, https_port = self.ports["http_port"], self.ports["https_port"]
        context = make_server_context(certificate=self._cert)
        http = HttpEndpoints(rules, host=bind, http_port=http_port, https_port=https_port,
                             ssl_context=context, admin_token=self.admin_token,
                             publisher=self._admin_publish)  # fmt: skip
        http.console = self  # the admin console routes (/admin/online, /admin/reset ...)
        self.http = http.start()
        self._started = time.time()

    @property
    def node(self) -> RabbitNode:
        """airlab's side of the node (while running)."""
        self._need()
        return cast(RabbitNode, self.broker)

    @property
    def rule_urls(self) -> dict[str, str]:
        """The four check URLs for the node's ``rabbitmq.conf``, at :attr:`address`."""
        return self.node.auth.urls_at(self.address)

    @property
    def endpoints(self) -> dict[str, Any]:
        """The emulator's endpoints, the MQTT ones leading to the node."""
        db = None if self.db == ":memory:" else self.db
        node = rabbitmq_endpoints(self.node_host, self.node_mqtt_port, self.rule_urls, db=db)
        tls = rabbitmq_endpoints(self.node_host, self.node_mqtts_port, {}, tls=True)
        return {**super().endpoints, **node, "mqtts": tls["mqtts"]}

    def rabbitmq_conf(self) -> str:
        """The node's ``rabbitmq.conf``: the rules' URLs, its MQTT listener and, with
        the certificate in ``<folder>/tls`` (:meth:`write_rabbitmq_config`), its TLS one."""
        return rabbitmq_conf(self.rule_urls, mqtt_port=self.node_mqtt_port, vhost=self.vhost)

    def write_rabbitmq_config(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write ``rabbitmq.conf``, ``enabled_plugins`` and the TLS listener's
        certificate (``tls/``: ``ca.pem``, ``cert.pem``, ``key.pem``) into ``folder``;
        returns the paths written."""
        target = Path(folder).expanduser().resolve()
        if target.exists() and not target.is_dir():
            raise UsageError("write_rabbitmq_config", f"{target} is not a folder")
        if self._cert is None:
            raise UsageError("cloud", "the cloud emulator has not been started")
        certs = self._cert.write(target / TLS_FOLDER)
        tls = tls_listener_conf(self.node_mqtts_port, certs["ca"], certs["cert"], certs["key"])
        written = write_rabbitmq_config(target, self.rabbitmq_conf() + tls)
        return [*written, *(certs[name] for name in ("ca", "cert", "key"))]

    def _admin_publish(self, topic: str, payload: bytes, qos: int) -> None:  # type: ignore[override]
        self.publish_counts(topic, payload, qos)  # the admin answer's "result": null

    def online_devices(self) -> list[OnlineDevice]:
        raise UsageError(
            "online",
            "a RabbitMQ node does not tell airlab who is online: "
            "ask it ('rabbitmqctl list_mqtt_connections')",
        )

    def status(self) -> dict[str, Any]:
        """As the emulator's, with ``online`` None (not known) and ``engine``."""
        return {
            "pid": os.getpid(),
            "db": None if self.db == ":memory:" else self.db,
            "online": None,
            "started": self._started,
            "engine": "rabbitmq",
        }
