"""Where notebooks find the running cloud emulator.

``airlab cloud serve`` (and so ``airlab lab``) writes its endpoints JSON to
:func:`default_endpoints_path`: ``$AIRLAB_CLOUD_ENDPOINTS`` when set, else
``$XDG_CACHE_HOME/airlab/cloud-endpoints.json`` (``~/.cache/airlab/…``).

* :func:`load_endpoints` reads and validates that file and checks that the service
  answers (its pid is alive when the file was written on this host, and the admin port
  accepts a TCP connection); a missing, unreadable or stale file raises
  :class:`EndpointsError` (a :class:`~airlab.errors.UsageError` naming
  ``--endpoints-file``) whose ``reason`` is ``"missing"``, ``"invalid"`` or ``"stale"``.
* :class:`RemoteCloud` drives a running service: console operations through its admin
  API (``publish``, ``online_devices``, ``reset_registration``, the product switches
  ``set_dynamic_registration`` / ``set_host_check`` / ``set_tls_required`` /
  ``product_settings``), products,
  devices and logs through the shared registry file named in the endpoints (``db``) when
  it is on this machine, else through the admin API too (a student's laptop with a room
  file from ``airlab class room-file``: its token is a class token, which reaches only
  the class's product; see docs/cloud.md "Class tokens").
* :func:`cloud_for_lesson` is what a lesson calls: the running service if there is one,
  else an in-process :class:`~airlab.cloud.service.CloudEmulator` with the tutorial
  fixture, started once and kept for the kernel's lifetime.

Example:
    >>> cloud = cloud_for_lesson()  # doctest: +SKIP
    >>> cloud.endpoints["mqtt"]  # doctest: +SKIP
    '127.0.0.1:41883'
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airlab.aliyun import DEFAULT_REGION, TopicClass, validate_topic_class
from airlab.cloud.model import DeviceRef, PublishCounts
from airlab.cloud.registry import (
    Device,
    Product,
    Registry,
    connection_frame_from_rows,
    message_frame_from_rows,
)
from airlab.cloud.service import CloudConsole, CloudEmulator, OnlineDevice
from airlab.cloud.store.records import PRODUCT_SWITCHES
from airlab.errors import AirlabError, UsageError

__all__ = [
    "ENDPOINTS_ENV",
    "EndpointsError",
    "ForbiddenError",
    "RemoteCloud",
    "cloud_for_lesson",
    "default_endpoints_path",
    "load_endpoints",
    "service_answers",
]

ENDPOINTS_ENV = "AIRLAB_CLOUD_ENDPOINTS"
"""Environment variable naming the endpoints file (set by ``airlab lab``)."""

_REQUIRED = ("http", "https", "mqtt", "mqtts")
_TIMEOUT = 5.0


class EndpointsError(UsageError):
    """The endpoints file cannot be used: ``reason`` is missing, invalid or stale."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__("endpoints_file", message)


