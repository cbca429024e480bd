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
    >>> from airlab.cloud.model import ConnectRequest
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

from airlab.cloud.auth_common import (
    HOST_REFUSAL_CODE,
    JSON_CONTENT_TYPE,
    KEEPALIVE_RANGE,
    TLS_REFUSAL_CODE,
    HttpReply,
    host_carries_product_key,
)
from airlab.cloud.auth_common import RATE_WINDOW as RATE_WINDOW
from airlab.cloud.auth_common import _dumps as _dumps
from airlab.cloud.auth_connect import ConnectRules
from airlab.cloud.auth_http import HttpRules
from airlab.cloud.auth_topics import TopicRules

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

DYNREG_CLOSE_AFTER = 15.0
"""Seconds after which a dynamic-registration connection is closed by the server."""


class Rules(ConnectRules, TopicRules, HttpRules):
    """The platform's rules over a :class:`~airlab.cloud.registry.Registry`.

    ``connect_rate_limit``: attempts allowed per device per 60 s (the platform documents
    5); the next attempt gets CONNACK 3 (``rate_limit``). Default None (off) so a
    classroom that reconnects often is not surprised. ``clock`` gives epoch seconds
    (tests pass a fake one for token expiry and NTP).

    The parts live in their modules: :mod:`~airlab.cloud.auth_connect` (MQTT CONNECT,
    with the checks of :mod:`~airlab.cloud.auth_checks`), :mod:`~airlab.cloud.auth_topics`
    (topic permissions, platform replies), :mod:`~airlab.cloud.auth_http` (the HTTPS
    endpoints) and :mod:`~airlab.cloud.auth_common` (state, logs, shared helpers).
    """
