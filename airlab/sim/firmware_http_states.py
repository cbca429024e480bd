"""The simulated firmware's HTTP state machines, h11-style: named states, and one table
per machine of the legal ``state --event--> new state`` moves.

Two machines, in the style of :mod:`~airlab.sim.firmware_mqtt_states`:

* the **bearer** of each SAPBR context id (``AT+SAPBR=1,<cid>`` … ``AT+SAPBR=0,<cid>``),
  which ``AT+HTTPACTION`` needs: :class:`Bearer`, moved by :class:`BearerEvent` along
  :data:`BEARER_TRANSITIONS`;
* the **HTTP service** (``AT+HTTPINIT`` … ``AT+HTTPTERM``, one ``AT+HTTPACTION`` in
  flight at a time): :class:`Http`, moved by :class:`HttpEvent` along
  :data:`HTTP_TRANSITIONS`.

As for MQTT, a move that is not in its table is a bug of the firmware, never bad input
(the command handlers check the state first and answer ``ERROR``, ``+CME ERROR: 3`` …):
:func:`~airlab.sim.firmware_mqtt_states.transition` raises
:class:`~airlab.sim.firmware_mqtt_states.IllegalTransition` (re-raised with
``AIRLAB_SIM_STRICT=1``, else logged and answered ERROR).

The printed texts (``+SAPBR: 1,3,"0.0.0.0"``, ``+HTTPACTION: 0,601,0`` …) are not these
states: they stay in the firmware and its :class:`~airlab.sim.config.FirmwareConfig`.

Example:
    >>> transition(BEARER_TRANSITIONS, Bearer.OPEN, BearerEvent.NETWORK_LOST)
    <Bearer.LOST: 'lost'>
    >>> transition(HTTP_TRANSITIONS, Http.OFF, HttpEvent.ACTION)
    Traceback (most recent call last):
    ...
    airlab.sim.firmware_mqtt_states.IllegalTransition: http: ACTION in state OFF
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from airlab.sim.firmware_mqtt_states import IllegalTransition, transition

__all__ = [
    "BEARER_TRANSITIONS",
    "HTTP_TRANSITIONS",
    "Bearer",
    "BearerEvent",
    "Http",
    "HttpEvent",
    "IllegalTransition",
    "transition",
]


class Bearer(Enum):
    """The SAPBR bearer of one context id."""

    CLOSED = "closed"  # never opened, or AT+SAPBR=0 (status 3)
    OPEN = "open"  # AT+SAPBR=1 (status 1)
    LOST = "lost"  # was open, the network took it (+SAPBR <cid>: DEACT; status 3)


class BearerEvent(Enum):
    """What moves a bearer."""

    OPEN = "open"  # AT+SAPBR=1,<cid> on a ready network (also when already open: OK)
    CLOSE = "close"  # AT+SAPBR=0,<cid> on an open bearer
    NETWORK_LOST = "network_lost"  # PDP context lost or detached under an open bearer


class Http(Enum):
    """The HTTP service of ``AT+HTTPINIT``."""

    OFF = "off"  # no HTTPINIT yet, or HTTPTERM
    IDLE = "idle"  # HTTPINIT done, no request in flight
    ACTION = "action"  # AT+HTTPACTION sent a request, no +HTTPACTION URC yet


class HttpEvent(Enum):
    """What moves the HTTP service."""

    INIT = "init"  # AT+HTTPINIT
    TERM = "term"  # AT+HTTPTERM (closes a request in flight)
    ACTION = "action"  # AT+HTTPACTION sent an HttpRequest
    RESULT = "result"  # HttpResult: +HTTPACTION: <m>,<status>,<len>
    FAILED = "failed"  # the HTTP link failed or closed first: +HTTPACTION: <m>,60x,0
    NETWORK_LOST = "network_lost"  # PDP context lost or detached: +HTTPACTION: <m>,601,0


#: A bearer's legal moves: state -> {event: new state}.
BEARER_TRANSITIONS: Mapping[Bearer, Mapping[BearerEvent, Bearer]] = {
    Bearer.CLOSED: {BearerEvent.OPEN: Bearer.OPEN},
    Bearer.OPEN: {
        BearerEvent.OPEN: Bearer.OPEN,
        BearerEvent.CLOSE: Bearer.CLOSED,
        BearerEvent.NETWORK_LOST: Bearer.LOST,
    },
    Bearer.LOST: {BearerEvent.OPEN: Bearer.OPEN},
}

#: The HTTP service's legal moves: state -> {event: new state}.
HTTP_TRANSITIONS: Mapping[Http, Mapping[HttpEvent, Http]] = {
    Http.OFF: {HttpEvent.INIT: Http.IDLE},
    Http.IDLE: {HttpEvent.TERM: Http.OFF, HttpEvent.ACTION: Http.ACTION},
    Http.ACTION: {
        HttpEvent.RESULT: Http.IDLE,
        HttpEvent.FAILED: Http.IDLE,
        HttpEvent.NETWORK_LOST: Http.IDLE,
        HttpEvent.TERM: Http.OFF,
    },
}
