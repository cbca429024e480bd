"""open_lesson: the classroom end to end, port strings, environment variables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airlab.cloud import CloudEmulator
from airlab.cloud.discovery import ENDPOINTS_ENV
from airlab.errors import UsageError
from airlab.lesson import (
    IDENTITY_ENV,
    Identity,
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
    with CloudEmulator(fixture="tutorial") as emu:
        yield emu, emu.write_endpoints(tmp_path / "ep.json")


def test_classroom_end_to_end() -> None:
    with open_lesson() as lab:
        assert lab.setting == "classroom" and lab.cloud is not None
        assert lab.profile == "instant" and lab.seed == 0
        assert lab.port_url.startswith("airsim://?profile=instant&seed=0&cloud=")
        assert lab.identity == Identity.tutorial() and lab.mqtt_target() == {}
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
        assert lab.port_url.startswith("airsim://?profile=instant&seed=4&echo=1&cloud=")
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
        with pytest.warns(UserWarning, match="cannot reach"):
            lab = open_lesson(modem.url, cloud=str(path))
        with lab:
            assert lab.setting == "bench" and lab.identity.source == "tutorial"
            port = int(emu.endpoints["mqtts"].rsplit(":", 1)[1])
            assert lab.mqtt_target() == {"host": "127.0.0.1", "port": port}
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
        assert '"code":5001' in reply.body and reply.kept.endswith("8684880765061")
        assert "8684880765061" in lab.cloud.explain_last_refusal()
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
