"""The firmware's MQTT link and session tables (airlab.sim.firmware_mqtt_states)."""

from __future__ import annotations

import pytest

from airlab.sim import firmware_mqtt
from airlab.sim.actions import LinkClosed, LinkOpened, MqttConnack
from airlab.sim.firmware_mqtt_states import (
    LINK_TRANSITIONS,
    SESSION_TRANSITIONS,
    IllegalTransition,
    Link,
    LinkEvent,
    Session,
    SessionEvent,
    transition,
)


def test_every_state_has_a_row_and_every_event_a_use():
    assert set(LINK_TRANSITIONS) == set(Link)
    assert set(SESSION_TRANSITIONS) == set(Session)
    assert {e for row in LINK_TRANSITIONS.values() for e in row} == set(LinkEvent)
    assert {e for row in SESSION_TRANSITIONS.values() for e in row} == set(SessionEvent)


def test_the_session_follows_the_link_down_from_every_state():
    for state in Session:
        assert transition(SESSION_TRANSITIONS, state, SessionEvent.LINK_DOWN) is Session.NONE


@pytest.mark.parametrize(
    ("state", "event"),
    [(Link.IDLE, LinkEvent.OPENED), (Link.OPEN, LinkEvent.START), (Link.IDLE, LinkEvent.CLOSE)],
)
def test_a_move_not_in_the_table_raises(state, event):
    with pytest.raises(IllegalTransition, match=event.name):
        transition(LINK_TRANSITIONS, state, event)


def test_a_full_session_walks_the_tables(drv):
    drv.connect_mqtt()
    assert (drv.fw._mq_link, drv.fw._mq_session) == (Link.OPEN, Session.CONNECTED)
    drv.send(b"AT+MDISCONNECT\r\n")
    assert drv.fw._mq_session is Session.DISCONNECTING
    drv.net(LinkClosed("mqtt"))
    assert (drv.fw._mq_link, drv.fw._mq_session) == (Link.IDLE, Session.NONE)


def _without(event: LinkEvent) -> dict[Link, dict[LinkEvent, Link]]:
    table = LINK_TRANSITIONS.items()
    return {s: {e: t for e, t in row.items() if e is not event} for s, row in table}


def test_an_illegal_move_raises_in_strict_mode(drv, monkeypatch):
    monkeypatch.setattr(firmware_mqtt, "LINK_TRANSITIONS", _without(LinkEvent.OPENED))
    drv.send(b'AT+MIPSTART="broker.example",1883\r\n')
    with pytest.raises(IllegalTransition):
        drv.net(LinkOpened("mqtt", drv.fw._mq_attempt))


def test_an_illegal_move_is_logged_without_strict(drv, monkeypatch, caplog):
    monkeypatch.setattr(firmware_mqtt, "LINK_TRANSITIONS", _without(LinkEvent.OPENED))
    drv.fw.strict = False
    drv.send(b'AT+MIPSTART="broker.example",1883\r\n')
    with caplog.at_level("ERROR", logger="airlab.sim.firmware"):
        out = drv.net(LinkOpened("mqtt", drv.fw._mq_attempt), MqttConnack(0))
    assert b"CONNECT OK" not in out
    assert drv.fw._mq_link is Link.OPENING
    (record,) = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is IllegalTransition