def default_endpoints_path() -> Path:
    """``$AIRLAB_CLOUD_ENDPOINTS``, else a per-user file in the cache folder.

    Example:
        >>> default_endpoints_path().name  # doctest: +SKIP
        'cloud-endpoints.json'
    """
    env = os.environ.get(ENDPOINTS_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "airlab" / "cloud-endpoints.json"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    return True


def _host_port(value: str) -> tuple[str, int]:
    parts = urlsplit(value if "//" in value else f"//{value}")
    if parts.hostname is None or parts.port is None:
        raise ValueError(value)
    return parts.hostname, parts.port


def service_answers(endpoints: dict[str, Any], timeout: float = 2.0) -> str | None:
    """None when the service of ``endpoints`` looks alive, else why not (one sentence)."""
    pid = endpoints.get("pid")
    if (
        isinstance(pid, int)
        and endpoints.get("hostname") == socket.gethostname()
        and not _pid_alive(pid)
    ):
        return f"its process {pid} is gone"
    admin = endpoints.get("admin")
    url = admin.get("url") if isinstance(admin, dict) else None
    target = url if isinstance(url, str) else endpoints.get("http")
    try:
        host, port = _host_port(str(target))
    except ValueError:
        return f"its address {target!r} is not host:port"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return f"nothing answers at {host}:{port} ({exc.strerror or exc})"
    return None


def load_endpoints(
    path: str | os.PathLike[str] | None = None, *, check: bool = True
) -> dict[str, Any]:
    """Read the endpoints file (default :func:`default_endpoints_path`), validate it and,
    with ``check``, make sure the service still answers.

    Raises :class:`EndpointsError` (field ``endpoints_file``) when the file is missing,
    unreadable, not the emulator's JSON, or stale (the service is gone).
    """
    file = Path(path).expanduser() if path is not None else default_endpoints_path()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EndpointsError(
            "missing",
            f"no endpoints file at {file}: the cloud emulator is not running "
            "(start it with 'airlab cloud serve' or 'airlab lab')",
        ) from None
    except OSError as exc:
        raise EndpointsError("invalid", f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise EndpointsError("invalid", f"{file} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EndpointsError("invalid", f"{file} is not a JSON object of endpoints")
    missing = [k for k in _REQUIRED if not isinstance(data.get(k), str) or not data.get(k)]
    if missing:
        raise EndpointsError("invalid", f"{file} lacks {', '.join(missing)}")
    for key in _REQUIRED:
        try:
            _host_port(data[key])
        except ValueError:
            raise EndpointsError("invalid", f"{file}: {key} {data[key]!r} is no address") from None
    if check:
        why = service_answers(data)
        if why is not None:
            raise EndpointsError(
                "stale",
                f"the cloud emulator of {file} is not running ({why}): stale file; start it "
                "again with 'airlab cloud serve'",
            )
    data["endpoints_file"] = str(file)
    return data


class ForbiddenError(AirlabError):
    """The service refused an operation to this token (HTTP 403): a class token
    reaches only its class's product."""


class RemoteCloud(CloudConsole):
    """Console operations on an emulator running in another process (or machine).

    ``publish``, ``online_devices``, ``reset_registration``, ``status`` and the product
    switches go through the admin API (address and token from the endpoints); products,
    devices and the logs use the registry file named by ``endpoints["db"]`` when it is a
    file on this machine, after asking the service to commit its queued log lines.
    Otherwise (no ``db``, or the service runs on another machine) they go through the
    admin API as well and answer the same DataFrames (built by the same code).
    """

    def __init__(self, endpoints: dict[str, Any]) -> None:
        self.endpoints = endpoints
        admin = endpoints.get("admin")
        if not isinstance(admin, dict) or not admin.get("url") or not admin.get("token"):
            raise EndpointsError("invalid", "the endpoints name no admin url and token")
        self._admin_url = str(admin["url"]).rstrip("/")
        self._token = str(admin["token"])
        self._registry: Registry | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RemoteCloud http={self.endpoints.get('http')} mqtt={self.endpoints.get('mqtt')}>"

    @property
    def certificate(self) -> str:
        """The CA certificate (PEM) of the service."""
        ca = self.endpoints.get("ca")
        if isinstance(ca, str) and ca:
            return ca
        path = self.endpoints.get("ca_pem")
        if isinstance(path, str) and path:
            return Path(path).read_text(encoding="ascii")
        raise UsageError("endpoints_file", "the endpoints name no CA certificate")

    def ssl_client_context(self) -> Any:
        import ssl

        return ssl.create_default_context(cadata=self.certificate)

    # -- admin API ----------------------------------------------------------------------

    def _call(
        self,
        method: str,
        route: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        suffix = ""
        if query:
            suffix = "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        request = urllib.request.Request(
            f"{self._admin_url}/{route}{suffix}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as reply:
                answer = json.loads(reply.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read().decode("utf-8")).get("message", exc.reason)
            except ValueError:
                message = exc.reason
            if exc.code in (400, 404):
                raise UsageError(route.split("?")[0], str(message)) from None
            if exc.code == 403:
                raise ForbiddenError(f"the cloud emulator refused {route}: {message}") from None
            raise AirlabError(f"the cloud emulator refused {route}: {exc.code} {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise EndpointsError(
                "stale", f"the cloud emulator at {self._admin_url} does not answer: {exc}"
            ) from None
        if not isinstance(answer, dict):
            raise AirlabError(f"unexpected admin answer: {answer!r}")
        return answer

    def publish(self, topic: str, payload: str | bytes, qos: int = 0) -> int:
        """Publish through the service (``POST /admin/publish``); returns the receivers."""
        return self.publish_counts(topic, payload, qos).delivered

    def publish_counts(self, topic: str, payload: str | bytes, qos: int = 0) -> PublishCounts:
        """:meth:`publish`, with the offline sessions it was queued for when the service
        says (its answer's ``queued``; None when it does not)."""
        body: dict[str, Any] = {"topic": topic, "qos": qos}
        if isinstance(payload, str):
            body["payload"] = payload
        else:
            body["payload_b64"] = base64.b64encode(bytes(payload)).decode("ascii")
        answer = self._call("POST", "publish", body)
        result, queued = answer.get("result"), answer.get("queued")
        return PublishCounts(
            int(result) if isinstance(result, int) and not isinstance(result, bool) else 0,
            queued if isinstance(queued, int) and not isinstance(queued, bool) else None,
        )

    def online_devices(self) -> list[OnlineDevice]:
        """The devices connected to the service now."""
        devices = self._call("GET", "online").get("devices") or []
        return sorted(
            OnlineDevice(d["product_key"], d["device_name"], d["client_id"]) for d in devices
        )

    def reset_registration(self, product_key: str, device_name: str) -> None:
        """ResetThing on the service."""
        self._call("POST", "reset", {"product_key": product_key, "device_name": device_name})

    def product_settings(self, product_key: str) -> dict[str, Any]:
        """The product's switches on the service (``POST /admin/product``; no secret)."""
        return self._product({"product_key": product_key})

    def set_dynamic_registration(self, product_key: str, enabled: bool) -> dict[str, Any]:
        """Switch 动态注册 on the service; its next registration sees the change."""
        return self._product({"product_key": product_key, "dynamic_registration": enabled})

    def set_host_check(self, product_key: str, enabled: bool) -> dict[str, Any]:
        """Switch the emulator's host rule (see :meth:`CloudConsole.set_host_check`) on
        the service; its next MQTT login sees the change."""
        return self._product({"product_key": product_key, "host_check": enabled})

    def set_tls_required(self, product_key: str, enabled: bool) -> dict[str, Any]:
        """Switch the product's "TLS required" setting (see
        :meth:`CloudConsole.set_tls_required`) on the service; its next MQTT login sees
        the change."""
        return self._product({"product_key": product_key, "tls_required": enabled})

    def _product(self, body: dict[str, Any]) -> dict[str, Any]:
        for name in PRODUCT_SWITCHES:
            if name in body and not isinstance(body[name], bool):
                raise UsageError(name, f"must be True or False, not {body[name]!r}")
        product = self._call("POST", "product", body).get("product")
        if not isinstance(product, dict):
            raise AirlabError(f"unexpected admin answer for /admin/product: {product!r}")
        return product

    def wipe(self, *, logs_only: bool = False, dry_run: bool = False) -> dict[str, int]:
        """Start clean on the service (``POST /admin/wipe``, see
        :meth:`CloudEmulator.wipe <airlab.cloud.service.CloudEmulator.wipe>`); returns the
        rows removed (would be removed, with ``dry_run``) per table."""
        answer = self._call("POST", "wipe", {"logs_only": logs_only, "dry_run": dry_run})
        removed = answer.get("removed")
        if not isinstance(removed, dict):
            raise AirlabError(f"unexpected admin answer for /admin/wipe: {answer!r}")
        return {str(k): int(v) for k, v in removed.items()}

    def status(self) -> dict[str, Any]:
        """The service's health summary."""
        return self._call("GET", "status")

    def flush(self) -> bool:
        """Ask the service to commit its queued log lines."""
        return bool(self._call("POST", "flush").get("flushed"))

    # -- registry -----------------------------------------------------------------------

    @property
    def local(self) -> bool:
        """True when the service's registry file is on this machine (read directly);
        False: every console operation goes through the admin API."""
        db = self.endpoints.get("db")
        return isinstance(db, str) and bool(db) and Path(db).is_file()

    @property
    def registry(self) -> Registry:  # type: ignore[override]
        with self._lock:
            if self._registry is None:
                db = self.endpoints.get("db")
                if not isinstance(db, str) or not db:
                    raise UsageError(
                        "db",
                        "the running emulator's registry is not readable here (in memory, or "
                        "on another machine): use the console methods (lab.cloud.devices(), "
                        "message_log() ...), which go through its admin API",
                    )
                if not Path(db).is_file():
                    raise UsageError(
                        "db",
                        f"the registry {db} is not on this machine: use the console methods "
                        "(lab.cloud.devices(), message_log() ...), which go through its admin API",
                    )
                self._registry = Registry(db)
            return self._registry

    # -- console operations over the network (no registry file here) --------------------

    def add_product(
        self,
        product_key: str,
        product_secret: str | None = None,
        *,
        region: str = DEFAULT_REGION,
        dynamic_registration: bool = False,
        topic_classes: Any = None,
        host_check: bool = False,
        tls_required: bool = False,
    ) -> Product:
        if self.local:
            return super().add_product(
                product_key, product_secret, region=region,
                dynamic_registration=dynamic_registration, topic_classes=topic_classes,
                host_check=host_check, tls_required=tls_required,
            )  # fmt: skip
        body: dict[str, Any] = {
            "product_key": product_key, "region": region,
            "dynamic_registration": dynamic_registration, "host_check": host_check,
            "tls_required": tls_required,
        }  # fmt: skip
        if product_secret is not None:
            body["product_secret"] = product_secret
        if topic_classes is not None:
            body["topic_classes"] = [
                [c.template, c.permission.value]
                if isinstance(c, TopicClass)
                else [str(c[0]), str(c[1])]
                for c in topic_classes
            ]
        p = self._call("POST", "new-product", body).get("product") or {}
        return Product(
            str(p["product_key"]), str(p["product_secret"]), str(p["region"]),
            bool(p["dynamic_registration"]), float(p["created"]), bool(p["host_check"]),
            bool(p.get("tls_required", False)),
        )  # fmt: skip

    def topic_classes(self, product_key: str) -> list[TopicClass]:
        if self.local:
            return super().topic_classes(product_key)
        answer = self._call("GET", "topic-classes", query={"product_key": product_key})
        return [
            validate_topic_class(c["template"], c["permission"])
            for c in answer.get("topic_classes") or []
        ]

    def add_topic_class(self, product_key: str, template: str, permission: str) -> TopicClass:
        if self.local:
            return super().add_topic_class(product_key, template, permission)
        body = {"product_key": product_key, "template": template, "permission": permission}
        added = self._call("POST", "topic-class", body).get("topic_class") or {}
        return validate_topic_class(added["template"], added["permission"])

    def add_device(
        self, product_key: str, device_name: str, device_secret: str | None = None
    ) -> str:
        if self.local:
            return super().add_device(product_key, device_name, device_secret)
        body: dict[str, Any] = {"product_key": product_key, "device_name": device_name}
        if device_secret is not None:
            body["device_secret"] = device_secret
        return str(self._call("POST", "device", body)["device"]["device_secret"])

    def new_device(self, product_key: str, *, activated: bool = False) -> Device:
        if self.local:
            return super().new_device(product_key, activated=activated)
        body = {"product_key": product_key, "activated": activated}
        d = self._call("POST", "device", body)["device"]
        return Device(
            str(d["product_key"]), str(d["device_name"]), str(d["device_secret"]),
            bool(d["enabled"]), bool(d["activated"]), float(d["created"]), str(d["iot_id"]),
        )  # fmt: skip

    def _device_rows(self, product_key: str | None) -> list[dict[str, Any]]:
        if self.local:
            return super()._device_rows(product_key)
        return list(self._call("GET", "devices", query={"product_key": product_key})["devices"])

    def _log_frame(self, table: str, device: DeviceRef | None, scope: str | None = None) -> Any:
        if self.local:
            return super()._log_frame(table, device, scope)
        query: dict[str, Any] = {}
        if device is not None:
            query.update(product_key=device.product_key, device=device.device_name)
        elif scope is not None:
            query["product_key"] = scope
        rows = self._log_pages(table, query)
        if table == "connection":
            return connection_frame_from_rows(rows)
        return message_frame_from_rows(rows)

    def product_log_rows(self, table: str, product_key: str) -> list[dict[str, Any]]:
        if self.local:
            return super().product_log_rows(table, product_key)
        if table not in ("connection", "message"):
            raise UsageError("table", f"must be connection or message, not {table!r}")
        self.flush()
        return self._log_pages(table, {"product_key": product_key})

    def _log_pages(self, table: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Every row ``GET /admin/log`` answers for ``query``, page by page (payloads
        decoded to bytes)."""
        query = {**query, "table": table, "after": 0}
        rows: list[dict[str, Any]] = []
        while True:
            answer = self._call("GET", "log", query=query)
            rows.extend(answer.get("rows") or [])
            if not answer.get("more"):
                break
            query["after"] = int(answer["next_after"])
        if table == "message":
            for row in rows:
                row["payload"] = base64.b64decode(row.pop("payload_b64", "") or "")
        return rows

    def _before_read(self) -> None:
        self.flush()

    def close(self) -> None:
        """Close the local handle on the shared registry."""
        with self._lock:
            registry, self._registry = self._registry, None
        if registry is not None:
            registry.close()


_lesson_lock = threading.Lock()
_lesson_cloud: CloudEmulator | None = None


def _stop_lesson_cloud() -> None:
    global _lesson_cloud
    cloud, _lesson_cloud = _lesson_cloud, None
    if cloud is not None:
        with contextlib.suppress(Exception):
            cloud.stop()


def cloud_for_lesson(path: str | os.PathLike[str] | None = None) -> CloudConsole:
    """The cloud a lesson should use.

    The running service named by ``path`` (default :func:`default_endpoints_path`) as a
    :class:`RemoteCloud`, or, when none runs, an in-process
    :class:`~airlab.cloud.service.CloudEmulator` (tutorial fixture, in-memory registry,
    free ports on 127.0.0.1) started on the first call and kept until the kernel exits.
    Both have ``endpoints``, ``certificate``, ``publish``, ``online_devices``,
    ``reset_registration``, ``add_device``, ``connection_log``, ``message_log``,
    ``refusals`` and ``explain_last_refusal``.
    """
    global _lesson_cloud
    try:
        return RemoteCloud(load_endpoints(path))
    except EndpointsError as exc:
        if exc.reason == "invalid" and path is not None:
            raise
    with _lesson_lock:
        if _lesson_cloud is None or not _lesson_cloud.running:
            cloud = CloudEmulator(fixture="tutorial").start()
            if _lesson_cloud is None:
                atexit.register(_stop_lesson_cloud)
            _lesson_cloud = cloud
        return _lesson_cloud
