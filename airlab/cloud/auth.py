"""The emulator's decisions (spec §7): who may connect, publish and subscribe, what the
platform answers, and the two HTTPS endpoints — each refusal with an
:class:`~airlab.cloud.model.Explanation` a notebook can show.

:class:`Rules` implements :class:`airlab.cloud.model.CloudRules` for the MQTT broker
(which carries the decisions out) and decides the HTTP calls for
:mod:`airlab.cloud.http_api`. Nothing here touches sockets.

Code choices where the spec leaves the platform's behaviour unconfirmed:

========================================  =========================================
Situation                                  Answer
========================================  =========================================
protocol level not 3/4                     CONNACK 1
client id malformed / part > 64 chars      CONNACK 2 (rule ``client_id_format``)
unknown ``signmethod`` / ``securemode``    CONNACK 2 (``sign_method`` / ``secure_mode``)
keepalive 0 or outside 30..1200            CONNACK 2 (``keepalive``; not for dynreg)
username not ``dn&pk``                     CONNACK 4 (``username_format``)
unknown product or device (also swapped)   CONNACK 5 (``unknown_product``/``unknown_device``)
disabled device                            CONNACK 5 (``device_disabled``)
bad signature                              CONNACK 4 (``signature``)
iotId/iotToken unknown / expired           CONNACK 3 (``token_invalid``/``token_expired``)
no securemode and no ``&`` in username     read as an iotId login (the tutorial's MCONFIG)
dynreg over plain TCP, param missing       CONNACK 2 (``dynreg_tls``/``dynreg_params``)
dynreg switch off                          CONNACK 5 (``dynreg_disabled``)
register: device missing / activated       CONNACK 5 (``unknown_device``/``already_activated``)
connwl: wrong or unknown DeviceToken       CONNACK 4 (``device_token``)
rate limit (opt-in, 6th try in 60 s)       CONNACK 3 (``rate_limit``)
host check on, TLS server name not the     CONNACK 5 (``mqtt_host``; an emulator
product's own ``<pk>.iot-as-mqtt…`` host   setting, off by default: see below)
TLS required on, login over plain TCP      CONNACK 2 (``tls_required``; off by
                                           default, see below)
========================================  =========================================

TLS required (:meth:`~airlab.cloud.registry.Registry.set_tls_required`): the platform
refuses plain-TCP MQTT connections for accounts created since 2022-08-02 (spec §1.1);
which CONNACK code it sends is not documented. The emulator answers 2, the code the
platform documents for its one other plain-TCP refusal (MQTT dynamic registration),
once the product is known (before the signature is checked), for device, token and
connwl logins alike. ``ConnectRequest.tls`` says how the connection came.

The host rule (:meth:`~airlab.cloud.registry.Registry.set_host_check`): the broker sees
the host a module dialled only as the TLS server name (SNI) of ``AT+SSLMIPSTART``.
When the product's setting is on, a login whose server name is not
``<productKey>.iot-as-mqtt.<any region>.aliyuncs.com`` (letter case aside, as in DNS)
is refused once the product is known (before the signature is checked). Plain TCP
(``AT+MIPSTART``) and TLS without a server name (a host given as an IP address) carry
no host, so the rule cannot apply and they are accepted as before.

HTTP: every platform answer uses HTTP status 200 and carries the result in the JSON
``code`` (the SDKs read the JSON; the C 4.x SDK also requires HTTP 200 on success).
``/auth/devicename``: 460 ``param error``, 5001 ``meta device not found``, 401
``request auth error`` (bad sign, and also a disabled device). ``/auth/register/device``:
460 for missing/unknown parameters, the switch off, a disabled or an already activated
device; 5001 for an unknown product or device; 401 for a bad sign.

Example:
    >>> from airlab.cloud.registry import Registry
    >>> from airlab.cloud.fixtures import load_tutorial
    >>> reg = Registry(); _ = load_tutorial(reg)
    >>> rules = Rules(reg)
    >>> d = rules.decide_connect(ConnectRequest("868488076506128|securemode=3,signmethod=hmacmd5|",
    ...     "868488076506128&k1hipglLdjU", b"0f655b12adf519b9a7a2b0a990f398b6", 120))
    >>> d.return_code, str(d.device), d.keepalive_limit
    (0, 'k1hipglLdjU/868488076506128', 180.0)
    >>> rules.decide_connect(ConnectRequest("868488076506128|securemode=3|",
    ...     "868488076506128&k1hipglLdjU", b"00", 120)).explanation.rule
    'signature'
"""

