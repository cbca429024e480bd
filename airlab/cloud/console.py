"""The console (控制台) operations a notebook uses, shared by the in-process emulator
(:class:`~airlab.cloud.service.CloudEmulator`) and a remote service
(:class:`~airlab.cloud.discovery.RemoteCloud`): products and devices, the logs as
DataFrames, refusals and their explanations.

Example:
    >>> from airlab.cloud.service import CloudEmulator
    >>> with CloudEmulator() as cloud:
    ...     cloud.explain_last_refusal()
    'No refusal recorded: the cloud accepted everything so far.'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airlab.aliyun import DEFAULT_REGION, TopicClass
from airlab.cloud.model import DeviceRef
from airlab.cloud.refusals import explain_refusal, refusal_frame
from airlab.cloud.registry import Device, Product, Registry
from airlab.cloud.service_support import ServiceRules
from airlab.cloud.store.records import PRODUCT_SWITCHES
from airlab.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CloudConsole", "DeviceArg", "OnlineDevice"]


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


class CloudConsole:
    """Console operations shared by the in-process emulator and a remote service.

    Subclasses provide :attr:`registry` (for products, devices and logs) and
    :meth:`publish`, :meth:`online_devices`, :meth:`reset_registration`.
    """

    registry: Registry

    def _console_registry(self) -> Registry:
        registry: Registry | None = getattr(self, "registry", None)
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
            >>> from airlab.cloud.service import CloudEmulator
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
            >>> from airlab.cloud.service import CloudEmulator
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
            >>> from airlab.cloud.service import CloudEmulator
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
            >>> from airlab.cloud.service import CloudEmulator
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

    def product_log_rows(self, table: str, product_key: str) -> list[dict[str, Any]]:
        """The stored rows of the ``"connection"`` or ``"message"`` log that concern
        ``product_key`` (its devices' lines and the refusals naming no device that
        mention the key), oldest first, each with its ``id`` and ``payload`` bytes.

        Example:
            >>> from airlab.cloud.service import CloudEmulator
            >>> with CloudEmulator() as cloud:
            ...     cloud.product_log_rows("message", "a1B2c3D4e5F")
            []
        """
        return self._console_registry().product_log_rows(table, product_key)

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
        ref = _device_ref(device)
        self._before_read()
        scope = ref.product_key if ref is not None else None
        conns = self._log_frame("connection", None, scope)
        msgs = self._log_frame("message", None, scope)
        return refusal_frame(conns, msgs, ref)

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


def _settings(product: Product) -> dict[str, Any]:
    return {
        "product_key": product.product_key,
        "region": product.region,
        **{name: getattr(product, name) for name in PRODUCT_SWITCHES},
    }
