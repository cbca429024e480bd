"""The two HTTPS endpoints of :mod:`airlab.cloud.auth` (the status and JSON codes are in
that module's docstring): ``/auth/devicename`` (一机一密: iotId/iotToken) and
``/auth/register/device`` (一型一密: the DeviceSecret). Both refuse through one helper
(``HttpRules._refuser``) and share the form checks (missing fields, sign method).

Example:
    >>> from airlab.cloud.registry import Registry
    >>> from airlab.cloud.auth import Rules
    >>> Rules(Registry()).register_device({"productKey": "pk"}).json["message"]
    'param error'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from airlab.aliyun import (
    DEFAULT_MQTT_PORT,
    check_devicename_form,
    check_register_form,
    mqtt_host,
)
from airlab.aliyun.identity import MAX_CLIENT_ID_LENGTH
from airlab.cloud.auth_common import (
    JSON_CONTENT_TYPE,
    HttpReply,
    RulesBase,
    _disabled_text,
    _dumps,
    _sign_details,
)
from airlab.cloud.model import (
    ConnectionEvent,
    DeviceRef,
    Explanation,
)

_SIGN_METHODS = ("hmacmd5", "hmacsha1", "hmacsha256")
"""The sign methods both endpoints take (any letter case)."""


class _Fail(Protocol):
    """``fail(code, message, rule, text, **details)``: log and answer one refusal."""

    def __call__(
        self, code: int, message: str, rule: str, text: str, **details: str
    ) -> HttpReply: ...


def _missing_fields(
    fail: _Fail, path: str, form: Mapping[str, str], names: tuple[str, ...]
) -> HttpReply | None:
    """JSON 460 naming the fields of ``names`` the form lacks (or leaves empty)."""
    missing = [n for n in names if not form.get(n)]
    if not missing:
        return None
    return fail(
        460,
        "param error",
        "http_params",
        f"{path} needs {', '.join(names[:-1])} and {names[-1]}; missing: {', '.join(missing)}",
        received=", ".join(form) or "(nothing)",
    )


def _unknown_sign_method(
    fail: _Fail, form: Mapping[str, str], field: str, spellings: tuple[str, str, str]
) -> HttpReply | None:
    """JSON 460 when the form's ``field`` names no sign method (``spellings``: how this
    endpoint's documentation writes them)."""
    method = form.get(field)
    if method is None or method.strip().lower() in _SIGN_METHODS:
        return None
    return fail(
        460,
        "param error",
        "sign_method",
        f"{field}={method!r} is unknown: use {spellings[0]}, {spellings[1]} or {spellings[2]}",
    )


