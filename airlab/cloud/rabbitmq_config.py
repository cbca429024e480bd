"""The RabbitMQ node configuration that hands MQTT logins and topics to airlab's rules:
``rabbitmq.conf`` (the HTTP auth backend's four URLs, the MQTT listener and its socket
buffers) and
``enabled_plugins``.

Example:
    >>> urls = {name: f"http://127.0.0.1:8090/rabbitmq/{name}"
    ...         for name in ("user", "vhost", "resource", "topic")}
    >>> print(rabbitmq_conf(urls, mqtt_port=1883))
    auth_backends.1 = http
    auth_http.http_method = post
    auth_http.user_path = http://127.0.0.1:8090/rabbitmq/user
    auth_http.vhost_path = http://127.0.0.1:8090/rabbitmq/vhost
    auth_http.resource_path = http://127.0.0.1:8090/rabbitmq/resource
    auth_http.topic_path = http://127.0.0.1:8090/rabbitmq/topic
    mqtt.listeners.tcp.default = 1883
    mqtt.allow_anonymous = false
    mqtt.vhost = /
    mqtt.exchange = amq.topic
    mqtt.tcp_listen_options.buffer = 16384
    mqtt.tcp_listen_options.sndbuf = 16384
    mqtt.tcp_listen_options.recbuf = 16384
    <BLANKLINE>
    >>> ENABLED_PLUGINS
    '[rabbitmq_mqtt,rabbitmq_auth_backend_http].\\n'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from airlab.errors import UsageError

__all__ = [
    "CONF_NAME",
    "ENABLED_PLUGINS",
    "PLUGINS_NAME",
    "SOCKET_BUFFER",
    "rabbitmq_conf",
    "rabbitmq_endpoints",
    "tls_listener_conf",
    "write_rabbitmq_config",
]

CONF_NAME = "rabbitmq.conf"
PLUGINS_NAME = "enabled_plugins"
ENABLED_PLUGINS = "[rabbitmq_mqtt,rabbitmq_auth_backend_http].\n"
_CHECKS = ("user", "vhost", "resource", "topic")

SOCKET_BUFFER = 16384
"""Bytes of each MQTT socket's buffers. Measured with 3.10.8 on Debian 12: an idle MQTT
connection holds about 4 MB (binary memory) with RabbitMQ's own socket options, about
200 KB with these (and a QoS 1 subscription about 100 KB more)."""


def rabbitmq_conf(
    urls: Mapping[str, str],
    *,
    mqtt_port: int = 1883,
    vhost: str = "/",
    socket_buffer: int | None = SOCKET_BUFFER,
    extra: str = "",
) -> str:
    """The ``rabbitmq.conf`` text: ``urls`` maps user, vhost, resource, topic to the
    service's URLs (:attr:`~airlab.cloud.rabbitmq_auth.RabbitAuthServer.urls`);
    ``socket_buffer``: bytes of each MQTT socket's buffers (None: RabbitMQ's defaults);
    ``extra`` lines are appended as given (a test's listener settings, cluster peers)."""
    missing = [name for name in _CHECKS if name not in urls]
    if missing:
        raise UsageError("urls", f"lacks {', '.join(missing)}")
    if isinstance(mqtt_port, bool) or not isinstance(mqtt_port, int) or not 0 < mqtt_port < 65536:
        raise UsageError("mqtt_port", f"must be a port number from 1 to 65535, not {mqtt_port!r}")
    if socket_buffer is not None and (
        isinstance(socket_buffer, bool) or not isinstance(socket_buffer, int) or socket_buffer < 1
    ):
        raise UsageError("socket_buffer", "must be a positive number of bytes or None")
    for name, text in [("vhost", vhost), *((f"urls[{k}]", urls[k]) for k in _CHECKS)]:
        if not text or any(ch.isspace() or not ch.isprintable() for ch in text):
            raise UsageError(name, f"must be non-empty, without spaces: {text!r}")
    lines = [
        "auth_backends.1 = http",
        "auth_http.http_method = post",
        *(f"auth_http.{name}_path = {urls[name]}" for name in _CHECKS),
        f"mqtt.listeners.tcp.default = {mqtt_port}",
        "mqtt.allow_anonymous = false",
        f"mqtt.vhost = {vhost}",
        "mqtt.exchange = amq.topic",
    ]
    if socket_buffer is not None:
        lines += [
            f"mqtt.tcp_listen_options.{name} = {socket_buffer}"
            for name in ("buffer", "sndbuf", "recbuf")
        ]
    text = "\n".join(lines) + "\n"
    return text + (extra if not extra or extra.endswith("\n") else extra + "\n")


def tls_listener_conf(port: int, ca: str | Path, cert: str | Path, key: str | Path) -> str:
    """The ``rabbitmq.conf`` lines of an MQTT-over-TLS listener on ``port`` presenting
    ``cert`` (with ``key``, signed by ``ca``); clients show no certificate.

    Example:
        >>> print(tls_listener_conf(8883, "/n/ca.pem", "/n/cert.pem", "/n/key.pem"), end="")
        mqtt.listeners.ssl.default = 8883
        ssl_options.cacertfile = /n/ca.pem
        ssl_options.certfile = /n/cert.pem
        ssl_options.keyfile = /n/key.pem
        ssl_options.verify = verify_none
        ssl_options.fail_if_no_peer_cert = false
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise UsageError("mqtts_port", f"must be a port number from 1 to 65535, not {port!r}")
    return (
        f"mqtt.listeners.ssl.default = {port}\n"
        f"ssl_options.cacertfile = {ca}\n"
        f"ssl_options.certfile = {cert}\n"
        f"ssl_options.keyfile = {key}\n"
        "ssl_options.verify = verify_none\n"
        "ssl_options.fail_if_no_peer_cert = false\n"
    )


def write_rabbitmq_config(folder: str | Path, conf: str) -> tuple[Path, Path]:
    """Write ``conf`` as ``rabbitmq.conf`` and the plugin list as ``enabled_plugins`` in
    ``folder`` (created if missing); returns both paths (for ``RABBITMQ_CONFIG_FILE``
    and ``RABBITMQ_ENABLED_PLUGINS_FILE``).

    Example:
        >>> import tempfile
        >>> conf, plugins = write_rabbitmq_config(tempfile.mkdtemp(), "mqtt.vhost = /\\n")
        >>> conf.name, plugins.read_text() == ENABLED_PLUGINS
        ('rabbitmq.conf', True)
    """
    target = Path(folder).expanduser()
    if target.exists() and not target.is_dir():
        raise UsageError("write_rabbitmq_config", f"{target} is not a folder")
    target.mkdir(parents=True, exist_ok=True)
    conf_path, plugins_path = target / CONF_NAME, target / PLUGINS_NAME
    conf_path.write_text(conf, encoding="utf-8")
    plugins_path.write_text(ENABLED_PLUGINS, encoding="ascii")
    return conf_path, plugins_path


def rabbitmq_endpoints(
    mqtt_host: str,
    mqtt_port: int,
    rules: Mapping[str, str],
    *,
    tls: bool = False,
    db: str | None = None,
) -> dict[str, object]:
    """The endpoints mapping (the emulator's endpoints-file layout) of a RabbitMQ engine:
    the Aliyun MQTT host names lead to the node's listener (``mqtts`` with ``tls``), so
    ``airsim://?cloud=<file>`` and :class:`~airlab.sim.hosts.HostTable` send the
    simulated module there. No HTTP(S) auth endpoints: devices log in directly.

    Example:
        >>> from airlab.sim.hosts import HostTable
        >>> ep = rabbitmq_endpoints("127.0.0.1", 1883, {"user": "http://127.0.0.1:8090/u"})
        >>> ep["engine"], HostTable.from_endpoints(ep).resolve(
        ...     "k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883)
        ('rabbitmq', ('127.0.0.1', 1883))
    """
    from airlab.cloud.service import ENDPOINTS_VERSION

    host = f"[{mqtt_host}]" if ":" in mqtt_host else mqtt_host
    return {
        "engine": "rabbitmq",
        "mqtts" if tls else "mqtt": f"{host}:{int(mqtt_port)}",
        "rules": dict(rules),
        "db": db,
        "version": ENDPOINTS_VERSION,
    }
