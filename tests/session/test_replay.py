"""airlab.session.replay: the tutorial's captures replay against the simulator + cloud
emulator without divergence (as the tutorial's device, and as another device from a
redacted copy); each broken capture diverges where its README says, and the diagnosis
names its warning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airlab.at.formats import read_capture
from airlab.at.redact import redact_transcript
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET, TUTORIAL_PRODUCT_SECRET
from airlab.lesson import Identity, new_device_name
from airlab.session.replay import Diagnosis, ReplayReport, diagnose, replay, replay_session

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "data" / "captures"
BROKEN = ROOT / "data" / "broken_captures"
PK, DN = "k1hipglLdjU", "868488076506128"
TOKEN = "137eb0759ca248b79383a60c0b0e0f80"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    from airlab.cloud import CloudEmulator

    with CloudEmulator(fixture="tutorial") as cloud:
        yield cloud, cloud.write_endpoints(tmp_path_factory.mktemp("cloud") / "endpoints.json")


def run(emu: tuple[object, Path], capture: object, **kw: object) -> ReplayReport:
    cloud, endpoints = emu
    session = replay_session(cloud, endpoints=endpoints)
    try:
        return replay(capture, session, **kw)  # type: ignore[arg-type]
    finally:
        session.close()


def check(emu: tuple[object, Path], name: str, **kw: object) -> Diagnosis:
    cloud, endpoints = emu
    session = replay_session(cloud, endpoints=endpoints)
    try:
        return diagnose(BROKEN / name, session, **kw)
    finally:
        session.close()


def activated(emu: tuple[object, Path], yes: bool) -> None:
    cloud = emu[0]
    if yes:
        cloud.registry.mark_activated((PK, DN))  # type: ignore[attr-defined]
    else:
        cloud.reset_registration(PK, DN)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(p.name for p in SEEDS.glob("seed_*.log")))
def test_tutorial_capture_replays(emu: tuple[object, Path], name: str) -> None:
    if name == "seed_dynamic_register.log":
        activated(emu, False)  # the tutorial registered after a ResetThing
    # timing "none": the 3.1 s CONNECT OK -> MCONNECT gap of the direct capture is within
    # the server's window either way (test_late_mconnect waits one out for real)
    report = run(emu, SEEDS / name, timing="none")
    assert report.ok, report.summary()
    assert report.first is None and len(report.steps) >= 3
    if name == "seed_publish_subscribe.log":  # starts on an open session
        assert any("logged in with direct MQTT first" in n for n in report.notes)


@pytest.mark.parametrize("name", sorted(p.name for p in SEEDS.glob("seed_*.log")))
def test_redacted_capture_replays_as_another_device(emu: tuple[object, Path], name: str) -> None:
    cloud = emu[0]
    dn = new_device_name()  # IMEI-like, as a lesson's own device
    secret = cloud.add_device(PK, dn)  # type: ignore[attr-defined]
    me = Identity(PK, dn, secret, TUTORIAL_PRODUCT_SECRET, source="lesson")
    redacted = redact_transcript(
        read_capture(SEEDS / name), [TUTORIAL_DEVICE_SECRET, TUTORIAL_PRODUCT_SECRET, TOKEN]
    )
    report = run(emu, redacted, identity=me, timing="none")
    assert report.ok, report.summary()
    assert any("signatures computed again" in n for n in report.notes)
    assert not any(TOKEN in s.sent or "0f655b12" in s.sent for s in report.steps)


def test_httpdata_length(emu: tuple[object, Path]) -> None:
    d = check(emu, "log_a.log")
    first = d.first
    assert first is not None and first.step.command == ""  # the body typed after DOWNLOAD
    assert first.expected is None and first.actual == "unknown: 28"
    assert d.warnings_at()[0].id == "httpdata-length"
    lines = {dv.step.command for dv in d.report.divergences}
    assert {"+HTTPACTION", "+HTTPREAD", "+MCONNECT"} <= lines


def test_typed_not_copied(emu: tuple[object, Path]) -> None:
    d = check(emu, "log_b.log")
    assert d.first is not None and d.first.step.command == "+SSLMIPSTART"
    assert d.first.actual == "final: ERROR"
    assert d.warnings_at()[0].id == "typed-not-copied"


def test_content_type_space_does_not_diverge(emu: tuple[object, Path]) -> None:
    # honest: the emulator reads the header with or without the space
    d = check(emu, "log_c.log", timing="none")
    assert d.report.ok and "content-type-space" in d.warning_ids


def test_late_mconnect(emu: tuple[object, Path]) -> None:
    # the server's 5 s window is waited out for real (the capture waited 6.4 s)
    d = check(emu, "log_d.log")
    first = d.first
    assert first is not None and first.step.command == "+SSLMIPSTART"
    assert first.expected is None and first.actual == "urc: CLOSED"
    second = d.report.divergences[1]
    assert second.step.command == "+MCONNECT" and second.actual == "final: +CME ERROR: 767"
    assert d.warnings_at()[0].id == "mconnect-late"
    assert "warning hit there: [mconnect-late]" in d.summary()


def test_qos1_in_flight(emu: tuple[object, Path]) -> None:
    d = check(emu, "log_e.txt")
    first = d.first
    assert first is not None and first.step.command == "+MPUB"
    assert (first.expected, first.actual) == ("final: OK", "final: ERROR")
    assert d.warnings_at()[0].id == "qos1-in-flight"


def test_cgatt_before_sapbr(emu: tuple[object, Path]) -> None:
    d = check(emu, "log_f.log")
    first = d.first
    assert first is not None and first.step.command == "+CGATT" and first.line == 1
    assert (first.expected, first.actual) == ("info: +CGATT: 0", "info: +CGATT: 1")
    assert d.warnings_at()[0].id == "cgatt-before-sapbr"


def test_mconfig_order(emu: tuple[object, Path]) -> None:
    d = check(emu, "log_g.log", timing="none")
    first = d.first
    assert first is not None and first.step.command == "+MCONNECT"
    assert first.actual == "final: ERROR"
    assert [w.id for w in d.warnings_at()][:2] == ["mconfig-order", "mqtt-host"]


def test_mqtt_host(emu: tuple[object, Path]) -> None:
    cloud = emu[0]
    assert check(emu, "log_h.log", timing="none").report.ok  # host rule off: as the tutorial
    cloud.registry.set_host_check(PK, True)  # type: ignore[attr-defined]
    try:
        d = check(emu, "log_h.log", timing="none")
    finally:
        cloud.registry.set_host_check(PK, False)  # type: ignore[attr-defined]
    first = d.first
    assert first is not None and first.step.command == "+MCONNECT"
    assert first.actual == "final: ERROR"
    assert d.warnings_at()[0].id == "mqtt-host"


def test_httpaction_status(emu: tuple[object, Path]) -> None:
    activated(emu, True)  # the student's device: already activated -> 460 reproduced
    assert check(emu, "log_i.log").report.ok
    activated(emu, False)  # after ResetThing the registration succeeds: the replay diverges
    d = check(emu, "log_i.log")
    first = d.first
    assert first is not None and first.step.command == "+HTTPACTION"
    assert first.actual == "urc: +HTTPACTION: 1,200,149"
    assert d.warnings_at()[0].id == "httpaction-status"


def test_report_frame_and_summary(emu: tuple[object, Path]) -> None:
    d = check(emu, "log_b.log")
    df = d.report.to_dataframe()
    assert list(df.columns) == ["line", "sent", "expected", "actual", "diverged"]
    assert df["diverged"].sum() == len(d.report.divergences)
    assert "first divergence: line 7" in d.summary()


def test_bad_timing(emu: tuple[object, Path]) -> None:
    from airlab.errors import UsageError

    with pytest.raises(UsageError):
        run(emu, SEEDS / "seed_direct_mqtt.log", timing="fast")


def test_grade(emu: tuple[object, Path]) -> None:
    # log_c logs in with the tutorial's DeviceSecret: before log_f registers the device
    # again (a repeated registration issues a new secret: only the latest is valid)
    quiet = check(emu, "log_c.log", timing="none")
    assert quiet.grade("content-type-space", None).startswith("Right:")
    d = check(emu, "log_f.log")
    assert d.grade("cgatt-before-sapbr", 1).startswith("Right:")
    assert d.grade("cgatt-before-sapbr").startswith("Right:")
    assert d.grade("cgatt-before-sapbr", 21).startswith("Half right:")
    assert d.grade("httpaction-status").startswith("Not yet:")
    assert "not a warning id" in d.grade("late")


def test_cut_body_as_another_device(emu: tuple[object, Path]) -> None:
    # the rest of the body read as a command line is the end of *this* device's name:
    # mapped back to the capture's, so the report does not depend on the device
    cloud = emu[0]
    dn = new_device_name()
    me = Identity(PK, dn, cloud.add_device(PK, dn), source="lesson")  # type: ignore[attr-defined]
    report = run(emu, BROKEN / "log_a.log", identity=me, timing="none")
    assert report.first is not None and report.first.actual == "unknown: 28"
