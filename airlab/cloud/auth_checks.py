"""The checks the MQTT logins of :mod:`airlab.cloud.auth` share, each a refusal (a
:class:`~airlab.cloud.model.ConnectDecision` with its explanation) or None: secure mode,
keepalive, the opt-in rate limit, the ``dn&pk`` username and the device, the "TLS
required" and host rules, and the accepting decision itself.

Example:
    >>> from airlab.cloud.registry import Registry
    >>> from airlab.cloud.auth import Rules
    >>> from airlab.cloud.model import ConnectRequest
    >>> Rules(Registry())._keepalive(ConnectRequest("c", "u", b"p", 10)).explanation.rule
    'keepalive'
"""

from __future__ import annotations

from collections import deque

from airlab.aliyun import (
    parse_username,
)
from airlab.aliyun.clientid import ParsedClientId
from airlab.cloud.auth_common import (
    HOST_REFUSAL_CODE,
    KEEPALIVE_RANGE,
    RATE_WINDOW,
    TLS_REFUSAL_CODE,
    RulesBase,
    _disabled_text,
    _expected_host,
    host_carries_product_key,
)
from airlab.cloud.model import (
    ConnectDecision,
    ConnectKind,
    ConnectRequest,
    DeviceRef,
)
from airlab.cloud.registry import Device, Product


