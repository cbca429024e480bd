"""What the service needs around its listeners: the host's primary address, atomic
JSON files, port checks, and :class:`ServiceRules` (the rules with a permission memo).

Example:
    >>> _check_port(1883, "mqtt_port")
    1883
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airlab.cloud.auth import Rules
from airlab.cloud.model import DeviceRef, Permission
from airlab.cloud.registry import Registry
from airlab.errors import UsageError

__all__ = ["ServiceRules", "primary_address", "write_json_atomic"]


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


class ServiceRules(Rules):
    """:class:`~airlab.cloud.auth.Rules` with a memo of topic permissions.

    Every PUBLISH asks ``may_publish``, which reads the product's topic classes from the
    registry and checks them against the system topics: the service remembers each
    answer until the registry changes. A write through this registry object (the
    console, the admin API) is seen at the next message; a write from another process
    (``airlab cloud add-topic-class`` beside a running emulator) within
    ``permission_ttl`` seconds (1 s), when the registry's revision of its products and
    topic classes is read again (:meth:`~airlab.cloud.registry.Registry.rules_revision`;
    a write through this object has it read at the next message). Device updates (a
    login marks its device activated) and log lines leave the memo alone.
    :meth:`forget_permissions` drops the memo at once. Connect decisions are never
    memoized: the product's switches (动态注册, the host check) are read from the
    registry on every CONNECT and every HTTP call, so a change applies to the next
    login, from any process.

    Example:
        >>> from airlab.cloud.registry import Registry
        >>> from airlab.cloud.model import DeviceRef
        >>> reg = Registry(); _ = reg.add_product("pk1"); dev = DeviceRef("pk1", "d1")
        >>> rules = ServiceRules(reg)
        >>> rules.may_publish(dev, "/pk1/d1/user/cmd", 1).allowed
        False
        >>> _ = reg.add_topic_class("pk1", "/${productKey}/${deviceName}/user/cmd", "pub")
        >>> rules.may_publish(dev, "/pk1/d1/user/cmd", 1).allowed
        True
    """

    def __init__(self, registry: Registry, *, permission_ttl: float = 1.0, **kwargs: Any) -> None:
        super().__init__(registry, **kwargs)
        self.permission_ttl = permission_ttl
        self._memo: dict[tuple[str, DeviceRef, str, int], Permission] = {}
        self._memo_local = registry.local_changes
        self._memo_revision = registry.rules_revision()
        self._memo_checked = time.monotonic()
        self._memo_lock = threading.Lock()

    def forget_permissions(self) -> None:
        """Drop every remembered permission (after a registry change)."""
        with self._memo_lock:
            self._memo.clear()

    def forget_attempts(self) -> None:
        """Forget the CONNECT attempts counted for the rate limit (after a wipe)."""
        with self._attempts_lock:
            self._attempts.clear()

    def _remembered(
        self, key: tuple[str, DeviceRef, str, int], compute: Callable[[], Permission]
    ) -> Permission:
        registry = self.registry
        now = time.monotonic()
        with self._memo_lock:
            local = registry.local_changes
            if local != self._memo_local or now - self._memo_checked > self.permission_ttl:
                self._memo_local, self._memo_checked = local, now
                revision = registry.rules_revision()
                if revision != self._memo_revision:
                    self._memo.clear()
                    self._memo_revision = revision
            if len(self._memo) > 100_000:
                self._memo.clear()
            revision = self._memo_revision
            found = self._memo.get(key)
        if found is not None:
            return found
        answer = compute()
        with self._memo_lock:
            if self._memo_revision == revision:  # not computed from rules changed meanwhile
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
