"""The emulator's registry (设备注册表): products, topic classes, devices, tokens, and the
connection and message logs, in SQLite.

* A file by default (``":memory:"`` for tests); WAL mode, so another process (``airlab
  cloud add-device --db same.db`` while ``serve`` runs) can write, and rows are never
  cached here: the running service sees a new device on its next lookup.
* Thread-safe: one connection guarded by a lock (the broker thread, the HTTP threads and
  the notebook all share it).
* Logging never blocks the broker: :meth:`Registry.log_connection` and
  :meth:`Registry.log_message` only enqueue; a writer thread commits in batches
  (``executemany``; every 200 records or ~50 ms). A record may carry ``on_commit``,
  called (in the writer thread, in queue order) once its transaction is committed:
  the broker sends a PUBACK or a refusal only then, so nothing acknowledged is missing
  from the log after a crash. Such a record ends the batch's wait at once (group
  commit: whatever is queued goes in one transaction). :meth:`Registry.flush` waits
  until everything queued is written; reads of the logs flush first;
  :meth:`Registry.close` flushes.

Example:
    >>> reg = Registry()
    >>> reg.add_product("k1hipglLdjU", "8LQwOYSZMwp3DFBd").dynamic_registration
    False
    >>> dev = reg.add_device("k1hipglLdjU", "868488076506128",
    ...                      "fef32adf6dad46c2c7cbf335d3a7b021")
    >>> reg.get_device("k1hipglLdjU", "868488076506128").device_secret
    'fef32adf6dad46c2c7cbf335d3a7b021'
    >>> [c.template for c in reg.topic_classes("k1hipglLdjU")][2]
    '/${productKey}/${deviceName}/user/get'
    >>> len(reg.issue_token(dev.ref).iot_id)
    26
    >>> reg.close()
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import queue
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from airlab.cloud.model import ConnectionEvent, DeviceRef, Explanation, MessageRecord
from airlab.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TOKEN_LIFETIME",
    "Device",
    "DeviceLike",
    "DeviceToken",
    "Product",
    "Registry",
    "Seat",
    "Token",
    "connection_frame_from_rows",
    "message_frame_from_rows",
]

TOKEN_LIFETIME = 7 * 24 * 3600.0
"""Seconds an iotToken from ``/auth/devicename`` stays valid (7 days)."""

log = logging.getLogger(__name__)

_ALNUM = string.ascii_letters + string.digits
_BATCH = 200
_LINGER = 0.05
# Someone waits for the commit (a PUBACK, a refusal): gather what arrives within this
# window into the same transaction (group commit), then commit at once.
_GROUP_WINDOW = 0.002
OnCommit = Callable[[], None]
_Item = tuple[str, tuple[Any, ...], OnCommit | None]
_FLUSH: _Item = ("flush", (), None)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    product_key TEXT PRIMARY KEY,
    product_secret TEXT NOT NULL,
    region TEXT NOT NULL,
    dynamic_registration INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    host_check INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS topic_classes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_key TEXT NOT NULL REFERENCES products(product_key) ON DELETE CASCADE,
    template TEXT NOT NULL,
    permission TEXT NOT NULL,
    UNIQUE (product_key, template)
);
CREATE TABLE IF NOT EXISTS devices (
    product_key TEXT NOT NULL REFERENCES products(product_key) ON DELETE CASCADE,
    device_name TEXT NOT NULL,
    device_secret TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    activated INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    iot_id TEXT NOT NULL UNIQUE,
    PRIMARY KEY (product_key, device_name)
);
CREATE TABLE IF NOT EXISTS tokens (
    iot_token TEXT PRIMARY KEY,
    iot_id TEXT NOT NULL,
    product_key TEXT NOT NULL,
    device_name TEXT NOT NULL,
    issued REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_id ON tokens (iot_id);
CREATE TABLE IF NOT EXISTS device_tokens (
    product_key TEXT NOT NULL,
    device_name TEXT NOT NULL,
    client_id TEXT NOT NULL,
    device_token TEXT NOT NULL,
    issued REAL NOT NULL,
    PRIMARY KEY (product_key, device_name, client_id)
);
CREATE TABLE IF NOT EXISTS connection_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    protocol TEXT NOT NULL,
    event TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    product_key TEXT,
    device_name TEXT,
    client_id TEXT,
    remote TEXT,
    code INTEGER,
    reason TEXT,
    explanation TEXT
);
CREATE TABLE IF NOT EXISTS message_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    direction TEXT NOT NULL,
    product_key TEXT,
    device_name TEXT,
    client_id TEXT,
    topic TEXT NOT NULL,
    qos INTEGER NOT NULL,
    payload BLOB NOT NULL,
    accepted INTEGER NOT NULL,
    reason TEXT,
    explanation TEXT
);
CREATE INDEX IF NOT EXISTS connection_log_device ON connection_log (product_key, device_name);
CREATE INDEX IF NOT EXISTS message_log_device ON message_log (product_key, device_name);
CREATE TABLE IF NOT EXISTS classes (
    name TEXT PRIMARY KEY,
    product_key TEXT NOT NULL REFERENCES products(product_key) ON DELETE CASCADE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seats (
    class_name TEXT NOT NULL REFERENCES classes(name) ON DELETE CASCADE,
    seat TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    product_key TEXT NOT NULL,
    device_name TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (class_name, seat),
    FOREIGN KEY (product_key, device_name)
        REFERENCES devices(product_key, device_name) ON DELETE CASCADE
);
"""

