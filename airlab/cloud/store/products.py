"""Products (产品), their topic classes and their devices (设备) in the registry.

Example:
    >>> from airlab.cloud.registry import Registry
    >>> reg = Registry(); _ = reg.add_product("pk1")
    >>> reg.add_device("pk1", "dev1").enabled
    True
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterable

from airlab.aliyun import (
    DEFAULT_REGION,
    DEFAULT_TOPIC_CLASSES,
    TopicClass,
    TopicPermission,
    validate_platform_device_name,
    validate_platform_product_key,
    validate_region,
    validate_secret,
    validate_topic_class,
)
from airlab.cloud.model import DeviceRef
from airlab.cloud.store.base import StoreBase
from airlab.cloud.store.records import (
    Device,
    DeviceLike,
    Product,
    _as_class,
    _device,
    _random_text,
    _ref,
)
from airlab.errors import UsageError

__all__ = ["ProductsMixin"]


class ProductsMixin(StoreBase):
    """Products, topic classes and devices: the part of
    :class:`~airlab.cloud.registry.Registry` the console's product pages edit."""

    # -- products ---------------------------------------------------------------------

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
        """Create a product; ``product_secret`` defaults to 16 random letters/digits and
        ``topic_classes`` to the three default custom classes (``user/update`` pub,
        ``user/update/error`` pub, ``user/get`` sub). ``host_check``: see
        :meth:`set_host_check`; ``tls_required``: see :meth:`set_tls_required`.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry()
            >>> reg.add_product("pk1", "s" * 16, region="cn-beijing").region
            'cn-beijing'
        """
        validate_platform_product_key(product_key)
        secret = product_secret if product_secret is not None else _random_text(16)
        validate_secret(secret, "product_secret")
        validate_region(region)
        classes = [
            _as_class(c)
            for c in (DEFAULT_TOPIC_CLASSES if topic_classes is None else topic_classes)
        ]
        now = self._clock()
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO products (product_key, product_secret, region, "
                    "dynamic_registration, created, host_check, tls_required) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        product_key,
                        secret,
                        region,
                        int(dynamic_registration),
                        now,
                        int(host_check),
                        int(tls_required),
                    ),
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO topic_classes (product_key, template, permission) "
                    "VALUES (?, ?, ?)",
                    [(product_key, c.template, c.permission.value) for c in classes],
                )
        except sqlite3.IntegrityError:
            raise UsageError("product_key", f"product {product_key!r} already exists") from None
        return Product(
            product_key,
            secret,
            region,
            bool(dynamic_registration),
            now,
            bool(host_check),
            bool(tls_required),
        )

    def get_product(self, product_key: str) -> Product | None:
        """The product, or None.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> Registry().get_product("nope") is None
            True
        """
        rows = self._query("SELECT * FROM products WHERE product_key = ?", (product_key,))
        if not rows:
            return None
        r = rows[0]
        return Product(
            r["product_key"],
            r["product_secret"],
            r["region"],
            bool(r["dynamic_registration"]),
            r["created"],
            bool(r["host_check"]),
            bool(r["tls_required"]),
        )

    def products(self) -> list[Product]:
        """Every product, by key."""
        keys = [r[0] for r in self._query("SELECT product_key FROM products ORDER BY 1")]
        return [p for p in (self.get_product(k) for k in keys) if p is not None]

    def delete_product(self, product_key: str) -> bool:
        """Remove a product with its devices, topic classes and classes (not the logs);
        False when there was none.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1"); _ = reg.add_device("pk1", "dev1")
            >>> reg.delete_product("pk1"), reg.devices("pk1")
            (True, [])
        """
        return bool(self._execute("DELETE FROM products WHERE product_key = ?", (product_key,)))

    def _set_product_flag(self, product_key: str, column: str, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise UsageError(column, f"must be True or False, not {enabled!r}")
        if not self._execute(
            f"UPDATE products SET {column} = ? WHERE product_key = ?",
            (int(enabled), product_key),
        ):
            raise UsageError("product_key", f"no product {product_key!r}")

    def set_dynamic_registration(self, product_key: str, enabled: bool) -> None:
        """Turn the product's dynamic registration switch (动态注册) on or off.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1")
            >>> reg.set_dynamic_registration("pk1", True)
            >>> reg.get_product("pk1").dynamic_registration
            True
        """
        self._set_product_flag(product_key, "dynamic_registration", enabled)

    def set_host_check(self, product_key: str, enabled: bool) -> None:
        """Turn the emulator's host rule for the product on or off (off by default).

        On: an MQTT login over TLS whose server name (SNI, the host of
        ``AT+SSLMIPSTART``) is not ``<productKey>.iot-as-mqtt.<region>.aliyuncs.com``
        of this product gets CONNACK 5 (rule ``mqtt_host``). The platform does not
        document this check; see docs/cloud.md.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1")
            >>> reg.set_host_check("pk1", True)
            >>> reg.get_product("pk1").host_check
            True
        """
        self._set_product_flag(product_key, "host_check", enabled)

    def set_tls_required(self, product_key: str, enabled: bool) -> None:
        """Refuse (on) or allow (off, the default) MQTT logins over plain TCP for the
        product.

        The platform refuses plain-TCP connections for accounts created since
        2022-08-02 ("Since 2022-08-02 new accounts cannot connect over plain TCP",
        spec §1.1, [D-TCP-EN 2023]); the tutorial's product predates that, so the
        fixtures leave it off. On: a device, token or connwl login that did not come
        over TLS (``AT+MIPSTART`` instead of ``AT+SSLMIPSTART``) gets CONNACK 2 (rule
        ``tls_required``; the platform does not document the code, see docs/cloud.md).

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1")
            >>> reg.set_tls_required("pk1", True)
            >>> reg.get_product("pk1").tls_required
            True
        """
        self._set_product_flag(product_key, "tls_required", enabled)

    def add_topic_class(
        self, product_key: str, template: str, permission: str | TopicPermission
    ) -> TopicClass:
        """Add a custom topic class (checked by
        :func:`airlab.aliyun.validate_topic_class`).

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1")
            >>> reg.add_topic_class("pk1", "/${productKey}/${deviceName}/user/cmd", "sub")
            TopicClass(template='/${productKey}/${deviceName}/user/cmd', \
permission=<TopicPermission.SUB: 'sub'>, system=False, max_qos=1)
        """
        topic_class = validate_topic_class(template, permission)
        if self.get_product(product_key) is None:
            raise UsageError("product_key", f"no product {product_key!r}")
        try:
            self._execute(
                "INSERT INTO topic_classes (product_key, template, permission) VALUES (?, ?, ?)",
                (product_key, topic_class.template, topic_class.permission.value),
            )
        except sqlite3.IntegrityError:
            raise UsageError(
                "template", f"product {product_key!r} already has the class {template!r}"
            ) from None
        return topic_class

    def topic_classes(self, product_key: str) -> list[TopicClass]:
        """The product's custom topic classes, in creation order."""
        rows = self._query(
            "SELECT template, permission FROM topic_classes WHERE product_key = ? ORDER BY id",
            (product_key,),
        )
        return [TopicClass(r["template"], TopicPermission(r["permission"])) for r in rows]

    # -- devices ----------------------------------------------------------------------

    def add_device(
        self, product_key: str, device_name: str, device_secret: str | None = None
    ) -> Device:
        """Create a device (enabled, not activated); ``device_secret`` defaults to 32
        random hex digits. A duplicate raises :class:`~airlab.errors.UsageError`.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1")
            >>> len(reg.add_device("pk1", "dev1").device_secret)
            32
            >>> reg.add_device("pk1", "dev1")
            Traceback (most recent call last):
            ...
            airlab.errors.UsageError: device_name: device pk1/dev1 already exists
        """
        validate_platform_device_name(device_name)
        secret = device_secret if device_secret is not None else secrets.token_hex(16)
        validate_secret(secret, "device_secret")
        now = self._clock()
        with self._lock:
            self._check_open()
            if self.get_product(product_key) is None:
                raise UsageError("product_key", f"no product {product_key!r}; add it first")
            for _ in range(5):
                suffix = product_key[:5] + "0"  # like the tutorial: 20 random + pk[:5] + "0"
                iot_id = _random_text(26 - len(suffix)) + suffix
                try:
                    self._changes += 1
                    self._conn.execute(
                        "INSERT INTO devices (product_key, device_name, device_secret, "
                        "enabled, activated, created, iot_id) VALUES (?, ?, ?, 1, 0, ?, ?)",
                        (product_key, device_name, secret, now, iot_id),
                    )
                    break
                except sqlite3.IntegrityError:
                    if self.get_device(product_key, device_name) is not None:
                        raise UsageError(
                            "device_name", f"device {product_key}/{device_name} already exists"
                        ) from None
            else:  # pragma: no cover - 62**20 ids
                raise RuntimeError("could not allocate an iotId")
        return Device(product_key, device_name, secret, True, False, now, iot_id)

    def get_device(self, device: DeviceLike | str, device_name: str | None = None) -> Device | None:
        """The device, or None: ``get_device(pk, dn)`` or ``get_device(DeviceRef(...))``."""
        ref = _ref(device, device_name)
        rows = self._query(
            "SELECT * FROM devices WHERE product_key = ? AND device_name = ?",
            (ref.product_key, ref.device_name),
        )
        return _device(rows[0]) if rows else None

    def device_by_iot_id(self, iot_id: str) -> Device | None:
        """The device with this iotId, or None."""
        rows = self._query("SELECT * FROM devices WHERE iot_id = ?", (iot_id,))
        return _device(rows[0]) if rows else None

    def devices(self, product_key: str | None = None) -> list[Device]:
        """Every device (of one product), sorted by (pk, dn)."""
        if product_key is None:
            rows = self._query("SELECT * FROM devices ORDER BY product_key, device_name")
        else:
            rows = self._query(
                "SELECT * FROM devices WHERE product_key = ? ORDER BY device_name", (product_key,)
            )
        return [_device(r) for r in rows]

    def _update_device(self, ref: DeviceRef, column: str, value: int) -> None:
        if not self._execute(
            f"UPDATE devices SET {column} = ? WHERE product_key = ? AND device_name = ?",
            (value, ref.product_key, ref.device_name),
        ):
            raise UsageError("device", f"no device {ref}")

    def set_device_enabled(self, device: DeviceLike, enabled: bool) -> None:
        """Enable or disable (禁用) a device; a disabled device cannot connect."""
        self._update_device(_ref(device), "enabled", int(enabled))

    def mark_activated(self, device: DeviceLike) -> None:
        """Record that the device has come online (激活)."""
        self._update_device(_ref(device), "activated", 1)

    def reset_registration(self, device: DeviceLike) -> None:
        """The platform's ResetThing: the device is not activated and not registered
        (动态注册状态: 未注册) again, so dynamic registration works again and the next one
        hands out the current DeviceSecret (see :meth:`registration_secret`).

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1"); d = reg.add_device("pk1", "dev1")
            >>> reg.mark_activated(d); reg.reset_registration(d)
            >>> reg.get_device(d.ref).activated
            False
        """
        ref = _ref(device)
        if not self._execute(
            "UPDATE devices SET activated = 0, registered = 0 "
            "WHERE product_key = ? AND device_name = ?",
            (ref.product_key, ref.device_name),
        ):
            raise UsageError("device", f"no device {ref}")

    def registration_secret(self, device: DeviceLike) -> str:
        """The DeviceSecret a dynamic registration (一型一密, HTTPS or MQTT ``register``)
        hands out, in one transaction.

        A device that is not registered (added, or reset by ResetThing) gets the secret it
        has (the console's: the tutorial's capture returns exactly that) and counts as
        registered from then on. Each further registration before activation issues a
        **new** DeviceSecret and the previous one stops working: "设备未激活时，可进行多次
        动态注册，设备的DeviceSecret以最后一次为准。请确保固化到设备的DeviceSecret为最新"
        (help.aliyun.com doc 173007, MQTT dynamic registration, and the HTTPS one).

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1")
            >>> d = reg.add_device("pk1", "dev1", "a" * 32)
            >>> reg.registration_secret(d) == "a" * 32
            True
            >>> again = reg.registration_secret(d)
            >>> again != "a" * 32 and reg.get_device(d.ref).device_secret == again
            True
        """
        ref = _ref(device)
        with self._write() as conn:
            rows = conn.execute(
                "SELECT device_secret, registered FROM devices "
                "WHERE product_key = ? AND device_name = ?",
                (ref.product_key, ref.device_name),
            ).fetchall()
            if not rows:
                raise UsageError("device", f"no device {ref}")
            secret: str = rows[0]["device_secret"]
            if rows[0]["registered"]:
                secret = secrets.token_hex(16)
            conn.execute(
                "UPDATE devices SET device_secret = ?, registered = 1 "
                "WHERE product_key = ? AND device_name = ?",
                (secret, ref.product_key, ref.device_name),
            )
        return secret
