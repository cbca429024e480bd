"""The fleet's login methods (direct, HTTPS auth, dynamic registration) and AT+MPUBEX,
against a real cloud emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airlab.cloud.service import CloudEmulator
from airlab.errors import UsageError
from airlab.fleet import Scenario, run_fleet
from airlab.fleet.logins import assign_methods, parse_methods


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[CloudEmulator]:
    with CloudEmulator(tmp_path / "fleet.db", fixture=None) as emulator:
        yield emulator


def test_a_mix_of_methods_logs_in_each_its_own_way(cloud: CloudEmulator) -> None:
    scenario = Scenario(modems=6, rate=2, duration=1, ramp=0, methods="direct=1,http=1,dynreg=1")
    result = run_fleet(scenario, cloud=cloud)
    s = result.summary
    assert (s["logins"], s["login_failures"], s["published"], s["acked"]) == (6, 0, 12, 12)
    assert s["methods"] == "direct=1,http=1,dynreg=1"
    table = result.table
    by_modem = table.groupby("modem")["method"].first()
    assert sorted(by_modem.value_counts().items()) == [("direct", 2), ("dynreg", 2), ("http", 2)]
    actions = table[table["name"] == "+HTTPACTION"]
    assert set(actions["method"]) == {"http", "dynreg"} and set(actions["http_status"]) == {200}
    urls = table[(table["name"] == "+HTTPPARA") & table["command"].str.contains("URL")]
    paths = {m: set(g["command"].str.rsplit("/", n=2).str[-2:].str.join("/"))
             for m, g in urls.groupby("method")}  # fmt: skip
    assert paths == {"http": {"auth/devicename"}, "dynreg": {"register/device"}}
    events = result.connections
    http_events = events[events["protocol"] == "http"]
    assert sorted(http_events["event"]) == ["auth", "auth", "register", "register"]
    assert http_events["accepted"].astype(bool).all()
    # an http modem logs in with the token's iotId as user name, not deviceName&productKey
    mconfig = table[(table["name"] == "+MCONFIG") & (table["method"] == "http")]["command"]
    assert mconfig.str.contains("&").sum() == 0
    # nothing of a secret in what a run hands out
    secrets = {d.device_secret for d in cloud.registry.devices()}
    secrets |= {p.product_secret for p in cloud.registry.products()}
    text = table.to_csv() + events.to_csv() + result.messages.to_csv()
    assert not [x for x in secrets if x and x in text]


def test_dynamic_registration_happens_once_and_later_logins_are_direct(
    cloud: CloudEmulator,
) -> None:
    scenario = Scenario(modems=2, rate=2, duration=3, ramp=0, methods="dynreg",
                        outage_at=1.0, outage_for=0.5, reconnect="immediate",
                        reconnect_delay=0.2)  # fmt: skip
    result = run_fleet(scenario, cloud=cloud)
    s = result.summary
    assert s["logins"] >= 4  # each logged in again after the outage
    registers = result.connections[result.connections["event"] == "register"]
    assert len(registers) == 2  # one registration per device, not per login
    assert all(d.activated for d in cloud.registry.devices())


def test_mqtt_registration_then_logins_with_its_secret_or_token(cloud: CloudEmulator) -> None:
    """一型一密 over MQTT: ``mqttreg`` (pre-registered: the /ext/register push gives the
    DeviceSecret, then direct logins) and ``regnwl`` (免预注册: the platform adds the
    device; the /ext/regnwl push gives a DeviceToken for ``authType=connwl`` logins)."""
    scenario = Scenario(modems=4, rate=2, duration=1, ramp=0, methods="mqttreg=1,regnwl=1")
    result = run_fleet(scenario, cloud=cloud)
    s = result.summary
    assert (s["logins"], s["login_failures"], s["published"], s["acked"]) == (4, 0, 8, 8)
    connects = result.connections[result.connections["event"] == "connect"]
    kinds = connects["client_id"].str.extract(r"authType=(\w+)")[0].fillna("direct")
    assert sorted(kinds.value_counts().items()) == [
        ("connwl", 2), ("direct", 2), ("register", 2), ("regnwl", 2)
    ]  # fmt: skip
    regnwl = sorted(result.table[result.table["method"] == "regnwl"]["modem"].unique())
    added = {(d.device_name, d.activated) for d in cloud.registry.devices()}
    assert {(name, True) for name in regnwl} <= added  # the platform added them
    mconfig = result.table[result.table["name"] == "+MCONFIG"]["command"]
    assert mconfig.str.match(r'.*,"\*+"$').all()  # secrets and tokens masked
    secrets = {d.device_secret for d in cloud.registry.devices()}
    text = result.table.to_csv() + result.connections.to_csv() + result.messages.to_csv()
    assert not [x for x in secrets if x and x in text]


def test_the_same_seed_gives_the_same_sequence_with_every_method() -> None:
    def sequence() -> list[tuple[str, ...]]:
        scenario = Scenario(modems=5, rate=2, duration=2, ramp=0, profile="tutorial",
                            methods="direct=1,http=1,dynreg=1,mqttreg=1,regnwl=1",
                            clock="simulated",
                            seed=3)  # fmt: skip
        table = run_fleet(scenario).table
        cols = ["modem", "method", "name", "final", "urc", "outcome", "http_status"]
        return list(table[cols].astype(str).itertuples(index=False, name=None))

    first = sequence()
    assert first == sequence()
    assert {row[1] for row in first} == {"direct", "http", "dynreg", "mqttreg", "regnwl"}


def test_mpubex_carries_payloads_longer_than_a_quoted_mpub(cloud: CloudEmulator) -> None:
    scenario = Scenario(modems=2, rate=2, duration=1, ramp=0, mpubex=True, payload_size=3000)
    result = run_fleet(scenario, cloud=cloud)
    assert (result.summary["published"], result.summary["acked"]) == (4, 4)
    assert set(result.table["name"]) >= {"+MPUBEX"}
    assert len(result.puback_ms()) == 4
    sizes = [len(m.payload) for m in cloud.registry.message_log() if m.direction == "up"]
    assert sizes == [3000] * 4


def test_methods_are_shared_out_in_proportion() -> None:
    assert parse_methods("direct=2,http=1") == (("direct", 2 / 3), ("http", 1 / 3))
    order = assign_methods(parse_methods("direct=2,http=1,dynreg=1"), 100)
    assert (order.count("direct"), order.count("http"), order.count("dynreg")) == (50, 25, 25)
    assert assign_methods(parse_methods("http"), 3) == ["http"] * 3


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [("methods", "sms", "unknown method 'sms'"), ("methods", "direct=0", "positive number"),
     ("methods", "http,http", "named twice"), ("payload_size", 5000, "1..4100"),
     ("mpubex", "yes", "True or False")],
)  # fmt: skip
def test_a_bad_method_mix_or_payload_names_itself(field: str, value: object, says: str) -> None:
    with pytest.raises(UsageError) as info:
        Scenario(**{field: value})  # type: ignore[arg-type]
    assert info.value.option == "--" + field.replace("_", "-")
    assert says in str(info.value)
