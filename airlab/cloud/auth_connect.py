"""The MQTT CONNECT decision of :mod:`airlab.cloud.auth` (spec §7 items 1-14; the code
table is in that module): which login a client id asks for (device, iotId token,
connwl, dynamic registration) and what the platform answers to it.

Example:
    >>> from airlab.cloud.registry import Registry
    >>> from airlab.cloud.auth import Rules
    >>> from airlab.cloud.model import ConnectRequest
    >>> Rules(Registry()).decide_connect(ConnectRequest("c|securemode=9|", "dn&pk",
    ...     b"p", 60)).explanation.rule
    'secure_mode'
"""

from __future__ import annotations

import contextlib
import hmac

from airlab.aliyun import (
    REGISTER_PUSH_TOPIC,
    REGNWL_PUSH_TOPIC,
    check_mqtt_connect,
    check_mqtt_register_connect,
    mask_secret,
    parse_client_id,
    parse_username,
)
from airlab.aliyun.clientid import ParsedClientId
from airlab.aliyun.identity import MAX_CLIENT_ID_LENGTH
from airlab.cloud.auth_checks import LoginChecks
from airlab.cloud.auth_common import (
    _dumps,
    _password_text,
    _sign_details,
)
from airlab.cloud.model import (
    ConnectDecision,
    ConnectKind,
    ConnectRequest,
    DeviceRef,
    Push,
)
from airlab.cloud.registry import _random_text
from airlab.errors import UsageError


def _dynreg_close_after() -> float:
    """``airlab.cloud.auth.DYNREG_CLOSE_AFTER``, read at each use (tests shorten it)."""
    from airlab.cloud import auth

    return auth.DYNREG_CLOSE_AFTER