class LoginChecks(RulesBase):
    """The steps the device, token, connwl and dynreg logins have in common."""

    def _bad_secure_mode(self, request: ConnectRequest, text: str) -> ConnectDecision:
        return ConnectDecision.refuse(
            2,
            rule="secure_mode",
            message=(
                f"securemode={text} is not supported by the emulator: use 3 (TCP) or 2 (TLS) "
                "with a device signature, -1/0 with an iotToken, -2 with authType=connwl"
            ),
            details={"client_id": request.client_id, "securemode": text},
        )

    def _keepalive(self, request: ConnectRequest) -> ConnectDecision | None:
        low, high = KEEPALIVE_RANGE
        if request.keepalive == 0 or not low <= request.keepalive <= high:
            return ConnectDecision.refuse(
                2,
                rule="keepalive",
                message=(
                    f"keepalive {request.keepalive} s is out of range: the platform accepts "
                    f"{low}..{high} seconds (AT+MCONNECT=1,<keepalive>; 120 is common)"
                ),
                details={"keepalive": str(request.keepalive), "allowed": f"{low}..{high}"},
            )
        return None

    def _rate_limited(self, device: DeviceRef) -> ConnectDecision | None:
        if self.connect_rate_limit is None:
            return None
        now = self._clock()
        with self._attempts_lock:
            window = self._attempts.setdefault(device, deque())
            while window and window[0] <= now - RATE_WINDOW:
                window.popleft()
            window.append(now)
            count = len(window)
        if count > self.connect_rate_limit:
            return ConnectDecision.refuse(
                3,
                rule="rate_limit",
                message=(
                    f"device {device} tried to connect {count} times in 60 s; at most "
                    f"{self.connect_rate_limit} are allowed: wait a minute before reconnecting"
                ),
                details={"device": str(device), "attempts": str(count)},
            )
        return None

    def _lookup(self, username: str | None, request: ConnectRequest) -> Device | ConnectDecision:
        """Resolve ``dn&pk`` to an enabled device or a refusal."""
        user = parse_username(username or "")
        if not user.valid:
            return ConnectDecision.refuse(
                4,
                rule="username_format",
                message=(
                    f"the username {username!r} must be '<deviceName>&<productKey>' "
                    "(device name first, then '&', then the product key)"
                ),
                details={"username": str(username)},
            )
        return self._device_or_refusal(user.product_key, user.device_name, username or "", request)

    def _device_or_refusal(
        self,
        product_key: str,
        device_name: str,
        username: str,
        request: ConnectRequest | None = None,
    ) -> Device | ConnectDecision:
        product = self.registry.get_product(product_key)
        device = self.registry.get_device(product_key, device_name) if product else None
        if device is None:
            swapped = self.registry.get_device(device_name, product_key)
            hint = (
                f" The username looks swapped: it must be '{product_key}&{device_name}' "
                "(deviceName&productKey)."
                if swapped
                else " Check the device certificate (ProductKey/DeviceName) in the console."
            )
            rule = "unknown_device" if product else "unknown_product"
            what = (
                f"there is no device {device_name!r} in product {product_key!r}"
                if product
                else f"there is no product {product_key!r}"
            )
            return ConnectDecision.refuse(
                5,
                rule=rule,
                message=f"{what} (read from the username {username!r}).{hint}",
                details={"product_key": product_key, "device_name": device_name},
            )
        if not device.enabled:
            return self._disabled_refusal(device)
        if request is None or product is None:  # product is known once device is
            return device
        refusal = self._tls_refusal(product, request, device.device_name)
        if refusal is None:
            refusal = self._host_refusal(product, request, device.device_name)
        return device if refusal is None else refusal

    @staticmethod
    def _disabled_refusal(device: Device) -> ConnectDecision:
        """CONNACK 5 for a device switched off (禁用) in the console."""
        return ConnectDecision.refuse(
            5,
            rule="device_disabled",
            message=_disabled_text(device.ref),
            details={"device": str(device.ref)},
        )

    def _tls_refusal(
        self, product: Product, request: ConnectRequest, device_name: str
    ) -> ConnectDecision | None:
        """The product's "TLS required" setting (module docstring): None when it passes."""
        if not product.tls_required or request.tls:
            return None
        pk = product.product_key
        return ConnectDecision.refuse(
            TLS_REFUSAL_CODE,
            rule="tls_required",
            message=(
                f"product {pk} accepts MQTT over TLS only, and this login came over plain "
                "TCP (AT+MIPSTART): open the link with AT+SSLMIPSTART instead (TLS; "
                f'AT+SSLMIPSTART="{_expected_host(pk, product.region)}",1883) and keep the '
                "rest. The platform refuses plain TCP for accounts created since 2022-08-02 "
                "(the emulator's tls_required setting is on for this product)"
            ),
            details={
                "transport": "plain TCP",
                "product_key": pk,
                "device": f"{pk}/{device_name}",
                "setting": "tls_required on (see docs/cloud.md)",
            },
        )

    def _host_refusal(
        self, product: Product, request: ConnectRequest, device_name: str
    ) -> ConnectDecision | None:
        """The host rule (module docstring): None when it passes or does not apply.
        ``device_name`` is the one the login claims (not yet authenticated)."""
        used = request.server_name
        if not product.host_check or not request.tls or not used:
            return None
        pk = product.product_key
        if host_carries_product_key(used, pk):
            return None
        expected = _expected_host(pk, product.region)
        labels = used.rstrip(".").split(".")
        if len(labels) >= 3 and labels[1].lower() == "iot-as-mqtt":
            whose = f"the host of productKey {labels[0]!r}, not of {pk}"
        else:
            whose = f"not a '<productKey>.iot-as-mqtt.<region>.aliyuncs.com' host of {pk}"
        return ConnectDecision.refuse(
            HOST_REFUSAL_CODE,
            rule="mqtt_host",
            message=(
                f"the module dialled {used!r} (the host of AT+SSLMIPSTART, seen as the TLS "
                f"server name): {whose}. Product {pk} must be reached at its own host: "
                f'AT+SSLMIPSTART="{expected}",1883 (切记: the host carries your productKey; '
                "the host check is switched on for this product in the emulator)"
            ),
            details={
                "host_used": used,
                "host_expected": expected,
                "product_key": pk,
                "device": f"{pk}/{device_name}",
                "setting": "host_check on (an emulator setting; see docs/cloud.md)",
            },
        )

    def _accept(
        self, device: Device, kind: ConnectKind, parsed: ParsedClientId, request: ConnectRequest
    ) -> ConnectDecision:
        try:
            ext = int(parsed.params.get("ext", "0") or 0)
        except ValueError:
            ext = 0
        return ConnectDecision(
            0,
            device=device.ref,
            kind=kind,
            ext=ext,
            keepalive_limit=1.5 * request.keepalive,
        )
