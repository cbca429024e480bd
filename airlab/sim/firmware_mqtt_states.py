"""The simulated firmware's MQTT state machines, h11-style: named states, and one table
per machine of the legal ``state --event--> new state`` moves.

Two machines run on top of each other:

* the **link** (the TCP or TLS connection of ``AT+(SSL)MIPSTART``): :class:`Link`,
  moved by :class:`LinkEvent` along :data:`LINK_TRANSITIONS`;
* the **session** (MQTT CONNECT … DISCONNECT on that link): :class:`Session`, moved by
  :class:`SessionEvent` along :data:`SESSION_TRANSITIONS`.  Whenever the link goes down
  the session follows (``LINK_DOWN``), whatever it was.

A move that is not in its table is a bug of the firmware, never bad input (the command
handlers check the state first and answer ``+CME ERROR: 767`` and the like):
:func:`transition` raises :class:`IllegalTransition`, which the firmware treats as any
internal error (re-raised with ``AIRLAB_SIM_STRICT=1``, else logged and answered ERROR).

The printed texts (``STATE: IP STATUS``, ``CONNECT OK`` …) are not these states: they
stay in the firmware and its :class:`~airlab.sim.config.FirmwareConfig`.

Example:
    >>> transition(LINK_TRANSITIONS, Link.IDLE, LinkEvent.START)
    <Link.OPENING: 'opening'>
    >>> transition(SESSION_TRANSITIONS, Session.NONE, SessionEvent.CONNACK_OK)
    Traceback (most recent call last):
    ...
    airlab.sim.firmware_mqtt_states.IllegalTransition: session: CONNACK_OK in state NONE
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

__all__ = [
    "LINK_TRANSITIONS",
    "SESSION_TRANSITIONS",
    "IllegalTransition",
    "Link",
    "LinkEvent",
    "Session",
    "SessionEvent",
    "transition",
]


class Link(Enum):
    """The TCP/TLS link of ``AT+(SSL)MIPSTART``."""

    IDLE = "idle"  # no link (never opened, closed, failed)
    OPENING = "opening"  # OpenLink sent, no LinkOpened/LinkFailed yet
    OPEN = "open"  # CONNECT OK printed


class LinkEvent(Enum):
    """What moves the link."""

    START = "start"  # AT+(SSL)MIPSTART sent an OpenLink
    OPENED = "opened"  # LinkOpened: CONNECT OK
    FAILED = "failed"  # LinkFailed: STATE: … / CONNECT FAIL
    CLOSE = "close"  # AT+MIPCLOSE (a local close)
    PEER_CLOSED = "peer_closed"  # LinkClosed on an open link
    NETWORK_LOST = "network_lost"  # PDP context or attach lost (pdp_loss_mqtt="closed")


class Session(Enum):
    """The MQTT session on an open link."""

    NONE = "none"  # no CONNECT sent (or the last one was refused)
    CONNECTING = "connecting"  # AT+MCONNECT sent CONNECT, no CONNACK yet
    CONNECTED = "connected"  # CONNACK OK printed
    DISCONNECTING = "disconnecting"  # AT+MDISCONNECT sent DISCONNECT


class SessionEvent(Enum):
    """What moves the session."""

    CONNECT = "connect"  # AT+MCONNECT
    CONNACK_OK = "connack_ok"  # CONNACK return code 0
    CONNACK_REFUSED = "connack_refused"  # CONNACK return code != 0: ERROR
    DISCONNECT = "disconnect"  # AT+MDISCONNECT
    LINK_DOWN = "link_down"  # the link under it went back to IDLE


#: The link's legal moves: state -> {event: new state}.
LINK_TRANSITIONS: Mapping[Link, Mapping[LinkEvent, Link]] = {
    Link.IDLE: {LinkEvent.START: Link.OPENING},
    Link.OPENING: {
        LinkEvent.OPENED: Link.OPEN,
        LinkEvent.FAILED: Link.IDLE,
        LinkEvent.CLOSE: Link.IDLE,
        LinkEvent.NETWORK_LOST: Link.IDLE,
    },
    Link.OPEN: {
        LinkEvent.CLOSE: Link.IDLE,
        LinkEvent.PEER_CLOSED: Link.IDLE,
        LinkEvent.NETWORK_LOST: Link.IDLE,
    },
}

#: The session's legal moves: state -> {event: new state}.
SESSION_TRANSITIONS: Mapping[Session, Mapping[SessionEvent, Session]] = {
    Session.NONE: {
        SessionEvent.CONNECT: Session.CONNECTING,
        SessionEvent.LINK_DOWN: Session.NONE,
    },
    Session.CONNECTING: {
        SessionEvent.CONNACK_OK: Session.CONNECTED,
        SessionEvent.CONNACK_REFUSED: Session.NONE,
        SessionEvent.LINK_DOWN: Session.NONE,
    },
    Session.CONNECTED: {
        SessionEvent.DISCONNECT: Session.DISCONNECTING,
        SessionEvent.LINK_DOWN: Session.NONE,
    },
    Session.DISCONNECTING: {SessionEvent.LINK_DOWN: Session.NONE},
}


class IllegalTransition(RuntimeError):
    """A move not in its machine's table: a bug of the simulated firmware."""


_S = TypeVar("_S", bound=Enum)
_E = TypeVar("_E", bound=Enum)


def transition(table: Mapping[_S, Mapping[_E, _S]], state: _S, event: _E) -> _S:
    """The state ``event`` moves ``state`` to, by ``table``; :class:`IllegalTransition`
    (naming the machine by its state class: ``link``, ``session``) when the table has no
    such move.  The HTTP machines of :mod:`~airlab.sim.firmware_http_states` use it too.

    >>> transition(LINK_TRANSITIONS, Link.OPEN, LinkEvent.PEER_CLOSED)
    <Link.IDLE: 'idle'>
    """
    try:
        return table[state][event]
    except KeyError:
        machine = type(state).__name__.lower()
        raise IllegalTransition(f"{machine}: {event.name} in state {state.name}") from None