class HttpRules(RulesBase):
    """:meth:`auth_devicename`, :meth:`register_device` and :meth:`http_param_error`
    of :class:`airlab.cloud.auth.Rules`."""

    # -- HTTP endpoints -----------------------------------------------------------------

    def _http(
        self,
        event: str,
        code: int,
        message: str,
        data: dict[str, object] | None,
        *,
        remote: str,
        device: DeviceRef | None = None,
        client_id: str | None = None,
        explanation: Explanation | None = None,
    ) -> HttpReply:
        body: dict[str, object] = {"code": code}
        if data is not None:
            body["data"] = data
        body["message"] = message
        # a refusal is committed before the device can learn of it (and ask why)
        record = self.log_connection if code == 200 else self.log_refusal
        record(
            ConnectionEvent(
                time=self._clock(),
                protocol="http",
                event=event,
                accepted=code == 200,
                device=device,
                client_id=client_id,
                remote=remote or None,
                code=code,
                reason=None if code == 200 else message,
                explanation=explanation,
            )
        )
        return HttpReply(200, _dumps(body), JSON_CONTENT_TYPE, explanation)

    def _refuser(
        self, event: str, *, remote: str, device: DeviceRef | None, client_id: str | None = None
    ) -> _Fail:
        """The ``fail`` of one request: each refusal is logged as ``event`` with the
        request's device, client id and remote, and answered with its explanation."""

        def fail(code: int, message: str, rule: str, text: str, **details: str) -> HttpReply:
            return self._http(
                event,
                code,
                message,
                None,
                remote=remote,
                device=device,
                client_id=client_id,
                explanation=Explanation(rule, text, details),
            )

        return fail

    def http_param_error(self, event: str, problem: str, *, remote: str = "") -> HttpReply:
        """JSON code 460 for a body that cannot be read as a form (logged as ``event``).

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> from airlab.cloud.auth import Rules
            >>> Rules(Registry()).http_param_error("auth", "body is not UTF-8").body
            b'{"code":460,"message":"param error"}'
        """
        explanation = Explanation(
            "http_params",
            f"the request body cannot be read: {problem}; send "
            "'application/x-www-form-urlencoded' text such as 'productKey=...&deviceName=...'",
            {"problem": problem},
        )
        return self._http(event, 460, "param error", None, remote=remote, explanation=explanation)

    def auth_devicename(self, form: Mapping[str, str], *, remote: str = "") -> HttpReply:
        """``POST /auth/devicename`` (spec §2, §7 item 15): issue an iotId/iotToken.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> from airlab.cloud.auth import Rules
            >>> from airlab.cloud.fixtures import load_tutorial
            >>> reg = Registry(); _ = load_tutorial(reg)
            >>> reply = Rules(reg).auth_devicename({"productKey": "k1hipglLdjU",
            ...     "sign": "0f655b12adf519b9a7a2b0a990f398b6", "clientId": "868488076506128",
            ...     "deviceName": "868488076506128"})
            >>> reply.status, len(reply.body), reply.json["message"]
            (200, 124, 'success')
        """
        form = {str(k): str(v) for k, v in form.items()}
        pk, dn = form.get("productKey", ""), form.get("deviceName", "")
        client_id = form.get("clientId")
        ref = DeviceRef(pk, dn) if pk and dn else None

        fail = self._refuser("auth", remote=remote, device=ref, client_id=client_id)
        names = ("productKey", "deviceName", "clientId", "sign")
        if (refusal := _missing_fields(fail, "/auth/devicename", form, names)) is not None:
            return refusal
        if len(client_id or "") > MAX_CLIENT_ID_LENGTH:
            return fail(
                460,
                "param error",
                "http_params",
                f"clientId is {len(client_id or '')} characters long; at most "
                f"{MAX_CLIENT_ID_LENGTH} allowed",
            )
        if (refusal := _unknown_sign_method(fail, form, "signmethod", _SIGN_METHODS)) is not None:
            return refusal
        product = self.registry.get_product(pk)
        device = self.registry.get_device(pk, dn) if product else None
        if product is None or device is None:
            what = f"no device {dn!r} in product {pk!r}" if product else f"no product {pk!r}"
            return fail(
                5001,
                "meta device not found",
                "unknown_device" if product else "unknown_product",
                f"{what}: check productKey and deviceName in the form",
                product_key=pk,
                device_name=dn,
            )
        # ``resouces`` (a doc sample's misspelling of ``resources``) is not signed either.
        signed = {k: v for k, v in form.items() if k != "resouces"}
        check = check_devicename_form(signed, device.device_secret)
        if not check.ok:
            hint = ""
            if "signMethod" in form and "signmethod" not in form:
                hint = " (this endpoint reads 'signmethod' in lower case; 'signMethod' is signed)"
            return fail(
                401,
                "request auth error",
                "signature",
                f"sign is not HMAC(DeviceSecret, sign content) of device {device.ref}: "
                f"recompute it over {check.sign_content!r}{hint}",
                **_sign_details(check),
            )
        if not device.enabled:
            return fail(
                401,
                "request auth error",
                "device_disabled",
                _disabled_text(device.ref),
            )
        token = self.registry.issue_token(device.ref, now=self._clock())
        data: dict[str, object] = {"iotId": token.iot_id, "iotToken": token.iot_token}
        wanted = form.get("resources", form.get("resouces", ""))
        if "mqtt" in [w.strip().lower() for w in wanted.split(",")]:
            data["resources"] = {
                "mqtt": {"host": mqtt_host(pk, product.region), "port": DEFAULT_MQTT_PORT}
            }
        return self._http(
            "auth", 200, "success", data, remote=remote, device=device.ref, client_id=client_id
        )

    def register_device(self, form: Mapping[str, str], *, remote: str = "") -> HttpReply:
        """``POST /auth/register/device`` (spec §3.1, §7 item 16): return the DeviceSecret.

        The first registration of a device that is not registered (added, or reset by
        ResetThing) returns the secret it has (the tutorial's reply shows the secret the
        device already had); each repeat before activation issues a new DeviceSecret and
        the previous one stops working ("以最后一次为准", help.aliyun.com doc 173007;
        :meth:`Registry.registration_secret`).

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> from airlab.cloud.auth import Rules
            >>> from airlab.cloud.fixtures import load_tutorial
            >>> reg = Registry(); _ = load_tutorial(reg)
            >>> Rules(reg).register_device({"productKey": "k1hipglLdjU",
            ...     "deviceName": "868488076506128", "random": "123456",
            ...     "sign": "20558baadb2a0b04847767980f0ee67b", "signMethod": "HmacMD5"}).body
            b'{"code":200,"data":{"deviceName":"868488076506128",\
"deviceSecret":"fef32adf6dad46c2c7cbf335d3a7b021","productKey":"k1hipglLdjU"},\
"message":"success"}'
        """
        form = {str(k): str(v) for k, v in form.items()}
        pk, dn = form.get("productKey", ""), form.get("deviceName", "")
        ref = DeviceRef(pk, dn) if pk and dn else None

        fail = self._refuser("register", remote=remote, device=ref)
        names = ("productKey", "deviceName", "random", "sign")
        if (refusal := _missing_fields(fail, "/auth/register/device", form, names)) is not None:
            return refusal
        spellings = ("HmacMD5", "HmacSHA1", "HmacSHA256")
        if (refusal := _unknown_sign_method(fail, form, "signMethod", spellings)) is not None:
            return refusal
        product = self.registry.get_product(pk)
        if product is None:
            return fail(
                5001,
                "meta device not found",
                "unknown_product",
                f"there is no product {pk!r}: check productKey in the form",
                product_key=pk,
            )
        check = check_register_form(form, product.product_secret)
        if not check.ok:
            hint = ""
            if "signmethod" in form:
                hint = (
                    " (this endpoint reads 'signMethod' with a capital M; 'signmethod' is signed)"
                )
            return fail(
                401,
                "request auth error",
                "signature",
                f"sign is not HMAC(ProductSecret, sign content) of product {pk}: recompute it "
                f"over {check.sign_content!r} with the ProductSecret{hint}",
                **_sign_details(check),
            )
        if not product.dynamic_registration:
            return fail(
                460,
                "dynamic register is not enabled",
                "dynreg_disabled",
                f"dynamic registration (动态注册) is switched off for product {pk}: turn it on "
                "in the console",
            )
        device = self.registry.get_device(pk, dn)
        if device is None:
            return fail(
                5001,
                "meta device not found",
                "unknown_device",
                f"there is no device {dn!r} in product {pk}: HTTPS dynamic registration needs "
                "the device to be added (pre-registered) first",
                product_key=pk,
                device_name=dn,
            )
        if not device.enabled:
            return fail(
                460,
                "device is disabled",
                "device_disabled",
                _disabled_text(device.ref),
            )
        if device.activated:
            return fail(
                460,
                "device is already activated",
                "already_activated",
                f"device {device.ref} is already activated, so dynamic registration is refused: "
                "reset its registration (ResetThing, Registry.reset_registration) to register "
                "again, or use the DeviceSecret you already have",
            )
        data: dict[str, object] = {
            "deviceName": device.device_name,
            "deviceSecret": self._registration_secret(device),
            "productKey": device.product_key,
        }
        return self._http("register", 200, "success", data, remote=remote, device=device.ref)