# Columns added after the first release: (table, column, definition). A registry written
# by an older version gets them on open (ALTER TABLE ... ADD COLUMN keeps every row and
# gives it the default).
_ADDED_COLUMNS = (
    ("products", "host_check", "INTEGER NOT NULL DEFAULT 0"),
    ("products", "tls_required", "INTEGER NOT NULL DEFAULT 0"),
    # SHA-256 hex digests of the class's tokens (JSON list; see add_class_token)
    ("classes", "token_hashes", "TEXT NOT NULL DEFAULT '[]'"),
    # 动态注册状态: 1 once a dynamic registration issued the current DeviceSecret (see
    # Registry.registration_secret); ResetThing sets it back to 0 (未注册)
    ("devices", "registered", "INTEGER NOT NULL DEFAULT 0"),
)


@dataclass(frozen=True, slots=True)
class Product:
    """A product (产品): its key, secret (ProductSecret), region, the dynamic
    registration switch (动态注册) and ``host_check``: an emulator setting (off by
    default) under which an MQTT login over TLS must name this product's own host,
    ``<productKey>.iot-as-mqtt.<region>.aliyuncs.com``, as its server name (SNI);
    ``tls_required``: MQTT logins over plain TCP are refused (the platform's rule for
    accounts created since 2022-08-02), see :meth:`Registry.set_tls_required`."""

    product_key: str
    product_secret: str
    region: str
    dynamic_registration: bool
    created: float
    host_check: bool = False
    tls_required: bool = False


@dataclass(frozen=True, slots=True)
class Device:
    """A device (设备) with its DeviceSecret, state and the platform's iotId."""

    product_key: str
    device_name: str
    device_secret: str
    enabled: bool
    activated: bool
    created: float
    iot_id: str
    #: a dynamic registration (一型一密) has issued the current DeviceSecret since the
    #: device was added or its registration reset (ResetThing): 已注册
    registered: bool = False

    @property
    def ref(self) -> DeviceRef:
        """The (productKey, deviceName) pair."""
        return DeviceRef(self.product_key, self.device_name)


@dataclass(frozen=True, slots=True)
class Seat:
    """One student's seat in a class: the seat id (``"07"`` or a roster id), a label
    (the student's name, may be empty) and the seat's device."""

    class_name: str
    seat: str
    label: str
    product_key: str
    device_name: str

    @property
    def ref(self) -> DeviceRef:
        return DeviceRef(self.product_key, self.device_name)


@dataclass(frozen=True, slots=True)
class Token:
    """An iotId/iotToken pair issued by ``/auth/devicename`` (valid 7 days)."""

    iot_id: str
    iot_token: str
    device: DeviceRef
    issued: float
    expires: float

    def expired(self, now: float) -> bool:
        """True once ``now`` (epoch seconds) has reached the expiry."""
        return now >= self.expires


