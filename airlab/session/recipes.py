"""The tutorial's flows as functions of a :class:`~airlab.session.session.ModemSession`.

* :func:`attach` - ``AT+CGATT?`` until 1, bearer ``AT+SAPBR`` (tolerant of already-open).
* :func:`http_auth_then_mqtt` - method 1 (一机一密, HTTPS auth then MQTT with the token).
* :func:`direct_mqtt` - method 2 (一机一密直连, signed password).
* :func:`register_device` - method 3 (一型一密 dynamic registration over HTTPS): returns
  the device secret, for method 1 or 2.
* :func:`register_device_mqtt` - 一型一密 over MQTT (beyond the tutorial): ``register``
  (pre-registered device: the ``/ext/register`` push gives the DeviceSecret) or
  ``regnwl`` (免预注册: the ``/ext/regnwl`` push gives a clientId and DeviceToken), then
  :func:`connwl_login` with them.
* :func:`subscribe`, :func:`publish`, :func:`set_receive_mode`, :func:`disconnect`.

Every function checks its arguments (signing, Aliyun keep-alive 30-1200 s, client id
at most 64 characters) before sending anything, sends ``AT+MCONNECT`` right after
``CONNECT OK``, and returns a small frozen result whose ``steps`` hold each command's
timings (``result.timings()`` is a list of dicts, ready for a table).

Endpoint host names are the real Aliyun names (``iot-auth.<region>.aliyuncs.com``,
``<pk>.iot-as-mqtt.<region>.aliyuncs.com``): the simulator resolves them to the local
emulator, a real module reaches the real cloud - the same code path.

Example:
    >>> import airlab
    >>> from airlab.session import ModemSession
    >>> with ModemSession("airsim://?profile=instant") as s:
    ...     print(attach(s).ip)
    10.222.163.213

The shared parts (bearer, HTTPS POST, MQTT link and login, :func:`disconnect`) are in
:mod:`airlab.session.recipe_parts`, the MQTT dynamic registration in
:mod:`airlab.session.recipes_dynreg`.
"""

from __future__ import annotations

import dataclasses

from airlab.aliyun import (
    DEFAULT_REGION,
    TUTORIAL_REGISTER_SIGN_METHOD,
    SignMethod,
    direct_mqtt_credentials,
    http_auth_request,
    mqtt_credentials_after_http_auth,
    new_random,
    parse_http_auth_reply,
    parse_register_reply,
    register_request,
)
from airlab.at.commands import (
    mqttmsgset,
    msub,
)
from airlab.errors import UsageError
from airlab.session.guards import check_aliyun_client_id, check_aliyun_keepalive
from airlab.session.recipe_parts import (
    CONNWL_HINT as CONNWL_HINT,  # re-exported
)
from airlab.session.recipe_parts import (
    HTTP_AUTH_HINT,
    REGISTER_HINT,
    _awaits,
    _mqtt_login,
    _post_and_parse,
    attach,
    disconnect,
)
from airlab.session.recipe_parts import (
    MQTT_REGISTER_HINT as MQTT_REGISTER_HINT,  # re-exported
)
from airlab.session.recipe_results import (
    AttachResult,
    MqttLogin,
    MqttRegistration,
    PublishResult,
    RecipeResult,
    Registration,
    Step,
    SubscribeResult,
    _Steps,
)
from airlab.session.recipes_dynreg import (
    connwl_login,
    register_device_mqtt,
)
from airlab.session.session import ModemSession

__all__ = [
    "AttachResult",
    "MqttLogin",
    "MqttRegistration",
    "PublishResult",
    "RecipeResult",
    "Registration",
    "Step",
    "SubscribeResult",
    "attach",
    "connwl_login",
    "direct_mqtt",
    "disconnect",
    "http_auth_then_mqtt",
    "publish",
    "register_device",
    "register_device_mqtt",
    "set_receive_mode",
    "subscribe",
]


