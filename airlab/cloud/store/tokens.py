"""Tokens the registry issues: iotTokens (``/auth/devicename``, 7 days) and the
DeviceTokens of MQTT dynamic registration ``regnwl``.

Example:
    >>> from airlab.cloud.registry import Registry
    >>> reg = Registry(); _ = reg.add_product("pk1"); d = reg.add_device("pk1", "dev1")
    >>> t = reg.issue_token(d)
    >>> reg.find_token(t.iot_id, t.iot_token) == t
    True
"""

from __future__ import annotations

import secrets

from airlab.cloud.model import DeviceRef
from airlab.cloud.store.products import ProductsMixin
from airlab.cloud.store.records import TOKEN_LIFETIME, DeviceLike, DeviceToken, Token, _ref
from airlab.errors import UsageError

__all__ = ["TokensMixin"]


class TokensMixin(ProductsMixin):
    """iotTokens and DeviceTokens (a token names a device, so this builds on the
    devices)."""

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