@dataclass(frozen=True, slots=True)
class DeviceToken:
    """A clientId + DeviceToken issued by MQTT dynamic registration ``regnwl``."""

    device: DeviceRef
    client_id: str
    device_token: str
    issued: float


DeviceLike = DeviceRef | Device | tuple[str, str]
"""A device given as a :class:`DeviceRef`, a :class:`Device` or ``(pk, dn)``."""


def _ref(device: DeviceLike | str, device_name: str | None = None) -> DeviceRef:
    if isinstance(device, str):
        if device_name is None:
            raise UsageError("device_name", "give the device name with the product key")
        return DeviceRef(device, device_name)
    if isinstance(device, DeviceRef):
        return device
    if isinstance(device, Device):
        return device.ref
    if isinstance(device, tuple) and len(device) == 2:
        return DeviceRef(str(device[0]), str(device[1]))
    raise UsageError("device", f"expected a DeviceRef, a Device or (pk, dn), got {device!r}")


def _random_text(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _explanation_json(explanation: Explanation | None) -> str | None:
    if explanation is None:
        return None
    return json.dumps(explanation.as_dict(), ensure_ascii=False)


def _explanation_from(text: str | None) -> Explanation | None:
    if not text:
        return None
    data = json.loads(text)
    return Explanation(data["rule"], data["message"], dict(data.get("details") or {}))


class Registry:
    """SQLite-backed registry shared by every part of the emulator.

    ``path`` is a file path (created if missing) or ``":memory:"``. ``clock`` gives the
    epoch seconds used for ``created``/``issued`` stamps.

    Example:
        >>> with Registry() as reg:
        ...     _ = reg.add_product("pk1", dynamic_registration=True)
        ...     len(reg.get_product("pk1").product_secret)
        16
    """

    def __init__(
        self, path: str | Path = ":memory:", *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = str(path)
        self._clock = clock
        self._lock = threading.RLock()
        if self.path != ":memory:":
            _make_private(self.path)
        self._conn = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
            self._migrate()
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._enqueued = 0
        self._written = 0
        self._closed = False
        self.last_write_error: BaseException | None = None
        self._writer = threading.Thread(
            target=self._write_loop, name="airlab-registry", daemon=True
        )
        self._writer.start()

    # -- plumbing ---------------------------------------------------------------------

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.path!r})"

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            self._check_open()
            return self._conn.execute(sql, params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            self._check_open()
            return self._conn.execute(sql, params).rowcount

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("registry", "the registry is closed")

    def _migrate(self) -> None:
        """Add the columns an older registry lacks (another process may race us: a
        column it added meanwhile is fine)."""
        for table, column, definition in _ADDED_COLUMNS:
            present = {r["name"] for r in self._conn.execute(f"PRAGMA table_info({table})")}
            if column in present:
                continue
            try:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc).lower():
                    raise

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
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
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
                self._conn.executemany(
                    "INSERT OR IGNORE INTO topic_classes (product_key, template, permission) "
                    "VALUES (?, ?, ?)",
                    [(product_key, c.template, c.permission.value) for c in classes],
                )
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._conn.execute("ROLLBACK")
                raise UsageError("product_key", f"product {product_key!r} already exists") from None
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
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
            >>> reg = Registry(); _ = reg.add_product("pk1")
            >>> d = reg.add_device("pk1", "dev1", "a" * 32)
            >>> reg.registration_secret(d) == "a" * 32
            True
            >>> again = reg.registration_secret(d)
            >>> again != "a" * 32 and reg.get_device(d.ref).device_secret == again
            True
        """
        ref = _ref(device)
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                rows = self._conn.execute(
                    "SELECT device_secret, registered FROM devices "
                    "WHERE product_key = ? AND device_name = ?",
                    (ref.product_key, ref.device_name),
                ).fetchall()
                if not rows:
                    raise UsageError("device", f"no device {ref}")
                secret = rows[0]["device_secret"]
                if rows[0]["registered"]:
                    secret = secrets.token_hex(16)
                self._conn.execute(
                    "UPDATE devices SET device_secret = ?, registered = 1 "
                    "WHERE product_key = ? AND device_name = ?",
                    (secret, ref.product_key, ref.device_name),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return secret

    # -- classes (airlab class create): a product and one device per seat -------------

    def add_class(
        self, name: str, product_key: str, seats: Iterable[tuple[str, str, str]]
    ) -> list[Seat]:
        """Record class ``name`` on ``product_key`` with its ``(seat, label, device_name)``
        rows, in order (the product and devices must exist; names are validated by
        :mod:`airlab.classroom`).  One transaction: all seats or none.

        Example:
            >>> reg = Registry(); _ = reg.add_product("pk1"); _ = reg.add_device("pk1", "dev1")
            >>> reg.add_class("room1", "pk1", [("01", "Ana", "dev1")])[0].device_name
            'dev1'
        """
        rows = [(name, s, label, product_key, dn, i) for i, (s, label, dn) in enumerate(seats)]
        now = self._clock()
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
                    "INSERT INTO classes (name, product_key, created) VALUES (?, ?, ?)",
                    (name, product_key, now),
                )
                self._conn.executemany("INSERT INTO seats VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                self._conn.execute("ROLLBACK")
                if any(c[0] == name for c in self.classes()):
                    raise UsageError("name", f"class {name!r} already exists") from None
                raise UsageError("seats", f"cannot record the class: {exc}") from None
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return self.seats(name)

    def classes(self) -> list[tuple[str, str, float]]:
        """Every class as ``(name, product_key, created)``, newest first."""
        rows = self._query("SELECT name, product_key, created FROM classes ORDER BY created DESC")
        return [(r["name"], r["product_key"], r["created"]) for r in rows]

    def seats(self, class_name: str | None = None) -> list[Seat]:
        """The seats of one class (every class's when ``None``), in roster order."""
        sql = "SELECT * FROM seats"
        params: tuple[Any, ...] = ()
        if class_name is not None:
            sql += " WHERE class_name = ?"
            params = (class_name,)
        rows = self._query(sql + " ORDER BY class_name, position", params)
        return [
            Seat(r["class_name"], r["seat"], r["label"], r["product_key"], r["device_name"])
            for r in rows
        ]

    def add_class_token(self, name: str, *, revoke_others: bool = False) -> str:
        """A new class token for class ``name`` (``airlab class room-file``): scoped
        access to the admin API for the class's product.  Only its SHA-256 digest is
        stored; earlier tokens stay valid unless ``revoke_others``.

        Example:
            >>> reg = Registry(); _ = reg.add_product("pk1"); _ = reg.add_class("c1", "pk1", [])
            >>> token = reg.add_class_token("c1")
            >>> reg.class_of_token(token), reg.class_of_token("nope")
            (('c1', 'pk1'), None)
        """
        token = "class-" + secrets.token_urlsafe(24)
        digest = _token_digest(token)
        with self._lock:
            self._check_open()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._conn.execute(
                    "SELECT token_hashes FROM classes WHERE name = ?", (name,)
                ).fetchall()
                if not rows:
                    raise UsageError("name", f"no class {name!r}")
                kept = [] if revoke_others else _token_list(rows[0]["token_hashes"])
                self._conn.execute(
                    "UPDATE classes SET token_hashes = ? WHERE name = ?",
                    (json.dumps([*kept, digest]), name),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return token

    def class_of_token(self, token: str) -> tuple[str, str] | None:
        """``(class name, product key)`` of a class token, or None.  Every stored digest
        is compared in constant time (no early exit)."""
        if not isinstance(token, str) or not token or len(token) > 256:
            return None
        digest = _token_digest(token)
        found = None
        for row in self._query("SELECT name, product_key, token_hashes FROM classes"):
            for stored in _token_list(row["token_hashes"]):
                if hmac.compare_digest(stored.encode("ascii", "replace"), digest.encode()):
                    found = (row["name"], row["product_key"])
        return found

    # -- tokens -----------------------------------------------------------------------

    def issue_token(
        self, device: DeviceLike, *, now: float | None = None, lifetime: float = TOKEN_LIFETIME
    ) -> Token:
        """Issue an iotToken (32 lowercase hex) for the device's iotId, valid 7 days."""
        ref = _ref(device)
        found = self.get_device(ref)
        if found is None:
            raise UsageError("device", f"no device {ref}")
        issued = self._clock() if now is None else now
        token = Token(found.iot_id, secrets.token_hex(16), ref, issued, issued + lifetime)
        self._execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?)",
            (
                token.iot_token,
                token.iot_id,
                ref.product_key,
                ref.device_name,
                issued,
                token.expires,
            ),
        )
        return token

    def find_token(self, iot_id: str, iot_token: str) -> Token | None:
        """The token with this iotId and iotToken (expired or not), or None."""
        rows = self._query(
            "SELECT * FROM tokens WHERE iot_id = ? AND iot_token = ?", (iot_id, iot_token)
        )
        if not rows:
            return None
        r = rows[0]
        return Token(
            r["iot_id"],
            r["iot_token"],
            DeviceRef(r["product_key"], r["device_name"]),
            r["issued"],
            r["expires"],
        )

    def issue_device_token(self, device: DeviceLike, client_id: str) -> DeviceToken:
        """Issue (or replace) the regnwl DeviceToken for ``(device, client_id)``.

        The token format is opaque on the platform; we mimic the one public sample,
        ``^1^<ms>^<15 hex>``.
        """
        ref = _ref(device)
        issued = self._clock()
        token = f"^1^{int(issued * 1000)}^{secrets.token_hex(8)[:15]}"
        self._execute(
            "INSERT OR REPLACE INTO device_tokens VALUES (?, ?, ?, ?, ?)",
            (ref.product_key, ref.device_name, client_id, token, issued),
        )
        return DeviceToken(ref, client_id, token, issued)

    def find_device_token(self, device: DeviceLike, client_id: str) -> DeviceToken | None:
        """The DeviceToken issued for ``(device, client_id)``, or None."""
        ref = _ref(device)
        rows = self._query(
            "SELECT * FROM device_tokens WHERE product_key = ? AND device_name = ? "
            "AND client_id = ?",
            (ref.product_key, ref.device_name, client_id),
        )
        if not rows:
            return None
        r = rows[0]
        return DeviceToken(ref, r["client_id"], r["device_token"], r["issued"])

    # -- logs ---------------------------------------------------------------------------

    def log_connection(self, event: ConnectionEvent, on_commit: OnCommit | None = None) -> None:
        """Queue one connection-log line (returns at once; see :meth:`flush`);
        ``on_commit`` is called once it is committed."""
        dev = event.device
        self._enqueue(
            "INSERT INTO connection_log (time, protocol, event, accepted, product_key, "
            "device_name, client_id, remote, code, reason, explanation) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.time,
                event.protocol,
                event.event,
                int(event.accepted),
                dev.product_key if dev else None,
                dev.device_name if dev else None,
                event.client_id,
                event.remote,
                event.code,
                event.reason,
                _explanation_json(event.explanation),
            ),
            on_commit,
        )

    def log_message(self, record: MessageRecord, on_commit: OnCommit | None = None) -> None:
        """Queue one message-log line (returns at once; see :meth:`flush`);
        ``on_commit`` is called once it is committed.

        Example:
            >>> reg = Registry(); done = threading.Event()
            >>> reg.log_message(MessageRecord(1.0, "up", "/t", 1, b"x", True), done.set)
            >>> done.wait(5), len(reg.message_log())
            (True, 1)
        """
        dev = record.device
        self._enqueue(
            "INSERT INTO message_log (time, direction, product_key, device_name, client_id, "
            "topic, qos, payload, accepted, reason, explanation) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.time,
                record.direction,
                dev.product_key if dev else None,
                dev.device_name if dev else None,
                record.client_id,
                record.topic,
                record.qos,
                bytes(record.payload),
                int(record.accepted),
                record.reason,
                None,
            ),
            on_commit,
        )

    def _enqueue(self, sql: str, params: tuple[Any, ...], on_commit: OnCommit | None) -> None:
        with self._cond:
            if self._closed:  # late lines from a stopping broker are dropped
                return
            self._enqueued += 1
        self._queue.put((sql, params, on_commit))

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            if item is _FLUSH:
                continue
            batch = [item]
            urgent = item[2] is not None
            if urgent:
                time.sleep(_GROUP_WINDOW)  # one wake-up per group, not one per record
            deadline = time.monotonic() + _LINGER
            while len(batch) < _BATCH:
                remaining = 0.0 if urgent else deadline - time.monotonic()
                try:
                    if remaining > 0:
                        nxt = self._queue.get(timeout=remaining)
                    else:
                        nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt is _FLUSH:  # someone waits: commit now instead of lingering
                    break
                batch.append(nxt)
                if nxt[2] is not None and not urgent:
                    urgent = True  # from now on take only what is already queued
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Item]) -> None:
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for sql, params, _ in batch:
            grouped.setdefault(sql, []).append(params)
        committed = False
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for sql, rows in grouped.items():
                        self._conn.executemany(sql, rows)
                    self._conn.execute("COMMIT")
                    committed = True
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except Exception as exc:  # pragma: no cover - disk full, locked for 10 s ...
            self.last_write_error = exc
            log.error("the registry could not write %d log records: %r", len(batch), exc)
        finally:
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()
        if committed:  # an unwritten record is never acknowledged
            for _, _, on_commit in batch:
                if on_commit is not None:
                    try:
                        on_commit()
                    except Exception:
                        log.exception("an on_commit callback of the registry failed")

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every record queued so far is committed; False on timeout.

        Example:
            >>> reg = Registry()
            >>> reg.log_connection(ConnectionEvent(1.0, "mqtt", "connect", True))
            >>> reg.flush(), len(reg.connection_log())
            (True, 1)
        """
        with self._cond:
            target = self._enqueued
            if self._written >= target:
                return True
        self._queue.put(_FLUSH)
        with self._cond:
            return self._cond.wait_for(lambda: self._written >= target, timeout)

    def connection_log(
        self, device: DeviceLike | None = None, limit: int | None = None
    ) -> list[ConnectionEvent]:
        """Connection-log lines, oldest first (the last ``limit`` ones); flushes first."""
        rows = self._log_rows("connection_log", device, limit)
        return [
            ConnectionEvent(
                time=r["time"],
                protocol=r["protocol"],
                event=r["event"],
                accepted=bool(r["accepted"]),
                device=_row_ref(r),
                client_id=r["client_id"],
                remote=r["remote"],
                code=r["code"],
                reason=r["reason"],
                explanation=_explanation_from(r["explanation"]),
            )
            for r in rows
        ]

    def message_log(
        self, device: DeviceLike | None = None, limit: int | None = None
    ) -> list[MessageRecord]:
        """Message-log lines, oldest first (the last ``limit`` ones); flushes first."""
        rows = self._log_rows("message_log", device, limit)
        return [
            MessageRecord(
                time=r["time"],
                direction=r["direction"],
                topic=r["topic"],
                qos=r["qos"],
                payload=bytes(r["payload"]),
                accepted=bool(r["accepted"]),
                device=_row_ref(r),
                client_id=r["client_id"],
                reason=r["reason"],
            )
            for r in rows
        ]

    def _log_rows(
        self, table: str, device: DeviceLike | None, limit: int | None
    ) -> list[sqlite3.Row]:
        self.flush()
        where, params = "", []
        if device is not None:
            ref = _ref(device)
            where = "WHERE product_key = ? AND device_name = ?"
            params = [ref.product_key, ref.device_name]
        sql = f"SELECT * FROM {table} {where} ORDER BY id"
        if limit is not None:
            inner = f"SELECT * FROM {table} {where} ORDER BY id DESC LIMIT ?"
            sql = f"SELECT * FROM ({inner}) ORDER BY id"
            params.append(int(limit))
        return self._query(sql, params)

    def log_rows_after(
        self, table: str, after_id: int, product_key: str | None, *, limit: int = 5000
    ) -> list[dict[str, Any]]:
        """Rows of ``table`` (``connection_log`` or ``message_log``) with an id above
        ``after_id`` that concern ``product_key`` or name no device (a refused CONNECT
        before authentication), oldest first, at most ``limit``; as committed now (no
        flush: a live view polls again).  What a dashboard reads incrementally.
        ``product_key=None``: every row.

        Example:
            >>> reg = Registry()
            >>> reg.log_connection(ConnectionEvent(1.0, "mqtt", "refused", False)); _ = reg.flush()
            >>> [r["event"] for r in reg.log_rows_after("connection_log", 0, "pk1")]
            ['refused']
        """
        if table not in ("connection_log", "message_log"):
            raise UsageError("table", f"must be connection_log or message_log, not {table!r}")
        if product_key is None:
            sql, params = f"SELECT * FROM {table} WHERE id > ?", [int(after_id)]
        else:
            sql = f"SELECT * FROM {table} WHERE id > ? AND (product_key = ? OR product_key IS NULL)"
            params = [int(after_id), product_key]
        rows = self._query(sql + " ORDER BY id LIMIT ?", (*params, int(limit)))
        return [dict(r) for r in rows]

    def connection_frame(self, device: DeviceLike | None = None) -> pd.DataFrame:
        """The connection log as a DataFrame: ``time`` datetime64 (UTC), ``protocol`` and
        ``event`` categorical, text columns ``str``, ``explanation`` as JSON text."""
        return connection_frame_from_rows(self._log_rows("connection_log", device, None))

    def message_frame(self, device: DeviceLike | None = None) -> pd.DataFrame:
        """The message log as a DataFrame: ``time`` datetime64 (UTC), ``direction``
        categorical, ``payload`` bytes, ``text`` the payload decoded (UTF-8, replaced),
        ``size`` its length."""
        return message_frame_from_rows(self._log_rows("message_log", device, None))

    # -- reset (airlab cloud reset): every table emptied, the fixture loaded again ------

    def _tables(self) -> list[str]:
        """Every table of the registry, read from ``sqlite_master`` (SQLite's own, such
        as ``sqlite_sequence``, left out)."""
        rows = self._query(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
        return [r["name"] for r in rows]

    @staticmethod
    def _is_log(table: str) -> bool:
        return table.endswith("_log")

    def table_counts(self, *, logs_only: bool = False) -> dict[str, int]:
        """Rows per table (only the ``*_log`` tables with ``logs_only``); flushes first.

        Example:
            >>> reg = Registry(); _ = reg.add_product("pk1")
            >>> reg.table_counts()["products"], reg.table_counts(logs_only=True)
            (1, {'connection_log': 0, 'message_log': 0})
        """
        self.flush()
        counts = {}
        for table in self._tables():
            if logs_only and not self._is_log(table):
                continue
            counts[table] = int(self._query(f'SELECT count(*) FROM "{table}"')[0][0])
        return counts

    def reset(
        self,
        fixture: str | Callable[[Registry], object] | None = None,
        *,
        logs_only: bool = False,
    ) -> dict[str, int]:
        """Empty every table (every ``*_log`` table only, with ``logs_only``) in one
        transaction, then load ``fixture`` (a name from
        :data:`airlab.cloud.fixtures.FIXTURES` or a callable taking the registry); returns
        the rows removed per table.

        Tables are read from ``sqlite_master``, so a table added later is emptied too.
        AUTOINCREMENT counters are kept: log ids keep growing across a reset, so a reader
        following the log by id (``airlab cloud log --follow``) sees the new rows.

        Example:
            >>> reg = Registry(); _ = reg.add_product("a1Other")
            >>> reg.reset("tutorial")["products"]
            1
            >>> [p.product_key for p in reg.products()]
            ['k1hipglLdjU']
        """
        load: Callable[[Registry], object] | None
        if isinstance(fixture, str):
            from airlab.cloud.fixtures import FIXTURES

            if fixture not in FIXTURES:
                known = ", ".join(sorted(FIXTURES))
                raise UsageError("fixture", f"unknown fixture {fixture!r} (known: {known})")
            load = FIXTURES[fixture]
        else:
            load = fixture
        self.flush()  # queued log lines land before the reset, not after it
        removed: dict[str, int] = {}
        with self._lock:
            self._check_open()
            tables = [t for t in self._tables() if not logs_only or self._is_log(t)]
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # rows reference each other (devices -> products, seats -> devices ...):
                # check the foreign keys at COMMIT, when every table is empty
                self._conn.execute("PRAGMA defer_foreign_keys = ON")
                for table in tables:  # counted first: a cascade empties some early
                    count = self._conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                    removed[table] = int(count[0])
                for table in tables:
                    self._conn.execute(f'DELETE FROM "{table}"')
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        if load is not None and not logs_only:
            load(self)
        return removed

    def close(self) -> None:
        """Flush the logs, stop the writer and close the database (idempotent)."""
        with self._cond:
            if self._closed:
                return
        self.flush()
        with self._cond:
            self._closed = True
        self._queue.put(None)
        self._writer.join(timeout=10)
        with self._lock:
            self._conn.close()


def connection_frame_from_rows(rows: Iterable[Any]) -> pd.DataFrame:
    """The connection-log frame of :meth:`Registry.connection_frame` from rows with its
    columns (``sqlite3.Row`` or dicts: what the admin API's ``/admin/log`` serves)."""
    import pandas as pd

    rows = list(rows)
    columns = [
        "time", "protocol", "event", "accepted", "product_key", "device_name",
        "client_id", "remote", "code", "reason", "explanation",
    ]  # fmt: skip
    frame = pd.DataFrame([tuple(r[c] for c in columns) for r in rows], columns=columns)
    frame["time"] = pd.to_datetime(frame["time"].astype("float64"), unit="s", utc=True)
    frame["accepted"] = frame["accepted"].astype(bool)
    frame["code"] = frame["code"].astype("Int64")
    for name in ("protocol", "event"):
        frame[name] = frame[name].astype("category")
    for name in ("product_key", "device_name", "client_id", "remote", "reason", "explanation"):
        frame[name] = frame[name].astype("string")
    frame.insert(4, "device", _device_column(frame))
    return frame


def message_frame_from_rows(rows: Iterable[Any]) -> pd.DataFrame:
    """The message-log frame of :meth:`Registry.message_frame` from rows with its
    columns (``payload`` as bytes)."""
    import pandas as pd

    rows = list(rows)
    columns = [
        "time", "direction", "product_key", "device_name", "client_id", "topic", "qos",
        "payload", "accepted", "reason",
    ]  # fmt: skip
    frame = pd.DataFrame([tuple(r[c] for c in columns) for r in rows], columns=columns)
    frame["time"] = pd.to_datetime(frame["time"].astype("float64"), unit="s", utc=True)
    frame["direction"] = frame["direction"].astype("category")
    frame["qos"] = frame["qos"].astype("int64")
    frame["accepted"] = frame["accepted"].astype(bool)
    frame["payload"] = frame["payload"].map(bytes).astype(object)
    frame["size"] = frame["payload"].map(len).astype("int64")
    frame["text"] = (
        frame["payload"].map(lambda b: b.decode("utf-8", errors="replace")).astype("string")
    )
    for name in ("product_key", "device_name", "client_id", "topic", "reason"):
        frame[name] = frame[name].astype("string")
    frame.insert(2, "device", _device_column(frame))
    return frame


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _token_list(text: object) -> list[str]:
    try:
        value = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _device(row: sqlite3.Row) -> Device:
    return Device(
        row["product_key"],
        row["device_name"],
        row["device_secret"],
        bool(row["enabled"]),
        bool(row["activated"]),
        row["created"],
        row["iot_id"],
        bool(row["registered"]),
    )


def _row_ref(row: sqlite3.Row) -> DeviceRef | None:
    if row["product_key"] is None or row["device_name"] is None:
        return None
    return DeviceRef(row["product_key"], row["device_name"])


def _device_column(frame: pd.DataFrame) -> pd.Series:
    joined = frame["product_key"].astype("string") + "/" + frame["device_name"].astype("string")
    return joined.astype("string")


def _as_class(value: TopicClass | tuple[str, str]) -> TopicClass:
    if isinstance(value, TopicClass):
        return validate_topic_class(value.template, value.permission)
    template, permission = value
    return validate_topic_class(template, permission)


def _make_private(path: str) -> None:
    """Create the registry file (and its ``-wal``/``-shm`` companions, if any) readable
    by its owner only: it holds secrets and tokens. SQLite creates the WAL and SHM files
    with the main file's permissions, so they follow."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return  # sqlite3.connect reports the problem in its own words
    try:
        if os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            companion = path + suffix
            if os.stat(companion).st_uid == os.getuid():
                os.chmod(companion, 0o600)