def http_auth_then_mqtt(
    session: ModemSession,
    *,
    product_key: str,
    device_name: str,
    device_secret: str,
    region: str = DEFAULT_REGION,
    keepalive: int = 120,
    client_id: str | None = None,
    sign_method: SignMethod | str = "hmacmd5",
    timestamp: str | int | None = None,
    tls: bool = True,
    clean_session: int = 1,
    http_timeout: float | None = None,
    auth_base: str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> MqttLogin:
    """Method 1 (一机一密, HTTPS auth then MQTT): POST the signed form to
    ``https://iot-auth.<region>.aliyuncs.com/auth/devicename``, read ``iotId`` /
    ``iotToken`` (:class:`~airlab.errors.CloudRejected` for a code other than 200),
    then MCONFIG (client id, iotId, iotToken), SSLMIPSTART to the host of the reply or
    ``<pk>.iot-as-mqtt.<region>.aliyuncs.com:1883``, MCONNECT right after CONNECT OK.

    On the bench (a real module and the local emulator, reached by IP) ``auth_base``
    replaces the auth host (``"http://192.168.1.10:8080"``: same path) and
    ``host``/``port`` the MQTT server."""
    check_aliyun_keepalive(keepalive)
    label = device_name if client_id is None else client_id
    check_aliyun_client_id(label)
    req = http_auth_request(
        product_key,
        device_name,
        device_secret,
        client_id=client_id,
        sign_method=sign_method,
        timestamp=timestamp,
        region=region,
    )
    steps = _Steps()
    reply = _post_and_parse(
        session, req, steps, http_timeout, auth_base, parse_http_auth_reply,
        "/auth/devicename", HTTP_AUTH_HINT, f"{HTTP_AUTH_HINT}; we signed {req.sign_content!r}",
    )  # fmt: skip
    creds = mqtt_credentials_after_http_auth(reply, product_key, label, region=region)
    if host is not None or port is not None:
        creds = dataclasses.replace(
            creds, host=host or creds.host, port=port if port is not None else creds.port
        )
    return _mqtt_login(
        session,
        creds,
        steps,
        method="http_auth",
        tls=tls,
        keepalive=keepalive,
        clean_session=clean_session,
        iot_id=reply.iot_id,
    )


def direct_mqtt(
    session: ModemSession,
    *,
    product_key: str,
    device_name: str,
    device_secret: str,
    sign_method: SignMethod | str = "hmacmd5",
    timestamp: str | int | None = None,
    tls: bool = True,
    region: str = DEFAULT_REGION,
    keepalive: int = 120,
    client_id: str | None = None,
    host: str | None = None,
    port: int = 1883,
    clean_session: int = 1,
) -> MqttLogin:
    """Method 2 (一机一密直连): ``clientId|securemode=3,signmethod=…|``,
    ``deviceName&productKey``, HMAC password; MCONFIG, SSLMIPSTART (``tls=False``:
    MIPSTART), MCONNECT right after CONNECT OK."""
    check_aliyun_keepalive(keepalive)
    creds = direct_mqtt_credentials(
        product_key,
        device_name,
        device_secret,
        client_id=client_id,
        sign_method=sign_method,
        timestamp=timestamp,
        region=region,
        host=host,
        port=port,
    )
    check_aliyun_client_id(creds.client_id)
    return _mqtt_login(
        session,
        creds,
        _Steps(),
        method="direct",
        tls=tls,
        keepalive=keepalive,
        clean_session=clean_session,
    )


def register_device(
    session: ModemSession,
    *,
    product_key: str,
    device_name: str,
    product_secret: str,
    random: str | None = None,
    sign_method: SignMethod | str = TUTORIAL_REGISTER_SIGN_METHOD,
    region: str = DEFAULT_REGION,
    http_timeout: float | None = None,
    auth_base: str | None = None,
) -> Registration:
    """Method 3 (一型一密 dynamic registration over HTTPS): POST
    ``/auth/register/device`` signed with the ProductSecret; returns the DeviceSecret
    (then log in with :func:`direct_mqtt` or :func:`http_auth_then_mqtt`).
    ``auth_base`` replaces the auth host on the bench (see :func:`http_auth_then_mqtt`)."""
    req = register_request(
        product_key,
        device_name,
        product_secret,
        random=random if random is not None else new_random(),
        sign_method=sign_method,
        region=region,
    )
    steps = _Steps()
    device = _post_and_parse(
        session, req, steps, http_timeout, auth_base, parse_register_reply,
        "/auth/register/device", REGISTER_HINT,
    )  # fmt: skip
    return Registration(
        steps=steps.done(),
        product_key=device.product_key,
        device_name=device.device_name,
        device_secret=device.device_secret,
    )


# ---------------------------------------------------------------------------- MQTT use


def subscribe(session: ModemSession, topic: str, qos: int = 0) -> SubscribeResult:
    """``AT+MSUB`` -> ``SUBACK`` (a refusal -> CloudRejected naming the topic rules)."""
    line = msub(topic, qos)
    r = session.command_and_wait(line, **_awaits("+MSUB"))
    return SubscribeResult(steps=(Step.of("MSUB", r),), topic=topic, qos=qos)


def publish(
    session: ModemSession,
    topic: str,
    payload: str | bytes,
    qos: int = 0,
    retain: bool = False,
    *,
    block: bool = True,
) -> PublishResult:
    """``AT+MPUB`` (quoted, escaped); QoS1 returns after its PUBACK (``ack_latency``)."""
    r = session.publish(topic, payload, qos, retain, block=block)
    size = len(payload.encode("utf-8") if isinstance(payload, str) else payload)
    return PublishResult(steps=(Step.of("MPUB", r),), topic=topic, qos=qos, size=size, response=r)


def set_receive_mode(session: ModemSession, cached: bool) -> RecipeResult:
    """``AT+MQTTMSGSET=0`` (direct ``+MSUB`` URCs, the default) or ``=1`` (cache: the
    URC ``+MSUB: <slot>`` announces, ``session.fetch_cached()`` reads)."""
    if not isinstance(cached, bool):
        raise UsageError("cached", f"must be True or False, got {cached!r}")
    r = session.command(mqttmsgset(1 if cached else 0))
    return RecipeResult(steps=(Step.of("MQTTMSGSET", r),))
