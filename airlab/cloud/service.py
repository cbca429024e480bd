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
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from airlab.aliyun import DEFAULT_REGION, TopicClass
from airlab.cloud.auth import Rules
from airlab.cloud.broker import EmulatedBroker
from airlab.cloud.fixtures import FIXTURES
from airlab.cloud.http_api import HttpEndpoints
from airlab.cloud.model import CONNACK_MEANINGS, DeviceRef, Permission, PublishCounts
from airlab.cloud.mqtt_core import UPLINK_LIMITS
from airlab.cloud.registry import Device, Product, Registry
from airlab.cloud.tls import DEFAULT_HOSTNAMES, GeneratedCertificate, server_certificate
from airlab.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

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
_REFUSAL_COLUMNS = [
    "time", "source", "protocol", "event", "device", "client_id", "remote", "code",
    "meaning", "rule", "message", "details", "reason",
]  # fmt: skip


@dataclass(frozen=True, slots=True, order=True)
class OnlineDevice:
    """A connected device and the MQTT client id of its session."""

    product_key: str
    device_name: str
    client_id: str

    @property
    def ref(self) -> DeviceRef:
        return DeviceRef(self.product_key, self.device_name)

    def as_dict(self) -> dict[str, str]:
        return {
            "product_key": self.product_key,
            "device_name": self.device_name,
            "client_id": self.client_id,
        }


DeviceArg = DeviceRef | tuple[str, str] | str | None
"""A device filter: a :class:`DeviceRef`, ``(pk, dn)`` or ``"pk/dn"``."""


def _device_ref(device: DeviceArg) -> DeviceRef | None:
    if device is None or isinstance(device, DeviceRef):
        return device
    if isinstance(device, str):
        pk, sep, dn = device.partition("/")
        if not sep or not pk or not dn:
            raise UsageError(
                "device", f"write the device as 'productKey/deviceName', not {device!r}"
            )
        return DeviceRef(pk, dn)
    if isinstance(device, tuple) and len(device) == 2:
        return DeviceRef(str(device[0]), str(device[1]))
    raise UsageError("device", f"expected a DeviceRef, (pk, dn) or 'pk/dn', got {device!r}")


