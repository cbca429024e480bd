"""open_lesson: the classroom end to end, port strings, environment variables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import airlab
from airlab.cloud import CloudEmulator
from airlab.cloud.discovery import ENDPOINTS_ENV
from airlab.errors import UsageError
from airlab.lesson import (
    IDENTITY_ENV,
    LESSON_IMEI_PREFIX,
    Identity,
    new_device_name,
    open_lesson,
    parse_port,
    post_form_declaring,
    publish_in_background,
)
from airlab.session import recipes

ENV = ("AIRLAB_PORT", "AIRLAB_CLOUD", "AIRLAB_PROFILE", "AIRLAB_SEED", *IDENTITY_ENV.values())


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENDPOINTS_ENV, str(tmp_path / "no-service.json"))  # none running


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[CloudEmulator, Path]]:
    with CloudEmulator(db=tmp_path / "lab.db", fixture="tutorial") as emu:
        yield emu, emu.write_endpoints(tmp_path / "ep.json")


def test_classroom_end_to_end() -> None:
    with open_lesson() as lab:
        assert lab.setting == "classroom" and lab.cloud is not None
        assert lab.profile == "instant" and lab.seed == 0
        assert lab.port_url.startswith(
            f"airsim://?profile=instant&seed=0&imei={lab.identity.device_name}&cloud="
        )
        assert lab.identity.source == "lesson" and lab.mqtt_target() == {}
        assert lab.auth_target() == {}
        assert lab.tutorial == Identity.tutorial()
        assert str(lab).startswith("classroom: simulated Air780EP (profile instant, seed 0)")
        recipes.attach(lab.session)
        login = recipes.http_auth_then_mqtt(lab.session, **lab.identity.device())
        assert login.step("MCONNECT").urc == "CONNACK OK"
        names = [d.device_name for d in lab.cloud.online_devices()]
        assert names == [lab.identity.device_name]
        recipes.disconnect(lab.session)
    assert not lab.session.is_open
    with open_lesson() as again:  # the same in-process cloud, its endpoints file reused
        assert again.endpoints_file == lab.endpoints_file


def test_classroom_uses_a_running_service(served: tuple[CloudEmulator, Path]) -> None:
    emu, path = served
    with open_lesson(cloud=str(path)) as lab:
        assert lab.endpoints_file == str(path)
        recipes.attach(lab.session)
        recipes.direct_mqtt(lab.session, **lab.identity.device())
        assert [d.device_name for d in emu.online_devices()] == [lab.identity.device_name]
        assert "running cloud emulator" in lab.describe()


def test_profile_and_seed_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRLAB_PROFILE", "tutorial")
    monkeypatch.setenv("AIRLAB_SEED", "7")
    with open_lesson() as lab:
        assert (lab.profile, lab.seed) == ("tutorial", 7)
        assert "profile=tutorial&seed=7" in lab.port_url
    with open_lesson(profile="instant", seed=1) as lab:  # arguments win
        assert (lab.profile, lab.seed) == ("instant", 1)


def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="profile"):
        open_lesson(profile="warp")
    with pytest.raises(UsageError, match="simulated module"):
        open_lesson(cloud="real")
    monkeypatch.setenv("AIRLAB_SEED", "x")
    with pytest.raises(UsageError, match="AIRLAB_SEED"):
        open_lesson()


def test_parse_port() -> None:
    spec = parse_port(" airsim://lab?profile=tutorial&seed=3 ")
    assert spec.simulated and spec.options == {"profile": "tutorial", "seed": "3"}
    for real in ("/dev/ttyUSB0", "COM5", "socket://192.168.1.9:7000", "rfc2217://h:1"):
        assert not parse_port(real).simulated
    with pytest.raises(UsageError):
        parse_port("  ")


def test_an_airsim_port_gets_the_cloud_added() -> None:
    with open_lesson("airsim://?profile=instant&seed=4&echo=1") as lab:
        assert lab.setting == "classroom" and lab.seed == 4
        assert lab.port_url.startswith("airsim://?profile=instant&seed=4&echo=1&imei=")
        assert "&cloud=" in lab.port_url
        assert lab.session.mqtt_status() == 0


def test_port_from_env_selects_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRLAB_PORT", "airsim://?profile=instant")  # stands in for a real port
    monkeypatch.setenv("AIRLAB_CLOUD", "real")
    with pytest.raises(UsageError, match="simulated module"):
        open_lesson()


def test_field_reads_the_identity_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.session.helpers import ScriptedModem, echo_ok

    modem = ScriptedModem(lambda line: echo_ok(line))
    try:
        with pytest.raises(UsageError, match="AIRLAB_PRODUCT_KEY"):
            open_lesson(modem.url, cloud="real")
        monkeypatch.setenv("AIRLAB_PRODUCT_KEY", "a1Mine")
        monkeypatch.setenv("AIRLAB_DEVICE_NAME", "dev-1")
        monkeypatch.setenv("AIRLAB_DEVICE_SECRET", "s3cret")
        with open_lesson(modem.url, cloud="real") as lab:
            assert lab.setting == "field" and lab.cloud is None
            assert lab.identity.source == "environment" and lab.identity.region == "cn-shanghai"
            assert lab.identity.device()["device_secret"] == "s3cret"
            assert "s3cret" not in repr(lab.identity)
            assert lab.session.command("AT").ok
            assert "real Alibaba Cloud" in lab.describe() and lab.mqtt_target() == {}
    finally:
        modem.close()


def test_bench_uses_the_service_by_ip(served: tuple[CloudEmulator, Path]) -> None:
    from tests.session.helpers import ScriptedModem, echo_ok

    emu, path = served
    modem = ScriptedModem(lambda line: echo_ok(line))
    try:
        lab = open_lesson(modem.url, cloud=str(path))  # a program on this machine: no warning
        with lab:
            assert lab.setting == "bench" and lab.identity.source == "lesson"
            assert emu.registry.get_device("k1hipglLdjU", lab.identity.device_name) is not None
            port = int(emu.endpoints["mqtt"].rsplit(":", 1)[1])  # TLS or plain: one port
            assert lab.mqtt_target() == {"host": "127.0.0.1", "port": port}
            assert lab.mqtt_target(tls=False) == lab.mqtt_target(tls=True)
            assert lab.auth_target() == {"auth_base": emu.endpoints["https"].rstrip("/")}
    finally:
        modem.close()


def test_identity_helpers() -> None:
    ident = Identity.tutorial()
    assert ident.system_topic("thing/event/property/post").startswith("/sys/k1hipglLdjU/")
    with pytest.raises(UsageError, match="AIRLAB_DEVICE_SECRET"):
        Identity("pk", "dn").device()


def test_reopen_and_lesson_helpers() -> None:
    import airlab

    with open_lesson() as lab:
        first = lab.session
        session = lab.reopen(late_mconnect="warn")
        assert session is lab.session and not first.is_open and session.late_mconnect == "warn"
        recipes.attach(session)
        request = airlab.http_auth_request(**lab.identity.device())
        reply = post_form_declaring(session, request, 110)
        assert reply.declared == 110 and reply.actual == 112
        assert '"code":5001' in reply.body and reply.kept.endswith(lab.identity.device_name[:13])
        assert lab.identity.device_name[:13] in lab.cloud.explain_last_refusal(lab.identity.ref)
        with pytest.raises(UsageError):
            post_form_declaring(session, request, 0)
        recipes.direct_mqtt(session, **lab.identity.device())
        topic = lab.identity.topic("user/update")
        session.port.module.delay_next_urc(0.3)
        pending = publish_in_background(session, topic, "one")
        with pytest.raises(UsageError, match="PUBACK"):
            session.command(f'AT+MPUB="{topic}",1,0,"two"')
        second = session.publish(topic, "two", qos=1)
        assert pending.result(5).urc is not None and second.urc is not None


def test_each_run_has_its_own_device() -> None:
    """Two lessons open at once (a re-run, or nbval beside a running lab) never share a
    login: neither is kicked, and each module's IMEI is its own DeviceName."""
    with open_lesson() as first, open_lesson() as second:
        a, b = first.identity, second.identity
        assert a.device_name != b.device_name and a.product_key == b.product_key
        assert len(a.device_name) == 15 and a.device_name.startswith(LESSON_IMEI_PREFIX)
        assert first.session.command("AT+CGSN").lines == (a.device_name,)
        for lab in (first, second):
            recipes.attach(lab.session)
            recipes.direct_mqtt(lab.session, **lab.identity.device())
        assert first.session.mqtt_status() == 1 and second.session.mqtt_status() == 1
        online = {d.device_name for d in first.cloud.online_devices()}
        assert {a.device_name, b.device_name} <= online
        # the body lengths the tutorial counts stay the same with a lesson device
        assert airlab.http_auth_request(**a.device()).length == 112
        for lab in (first, second):
            recipes.disconnect(lab.session)


