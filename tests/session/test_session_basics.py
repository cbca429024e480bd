"""ModemSession basics: commands, errors, timeouts, URCs, transcripts, guards."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from airlab.at import Direction, Transcript, read_capture
from airlab.at.events import CommandSent, Echo, Event, FinalResult, Urc
from airlab.errors import UsageError
from airlab.session import (
    CommandError,
    ConnectionClosed,
    ModemSession,
    PortClosed,
    ResponseTimeout,
    UrcTimeout,
    recipes,
)
from tests.session.helpers import DN, DS, PK, UPDATE_TOPIC, echo_ok


def _sent(session: ModemSession) -> bytes:
    return session.transcript.sent()


# ---------------------------------------------------------------- command / response


def test_command_returns_a_frozen_response(session: ModemSession) -> None:
    r = session.command("AT+CGATT?")
    assert r.ok and r.result == "OK"
    assert r.echo == "AT+CGATT?"
    assert r.lines == ("+CGATT: 1",)
    assert r.args("+CGATT") == ("1",)
    assert r.sent_mono <= r.echo_mono <= r.final_mono  # type: ignore[operator]
    assert r.latency >= 0
    assert isinstance(r.events[0], CommandSent) and isinstance(r.events[-1], FinalResult)
    with pytest.raises(AttributeError):
        r.command = "x"  # type: ignore[misc]
    assert _sent(session) == b"AT+CGATT?\r\n"


def test_line_ending_option(sim_url: str) -> None:
    with ModemSession(sim_url, line_ending="\r") as s:
        assert s.command("AT").ok
        assert s.transcript.sent() == b"AT\r"


def test_cme_error_raises_command_error_with_meaning_and_hint(session: ModemSession) -> None:
    with pytest.raises(CommandError) as info:
        session.command(f'AT+MPUB="{UPDATE_TOPIC}",0,0,"x"')  # no MQTT session
    err = info.value
    assert (err.result, err.code, err.meaning) == ("+CME ERROR", 767, "operation failed")
    assert "reconnect (MIPSTART, MCONNECT)" in str(err)
    assert err.response is not None and not err.response.ok
    # check=False returns the response instead
    r = session.command("AT+MIPCLOSE", check=False)
    assert (r.ok, r.result) == (False, "ERROR")  # nothing open: plain ERROR


def test_plain_error_has_a_generic_hint(session: ModemSession) -> None:
    with pytest.raises(CommandError, match="check its spelling") as info:
        session.command("AT+BOGUS")
    assert info.value.result == "ERROR" and info.value.code is None


def test_timeout_when_nothing_answers(scripted) -> None:  # type: ignore[no-untyped-def]
    modem = scripted(lambda line: None)  # a server that never answers
    with ModemSession(modem.url) as s:
        with pytest.raises(ResponseTimeout) as info:
            s.command("AT+CSQ", timeout=0.2)
        assert isinstance(info.value, TimeoutError)
        assert "AT+CSQ" in str(info.value) and "final result" in str(info.value)
        with pytest.raises(ResponseTimeout, match="3 tries"):
            s.probe(tries=3, timeout=0.1)
        assert modem.lines[-3:] == ["AT", "AT", "AT"]


def test_probe_retries_until_ok(scripted) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def script(line: str) -> bytes | None:
        calls.append(line)
        return None if len(calls) < 3 else echo_ok(line)  # auto-baud: the third AT works

    with ModemSession(scripted(script).url) as s:
        assert s.probe(tries=5, timeout=0.2).ok
    assert calls == ["AT", "AT", "AT"]


def test_urc_between_echo_and_ok_is_kept(scripted) -> None:  # type: ignore[no-untyped-def]
    def script(line: str) -> bytes | None:
        if line.startswith("AT+MIPSTART"):
            # a fast server: the URC overtakes the OK in the same chunk
            return line.encode() + b"\r\n\r\nCONNECT OK\r\n\r\nOK\r\n"
        return echo_ok(line)

    with ModemSession(scripted(script).url) as s:
        r = s.command_and_wait('AT+MIPSTART="broker",1883', urc="CONNECT OK", timeout=2)
    assert r.urc is not None and r.urc.name == "CONNECT OK"
    assert r.urc_mono is not None and r.urc_mono <= r.final_mono
    assert [e.kind for e in r.events] == ["command", "echo", "urc", "final"]


def test_unknown_cme_code_and_late_error(scripted) -> None:  # type: ignore[no-untyped-def]
    def script(line: str) -> bytes | None:
        if line == "AT+CPIN?":
            return line.encode() + b"\r\n\r\n+CME ERROR: 10\r\n"
        if line.startswith("AT+MIPSTART"):
            return echo_ok(line) + b"\r\nSTATE: IP STATUS\r\n\r\nCONNECT FAIL\r\n"
        return echo_ok(line)

    from airlab.session import ConnectFailed

    with ModemSession(scripted(script).url) as s:
        with pytest.raises(CommandError, match="SIM") as info:
            s.command("AT+CPIN?")
        assert info.value.meaning == "SIM not inserted"
        with pytest.raises(ConnectFailed, match="STATE: IP STATUS"):
            s.command_and_wait('AT+MIPSTART="nowhere",1883', urc="CONNECT OK", timeout=2)


def test_urc_timeout_names_the_urc(session: ModemSession) -> None:
    with pytest.raises(UrcTimeout, match="CONNACK OK"):
        session.command_and_wait("AT+MQTTSTATU", urc="CONNACK OK", timeout=0.2)


# ---------------------------------------------------------------- URC subscriptions


def test_on_urc_runs_in_the_dispatcher_thread(
    session: ModemSession, cloud: tuple[object, Path], caplog: pytest.LogCaptureFixture
) -> None:
    emu = cloud[0]
    recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    recipes.subscribe(session, f"/{PK}/{DN}/user/get")
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def boom(urc: Urc) -> None:
        raise RuntimeError("a broken callback")

    def good(urc: Urc) -> None:
        seen.append((threading.current_thread().name, urc.name))
        done.set()

    with caplog.at_level(logging.ERROR, logger="airlab.session"):
        bad = session.on_urc("+MSUB", boom)
        handle = session.on_urc(lambda u: u.topic is not None, good)
        emu.publish(f"/{PK}/{DN}/user/get", b"to the device")  # type: ignore[attr-defined]
        assert done.wait(5)
        session.dispatcher_thread.join(0.0)
    assert seen == [(session.dispatcher_thread.name, "+MSUB")]
    assert session.dispatcher_thread is not session.reader_thread
    assert seen[0][0] != threading.current_thread().name
    assert bad.errors == 1  # logged, not fatal
    assert session.command("AT").ok  # the session goes on
    handle.cancel()
    bad.cancel()
    msg = session.messages.get(2)
    assert (msg.topic, msg.payload) == (f"/{PK}/{DN}/user/get", b"to the device")


def test_wait_for_urc_since_a_mark(session: ModemSession) -> None:
    recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    mark = session.mark()
    assert session.port.module.drop_link()  # type: ignore[attr-defined]
    urc = session.wait_for_urc("CLOSED", timeout=5, since=mark)
    assert urc.name == "CLOSED"
    assert session.mqtt_status() == 0


# ---------------------------------------------------------------- transcripts


def test_transcript_both_directions_saved_as_jsonl(sim_url: str, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    with ModemSession(sim_url, transcript=path) as s:
        s.command("AT+CGATT?")
        s.command("AT+HTTPINIT")
        s.http_post_body("a=1&b=2")
        s.command("AT+CSQ")
        live = s.events
        memory = list(s.transcript)
    directions = {r.direction for r in memory}
    assert directions == {Direction.SENT, Direction.RECEIVED}
    monos = [r.mono for r in memory]
    assert monos == sorted(monos) and all(r.wall > 1e9 for r in memory)
    loaded = Transcript.load(path)
    assert [(r.direction, r.data, r.wall, r.mono) for r in loaded.data_records()] == [
        (r.direction, r.data, r.wall, r.mono) for r in memory
    ]
    assert read_capture(path).sent() == loaded.sent()
    # the live events are what re-parsing the saved transcript gives
    assert _key(live) == _key(loaded.events())
    assert b"a=1&b=2" in loaded.sent()
    kinds = [e.kind for e in live]
    assert "data" in kinds and "prompt" in kinds


def _key(events: list[Event]) -> list[tuple[str, bytes, float]]:
    return [(e.kind, e.raw, e.mono) for e in events]


def test_transcript_object_is_appended_to(sim_url: str) -> None:
    t = Transcript()
    with ModemSession(sim_url, transcript=t) as s:
        s.command("AT")
        assert s.transcript is t
    assert t.sent() == b"AT\r\n" and b"OK" in t.received()


# ---------------------------------------------------------------- guards


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.command("AT+HTTPDATA=5,20000"), "line"),
        (lambda s: s.send_data("AT+HTTPDATA=5,20000", b"abc"), "data"),
        (lambda s: s.command(f'AT+MPUB="{UPDATE_TOPIC}",0,0,hello'), "line"),
        (lambda s: s.command(f'AT+MPUB="{UPDATE_TOPIC}",0,0,"say "hi""'), "line"),
        (lambda s: s.command("AT\r\nAT+RESET"), "line"),
        (lambda s: s.publish(UPDATE_TOPIC, b"\xff\xfe binary"), "message"),
        (lambda s: s.publish(UPDATE_TOPIC, "x" * 4101), "message"),
        (lambda s: s.command('AT+MPUBEX="t",1,0,3'), "line"),
        (
            lambda s: recipes.direct_mqtt(
                s, product_key=PK, device_name=DN, device_secret=DS, keepalive=20
            ),
            "keepalive",
        ),
        (
            lambda s: recipes.direct_mqtt(
                s, product_key=PK, device_name=DN, device_secret=DS, keepalive=1201
            ),
            "keepalive",
        ),
        (
            lambda s: recipes.direct_mqtt(
                s, product_key=PK, device_name=DN, device_secret=DS, client_id="c" * 65
            ),
            "client_id",
        ),
        (
            lambda s: recipes.http_auth_then_mqtt(
                s, product_key=PK, device_name=DN, device_secret=DS, client_id="c" * 65
            ),
            "client_id",
        ),
    ],
)
def test_guards_raise_before_anything_is_written(session: ModemSession, call, field) -> None:  # type: ignore[no-untyped-def]
    before = len(session.transcript)
    with pytest.raises(UsageError) as info:
        call(session)
    assert info.value.field == field
    assert len(session.transcript) == before
    assert _sent(session) == b""


def test_http_post_body_length_comes_from_the_bytes(session: ModemSession) -> None:
    session.command("AT+HTTPINIT")
    r = session.http_post_body("中文")  # 2 characters, 6 bytes
    assert r.command == "AT+HTTPDATA=6,20000" and r.ok and r.prompt_mono is not None
    assert _sent(session).endswith(b"AT+HTTPDATA=6,20000\r\n" + "中文".encode())
    assert session.command("AT+HTTPREAD=0,6").payload == "中文".encode()


def test_publish_escapes_the_message(session: ModemSession) -> None:
    recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    r = session.publish(UPDATE_TOPIC, '{"k": "a\\b"}\n')
    assert r.ok
    assert b'"{\\22k\\22: \\22a\\5Cb\\22}\\0A"' in _sent(session)


# ---------------------------------------------------------------- status, lifecycle


def test_status_probe_and_close(sim_url: str) -> None:
    s = ModemSession(sim_url)
    assert s.probe().ok
    assert s.mqtt_status() == 0
    assert s.is_open
    s.close()
    s.close()  # idempotent
    assert not s.is_open and not s.reader_thread.is_alive()
    assert not s.port.is_open
    with pytest.raises(PortClosed):
        s.command("AT")
    assert isinstance(PortClosed(None, "x"), ConnectionClosed)


def test_existing_port_object(sim_url: str) -> None:
    import serial

    port = serial.serial_for_url(sim_url, timeout=None)
    with ModemSession(port, close_port=False) as s:
        assert port.timeout == 0.05  # the reader must wake up to stop
        assert s.command("AT").ok
    assert port.is_open
    port.close()


def test_bad_arguments() -> None:
    with pytest.raises(UsageError, match="late_mconnect"):
        ModemSession("airsim://", late_mconnect="sometimes")
    with pytest.raises(UsageError, match="port"):
        ModemSession(42)  # type: ignore[arg-type]


def test_echo_event_is_tracked(session: ModemSession) -> None:
    session.command("ATI")
    assert any(isinstance(e, Echo) and e.line == "ATI" for e in session.events)