def _check_port(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise UsageError(
            name, f"must be a port number from 0 (any free port) to 65535, not {value!r}"
        )
    return value


def primary_address() -> str:
    """The host's primary IPv4 address (of its default route), or 127.0.0.1.

    No packet is sent: a UDP socket is only "connected" to learn the source address.

    Example:
        >>> import ipaddress; ipaddress.ip_address(primary_address()).version
        4
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))
            address = probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"
    return address if address and address != "0.0.0.0" else "127.0.0.1"


def write_json_atomic(path: str | Path, data: object, *, mode: int = 0o600) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (temp file in the same folder +
    rename), readable by the owner only by default (the file may hold a token)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def _details(text: object) -> dict[str, str]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    details = data.get("details") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in details.items()} if isinstance(details, dict) else {}


def _explanation_part(text: object, key: str) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return str(value) if value is not None else None


class ServiceRules(Rules):
    """:class:`~airlab.cloud.auth.Rules` with a short-lived memo of topic permissions.

    Every PUBLISH asks ``may_publish``, which reads the product's topic classes from the
    registry and checks them against the system topics: the service remembers each
    answer for ``permission_ttl`` seconds (1 s), so a busy device costs one lookup per
    second instead of one per message. A topic class changed from another process
    applies within that time; changes through the console apply at once
    (:meth:`forget_permissions`). Connect decisions are never memoized: the product's
    switches (动态注册, the host check) are read from the registry on every CONNECT and
    every HTTP call, so a change applies to the next login, from any process.
    """

    def __init__(self, registry: Registry, *, permission_ttl: float = 1.0, **kwargs: Any) -> None:
        super().__init__(registry, **kwargs)
        self.permission_ttl = permission_ttl
        self._memo: dict[tuple[str, DeviceRef, str, int], Permission] = {}
        self._memo_since = time.monotonic()
        self._memo_lock = threading.Lock()

    def forget_permissions(self) -> None:
        """Drop every remembered permission (after a registry change)."""
        with self._memo_lock:
            self._memo.clear()
            self._memo_since = time.monotonic()

    def forget_attempts(self) -> None:
        """Forget the CONNECT attempts counted for the rate limit (after a wipe)."""
        with self._attempts_lock:
            self._attempts.clear()

    def _remembered(
        self, key: tuple[str, DeviceRef, str, int], compute: Callable[[], Permission]
    ) -> Permission:
        now = time.monotonic()
        with self._memo_lock:
            if now - self._memo_since > self.permission_ttl or len(self._memo) > 100_000:
                self._memo.clear()
                self._memo_since = now
            found = self._memo.get(key)
        if found is not None:
            return found
        answer = compute()
        with self._memo_lock:
            self._memo[key] = answer
        return answer

    def may_publish(self, device: DeviceRef, topic: str, qos: int) -> Permission:
        return self._remembered(
            ("pub", device, topic, qos), lambda: Rules.may_publish(self, device, topic, qos)
        )

    def may_subscribe(self, device: DeviceRef, topic_filter: str) -> Permission:
        return self._remembered(
            ("sub", device, topic_filter, 0),
            lambda: Rules.may_subscribe(self, device, topic_filter),
        )


class CloudConsole:
    """Console operations shared by the in-process emulator and a remote service.

    Subclasses provide :attr:`registry` (for products, devices and logs) and
    :meth:`publish`, :meth:`online_devices`, :meth:`reset_registration`.
    """

    registry: Registry

    def _console_registry(self) -> Registry:
        registry = getattr(self, "registry", None)
        if registry is None:
            raise UsageError("db", "the cloud emulator is not running (no registry)")
        return registry

    def _before_read(self) -> None:
        """Hook: make sure the service has committed its queued log lines."""

    # -- registry -----------------------------------------------------------------------

    def add_product(
        self,
        product_key: str,
        product_secret: str | None = None,
        *,
        region: str = DEFAULT_REGION,
        dynamic_registration: bool = False,
        topic_classes: Iterable[TopicClass | tuple[str, str]] | None = None,
        host_check: bool = False,
        tls_required: bool = False,
    ) -> Product:
        """Create a product (产品); ``product_secret`` defaults to 16 random characters."""
        return self._console_registry().add_product(
            product_key,
            product_secret,
            region=region,
            dynamic_registration=dynamic_registration,
            topic_classes=topic_classes,
            host_check=host_check,
            tls_required=tls_required,
        )

    def product_settings(self, product_key: str) -> dict[str, Any]:
        """The product's switches, without its secret: ``product_key``, ``region``,
        ``dynamic_registration`` (动态注册), ``host_check`` and ``tls_required``.

        Example:
            >>> with CloudEmulator() as cloud:
            ...     cloud.product_settings("k1hipglLdjU")["host_check"]
            False
        """
        product = self._console_registry().get_product(product_key)
        if product is None:
            raise UsageError("product_key", f"no product {product_key!r}")
        return _settings(product)

    def set_dynamic_registration(self, product_key: str, enabled: bool) -> dict[str, Any]:
        """Turn the product's dynamic registration switch (动态注册) on or off, as on the
        console's product page; the next registration sees it. Off: HTTPS registration
        answers JSON code 460, MQTT registration CONNACK 5. Returns the new settings.

        Example:
            >>> with CloudEmulator() as cloud:
            ...     cloud.set_dynamic_registration("k1hipglLdjU", False)["dynamic_registration"]
            False
        """
        self._console_registry().set_dynamic_registration(product_key, enabled)
        return self.product_settings(product_key)

    def set_host_check(self, product_key: str, enabled: bool) -> dict[str, Any]:
        """Turn the emulator's host rule on or off for a product (off by default; not a
        console switch of the platform — see docs/cloud.md): on, an MQTT login over TLS
        must name ``<productKey>.iot-as-mqtt.<region>.aliyuncs.com`` of this product as
        its host (``AT+SSLMIPSTART``), else CONNACK 5 (rule ``mqtt_host``). Plain TCP
        carries no host and is not checked. Returns the new settings.

        Example:
            >>> with CloudEmulator() as cloud:
            ...     cloud.set_host_check("k1hipglLdjU", True)["host_check"]
            True
        """
        self._console_registry().set_host_check(product_key, enabled)
        return self.product_settings(product_key)

    def set_tls_required(self, product_key: str, enabled: bool) -> dict[str, Any]:
        """Refuse (on) or allow (off, the default) MQTT logins over plain TCP
        (``AT+MIPSTART``) for a product, as the platform does for accounts created since
        2022-08-02: on, such a login gets CONNACK 2 (rule ``tls_required``) and the
        explanation says to use ``AT+SSLMIPSTART`` (TLS). Returns the new settings.

        Example:
            >>> with CloudEmulator() as cloud:
            ...     cloud.set_tls_required("k1hipglLdjU", True)["tls_required"]
            True
        """
        self._console_registry().set_tls_required(product_key, enabled)
        return self.product_settings(product_key)

    def add_topic_class(self, product_key: str, template: str, permission: str) -> TopicClass:
        """Add a custom topic class (自定义Topic类) to a product: ``pub``, ``sub`` or
        ``pubsub``, e.g. ``/${productKey}/${deviceName}/user/cmd``."""
        topic_class = self._console_registry().add_topic_class(product_key, template, permission)
        rules = getattr(self, "rules", None)
        if isinstance(rules, ServiceRules):
            rules.forget_permissions()
        return topic_class

    def topic_classes(self, product_key: str) -> list[TopicClass]:
        """The product's topic classes (Topic类列表), the system's first."""
        if self._console_registry().get_product(product_key) is None:
            raise UsageError("product_key", f"no product {product_key!r}")
        return self._console_registry().topic_classes(product_key)

    def add_device(
        self, product_key: str, device_name: str, device_secret: str | None = None
    ) -> str:
        """Create a device (添加设备) and return the DeviceSecret stored for it."""
        return (
            self._console_registry().add_device(product_key, device_name, device_secret)
        ).device_secret

    def new_device(self, product_key: str, *, activated: bool = False) -> Device:
        """Add a device with a fresh name (``airlab.cloud.names.new_device_name``) to
        the product and return it, with its DeviceSecret; ``activated`` marks it as a
        device that has been online once (dynamic registration then refuses it)."""
        from airlab.cloud.names import new_device_name

        registry = self._console_registry()
        if registry.get_product(product_key) is None:
            raise UsageError("product_key", f"no product {product_key!r}")
        for attempt in range(5):
            try:
                device = registry.add_device(product_key, new_device_name())
                break
            except UsageError as exc:
                if attempt == 4 or "already exists" not in exc.message:
                    raise
        if activated:
            registry.mark_activated(device.ref)
            found = registry.get_device(device.ref)
            device = found if found is not None else device
        return device

    def devices(self, product_key: str | None = None) -> pd.DataFrame:
        """The device list (设备列表) as a DataFrame."""
        import pandas as pd

        rows = self._device_rows(product_key)
        frame = pd.DataFrame(
            rows,
            columns=[
                "product_key", "device_name", "device_secret", "enabled", "activated",
                "iot_id", "created",
            ],
        )  # fmt: skip
        frame["created"] = pd.to_datetime(frame["created"].astype("float64"), unit="s", utc=True)
        return frame

    def _device_rows(self, product_key: str | None) -> list[dict[str, Any]]:
        """The rows of :meth:`devices` (a remote console may leave ``device_secret``
        None: a class token lists no secret)."""
        return [
            {
                "product_key": d.product_key,
                "device_name": d.device_name,
                "device_secret": d.device_secret,
                "enabled": d.enabled,
                "activated": d.activated,
                "iot_id": d.iot_id,
                "created": d.created,
            }
            for d in self._console_registry().devices(product_key)
        ]

    # -- logs ---------------------------------------------------------------------------

    def connection_log(self, device: DeviceArg = None) -> pd.DataFrame:
        """The connection log (MQTT connects, refusals, kicks, HTTP calls) as a DataFrame."""
        self._before_read()
        return self._log_frame("connection", _device_ref(device))

    def message_log(self, device: DeviceArg = None) -> pd.DataFrame:
        """The message log (uplink "up", cloud-to-device "down") as a DataFrame."""
        self._before_read()
        return self._log_frame("message", _device_ref(device))

    def _log_frame(
        self, table: str, device: DeviceRef | None, scope: str | None = None
    ) -> pd.DataFrame:
        """The ``connection`` or ``message`` log frame (of ``device``). ``scope``: a
        product key the caller only needs the rows of (and the refusals that name no
        device); a console may read more than that (this one reads everything)."""
        registry = self._console_registry()
        if table == "connection":
            return registry.connection_frame(device)
        return registry.message_frame(device)

    def refusals(self, device: DeviceArg = None) -> pd.DataFrame:
        """Everything the cloud refused, oldest first: CONNECTs (CONNACK ≠ 0), HTTP calls
        (JSON code ≠ 200), SUBSCRIBEs (SUBACK 0x80) and dropped PUBLISHes.

        Columns: ``time``, ``source`` (connection/message log), ``protocol``, ``event``,
        ``device``, ``client_id``, ``remote``, ``code``, ``meaning`` (of a CONNACK code),
        ``rule``, ``message`` (the human explanation), ``details`` (dict: sign content,
        algorithm, expected/received, masked secret ...), ``reason``.

        A refused CONNECT usually names no device (it was not authenticated); ``device``
        filters those by the product key and device name they mention.
        """
        import pandas as pd

        ref = _device_ref(device)
        self._before_read()
        scope = ref.product_key if ref is not None else None
        conns = self._log_frame("connection", None, scope)
        msgs = self._log_frame("message", None, scope)
        rows: list[dict[str, Any]] = []
        for rec in conns[~conns["accepted"]].to_dict("records"):
            explanation = rec.get("explanation")
            code = rec.get("code")
            code = None if code is None or pd.isna(code) else int(code)
            rows.append(
                {
                    "time": rec["time"],
                    "source": "connection",
                    "protocol": str(rec["protocol"]),
                    "event": str(rec["event"]),
                    "device": None if pd.isna(rec["device"]) else str(rec["device"]),
                    "client_id": None if pd.isna(rec["client_id"]) else str(rec["client_id"]),
                    "remote": None if pd.isna(rec["remote"]) else str(rec["remote"]),
                    "code": code,
                    "meaning": (
                        CONNACK_MEANINGS.get(code)
                        if rec["protocol"] == "mqtt" and str(rec["event"]) == "refused"
                        else None
                    ),
                    "rule": _explanation_part(explanation, "rule"),
                    "message": _explanation_part(explanation, "message"),
                    "details": _details(explanation),
                    "reason": None if pd.isna(rec["reason"]) else str(rec["reason"]),
                }
            )
        for rec in msgs[~msgs["accepted"]].to_dict("records"):
            reason = None if pd.isna(rec["reason"]) else str(rec["reason"])
            rows.append(
                {
                    "time": rec["time"],
                    "source": "message",
                    "protocol": "mqtt",
                    "event": "publish" if rec["direction"] == "up" else "deliver",
                    "device": None if pd.isna(rec["device"]) else str(rec["device"]),
                    "client_id": None if pd.isna(rec["client_id"]) else str(rec["client_id"]),
                    "remote": None,
                    "code": None,
                    "meaning": None,
                    "rule": "publish",
                    "message": f"PUBLISH to {rec['topic']} dropped: {reason}",
                    "details": {"topic": str(rec["topic"]), "qos": str(rec["qos"])},
                    "reason": reason,
                }
            )
        if ref is not None:
            rows = [r for r in rows if _mentions(r, ref)]
        rows.sort(key=lambda r: r["time"])
        frame = pd.DataFrame(rows, columns=_REFUSAL_COLUMNS)
        if frame.empty:
            frame["time"] = pd.to_datetime(frame["time"], utc=True)
        frame["code"] = frame["code"].astype("Int64")
        for name in ("device", "client_id", "remote", "meaning", "rule", "message", "reason"):
            frame[name] = frame[name].astype("string")
        return frame.reset_index(drop=True)

    def explain_last_refusal(self, device: DeviceArg = None) -> str:
        """The latest refusal (of ``device``) in plain words: what was refused, the code,
        the rule, the explanation and its details (sign content, what differs)."""
        frame = self.refusals(device)
        if frame.empty:
            who = f" for {_device_ref(device)}" if device is not None else ""
            return f"No refusal recorded{who}: the cloud accepted everything so far."
        return explain_refusal(frame.iloc[-1].to_dict())

    # -- to be provided -----------------------------------------------------------------

    def publish(self, topic: str, payload: str | bytes, qos: int = 0) -> int:
        raise NotImplementedError

    def online_devices(self) -> list[OnlineDevice]:
        raise NotImplementedError

    def reset_registration(self, product_key: str, device_name: str) -> None:
        raise NotImplementedError


def _mentions(row: dict[str, Any], ref: DeviceRef) -> bool:
    if row.get("device") == str(ref):
        return True
    if row.get("device"):
        return False
    text = " ".join(
        str(v)
        for v in (row.get("client_id"), row.get("message"), *(row.get("details") or {}).values())
        if v
    )
    return ref.product_key in text and ref.device_name in text


def explain_refusal(row: dict[str, Any]) -> str:
    """A refusal row (see :meth:`CloudConsole.refusals`) as a few lines of text."""
    when = row.get("time")
    stamp = when.strftime("%H:%M:%S") if hasattr(when, "strftime") else str(when)
    protocol, event = str(row.get("protocol") or ""), str(row.get("event") or "")
    code = row.get("code")
    has_code = code is not None and str(code) not in ("<NA>", "nan")
    if protocol == "mqtt" and event == "refused":
        what = "MQTT CONNECT refused"
        if has_code:
            what += (
                f" with CONNACK {code} ({row.get('meaning') or CONNACK_MEANINGS.get(int(code))})"
            )
    elif protocol == "mqtt" and event == "subscribe":
        what = "MQTT SUBSCRIBE refused (SUBACK 0x80)"
    elif row.get("source") == "message":
        what = "MQTT PUBLISH dropped"
    elif protocol == "http":
        route = {"auth": "/auth/devicename", "register": "/auth/register/device"}.get(event, event)
        what = f"HTTP {route} refused" + (f" with code {code}" if has_code else "")
    else:
        what = f"{protocol} {event} refused" + (f" (code {code})" if has_code else "")
    who = []
    if _present(row.get("device")):
        who.append(f"device {row['device']}")
    if _present(row.get("client_id")):
        who.append(f"client id {row['client_id']!r}")
    if _present(row.get("remote")):
        who.append(f"from {row['remote']}")
    lines = [f"{stamp} {what}" + (f" — {', '.join(who)}" if who else "")]
    if _present(row.get("rule")):
        lines.append(f"  rule: {row['rule']}")
    message = row.get("message") if _present(row.get("message")) else row.get("reason")
    if _present(message):
        lines.append(f"  why: {message}")
    for key, value in (row.get("details") or {}).items():
        lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def _settings(product: Product) -> dict[str, Any]:
    return {
        "product_key": product.product_key,
        "region": product.region,
        "dynamic_registration": product.dynamic_registration,
        "host_check": product.host_check,
        "tls_required": product.tls_required,
    }


def _present(value: object) -> bool:
    return value is not None and str(value) not in ("", "<NA>", "nan", "None")


class CloudEmulator(CloudConsole):
    """The whole Alibaba Cloud IoT emulator: registry + rules + HTTP(S) + MQTT(S).

    ``db``: registry file (``":memory:"`` by default). ``fixture``: a name from
    :data:`airlab.cloud.fixtures.FIXTURES` loaded at start (``"tutorial"``) or None.
    Ports: 0 picks a free one. ``advertise``: the address written into the endpoints
    when ``host`` binds every interface (default: the primary IPv4 address).
    ``clock`` is passed to the rules (token expiry, NTP answers).

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
            registry = Registry(self.db)
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
