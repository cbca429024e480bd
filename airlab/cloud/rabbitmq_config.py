"""The RabbitMQ node configuration that hands MQTT logins and topics to airlab's rules:
``rabbitmq.conf`` (the HTTP auth backend's four URLs, the MQTT listener) and
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
    <BLANKLINE>
    >>> ENABLED_PLUGINS
    '[rabbitmq_mqtt,rabbitmq_auth_backend_http].\\n'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from airlab.errors import UsageError

__all__ = ["CONF_NAME", "ENABLED_PLUGINS", "PLUGINS_NAME", "rabbitmq_conf", "write_rabbitmq_config"]

CONF_NAME = "rabbitmq.conf"
PLUGINS_NAME = "enabled_plugins"
ENABLED_PLUGINS = "[rabbitmq_mqtt,rabbitmq_auth_backend_http].\n"
_CHECKS = ("user", "vhost", "resource", "topic")


def rabbitmq_conf(
    urls: Mapping[str, str],
    *,
    mqtt_port: int = 1883,
    vhost: str = "/",
    extra: str = "",
) -> str:
    """The ``rabbitmq.conf`` text: ``urls`` maps user, vhost, resource, topic to the
    service's URLs (:attr:`~airlab.cloud.rabbitmq_auth.RabbitAuthServer.urls`);
    ``extra`` lines are appended as given (a test's listener settings, cluster peers)."""
    missing = [name for name in _CHECKS if name not in urls]
    if missing:
        raise UsageError("urls", f"lacks {', '.join(missing)}")
    for name, value in (("mqtt_port", mqtt_port),):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise UsageError(name, f"must be a port number from 1 to 65535, not {value!r}")
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
    text = "\n".join(lines) + "\n"
    return text + (extra if not extra or extra.endswith("\n") else extra + "\n")


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
