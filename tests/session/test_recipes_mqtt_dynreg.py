"""MQTT dynamic registration recipes (register, regnwl -> connwl) against the simulator
and the in-process cloud emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import airlab.cloud.auth
from airlab.errors import CloudRejected, UsageError
from airlab.lesson import new_device_name
from airlab.session import ModemSession
from airlab.session.recipes import (
    MqttRegistration,
    attach,
    connwl_login,
    direct_mqtt,
    register_device_mqtt,
    set_receive_mode,
)
from tests.session.helpers import PK, PS


def _fresh(cloud: tuple[Any, Path]) -> tuple[Any, str, str]:
    emu = cloud[0]
    name = new_device_name()
    return emu, name, emu.add_device(PK, name)


def _activated(emu: Any, name: str) -> None:
    """The emulator marks a device activated before it writes CONNACK: once the module
    has printed CONNACK OK, the registry says so."""
    assert emu.registry.get_device(PK, name).activated, f"{name} not activated at CONNACK"


def _no_secret(reg: MqttRegistration, *secrets: str) -> None:
    text = repr(reg) + repr(reg.timings())
    for secret in secrets:
        assert secret not in text


def test_register_gives_the_device_secret_then_direct_login(
    session: ModemSession, cloud: tuple[Any, Path]
) -> None:
    emu, name, secret = _fresh(cloud)
    attach(session)
    reg = register_device_mqtt(session, PK, name, PS, random="123456")
    assert reg.device_secret == secret and reg.grant is None
    assert (reg.auth_type, reg.push_topic, reg.closed_by) == ("register", "/ext/register", "module")
    cid = f"{name}|securemode=2,authType=register,random=123456,signmethod=hmacmd5|"
    assert reg.client_id == cid
    names = [s.name for s in reg.steps]
    assert names == ["MCONFIG", "SSLMIPSTART", "MCONNECT", "+MSUB", "MDISCONNECT", "MIPCLOSE"]
    push = reg.step("+MSUB")
    assert push.urc is not None and push.urc.startswith('+MSUB: "/ext/register",')
    assert '"deviceSecret":"' + "*" * len(secret) + '"' in push.urc
    assert reg.push_latency is not None and reg.connack_latency is not None
    assert reg.push_latency >= reg.connack_latency
    _no_secret(reg, secret)
    login = direct_mqtt(session, product_key=PK, device_name=name, device_secret=secret)
    assert login.step("MCONNECT").urc == "CONNACK OK"
    _activated(emu, name)


def test_regnwl_then_connwl_login(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    emu = cloud[0]
    name = new_device_name()  # not added: 免预注册 adds it
    assert emu.registry.get_device(PK, name) is None
    attach(session)
    reg = register_device_mqtt(session, PK, name, PS, auth_type="regnwl")
    assert reg.grant is not None and reg.device_secret is None
    assert reg.grant.client_id.endswith("000100") and reg.grant.device_name == name
    assert reg.push_topic == "/ext/regnwl"
    _no_secret(reg, reg.grant.device_token)
    login = connwl_login(session, reg)
    assert login.method == "connwl"
    assert login.client_id == f"{reg.grant.client_id}|securemode=-2,authType=connwl|"
    assert login.step("MCONNECT").urc == "CONNACK OK"
    assert [d.device_name for d in emu.online_devices()] == [name]
    _activated(emu, name)


def test_cloud_closes_the_link_after_the_push(
    session: ModemSession, cloud: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the emulator hangs up 15 s after CONNACK; a shorter delay keeps the test fast
    monkeypatch.setattr(airlab.cloud.auth, "DYNREG_CLOSE_AFTER", 0.3)
    _emu, name, secret = _fresh(cloud)
    attach(session)
    reg = register_device_mqtt(session, PK, name, PS, wait_closed=10)
    assert reg.closed_by == "cloud" and reg.device_secret == secret
    assert [s.name for s in reg.steps][-2:] == ["+MSUB", "CLOSED"]
    assert reg.step("CLOSED").latency >= reg.push_latency  # type: ignore[operator]
    # the link is gone: a new login opens a fresh one
    assert direct_mqtt(session, product_key=PK, device_name=name, device_secret=secret).steps


def test_push_in_cached_receive_mode(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    _emu, name, secret = _fresh(cloud)
    attach(session)
    set_receive_mode(session, cached=True)
    reg = register_device_mqtt(session, PK, name, PS)
    assert reg.device_secret == secret
    assert reg.step("+MSUB").urc == "+MSUB: 0"


def test_register_twice_is_refused_without_leaking(
    session: ModemSession, cloud: tuple[Any, Path]
) -> None:
    emu, name, secret = _fresh(cloud)
    attach(session)
    register_device_mqtt(session, PK, name, PS)
    direct_mqtt(session, product_key=PK, device_name=name, device_secret=secret)  # activates it
    _activated(emu, name)
    with pytest.raises(CloudRejected) as info:
        register_device_mqtt(session, PK, name, PS)
    assert "not yet activated" in str(info.value)
    assert secret not in str(info.value) and PS not in str(info.value)


def test_register_needs_tls(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    _emu, name, _secret = _fresh(cloud)
    attach(session)
    with pytest.raises(CloudRejected, match="TLS"):
        register_device_mqtt(session, PK, name, PS, tls=False)


def test_register_an_unknown_device_is_refused(session: ModemSession) -> None:
    attach(session)
    with pytest.raises(CloudRejected, match="added beforehand"):
        register_device_mqtt(session, PK, new_device_name(), PS)


def test_connwl_with_a_wrong_token_is_refused(
    session: ModemSession, cloud: tuple[Any, Path]
) -> None:
    from dataclasses import replace

    attach(session)
    reg = register_device_mqtt(session, PK, new_device_name(), PS, auth_type="regnwl")
    assert reg.grant is not None
    wrong = replace(reg.grant, device_token=reg.grant.device_token[:-1] + "x")
    with pytest.raises(CloudRejected, match="exactly as received") as info:
        connwl_login(session, wrong)
    assert reg.grant.device_token not in str(info.value)


def test_connwl_needs_a_regnwl_grant(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    _emu, name, _secret = _fresh(cloud)
    attach(session)
    reg = register_device_mqtt(session, PK, name, PS)
    with pytest.raises(UsageError, match="direct_mqtt"):
        connwl_login(session, reg)


def test_arguments_checked_before_sending(session: ModemSession) -> None:
    mark = session.mark()
    with pytest.raises(UsageError):
        register_device_mqtt(session, PK, "dn", PS, auth_type="connwl")
    with pytest.raises(UsageError):
        register_device_mqtt(session, PK, "dn", "")
    assert session.events_since(mark) == []
