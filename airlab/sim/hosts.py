"""Name resolution for the simulated module: which real socket a hostname reaches.

A real Air780EP asks the operator's DNS; the simulated one asks a :class:`HostTable`.
Rules, in order:

1. a dotted IPv4 address passes through unchanged (address and port as asked);
2. explicit entries added with :meth:`HostTable.add` (exact name, case-insensitive);
3. patterns, for any productKey and region: ``iot-auth.<region>.aliyuncs.com`` (the
   HTTPS auth / dynamic registration host), ``<pk>.iot-as-mqtt.<region>.aliyuncs.com``
   and ``<instance>.mqtt.iothub.aliyuncs.com`` (the MQTT hosts).  Each pattern maps to
   one listener for a plain link and one for a TLS link; the port the module asked for
   (1883, 443 ...) is replaced by the listener's port;
4. anything else is a resolution failure (:class:`HostNotFound`): the module then
   answers like a DNS failure (``+HTTPACTION: 1,603,0``, ``CONNECT FAIL``).

:meth:`HostTable.from_endpoints` builds the table from the cloud emulator's endpoints
JSON (``{"http": "http://127.0.0.1:P", "https": "https://127.0.0.1:P", "mqtt":
"127.0.0.1:P", "mqtts": "127.0.0.1:P", ...}``).

Example:
    >>> table = HostTable.from_endpoints({"http": "http://127.0.0.1:8080",
    ...     "https": "https://127.0.0.1:8443", "mqtt": "127.0.0.1:1884", "mqtts": "127.0.0.1:8884"})
    >>> table.resolve("a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com", 1883, tls=True)
    ('127.0.0.1', 8884)
    >>> table.resolve("iot-auth.cn-shanghai.aliyuncs.com", 443, tls=True)
    ('127.0.0.1', 8443)
    >>> table.resolve("10.0.0.7", 1883)
    ('10.0.0.7', 1883)
    >>> table.resolve("example.org", 80)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    airlab.sim.hosts.HostNotFound: example.org: no such host in the simulator's host table
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["AUTH_HOST_PATTERN", "MQTT_HOST_PATTERNS", "HostNotFound", "HostTable"]

#: ``iot-auth.<region>.aliyuncs.com`` (HTTPS auth and dynamic registration).
AUTH_HOST_PATTERN = r"iot-auth\.[a-z0-9-]+\.aliyuncs\.com"
#: ``<pk>.iot-as-mqtt.<region>.aliyuncs.com`` and ``<instance>.mqtt.iothub.aliyuncs.com``.
MQTT_HOST_PATTERNS = (
    r"[a-z0-9_-]+\.iot-as-mqtt\.[a-z0-9-]+\.aliyuncs\.com",
    r"[a-z0-9_-]+\.mqtt\.iothub\.aliyuncs\.com",
)


class HostNotFound(LookupError):
    """The simulated DNS does not know the name (the module reports a DNS error)."""

    def __init__(self, name: str, reason: str = "no such host in the simulator's host table"):
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


Address = tuple[str, int]


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    plain: Address | None
    tls: Address | None
    source: str


def _is_ipv4(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def _parse_endpoint(value: str) -> Address:
    """``"http://127.0.0.1:8080"`` or ``"127.0.0.1:1883"`` → ``("127.0.0.1", 8080)``."""
    text = value if "//" in value else "//" + value
    parts = urlsplit(text)
    if not parts.hostname or parts.port is None:
        raise ValueError(f"endpoint {value!r}: expected host:port or scheme://host:port")
    return parts.hostname, parts.port


class HostTable:
    """The simulator's DNS: IPv4 pass-through, explicit entries, Aliyun host patterns.

    Example:
        >>> t = HostTable()
        >>> t.add("broker.local", "127.0.0.1", 1884)
        >>> t.resolve("BROKER.local", 1883)
        ('127.0.0.1', 1884)
        >>> t.add("keep.port", "127.0.0.1")
        >>> t.resolve("keep.port", 8000)
        ('127.0.0.1', 8000)
    """

    def __init__(self) -> None:
        self._exact: dict[str, tuple[str, int | None]] = {}
        self._rules: list[_Rule] = []

    # ---------------------------------------------------------------- building

    @classmethod
    def from_endpoints(cls, endpoints: Mapping[str, object] | str | os.PathLike[str]) -> HostTable:
        """A table routing the Aliyun host names to the emulator's listeners.

        ``endpoints`` is the emulator's endpoints mapping or the path of its JSON file.
        Keys used: ``http``, ``https`` (the auth host, by the request's scheme) and
        ``mqtt``, ``mqtts`` (the MQTT hosts, by whether the link is TLS).  A missing
        key leaves that variant unresolvable; other keys are ignored.
        """
        if isinstance(endpoints, Mapping):
            data: Mapping[str, object] = endpoints
        else:
            data = json.loads(Path(endpoints).read_text(encoding="utf-8"))
            if not isinstance(data, Mapping):
                raise ValueError(f"{endpoints}: expected a JSON object of endpoints")

        def get(key: str) -> Address | None:
            value = data.get(key)
            return _parse_endpoint(value) if isinstance(value, str) and value else None

        table = cls()
        http, https, mqtt, mqtts = get("http"), get("https"), get("mqtt"), get("mqtts")
        if http or https:
            table.add_pattern(AUTH_HOST_PATTERN, plain=http, tls=https, source="endpoints")
        if mqtt or mqtts:
            for pattern in MQTT_HOST_PATTERNS:
                table.add_pattern(pattern, plain=mqtt, tls=mqtts, source="endpoints")
        return table

    def add(self, name: str, ip: str, port: int | None = None) -> None:
        """Resolve ``name`` to ``ip`` (and ``port`` instead of the asked one, if given)."""
        if not _is_ipv4(ip):
            raise ValueError(f"{ip!r} is not a dotted IPv4 address")
        self._exact[name.lower().rstrip(".")] = (ip, port)

    def add_pattern(
        self,
        pattern: str,
        *,
        plain: Address | None = None,
        tls: Address | None = None,
        source: str = "user",
    ) -> None:
        """Route every name fully matching ``pattern`` (a regex, case-insensitive)."""
        self._rules.append(_Rule(re.compile(pattern, re.IGNORECASE), plain, tls, source))

    # ---------------------------------------------------------------- lookup

    def resolve(self, name: str, port: int, *, tls: bool = False) -> Address:
        """The ``(ip, port)`` a link to ``name:port`` reaches; raises :class:`HostNotFound`.

        ``tls`` is true for SSLMIPSTART links and ``https://`` requests.
        """
        host = name.strip().lower().rstrip(".")
        if _is_ipv4(host):
            return host, port
        exact = self._exact.get(host)
        if exact is not None:
            ip, fixed = exact
            return ip, port if fixed is None else fixed
        for rule in self._rules:
            if rule.pattern.fullmatch(host):
                address = rule.tls if tls else rule.plain
                if address is None:
                    kind = "TLS" if tls else "plain"
                    raise HostNotFound(name, f"the emulator publishes no {kind} listener for it")
                return address
        raise HostNotFound(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.resolve(name, 1)
        except HostNotFound:
            try:
                self.resolve(name, 1, tls=True)
            except HostNotFound:
                return False
        return True

    def __repr__(self) -> str:
        return f"HostTable(entries={len(self._exact)}, patterns={len(self._rules)})"
