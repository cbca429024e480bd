"""The firmware's SAPBR bearer and HTTP service tables (airlab.sim.firmware_http_states):
the tables move by move, then each move walked through the firmware."""

from __future__ import annotations

import pytest

from airlab.sim import firmware_http, firmware_radio
from airlab.sim.actions import CloseLink, HttpRequest, HttpResult, LinkFailed
from airlab.sim.firmware_http_states import (
    BEARER_TRANSITIONS,
    HTTP_TRANSITIONS,
    Bearer,
    BearerEvent,
    Http,
    HttpEvent,
    IllegalTransition,
    transition,
)
from airlab.sim.firmware_mqtt_states import IllegalTransition as MqttIllegalTransition

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"

#: every legal move, written out: the tables must hold exactly these
BEARER_MOVES = [
    (Bearer.CLOSED, BearerEvent.OPEN, Bearer.OPEN),
    (Bearer.OPEN, BearerEvent.OPEN, Bearer.OPEN),
    (Bearer.OPEN, BearerEvent.CLOSE, Bearer.CLOSED),
    (Bearer.OPEN, BearerEvent.NETWORK_LOST, Bearer.LOST),
    (Bearer.LOST, BearerEvent.OPEN, Bearer.OPEN),
]
HTTP_MOVES = [
    (Http.OFF, HttpEvent.INIT, Http.IDLE),
    (Http.IDLE, HttpEvent.TERM, Http.OFF),
    (Http.IDLE, HttpEvent.ACTION, Http.ACTION),
    (Http.ACTION, HttpEvent.RESULT, Http.IDLE),
    (Http.ACTION, HttpEvent.FAILED, Http.IDLE),
    (Http.ACTION, HttpEvent.NETWORK_LOST, Http.IDLE),
    (Http.ACTION, HttpEvent.TERM, Http.OFF),
]


def _moves(table):
    return {(s, e, t) for s, row in table.items() for e, t in row.items()}


def test_the_tables_hold_exactly_the_listed_moves():
    assert _moves(BEARER_TRANSITIONS) == set(BEARER_MOVES)
    assert _moves(HTTP_TRANSITIONS) == set(HTTP_MOVES)


def test_every_state_has_a_row_and_every_event_a_use():
    assert set(BEARER_TRANSITIONS) == set(Bearer)
    assert set(HTTP_TRANSITIONS) == set(Http)
    assert {e for row in BEARER_TRANSITIONS.values() for e in row} == set(BearerEvent)
    assert {e for row in HTTP_TRANSITIONS.values() for e in row} == set(HttpEvent)


@pytest.mark.parametrize(("state", "event", "new"), BEARER_MOVES)
def test_bearer_move(state, event, new):
    assert transition(BEARER_TRANSITIONS, state, event) is new


@pytest.mark.parametrize(("state", "event", "new"), HTTP_MOVES)
def test_http_move(state, event, new):
    assert transition(HTTP_TRANSITIONS, state, event) is new


@pytest.mark.parametrize(
    ("table", "state", "event", "message"),
    [
        (BEARER_TRANSITIONS, Bearer.CLOSED, BearerEvent.CLOSE, "bearer: CLOSE in state CLOSED"),
        (BEARER_TRANSITIONS, Bearer.LOST, BearerEvent.CLOSE, "bearer: CLOSE in state LOST"),
        (
            BEARER_TRANSITIONS,
            Bearer.CLOSED,
            BearerEvent.NETWORK_LOST,
            "bearer: NETWORK_LOST in state CLOSED",
        ),
        (HTTP_TRANSITIONS, Http.OFF, HttpEvent.ACTION, "http: ACTION in state OFF"),
        (HTTP_TRANSITIONS, Http.OFF, HttpEvent.TERM, "http: TERM in state OFF"),
        (HTTP_TRANSITIONS, Http.IDLE, HttpEvent.INIT, "http: INIT in state IDLE"),
        (HTTP_TRANSITIONS, Http.IDLE, HttpEvent.RESULT, "http: RESULT in state IDLE"),
        (HTTP_TRANSITIONS, Http.ACTION, HttpEvent.ACTION, "http: ACTION in state ACTION"),
    ],
)
def test_a_move_not_in_the_table_raises(table, state, event, message):
    with pytest.raises(IllegalTransition, match=message):
        transition(table, state, event)


def test_the_same_error_as_the_mqtt_machines():
    assert IllegalTransition is MqttIllegalTransition


# ---------------------------------------------------------------- through the firmware


def bearer(drv, cid=1):
    return drv.fw._sapbr_state[cid]


def test_bearer_moves_through_the_firmware(drv):
    assert bearer(drv) is Bearer.CLOSED
    assert drv.send(b"AT+SAPBR=1,1\r\n").endswith(OK)  # CLOSED --OPEN--> OPEN
    assert bearer(drv) is Bearer.OPEN
    assert drv.send(b"AT+SAPBR=1,1\r\n").endswith(OK)  # OPEN --OPEN--> OPEN
    assert bearer(drv) is Bearer.OPEN
    assert drv.send(b"AT+SAPBR=0,1\r\n").endswith(OK)  # OPEN --CLOSE--> CLOSED
    assert bearer(drv) is Bearer.CLOSED
    drv.send(b"AT+SAPBR=1,1\r\n")
    out = drv.take(drv.fw.lose_pdp())  # OPEN --NETWORK_LOST--> LOST, announced
    assert out == b"\r\n+CGEV: NW PDN DEACT 1\r\n\r\n+SAPBR 1: DEACT\r\n"
    assert (bearer(drv), bearer(drv, 2)) == (Bearer.LOST, Bearer.CLOSED)
    assert drv.send(b"AT+SAPBR=2,1\r\n").endswith(b'\r\n+SAPBR: 1,3,"0.0.0.0"\r\n' + OK)
    assert drv.send(b"AT+SAPBR=1,1\r\n").endswith(OK)  # LOST --OPEN--> OPEN
    assert bearer(drv) is Bearer.OPEN


