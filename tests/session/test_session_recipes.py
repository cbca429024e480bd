"""The recipes end to end: airsim:// module + a real CloudEmulator(fixture="tutorial")."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from airlab.at.events import CommandSent, FinalResult, Urc
from airlab.errors import CloudRejected, UsageError
from airlab.session import (
    CommandError,
    ConnectionClosed,
    LateMconnectWarning,
    ModemSession,
    recipes,
)
from tests.session.helpers import DN, DS, GET_TOPIC, PK, PS, UPDATE_TOPIC


def _commands(session: ModemSession) -> list[str]:
    return [e.line for e in session.events if isinstance(e, CommandSent)]


def test_attach(session: ModemSession) -> None:
    result = recipes.attach(session)
    assert result.ip == "10.222.163.213"
    assert [s.name for s in result.steps] == [
        "CGATT?",
        "SAPBR CONTYPE",
        "SAPBR APN",
        "SAPBR open",
        "SAPBR query",
    ]
    again = recipes.attach(session)  # bearer already open: fine
    assert again.ip == result.ip


def test_method1_http_auth_then_mqtt(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    emu = cloud[0]
    recipes.attach(session)
    login = recipes.http_auth_then_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    assert login.method == "http_auth" and login.client_id == DN
    assert login.username == login.iot_id and login.iot_id
    assert login.host == f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com" and login.port == 1883
    names = [s.name for s in login.steps]
    assert names == [
        "HTTPINIT",
        "HTTPPARA URL",
        "HTTPPARA USER_DEFINED",
        "HTTPDATA",
        "HTTPACTION",
        "HTTPREAD",
        "HTTPTERM",
        "MCONFIG",
        "SSLMIPSTART",
        "MCONNECT",
    ]
    assert login.step("HTTPACTION").urc == "+HTTPACTION: 1,200,124"
    assert login.connack_latency is not None and login.connack_latency >= 0
    assert login.timings()[-1]["urc"] == "CONNACK OK"
    # MCONNECT right after CONNECT OK: nothing in between
    cmds = _commands(session)
    assert cmds[-1] == "AT+MCONNECT=1,120" and cmds[-2].startswith("AT+SSLMIPSTART=")
    assert session.mqtt_status() == 1
    assert [d.device_name for d in emu.online_devices()] == [DN]
    # the body was sent exactly as the tutorial does it (length from the bytes)
    assert "AT+HTTPDATA=112,20000" in cmds


def test_method1_wrong_secret_is_rejected(session: ModemSession) -> None:
    recipes.attach(session)  # HTTP needs the bearer (+HTTPACTION: 1,601,0 without)
    with pytest.raises(CloudRejected) as info:
        recipes.http_auth_then_mqtt(session, product_key=PK, device_name=DN, device_secret="0" * 32)
    assert "refusals()" in str(info.value)
    assert "clientId868488076506128" in str(info.value)  # what we signed
    assert "AT+MCONFIG" not in " ".join(_commands(session))
    assert _commands(session)[-1] == "AT+HTTPTERM"  # always cleaned up


def test_method2_direct_mqtt(session: ModemSession) -> None:
    login = recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    assert login.client_id == f"{DN}|securemode=3,signmethod=hmacmd5|"
    assert login.username == f"{DN}&{PK}"
    assert login.credentials is not None
    assert login.credentials.password == "0f655b12adf519b9a7a2b0a990f398b6"
    assert "password" not in repr(login)
    assert [s.name for s in login.steps] == ["MCONFIG", "SSLMIPSTART", "MCONNECT"]
    assert session.mqtt_status() == 1
    recipes.disconnect(session)
    assert session.mqtt_status() == 0


def test_method2_sha256_with_timestamp(session: ModemSession) -> None:
    login = recipes.direct_mqtt(
        session,
        product_key=PK,
        device_name=DN,
        device_secret=DS,
        sign_method="hmacsha256",
        timestamp=1700000000000,
        tls=False,
    )
    assert "timestamp=1700000000000" in login.client_id
    assert login.step("MIPSTART").urc == "CONNECT OK"


def test_method2_wrong_secret_points_to_the_emulator(
    session: ModemSession, cloud: tuple[Any, Path]
) -> None:
    emu = cloud[0]
    mark = session.mark()
    with pytest.raises(CloudRejected) as info:
        recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret="1" * 32)
    text = str(info.value)
    assert "explain_last_refusal()" in text and "check the signature" in text
    assert info.value.explanation and "clientId868488076506128" in info.value.explanation
    assert "signature" in emu.explain_last_refusal()
    session.wait_for_urc("CLOSED", 5, since=mark)  # the broker closes after the refusal
    assert session.mqtt_status() == 0


def test_method3_register_then_direct_login(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    emu = cloud[0]
    emu.reset_registration(PK, DN)
    recipes.attach(session)  # HTTP needs the bearer
    reg = recipes.register_device(
        session, product_key=PK, device_name=DN, product_secret=PS, random="123456"
    )
    assert (reg.product_key, reg.device_name) == (PK, DN)
    assert reg.device_secret == DS and DS not in repr(reg)
    assert reg.step("HTTPACTION").urc is not None
    login = recipes.direct_mqtt(
        session, product_key=PK, device_name=DN, device_secret=reg.device_secret
    )
    assert login.step("MCONNECT").urc == "CONNACK OK"


def test_method3_refused_for_an_activated_device(session: ModemSession) -> None:
    recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    recipes.disconnect(session)
    recipes.attach(session)  # HTTP needs the bearer
    with pytest.raises(CloudRejected, match="reset_registration"):
        recipes.register_device(session, product_key=PK, device_name=DN, product_secret=PS)


def test_subscribe_and_receive_direct_mode(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    emu = cloud[0]
    recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    sub = recipes.subscribe(session, GET_TOPIC)
    assert sub.suback_latency is not None
    emu.publish(GET_TOPIC, b'{"led":1}\r\nline two', 1)
    msg = session.messages.get(5)
    assert msg.topic == GET_TOPIC and msg.payload == b'{"led":1}\r\nline two'
    assert not msg.cached and session.messages.received == 1


def test_subscribe_refused_topic(session: ModemSession) -> None:
    recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    with pytest.raises(CloudRejected, match="refused the subscription"):
        recipes.subscribe(session, f"/{PK}/other/user/get")


def test_cache_mode_fetch_cached(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    emu = cloud[0]
    recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    recipes.subscribe(session, GET_TOPIC)
    recipes.set_receive_mode(session, cached=True)
    mark = session.mark()
    emu.publish(GET_TOPIC, b"kept in slot 0")
    slot = session.wait_for_urc("+MSUB", timeout=5, since=mark)
    assert slot.args == ("0",) and slot.payload is None
    assert len(session.messages) == 0  # nothing automatic in cache mode
    messages = session.fetch_cached()
    assert [(m.topic, m.payload, m.cached) for m in messages] == [
        (GET_TOPIC, b"kept in slot 0", True)
    ]
    with pytest.raises(UsageError):
        recipes.set_receive_mode(session, cached=1)  # type: ignore[arg-type]


def test_qos1_publish_returns_after_its_puback(session: ModemSession) -> None:
    recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    result = recipes.publish(session, UPDATE_TOPIC, '{"temp":21.5}', qos=1)
    assert result.response.urc is not None and result.response.urc.name == "PUBACK"
    assert result.ack_latency is not None and result.ack_latency >= result.response.latency
    assert result.size == 13
    qos0 = recipes.publish(session, UPDATE_TOPIC, "fire and forget")
    assert qos0.ack_latency is None
    ex = session.publish_ex(UPDATE_TOPIC, b"\x00\x01binary\xff", qos=1)
    assert ex.urc is not None and ex.urc.name == "PUBACK" and ex.prompt_mono is not None


def test_second_qos1_publish_waits_for_the_first_puback(session: ModemSession) -> None:
    recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    session.port.module.delay_next_urc(0.3)  # type: ignore[attr-defined]  # hold PUBACK
    first: dict[str, Any] = {}
    mark = session.mark()
    worker = threading.Thread(
        target=lambda: first.setdefault("r", session.publish(UPDATE_TOPIC, "one", qos=1))
    )
    worker.start()
    ok = session.wait_for_event(lambda e: isinstance(e, FinalResult), since=mark)
    assert ok.ok  # the first MPUB was accepted; its PUBACK is pending
    before = len(session.transcript)
    with pytest.raises(UsageError, match="in flight"):
        session.publish(UPDATE_TOPIC, "two", qos=1, block=False)
    with pytest.raises(UsageError, match="PUBACK"):
        session.command(f'AT+MPUB="{UPDATE_TOPIC}",1,0,"raw"')
    assert len(session.transcript) == before  # refused before anything was written
    second = session.publish(UPDATE_TOPIC, "two", qos=1)  # waits for the first PUBACK
    worker.join(5)
    one = first["r"]
    assert one.urc_mono is not None and second.sent_mono > one.urc_mono
    assert second.urc is not None and second.urc.name == "PUBACK"


def test_drop_link_closes_a_waiting_call_and_calls_back(session: ModemSession) -> None:
    recipes.direct_mqtt(session, product_key=PK, device_name=DN, device_secret=DS)
    closed = threading.Event()
    got: list[Urc] = []
    session.on_urc("CLOSED", lambda urc: (got.append(urc), closed.set()))
    mark = session.mark()
    failure: dict[str, BaseException] = {}

    def wait_for_a_message() -> None:
        try:
            session.wait_for_urc("+MSUB", timeout=5, since=mark, fail=("CLOSED",))
        except BaseException as exc:
            failure["exc"] = exc

    worker = threading.Thread(target=wait_for_a_message)
    worker.start()
    assert session.port.module.drop_link()  # type: ignore[attr-defined]
    worker.join(5)
    assert isinstance(failure.get("exc"), ConnectionClosed)
    assert "MIPSTART" in str(failure["exc"])  # says how to recover
    assert closed.wait(5) and got[0].name == "CLOSED"
    with pytest.raises(CommandError, match="reconnect"):
        recipes.publish(session, UPDATE_TOPIC, "after the drop")


def test_qos1_waiting_for_puback_sees_closed(scripted) -> None:  # type: ignore[no-untyped-def]
    def script(line: str) -> bytes | None:
        ok = line.encode() + b"\r\n\r\nOK\r\n"
        return ok + b"\r\nCLOSED\r\n" if line.startswith("AT+MPUB") else ok

    with ModemSession(scripted(script).url) as s, pytest.raises(ConnectionClosed, match="CLOSED"):
        s.publish("a/b", "x", qos=1, timeout=2)


def _open_link(session: ModemSession) -> None:
    from airlab.aliyun import direct_mqtt_credentials
    from airlab.at.commands import mconfig, mipstart

    c = direct_mqtt_credentials(PK, DN, DS)
    session.command(mconfig(c.client_id, c.username, c.password))
    session.command_and_wait(mipstart(c.host, c.port, tls=True), urc="CONNECT OK")


def test_late_mconnect_reconnects_by_default(sim_url: str) -> None:
    with ModemSession(sim_url, mconnect_window=0.0) as s:  # every MCONNECT is "late"
        with pytest.warns(LateMconnectWarning, match="reopening the link"):
            login = recipes.direct_mqtt(s, product_key=PK, device_name=DN, device_secret=DS)
        assert login.step("MCONNECT").urc == "CONNACK OK"
        cmds = _commands(s)
        assert [c.split("=")[0] for c in cmds] == [
            "AT+MCONFIG",
            "AT+SSLMIPSTART",
            "AT+MIPCLOSE",
            "AT+SSLMIPSTART",
            "AT+MCONNECT",
        ]
        assert s.mqtt_status() == 1


def test_mconnect_after_closed_raise_policy(sim_url: str) -> None:
    with ModemSession(sim_url, late_mconnect="raise") as s:
        _open_link(s)
        mark = s.mark()
        s.port.module.drop_link()  # type: ignore[attr-defined]  # the server's idle drop
        s.wait_for_urc("CLOSED", timeout=5, since=mark)
        before = len(s.transcript)
        with pytest.raises(ConnectionClosed, match="already closed"):
            s.command_and_wait("AT+MCONNECT=1,120", urc="CONNACK OK")
        assert len(s.transcript) == before  # nothing sent


def test_mconnect_too_late_raise_policy(sim_url: str) -> None:
    with ModemSession(sim_url, late_mconnect="raise", mconnect_window=0.0) as s:
        _open_link(s)
        with pytest.raises(UsageError, match="after CONNECT OK") as info:
            s.command_and_wait("AT+MCONNECT=1,120", urc="CONNACK OK")
        assert info.value.field == "mconnect_window"


def test_mconnect_after_closed_warn_policy(sim_url: str) -> None:
    with ModemSession(sim_url, late_mconnect="warn") as s:
        _open_link(s)
        mark = s.mark()
        s.port.module.drop_link()  # type: ignore[attr-defined]
        s.wait_for_urc("CLOSED", timeout=5, since=mark)
        with (
            pytest.warns(LateMconnectWarning, match="CLOSED"),
            pytest.raises(CommandError, match="MIPSTART") as info,
        ):
            s.command_and_wait("AT+MCONNECT=1,120", urc="CONNACK OK")
        assert info.value.code == 767


def test_bench_overrides_reach_the_emulator_by_address(
    session: ModemSession, cloud: tuple[Any, Path]
) -> None:
    """On the bench a real module reaches the emulator by IP: same recipes, other host."""
    emu = cloud[0]
    http = emu.endpoints["http"]  # http://127.0.0.1:P
    mqtts_host, mqtts_port = emu.endpoints["mqtts"].rsplit(":", 1)
    emu.reset_registration(PK, DN)
    recipes.attach(session)  # HTTP needs the bearer
    reg = recipes.register_device(
        session, product_key=PK, device_name=DN, product_secret=PS, auth_base=http
    )
    assert reg.device_secret == DS
    assert reg.step("HTTPPARA URL").command == f'AT+HTTPPARA="URL",{http}/auth/register/device'
    login = recipes.http_auth_then_mqtt(
        session,
        product_key=PK,
        device_name=DN,
        device_secret=DS,
        auth_base=http,
        host=mqtts_host,
        port=int(mqtts_port),
    )
    assert (login.host, login.port) == (mqtts_host, int(mqtts_port))
    assert login.step("MCONNECT").urc == "CONNACK OK"
    with pytest.raises(UsageError, match="auth_base"):
        recipes.register_device(
            session, product_key=PK, device_name=DN, product_secret=PS, auth_base="10.0.0.1"
        )
