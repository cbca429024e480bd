"""StepThrough for every method, driven as a student would (Next step / Run all) against
the simulator and the in-process cloud emulator."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from airlab.lesson import Identity, new_device_name
from airlab.session import ModemSession
from airlab.widgets import StepThrough, recipes_for
from airlab.widgets.steps import METHODS

PK = "k1hipglLdjU"
PS = "8LQwOYSZMwp3DFBd"


def _fresh(emu: Any, *, added: bool = True) -> Identity:
    name = new_device_name()
    secret = emu.add_device(PK, name) if added else None
    return Identity(PK, name, secret, PS, "cn-shanghai", "lesson")


def _run_all(session: ModemSession, identity: Identity, method: str, **kw: Any) -> StepThrough:
    flow = StepThrough(session, recipes_for(method, identity, **kw), identity)
    try:
        assert flow.run_all().result(60) is True, [m for m in flow.status if m.startswith("!!")]
    finally:
        flow.close()
    return flow


def _shown(flow: StepThrough) -> str:
    return "\n".join(
        [*flow.status, *flow.commands, *flow.wire, *flow.meaning, *(r.value for r in flow.results)]
    )


def _connected(flow: StepThrough, emu: Any, identity: Identity) -> None:
    assert flow.done
    assert flow.status[-1] == "AT+MQTTSTATU -> OK (+MQTTSTATU :1)"
    assert flow.meaning[-1] == "1 = connected: the method is done"
    assert identity.device_name in [d.device_name for d in emu.online_devices()]
    assert all(lat is not None for lat in flow.latency)


@pytest.mark.parametrize("sign_method", ["hmacmd5", "hmacsha1", "hmacsha256"])
@pytest.mark.parametrize("timestamp", [None, "1700000000000"])
def test_direct_every_sign_method(
    session: ModemSession, cloud: tuple[Any, Path], sign_method: str, timestamp: str | None
) -> None:
    emu = cloud[0]
    ident = _fresh(emu)
    flow = _run_all(session, ident, "direct", sign_method=sign_method, timestamp=timestamp)
    _connected(flow, emu, ident)
    config = flow.commands[[s.name for s in flow.steps].index("MCONFIG")]
    assert f"signmethod={sign_method}" in config
    assert ("timestamp=1700000000000" in config) == (timestamp is not None)
    assert '","' + "*" * (32 if sign_method == "hmacmd5" else 40 if sign_method == "hmacsha1"
                          else 64) + '"' in config  # fmt: skip
    assert ident.device_secret not in _shown(flow)  # type: ignore[operator]


def test_http_auth_takes_the_token_from_httpread(
    session: ModemSession, cloud: tuple[Any, Path]
) -> None:
    emu = cloud[0]
    ident = _fresh(emu)
    steps = recipes_for("http-auth", ident)
    names = [s.name for s in steps]
    assert names[5:12] == [
        "HTTPINIT", "HTTPPARA URL", "HTTPPARA USER_DEFINED", "HTTPDATA", "HTTPACTION",
        "HTTPREAD", "HTTPTERM",
    ]  # fmt: skip
    assert names[12:] == ["MCONFIG", "SSLMIPSTART", "MCONNECT", "MQTTSTATU"]
    flow = StepThrough(session, steps, ident)
    try:
        # MCONFIG before HTTPREAD: the student is told which step gives its values
        assert flow.run_step(names.index("MCONFIG")).result(10) is None
        assert "run the step HTTPREAD first" in flow.status[names.index("MCONFIG")]
        flow.next_index = 0
        assert flow.run_all().result(60) is True
    finally:
        flow.close()
    _connected(flow, emu, ident)
    token = flow.state["iot_token"]
    iot_id = flow.state["iot_id"]
    config = flow.commands[names.index("MCONFIG")]
    assert config.startswith(f'AT+MCONFIG="{ident.device_name}","{iot_id}","')
    assert token not in _shown(flow) and "*" * len(token) in config
    assert flow.meaning[names.index("HTTPACTION")].startswith("+HTTPACTION: 1,200,")
    data_wire = flow.wire[names.index("HTTPDATA")]
    assert "\\r\\n" in data_wire and "DOWNLOAD" in data_wire and "sign=****" in data_wire
    assert "Content-type: application/x-www-form-urlencoded" in flow.commands[7]


def test_http_auth_refused_says_why(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    emu = cloud[0]
    ident = _fresh(emu)
    wrong = Identity(PK, ident.device_name, "0" * 32, PS, "cn-shanghai", "lesson")
    flow = StepThrough(session, recipes_for("http-auth", wrong), wrong)
    try:
        assert flow.run_all().result(60) is False
    finally:
        flow.close()
    i = [s.name for s in flow.steps].index("HTTPREAD")
    assert flow.ok[i] is False and flow.next_index == i + 1
    assert "401" in flow.meaning[i]
    assert "color:#c00" in flow.results[i].value


def test_https_registration_then_login(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    emu = cloud[0]
    ident = _fresh(emu)
    secret = ident.device_secret
    unknown = Identity(PK, ident.device_name, None, PS, "cn-shanghai", "lesson")
    flow = _run_all(session, unknown, "register")
    _connected(flow, emu, ident)
    assert flow.state["device_secret"] == secret
    assert secret not in _shown(flow) and PS not in _shown(flow)  # type: ignore[operator]
    assert [s.name for s in flow.steps][-4:] == [
        "MCONFIG (login)", "SSLMIPSTART (login)", "MCONNECT (login)", "MQTTSTATU (login)",
    ]  # fmt: skip


def test_mqtt_register_then_login(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    emu = cloud[0]
    ident = _fresh(emu)
    unknown = Identity(PK, ident.device_name, None, PS, "cn-shanghai", "lesson")
    flow = _run_all(session, unknown, "mqtt-register")
    _connected(flow, emu, ident)
    names = [s.name for s in flow.steps]
    push = names.index("+MSUB push")
    assert names[push - 3 : push + 3] == [
        "MCONFIG", "SSLMIPSTART", "MCONNECT", "+MSUB push", "MDISCONNECT", "MIPCLOSE",
    ]  # fmt: skip
    assert flow.status[push].startswith('<- +MSUB: "/ext/register",')
    assert "never subscribed" in flow.meaning[push]
    assert flow.state["device_secret"] == ident.device_secret
    assert ident.device_secret not in _shown(flow)  # type: ignore[operator]
    assert "authType=register" in flow.commands[names.index("MCONFIG")]


def test_mqtt_regnwl_then_connwl(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    emu = cloud[0]
    ident = _fresh(emu, added=False)
    flow = _run_all(session, ident, "mqtt-regnwl")
    _connected(flow, emu, ident)
    grant = flow.state["grant"]
    names = [s.name for s in flow.steps]
    config = flow.commands[names.index("MCONFIG (login)")]
    assert config.startswith(f'AT+MCONFIG="{grant.client_id}|securemode=-2,authType=connwl|"')
    assert grant.device_token not in _shown(flow)


def test_mqtt_register_waits_for_the_clouds_close(
    session: ModemSession, cloud: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import airlab.cloud.auth

    monkeypatch.setattr(airlab.cloud.auth, "DYNREG_CLOSE_AFTER", 0.3)  # 15 s in the emulator
    emu = cloud[0]
    ident = _fresh(emu)
    flow = _run_all(session, ident, "mqtt-register", wait_closed=True)
    _connected(flow, emu, ident)
    i = [s.name for s in flow.steps].index("CLOSED")
    assert flow.status[i] == "<- CLOSED"
    assert flow.latency[i][0] >= flow.latency[i - 1][0]  # type: ignore[index]


def test_one_step_at_a_time_with_the_buttons(
    session: ModemSession, cloud: tuple[Any, Path], widget_threads: None
) -> None:
    emu = cloud[0]
    ident = _fresh(emu, added=False)
    flow = StepThrough(session, recipes_for("mqtt-regnwl", ident), ident)
    try:
        for _ in flow.steps:
            flow.next_button.click()
        assert flow.wait_idle(60)
        assert flow.done
        assert "bytes on the wire" in flow.results[0].value
    finally:
        flow.close()
    assert "airlab-steps" not in [t.name for t in threading.enumerate()]


def test_every_method_is_listed() -> None:
    assert set(METHODS) == {"http-auth", "direct", "register", "mqtt-register", "mqtt-regnwl"}
    for method in METHODS:
        assert recipes_for(method, Identity.tutorial())[-1].name.startswith("MQTTSTATU")