def test_a_detach_loses_the_bearer_without_a_deact(drv):
    drv.send(b"AT+SAPBR=1,1\r\n")
    assert drv.send(b"AT+CGATT=0\r\n").endswith(OK + b"\r\n+CGEV: ME DETACH\r\n")
    assert bearer(drv) is Bearer.LOST
    assert drv.send(b"AT+SAPBR=1,1\r\n").endswith(b"\r\n+CME ERROR: 3\r\n")  # not attached
    assert bearer(drv) is Bearer.LOST


def http_idle(drv):
    drv.send(b"AT+SAPBR=1,1\r\n")
    assert drv.fw._http_state is Http.OFF
    assert drv.send(b"AT+HTTPINIT\r\n").endswith(OK)  # OFF --INIT--> IDLE
    drv.send(b'AT+HTTPPARA="URL","www.baidu.com"\r\n')
    assert drv.fw._http_state is Http.IDLE


def http_action(drv):
    http_idle(drv)
    assert drv.send(b"AT+HTTPACTION=0\r\n").endswith(OK)  # IDLE --ACTION--> ACTION
    assert drv.fw._http_state is Http.ACTION and drv.fw.http_in_flight
    assert isinstance(drv.requests[-1], HttpRequest)


def test_http_init_action_result_term(drv):
    http_action(drv)
    out = drv.net(HttpResult(200, b"hello"))  # ACTION --RESULT--> IDLE
    assert out == b"\r\n+HTTPACTION: 0,200,5\r\n"
    assert drv.fw._http_state is Http.IDLE and not drv.fw.http_in_flight
    assert drv.send(b"AT+HTTPTERM\r\n").endswith(OK)  # IDLE --TERM--> OFF
    assert drv.fw._http_state is Http.OFF


def test_http_link_failed(drv):
    http_action(drv)
    assert drv.net(LinkFailed("http", "dns")) == b"\r\n+HTTPACTION: 0,603,0\r\n"
    assert drv.fw._http_state is Http.IDLE  # ACTION --FAILED--> IDLE


def test_http_network_lost(drv):
    http_action(drv)
    out = drv.take(drv.fw.lose_pdp())  # ACTION --NETWORK_LOST--> IDLE
    assert out.endswith(b"\r\n+HTTPACTION: 0,601,0\r\n")
    assert CloseLink("http") in drv.actions
    assert drv.fw._http_state is Http.IDLE


def test_http_term_while_in_flight(drv):
    http_action(drv)
    assert drv.send(b"AT+HTTPTERM\r\n").endswith(OK)  # ACTION --TERM--> OFF
    assert CloseLink("http") in drv.actions
    assert drv.fw._http_state is Http.OFF
    assert drv.net(HttpResult(200, b"late")) == b""  # a stale result is ignored


def test_http_commands_answer_error_when_off(drv):
    for line in (b"AT+HTTPTERM\r\n", b"AT+HTTPACTION=0\r\n", b"AT+HTTPREAD\r\n"):
        assert drv.send(line).endswith(ERROR)
    assert drv.fw._http_state is Http.OFF


# ---------------------------------------------------------------- an illegal move


def _without(table, event):
    return {s: {e: t for e, t in row.items() if e is not event} for s, row in table.items()}


def test_an_illegal_bearer_move_raises_in_strict_mode(drv, monkeypatch):
    monkeypatch.setattr(
        firmware_radio, "BEARER_TRANSITIONS", _without(BEARER_TRANSITIONS, BearerEvent.CLOSE)
    )
    drv.send(b"AT+SAPBR=1,1\r\n")
    with pytest.raises(IllegalTransition, match="bearer: CLOSE in state OPEN"):
        drv.send(b"AT+SAPBR=0,1\r\n")


def test_an_illegal_bearer_move_is_logged_without_strict(drv, monkeypatch, caplog):
    monkeypatch.setattr(
        firmware_radio, "BEARER_TRANSITIONS", _without(BEARER_TRANSITIONS, BearerEvent.CLOSE)
    )
    drv.fw.strict = False
    drv.send(b"AT+SAPBR=1,1\r\n")
    with caplog.at_level("ERROR", logger="airlab.sim.firmware"):
        assert drv.send(b"AT+SAPBR=0,1\r\n").endswith(b"AT+SAPBR=0,1\r\n" + ERROR)
    assert bearer(drv) is Bearer.OPEN
    (record,) = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is IllegalTransition


def test_an_illegal_http_move_raises_in_strict_mode(drv, monkeypatch):
    monkeypatch.setattr(
        firmware_http, "HTTP_TRANSITIONS", _without(HTTP_TRANSITIONS, HttpEvent.RESULT)
    )
    http_action(drv)
    with pytest.raises(IllegalTransition, match="http: RESULT in state ACTION"):
        drv.net(HttpResult(200, b"hello"))


def test_an_illegal_http_move_is_logged_without_strict(drv, monkeypatch, caplog):
    monkeypatch.setattr(
        firmware_http, "HTTP_TRANSITIONS", _without(HTTP_TRANSITIONS, HttpEvent.RESULT)
    )
    drv.fw.strict = False
    http_action(drv)
    with caplog.at_level("ERROR", logger="airlab.sim.firmware"):
        assert drv.net(HttpResult(200, b"hello")) == b""
    assert drv.fw._http_state is Http.ACTION
    (record,) = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is IllegalTransition