from __future__ import annotations

import contextlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airlab.aliyun import (
    DEFAULT_MQTT_PORT,
    REGISTER_PUSH_TOPIC,
    REGNWL_PUSH_TOPIC,
    SignatureCheck,
    check_devicename_form,
    check_mqtt_connect,
    check_mqtt_register_connect,
    check_register_form,
    check_topic_access,
    mask_secret,
    mqtt_host,
    parse_client_id,
    parse_username,
    signature_prefix,
)
from airlab.aliyun.clientid import ParsedClientId
from airlab.aliyun.identity import MAX_CLIENT_ID_LENGTH
from airlab.cloud.model import (
    ConnectDecision,
    ConnectionEvent,
    ConnectKind,
    ConnectRequest,
    DeviceRef,
    Explanation,
    MessageRecord,
    Permission,
    Push,
)
from airlab.cloud.registry import Device, Product, Registry, _random_text
from airlab.errors import UsageError

__all__ = [
    "DYNREG_CLOSE_AFTER",
    "HOST_REFUSAL_CODE",
    "JSON_CONTENT_TYPE",
    "KEEPALIVE_RANGE",
    "TLS_REFUSAL_CODE",
    "HttpReply",
    "Rules",
    "host_carries_product_key",
]

KEEPALIVE_RANGE = (30, 1200)
"""Keepalive seconds the platform accepts on normal connects."""
DYNREG_CLOSE_AFTER = 15.0
"""Seconds after which a dynamic-registration connection is closed by the server."""
JSON_CONTENT_TYPE = "application/json;charset=utf-8"
RATE_WINDOW = 60.0
HOST_REFUSAL_CODE = 5
"""CONNACK code of the host rule: "not authorized" — the credentials may be right, but
this product is not served at the host the module dialled (as for an unknown product)."""
TLS_REFUSAL_CODE = 2
"""CONNACK code of the "TLS required" rule: the platform documents no code for it; 2 is
the one it documents for its other plain-TCP refusal (MQTT dynamic registration)."""


def host_carries_product_key(server_name: str, product_key: str) -> bool:
    """True when ``server_name`` is ``<product_key>.iot-as-mqtt.<…>`` (DNS names ignore
    letter case; a trailing dot is allowed).

    Example:
        >>> host_carries_product_key("k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com",
        ...                          "k1hipglLdjU")
        True
        >>> host_carries_product_key("a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com",
        ...                          "k1hipglLdjU")
        False
    """
    labels = server_name.rstrip(".").lower().split(".")
    return len(labels) >= 3 and labels[0] == product_key.lower() and labels[1] == "iot-as-mqtt"


def _expected_host(product_key: str, region: str) -> str:
    try:
        return mqtt_host(product_key, region)
    except UsageError:  # an odd registry row: still say what the form is
        return f"{product_key}.iot-as-mqtt.{region}.aliyuncs.com"


@dataclass(frozen=True, slots=True)
class HttpReply:
    """What an HTTP endpoint answers: status, body bytes, content type, and why."""

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    explanation: Explanation | None = None

    @property
    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sign_details(check: SignatureCheck, **extra: str) -> dict[str, str]:
    """What a refusal may show: never a whole signature, expected or received (either
    can be a valid password, and no timestamp window limits its use)."""
    details = {
        "sign_content": check.sign_content,
        "algorithm": check.sign_method.value if check.sign_method else "?",
        "differs": check.hint or check.reason or "?",
        "expected": signature_prefix(check.expected),
        "received": signature_prefix(check.received),
        "secret": check.secret_masked,
    }
    details.update(extra)
    return details


