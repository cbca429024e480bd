"""The steps of every connection method (:data:`METHODS`), for one device:
:func:`recipes_for`.

Example:
    >>> from airlab.lesson import Identity
    >>> from airlab.widgets.flow_recipes import recipes_for
    >>> [s.name for s in recipes_for("direct", Identity.tutorial())][:2]
    ['CGATT?', 'SAPBR CONTYPE']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airlab.aliyun import (
    direct_mqtt_credentials,
    http_auth_request,
    mqtt_credentials_after_http_auth,
    new_random,
    parse_http_auth_reply,
    parse_register_reply,
    register_request,
)
from airlab.aliyun.dynreg import (
    REGISTER_PUSH_TOPIC,
    REGNWL_PUSH_TOPIC,
    connwl_mqtt_credentials,
    mqtt_register_credentials,
)
from airlab.aliyun.mqtt_credentials import MqttCredentials
from airlab.errors import UsageError
from airlab.session import Response
from airlab.widgets.flow import (
    FlowState,
    FlowStep,
    Outcome,
    _attach_steps,
    _http_steps,
    _login_steps,
    _mask,
    _mqtt_register_steps,
)

#: method -> label (the names of the signing calculator where they are the same).
METHODS: dict[str, str] = {
    "http-auth": "HTTPS auth, then MQTT with iotId/iotToken (一机一密 HTTP认证)",
    "direct": "direct MQTT (一机一密直连)",
    "register": "HTTPS dynamic registration, then direct MQTT (一型一密)",
    "mqtt-register": "MQTT dynamic registration, then direct MQTT (一型一密 register)",
    "mqtt-regnwl": "MQTT dynamic registration without pre-registration, then connwl (免预注册)",
}


# ---------------------------------------------------------------------------- recipes


def recipes_for(
    method: str,
    lab: Any,
    *,
    sign_method: str = "hmacmd5",
    timestamp: str | int | None = None,
    keepalive: int = 120,
    tls: bool = True,
    apn: str = "",
    random: str | None = None,
    wait_closed: bool = False,
    auth_base: str | None = None,
) -> list[FlowStep]:
    """The steps of ``method`` (a key of :data:`METHODS`) for ``lab`` (a
    :class:`~airlab.lesson.Lesson`: its identity and bench address) or an identity.

    ``sign_method``/``timestamp``: the signature of the direct and HTTPS-auth logins;
    ``random``: the nonce of a registration (default a fresh one); ``wait_closed``:
    MQTT registration waits for the cloud's ``CLOSED`` (the emulator: 15 s) instead of
    hanging up itself; ``auth_base``: the auth server on the bench (as in
    :func:`~airlab.session.recipes.http_auth_then_mqtt`).  Registration methods need
    the identity's ``product_secret`` and a device not yet activated
    (``lab.new_device()``).

    >>> from airlab.lesson import Identity
    >>> [s.name for s in recipes_for("direct", Identity.tutorial())][-3:]
    ['SSLMIPSTART', 'MCONNECT', 'MQTTSTATU']
    >>> [s.command for s in recipes_for("http-auth", Identity.tutorial())][-4]
    'AT+MCONFIG="<client id>","<user name>","<password>" (from the HTTPREAD reply)'
    """
    if method not in METHODS:
        raise UsageError("method", f"step-through knows {', '.join(METHODS)}, got {method!r}")
    identity = getattr(lab, "identity", lab)
    target: dict[str, Any] = lab.mqtt_target(tls) if hasattr(lab, "mqtt_target") else {}
    pk, dn = identity.product_key, identity.device_name
    region = getattr(identity, "region", "cn-shanghai")
    product_secret = getattr(identity, "product_secret", None) or ""
    nonce = random if random is not None else new_random()
    steps = _attach_steps(apn)

    def direct(secret: str) -> MqttCredentials:
        return direct_mqtt_credentials(
            pk, dn, secret, sign_method=sign_method, timestamp=timestamp, region=region, **target
        )

    if method == "direct":
        creds = direct(identity.device_secret or "")
        return steps + _login_steps(lambda _s: creds, creds, tls=tls, keepalive=keepalive)

    if method == "http-auth":
        req = http_auth_request(
            pk,
            dn,
            identity.device_secret or "",
            sign_method=sign_method,
            timestamp=timestamp,
            region=region,
        )

        def read_auth(r: Outcome, state: FlowState) -> str:
            assert isinstance(r, Response)
            reply = parse_http_auth_reply(r.payload or b"")  # CloudRejected: code != 200
            state["iot_id"] = reply.iot_id
            state.keep_secret("iot_token", reply.iot_token)
            state["auth_reply"] = reply
            where = f"; MQTT host {reply.host}:{reply.port}" if reply.host else ""
            return (
                f"code 200: iotId {reply.iot_id!r} (the MQTT user name) and iotToken "
                f"{_mask(reply.iot_token)} (the password){where}"
            )

        def after_auth(state: FlowState) -> MqttCredentials:
            reply = state.need("auth_reply", "HTTPREAD", "MCONFIG")
            creds = mqtt_credentials_after_http_auth(reply, pk, dn, region=region)
            if target:
                creds = MqttCredentials(
                    creds.client_id, creds.username, creds.password, target["host"],
                    target["port"], creds.sign_content, creds.sign_method,
                )  # fmt: skip
            return creds

        return (
            steps
            + _http_steps(req, auth_base, "/auth/devicename (HTTPS auth)", read_auth)
            + _login_steps(
                after_auth, None, tls=tls, keepalive=keepalive, source="from the HTTPREAD reply"
            )
        )

    def secret_login(source: str) -> Callable[[FlowState], MqttCredentials]:
        return lambda state: direct(state.need("device_secret", source, "MCONFIG (login)"))

    if method == "register":
        req = register_request(pk, dn, product_secret, random=nonce, region=region)

        def read_register(r: Outcome, state: FlowState) -> str:
            assert isinstance(r, Response)
            device = parse_register_reply(r.payload or b"")
            state.keep_secret("device_secret", device.device_secret)
            return f"code 200: DeviceSecret {_mask(device.device_secret)}"

        return (
            steps
            + _http_steps(req, auth_base, "/auth/register/device (一型一密)", read_register)
            + _login_steps(
                secret_login("HTTPREAD"),
                None,
                tls=tls,
                keepalive=keepalive,
                suffix=" (login)",
                source="signed with the DeviceSecret of the reply",
            )
        )

    kind = "register" if method == "mqtt-register" else "regnwl"
    creds = mqtt_register_credentials(
        pk, dn, product_secret, random=nonce, auth_type=kind, region=region, **target
    )
    topic = REGISTER_PUSH_TOPIC if kind == "register" else REGNWL_PUSH_TOPIC
    steps += _mqtt_register_steps(creds, topic, keepalive=keepalive, wait_closed=wait_closed)
    if kind == "register":
        creds_of = secret_login("+MSUB push")
        source = "signed with the DeviceSecret of the push"
    else:

        def creds_of(state: FlowState) -> MqttCredentials:
            grant = state.need("grant", "+MSUB push", "MCONFIG (login)")
            return connwl_mqtt_credentials(grant, region=region, **target)

        source = "clientId and DeviceToken of the push"
    return steps + _login_steps(
        creds_of, None, tls=tls, keepalive=keepalive, suffix=" (login)", source=source
    )