class ConnectRules(LoginChecks):
    """:meth:`decide_connect` and :meth:`connected` of :class:`airlab.cloud.auth.Rules`."""

    # -- MQTT CONNECT ---------------------------------------------------------------------

    def decide_connect(self, request: ConnectRequest) -> ConnectDecision:
        """Decide a CONNECT (spec §7 items 1-14); see the module table for codes.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> from airlab.cloud.auth import Rules
            >>> Rules(Registry()).decide_connect(ConnectRequest("c", "u", b"p", 60,
            ...     protocol_level=5)).return_code
            1
        """
        if request.protocol_level not in (3, 4):
            return ConnectDecision.refuse(
                1,
                rule="protocol_version",
                message=(
                    f"MQTT protocol level {request.protocol_level} is not accepted here: "
                    "use MQTT 3.1.1 (level 4) or 3.1 (level 3)"
                ),
                details={"protocol_level": str(request.protocol_level)},
            )
        if not request.client_id and not request.clean_session:
            # MQTT 3.1.1 §3.1.3.1: a zero-length client id needs CleanSession=1
            return ConnectDecision.refuse(
                2,
                rule="client_id_format",
                message=(
                    "an empty client id needs clean session on (MQTT 3.1.1): send the "
                    "client id '<clientId>|securemode=3,signmethod=hmacmd5|'"
                ),
                details={"client_id": "", "clean_session": "0"},
            )
        parsed = parse_client_id(request.client_id)
        if not parsed.valid:
            return ConnectDecision.refuse(
                2,
                rule="client_id_format",
                message=(
                    f"the client id is malformed: {parsed.reason}; write it as "
                    "'<clientId>|key=value,key=value|' with a clientId of at most "
                    f"{MAX_CLIENT_ID_LENGTH} characters"
                ),
                details={"client_id": request.client_id, "problem": str(parsed.reason)},
            )
        auth_type = parsed.auth_type
        if auth_type in ("register", "regnwl"):
            return self._dynreg(request, parsed, auth_type)
        if auth_type is not None and auth_type != "connwl":
            return ConnectDecision.refuse(
                2,
                rule="auth_type",
                message=(
                    f"authType={auth_type!r} in the client id is not known: use register or "
                    "regnwl (dynamic registration) or connwl (DeviceToken login), or leave it out"
                ),
                details={"client_id": request.client_id},
            )
        mode_text = parsed.params.get("securemode")
        mode = parsed.secure_mode
        if mode_text is not None and mode is None:
            return self._bad_secure_mode(request, mode_text)
        if auth_type == "connwl":
            return self._connwl(request, parsed)
        if mode in (-1, 0) or (mode is None and "&" not in (request.username or "&")):
            # The tutorial's HTTPS-auth login: a bare client id, username = iotId.
            return self._token(request, parsed)
        if mode is None or mode in (2, 3):
            return self._direct(request, parsed)
        if mode == -2:
            return ConnectDecision.refuse(
                2,
                rule="secure_mode",
                message=(
                    "securemode=-2 needs authType=connwl (login with a DeviceToken) or "
                    "authType=register/regnwl (dynamic registration) in the client id"
                ),
                details={"client_id": request.client_id},
            )
        return self._bad_secure_mode(request, mode_text or "")

    def _direct(self, request: ConnectRequest, parsed: ParsedClientId) -> ConnectDecision:
        if (refusal := self._keepalive(request)) is not None:
            return refusal
        if parsed.sign_method is None:
            return ConnectDecision.refuse(
                2,
                rule="sign_method",
                message=(
                    f"signmethod={parsed.sign_method_text!r} in the client id is unknown: use "
                    "hmacmd5, hmacsha1 or hmacsha256 (hmacmd5 when left out)"
                ),
                details={"client_id": request.client_id},
            )
        found = self._lookup(request.username, request)
        if isinstance(found, ConnectDecision):
            return found
        if (refusal := self._rate_limited(found.ref)) is not None:
            return refusal
        password = _password_text(request.password)
        check = check_mqtt_connect(
            request.client_id, request.username or "", password or "", found.device_secret
        )
        if not check.ok:
            timestamp = parsed.timestamp
            return ConnectDecision.refuse(
                4,
                rule="signature",
                message=(
                    f"the password is not HMAC-{check.sign_method.value.upper()[4:]}"
                    f"(deviceSecret, sign content) of device {found.ref}: recompute it over "
                    f"{check.sign_content!r} with the DeviceSecret ({check.reason})"
                    if check.sign_method
                    else f"signature check failed: {check.reason}"
                ),
                details=_sign_details(
                    check,
                    client_id_part=parsed.client_id,
                    timestamp=timestamp if timestamp is not None else "(absent: not signed)",
                ),
            )
        return self._accept(found, ConnectKind.DEVICE, parsed, request)

    def _token(self, request: ConnectRequest, parsed: ParsedClientId) -> ConnectDecision:
        mode_absent = "securemode" not in parsed.params
        if (refusal := self._keepalive(request)) is not None:
            return refusal
        iot_id = request.username or ""
        password = _password_text(request.password) or ""
        token = self.registry.find_token(iot_id, password) if iot_id and password else None
        if token is None:
            known = self.registry.device_by_iot_id(iot_id) if iot_id else None
            # the password may be the iotId (user name and password swapped): then the user
            # name is a token, which must not reach the log
            swapped = self.registry.device_by_iot_id(password) if password and not known else None
            shown = iot_id if known else mask_secret(iot_id)
            if known:
                why = (
                    f"iotId {iot_id!r} belongs to {known.ref} but this iotToken was never "
                    "issued for it"
                )
            elif swapped:
                why = (
                    f"the password is the iotId of {swapped.ref}: the user name and the password "
                    'are swapped (AT+MCONFIG="<clientId>","<iotId>","<iotToken>")'
                )
            else:
                why = f"no device has the iotId {shown!r}"
            return ConnectDecision.refuse(
                3,
                rule="token_invalid",
                message=(
                    "the username/password must be the iotId/iotToken returned by "
                    "/auth/devicename (securemode=-1 or 0): "
                    + why
                    + "; call /auth/devicename again"
                    + (
                        " (the username has no '&', so it was read as an iotId; a device-secret"
                        " login needs '<deviceName>&<productKey>')"
                        if mode_absent and not swapped
                        else ""
                    )
                ),
                details={"iot_id": shown, "iot_token": mask_secret(password)},
            )
        now = self._clock()
        if token.expired(now):
            return ConnectDecision.refuse(
                3,
                rule="token_expired",
                message=(
                    f"the iotToken for {token.device} expired "
                    f"{(now - token.expires) / 3600:.1f} h ago (tokens last 7 days): "
                    "call /auth/devicename again for a new one"
                ),
                details={"iot_id": iot_id, "expires": str(token.expires), "now": str(now)},
            )
        found = self._device_or_refusal(
            token.device.product_key, token.device.device_name, iot_id, request
        )
        if isinstance(found, ConnectDecision):
            return found
        if (refusal := self._rate_limited(found.ref)) is not None:
            return refusal
        return self._accept(found, ConnectKind.TOKEN, parsed, request)

    def _connwl(self, request: ConnectRequest, parsed: ParsedClientId) -> ConnectDecision:
        if (refusal := self._keepalive(request)) is not None:
            return refusal
        found = self._lookup(request.username, request)
        if isinstance(found, ConnectDecision):
            return found
        if (refusal := self._rate_limited(found.ref)) is not None:
            return refusal
        password = _password_text(request.password) or ""
        issued = self.registry.find_device_token(found.ref, parsed.client_id)
        if issued is None or not hmac.compare_digest(
            issued.device_token.encode(), password.encode()
        ):
            reason = (
                f"no DeviceToken was issued to {found.ref} with clientId {parsed.client_id!r}"
                if issued is None
                else "the password is not the DeviceToken issued with this clientId"
            )
            return ConnectDecision.refuse(
                4,
                rule="device_token",
                message=(
                    f"authType=connwl login refused: {reason}; use the clientId and "
                    "deviceToken from the /ext/regnwl push exactly as received"
                ),
                details={
                    "device": str(found.ref),
                    "client_id_part": parsed.client_id,
                    "received": mask_secret(password),
                },
            )
        return self._accept(found, ConnectKind.CONNWL, parsed, request)

    def _dynreg(
        self, request: ConnectRequest, parsed: ParsedClientId, auth_type: str
    ) -> ConnectDecision:
        if not request.tls:
            return ConnectDecision.refuse(
                2,
                rule="dynreg_tls",
                message=(
                    "MQTT dynamic registration (authType=register/regnwl) needs TLS: connect "
                    "with AT+SSLMIPSTART (securemode=2), not over plain TCP"
                ),
                details={"client_id": request.client_id},
            )
        mode = parsed.secure_mode
        if mode not in (2, -2):
            return ConnectDecision.refuse(
                2,
                rule="dynreg_params",
                message=(
                    f"dynamic registration needs securemode=2 (or -2), got "
                    f"{parsed.params.get('securemode')!r}"
                ),
                details={"client_id": request.client_id},
            )
        missing = [
            name
            for name, value in (
                ("random", parsed.params.get("random")),
                ("signmethod", parsed.sign_method_text),
            )
            if not value
        ]
        if missing:
            return ConnectDecision.refuse(
                2,
                rule="dynreg_params",
                message=(
                    f"the dynamic registration client id lacks {' and '.join(missing)}: write "
                    "'<id>|securemode=2,authType=register,random=<r>,signmethod=hmacmd5|'"
                ),
                details={"client_id": request.client_id, "missing": ", ".join(missing)},
            )
        if parsed.sign_method is None:
            return ConnectDecision.refuse(
                2,
                rule="sign_method",
                message=(
                    f"signmethod={parsed.sign_method_text!r} is unknown: use hmacmd5, "
                    "hmacsha1 or hmacsha256"
                ),
                details={"client_id": request.client_id},
            )
        user = parse_username(request.username or "")
        if not user.valid:
            return ConnectDecision.refuse(
                4,
                rule="username_format",
                message=(f"the username {request.username!r} must be '<deviceName>&<productKey>'"),
                details={"username": str(request.username)},
            )
        product = self.registry.get_product(user.product_key)
        if product is None:
            return ConnectDecision.refuse(
                5,
                rule="unknown_product",
                message=f"there is no product {user.product_key!r} (read from the username)",
                details={"product_key": user.product_key},
            )
        if (refusal := self._host_refusal(product, request, user.device_name)) is not None:
            return refusal
        check = check_mqtt_register_connect(
            request.client_id,
            request.username or "",
            _password_text(request.password) or "",
            product.product_secret,
        )
        if not check.ok:
            return ConnectDecision.refuse(
                4,
                rule="signature",
                message=(
                    "the password is not HMAC(ProductSecret, sign content) for product "
                    f"{product.product_key}: recompute it over {check.sign_content!r} with "
                    "the ProductSecret"
                ),
                details=_sign_details(check),
            )
        if not product.dynamic_registration:
            return ConnectDecision.refuse(
                5,
                rule="dynreg_disabled",
                message=(
                    f"dynamic registration (动态注册) is switched off for product "
                    f"{product.product_key}: turn it on in the console"
                ),
                details={"product_key": product.product_key},
            )
        ref = DeviceRef(product.product_key, user.device_name)
        device = self.registry.get_device(ref)
        if device is None and auth_type == "regnwl":
            try:
                device = self.registry.add_device(ref.product_key, ref.device_name)
            except UsageError as exc:
                device = self.registry.get_device(ref)
                if device is None:
                    return ConnectDecision.refuse(
                        2,
                        rule="dynreg_params",
                        message=f"the device name cannot be registered: {exc.message}",
                        details={"device_name": ref.device_name},
                    )
        if device is None:
            return ConnectDecision.refuse(
                5,
                rule="unknown_device",
                message=(
                    f"authType=register needs a pre-registered device: add {ref.device_name!r} "
                    f"to product {ref.product_key} first (or use authType=regnwl)"
                ),
                details={"product_key": ref.product_key, "device_name": ref.device_name},
            )
        if not device.enabled:
            return self._disabled_refusal(device)
        if device.activated:
            return ConnectDecision.refuse(
                5,
                rule="already_activated",
                message=(
                    f"device {device.ref} is already activated, so it cannot register again: "
                    "reset its registration (ResetThing, Registry.reset_registration) first"
                ),
                details={"device": str(device.ref)},
            )
        if auth_type == "register":
            payload = {
                "deviceSecret": self._registration_secret(device),
                "productKey": device.product_key,
                "deviceName": device.device_name,
            }
            push = Push(REGISTER_PUSH_TOPIC, _dumps(payload), 0)
            kind = ConnectKind.REGISTER
        else:
            client_id = _random_text(20) + "000100"
            token = self.registry.issue_device_token(device.ref, client_id)
            payload = {
                "productKey": device.product_key,
                "deviceName": device.device_name,
                "clientId": client_id,
                "deviceToken": token.device_token,
            }
            push = Push(REGNWL_PUSH_TOPIC, _dumps(payload), 0)
            kind = ConnectKind.REGNWL
        return ConnectDecision(
            0,
            device=device.ref,
            kind=kind,
            pushes=(push,),
            close_after=_dynreg_close_after(),
            keepalive_limit=None,
        )

    def connected(self, device: DeviceRef, kind: ConnectKind) -> None:
        """A session was established: device, token and connwl logins activate the device."""
        if kind in (ConnectKind.DEVICE, ConnectKind.TOKEN, ConnectKind.CONNWL):
            with contextlib.suppress(UsageError):  # deleted meanwhile
                self.registry.mark_activated(device)