def test_new_device_is_fresh_and_registers() -> None:
    with open_lesson() as lab:
        other = lab.new_device()
        assert other.device_name != lab.identity.device_name
        assert other.product_secret == Identity.tutorial().product_secret
        recipes.attach(lab.session)
        reg = recipes.register_device(
            lab.session,
            product_key=other.product_key,
            device_name=other.device_name,
            product_secret=other.product_secret,
        )
        assert reg.device_secret == other.device_secret
        done = lab.new_device(activated=True)
        assert lab.cloud.registry.get_device(done.product_key, done.device_name).activated


def test_own_device_off_uses_the_tutorial_device() -> None:
    with open_lesson(own_device=False) as lab:
        assert lab.identity == Identity.tutorial()
        assert "the tutorial's" in lab.describe()


def test_new_device_name_is_an_imei() -> None:
    for _ in range(50):
        name = new_device_name()
        digits = [int(c) for c in name]
        total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
        assert total % 10 == 0  # Luhn


def test_a_service_without_a_registry_file_lends_the_tutorial_device(tmp_path: Path) -> None:
    with CloudEmulator(fixture="tutorial") as emu:  # in memory: no device can be added
        path = emu.write_endpoints(tmp_path / "ep.json")
        with pytest.warns(UserWarning, match="--db"), open_lesson(cloud=str(path)) as lab:
            assert lab.identity == Identity.tutorial()


def test_only_a_real_port_is_warned_about_a_local_emulator() -> None:
    from airlab.lesson import _is_local_peer

    master, slave = os.openpty()
    try:
        assert _is_local_peer(os.ttyname(slave))  # airlab sim serve --pty
    finally:
        os.close(master)
        os.close(slave)
    assert _is_local_peer("socket://127.0.0.1:7000")
    assert not _is_local_peer("/dev/ttyUSB0") and not _is_local_peer("COM5")
    assert not _is_local_peer("socket://192.168.1.20:7000")