def _password_text(password: bytes | None) -> str | None:
    if password is None:
        return None
    try:
        return bytes(password).decode("utf-8")
    except UnicodeDecodeError:
        return None


class Rules:
    """The platform's rules over a :class:`~airlab.cloud.registry.Registry`.

    ``connect_rate_limit``: attempts allowed per device per 60 s (the platform documents
    5); the next attempt gets CONNACK 3 (``rate_limit``). Default None (off) so a
    classroom that reconnects often is not surprised. ``clock`` gives epoch seconds
    (tests pass a fake one for token expiry and NTP).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        connect_rate_limit: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if connect_rate_limit is not None and connect_rate_limit < 1:
            raise UsageError("connect_rate_limit", "must be at least 1 or None")
        self.registry = registry
        self.connect_rate_limit = connect_rate_limit
        self._clock = clock
        self._attempts: dict[DeviceRef, deque[float]] = {}
        self._attempts_lock = threading.Lock()

    # -- MQTT CONNECT ---------------------------------------------------------------------

    def decide_connect(self, request: ConnectRequest) -> ConnectDecision:
        """Decide a CONNECT (spec §7 items 1-14); see the module table for codes.

        Example:
            >>> from airlab.cloud.registry import Registry
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
            return ConnectDecision.refuse(
                5,
                rule="device_disabled",
                message=f"device {device.ref} is disabled (禁用): enable it in the console first",
                details={"device": str(device.ref)},
            )
        if request is None or product is None:  # product is known once device is
            return device
        refusal = self._tls_refusal(product, request, device.device_name)
        if refusal is None:
            refusal = self._host_refusal(product, request, device.device_name)
        return device if refusal is None else refusal

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
            return ConnectDecision.refuse(
                5,
                rule="device_disabled",
                message=f"device {device.ref} is disabled (禁用): enable it in the console first",
                details={"device": str(device.ref)},
            )
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
            close_after=DYNREG_CLOSE_AFTER,
            keepalive_limit=None,
        )

    def connected(self, device: DeviceRef, kind: ConnectKind) -> None:
        """A session was established: device, token and connwl logins activate the device."""
        if kind in (ConnectKind.DEVICE, ConnectKind.TOKEN, ConnectKind.CONNWL):
            with contextlib.suppress(UsageError):  # deleted meanwhile
                self.registry.mark_activated(device)

    # -- topics -------------------------------------------------------------------------

    def _topic(self, device: DeviceRef, topic: str, action: str, qos: int) -> Permission:
        classes = self.registry.topic_classes(device.product_key)
        access = check_topic_access(
            device.product_key, device.device_name, topic, action, classes, qos=qos
        )
        if access.allowed:
            return Permission(True)
        custom = [c.topic(device.product_key, device.device_name) for c in classes]
        details = {
            "topic": topic if isinstance(topic, str) else repr(topic),
            "device": str(device),
            "action": "publish" if action == "pub" else "subscribe",
            "custom_classes": "; ".join(
                f"{c.topic(device.product_key, device.device_name)} ({c.permission.value})"
                for c in classes
            )
            or "(none)",
        }
        if action == "pub":
            details["qos"] = str(qos)
        message = access.reason
        if access.rule == "topic_permission" and custom:
            message += ". Use a topic with this device's own productKey/deviceName."
        return Permission(False, Explanation(access.rule, message, details))

    def may_subscribe(self, device: DeviceRef, topic_filter: str) -> Permission:
        """May ``device`` subscribe to ``topic_filter`` (spec §7 item 18)?"""
        return self._topic(device, topic_filter, "sub", 0)

    def may_publish(self, device: DeviceRef, topic: str, qos: int) -> Permission:
        """May ``device`` publish on ``topic`` with ``qos`` (spec §7 items 18-20)?"""
        return self._topic(device, topic, "pub", qos)

    # -- platform answers ---------------------------------------------------------------

    def replies_to(self, device: DeviceRef, topic: str, payload: bytes) -> list[Push]:
        """Platform answers to an accepted uplink (spec §7 item 21).

        * ``/sys/pk/dn/thing/event/property/post``, ``…/event/<id>/post`` and
          ``…/property/batch/post`` → ``<topic>_reply`` ``{"code":200,"data":{},"id":…,
          "message":"success","method":…,"version":"1.0"}``, unless ``sys.ack`` is 0.
          A payload that is not a JSON object gets ``code`` 460 ``request parameter
          error`` (``id`` null when unreadable).
        * ``/ext/ntp/pk/dn/request`` ``{"deviceSendTime":…}`` → ``/ext/ntp/pk/dn/response``
          with the times in ms and in the JSON type the device used; an unreadable request
          gets no answer.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> r = Rules(Registry(), clock=lambda: 1700000000.123)
            >>> p = r.replies_to(DeviceRef("pk", "dn"), "/ext/ntp/pk/dn/request",
            ...                  b'{"deviceSendTime":"1700000000000"}')[0]
            >>> p.topic, p.payload.decode()
            ('/ext/ntp/pk/dn/response', '{"deviceSendTime":"1700000000000",\
"serverRecvTime":"1700000000123","serverSendTime":"1700000000123"}')
        """
        pk, dn = device.product_key, device.device_name
        levels = topic.split("/") if isinstance(topic, str) else []
        prefix = ["", "sys", pk, dn, "thing", "event"]
        if levels[:6] == prefix and levels[-1] == "post" and len(levels) in (8, 9):
            if len(levels) == 9 and levels[6:8] != ["property", "batch"]:
                return []
            identifier = ".".join(levels[6:-1])
            return self._alink_reply(topic, f"thing.event.{identifier}.post", payload)
        if topic == f"/ext/ntp/{pk}/{dn}/request":
            return self._ntp_reply(pk, dn, payload)
        return []

    def _alink_reply(self, topic: str, default_method: str, payload: bytes) -> list[Push]:
        try:
            request = json.loads(bytes(payload).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            request = None
        if not isinstance(request, dict):
            body = {
                "code": 460,
                "data": {},
                "id": None,
                "message": "request parameter error",
                "method": default_method,
                "version": "1.0",
            }
            return [Push(topic + "_reply", _dumps(body), 0)]
        sys_part = request.get("sys")
        if isinstance(sys_part, dict) and str(sys_part.get("ack")) == "0":
            return []
        method = request.get("method")
        body = {
            "code": 200,
            "data": {},
            "id": request.get("id"),
            "message": "success",
            "method": method if isinstance(method, str) and method else default_method,
            "version": "1.0",
        }
        return [Push(topic + "_reply", _dumps(body), 0)]

    def _ntp_reply(self, pk: str, dn: str, payload: bytes) -> list[Push]:
        try:
            request = json.loads(bytes(payload).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return []
        if not isinstance(request, dict) or "deviceSendTime" not in request:
            return []
        sent = request["deviceSendTime"]
        received = int(self._clock() * 1000)
        replied = max(int(self._clock() * 1000), received)
        as_text = isinstance(sent, str)
        body = {
            "deviceSendTime": sent,
            "serverRecvTime": str(received) if as_text else received,
            "serverSendTime": str(replied) if as_text else replied,
        }
        return [Push(f"/ext/ntp/{pk}/{dn}/response", _dumps(body), 0)]

    # -- logs -----------------------------------------------------------------------------

    def log_connection(
        self, event: ConnectionEvent, on_commit: Callable[[], None] | None = None
    ) -> None:
        """Record a connection event in the registry (non-blocking); ``on_commit`` runs
        once it is committed (the broker answers a refusal only then)."""
        self.registry.log_connection(event, on_commit)

    def log_message(
        self, record: MessageRecord, on_commit: Callable[[], None] | None = None
    ) -> None:
        """Record a message in the registry (non-blocking); ``on_commit`` runs once it
        is committed (the broker sends the PUBACK only then)."""
        self.registry.log_message(record, on_commit)

    def log_refusal(self, event: ConnectionEvent, timeout: float = 10.0) -> None:
        """Record ``event`` and wait until it is committed, for callers on their own
        thread (the HTTP handlers) that must log a refusal before they answer it.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> rules = Rules(Registry())
            >>> rules.log_refusal(ConnectionEvent(1.0, "http", "auth", False, code=401))
            >>> len(rules.registry.connection_log())
            1
        """
        done = threading.Event()
        self.registry.log_connection(event, done.set)
        done.wait(timeout)

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

    def http_param_error(self, event: str, problem: str, *, remote: str = "") -> HttpReply:
        """JSON code 460 for a body that cannot be read as a form (logged as ``event``).

        Example:
            >>> from airlab.cloud.registry import Registry
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

        def fail(code: int, message: str, rule: str, text: str, **details: str) -> HttpReply:
            return self._http(
                "auth",
                code,
                message,
                None,
                remote=remote,
                device=ref,
                client_id=client_id,
                explanation=Explanation(rule, text, details),
            )

        missing = [n for n in ("productKey", "deviceName", "clientId", "sign") if not form.get(n)]
        if missing:
            return fail(
                460,
                "param error",
                "http_params",
                f"/auth/devicename needs productKey, deviceName, clientId and sign; missing: "
                f"{', '.join(missing)}",
                received=", ".join(form) or "(nothing)",
            )
        if len(client_id or "") > MAX_CLIENT_ID_LENGTH:
            return fail(
                460,
                "param error",
                "http_params",
                f"clientId is {len(client_id or '')} characters long; at most "
                f"{MAX_CLIENT_ID_LENGTH} allowed",
            )
        method = form.get("signmethod")
        if method is not None and method.strip().lower() not in (
            "hmacmd5",
            "hmacsha1",
            "hmacsha256",
        ):
            return fail(
                460,
                "param error",
                "sign_method",
                f"signmethod={method!r} is unknown: use hmacmd5, hmacsha1 or hmacsha256",
            )
        product = self.registry.get_product(pk)
        device = self.registry.get_device(pk, dn) if product else None
        if device is None:
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
                f"device {device.ref} is disabled (禁用): enable it in the console first",
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

        def fail(code: int, message: str, rule: str, text: str, **details: str) -> HttpReply:
            return self._http(
                "register",
                code,
                message,
                None,
                remote=remote,
                device=ref,
                explanation=Explanation(rule, text, details),
            )

        missing = [n for n in ("productKey", "deviceName", "random", "sign") if not form.get(n)]
        if missing:
            return fail(
                460,
                "param error",
                "http_params",
                "/auth/register/device needs productKey, deviceName, random and sign; "
                f"missing: {', '.join(missing)}",
                received=", ".join(form) or "(nothing)",
            )
        method = form.get("signMethod")
        if method is not None and method.strip().lower() not in (
            "hmacmd5",
            "hmacsha1",
            "hmacsha256",
        ):
            return fail(
                460,
                "param error",
                "sign_method",
                f"signMethod={method!r} is unknown: use HmacMD5, HmacSHA1 or HmacSHA256",
            )
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
                f"device {device.ref} is disabled (禁用): enable it in the console first",
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
        data = {
            "deviceName": device.device_name,
            "deviceSecret": self._registration_secret(device),
            "productKey": device.product_key,
        }
        return self._http("register", 200, "success", data, remote=remote, device=device.ref)

    def _registration_secret(self, device: Device) -> str:
        """The secret this registration hands out (the current one the first time, a new
        one on each repeat: only the latest is valid); the device's own if it was deleted
        meanwhile."""
        try:
            return self.registry.registration_secret(device.ref)
        except UsageError:
            return device.device_secret
