"""The host side of an AT session over any pyserial port, and the tutorial's recipes.

:class:`ModemSession` talks to a real Air780EP (``/dev/ttyUSB0``, ``COM5``), a TCP
bridge (``socket://…``) or the simulator (``airsim://…``) the same way; the recipes in
:mod:`airlab.session.recipes` run the three connection methods step by step.

Example:
    >>> import airlab
    >>> from airlab.session import ModemSession, recipes
    >>> with ModemSession("airsim://?profile=instant") as s:
    ...     s.mqtt_status()
    0
"""

from airlab.errors import CloudRejected, UsageError
from airlab.session import recipes
from airlab.session.errors import (
    CommandError,
    ConnectFailed,
    ConnectionClosed,
    LateMconnectWarning,
    PortClosed,
    ResponseTimeout,
    UrcTimeout,
)
from airlab.session.recipes import (
    AttachResult,
    MqttLogin,
    PublishResult,
    RecipeResult,
    Registration,
    Step,
    SubscribeResult,
    attach,
    direct_mqtt,
    disconnect,
    http_auth_then_mqtt,
    publish,
    register_device,
    set_receive_mode,
    subscribe,
)
from airlab.session.response import MessageQueue, MqttMessage, Response
from airlab.session.session import DEFAULT_FAIL, DEFAULT_MAX_EVENTS, LINE_ENDINGS, ModemSession
from airlab.session.urcs import UrcSubscription

__all__ = [
    "DEFAULT_FAIL",
    "DEFAULT_MAX_EVENTS",
    "LINE_ENDINGS",
    "AttachResult",
    "CloudRejected",
    "CommandError",
    "ConnectFailed",
    "ConnectionClosed",
    "LateMconnectWarning",
    "MessageQueue",
    "ModemSession",
    "MqttLogin",
    "MqttMessage",
    "PortClosed",
    "PublishResult",
    "RecipeResult",
    "Registration",
    "Response",
    "ResponseTimeout",
    "Step",
    "SubscribeResult",
    "UrcSubscription",
    "UrcTimeout",
    "UsageError",
    "attach",
    "direct_mqtt",
    "disconnect",
    "http_auth_then_mqtt",
    "publish",
    "recipes",
    "register_device",
    "set_receive_mode",
    "subscribe",
]
