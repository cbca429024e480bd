"""Latency/fault profiles: numbers, determinism, event kinds."""

from __future__ import annotations

import pytest

from airlab.sim import actions as a
from airlab.sim.profiles import PROFILES, Delay, Faults, Profile, event_kind, get_profile


def _draw(profile: str, seed: int) -> list[float]:
    s = get_profile(profile).sampler(seed)
    out = []
    for _ in range(20):
        out += [s.host_delay("answer"), s.net_delay("link_opened_tls"), s.net_delay("puback")]
        out += [float(s.lost("puback")), s.next_fault("link_drop") or 0.0]
    return out


@pytest.mark.parametrize("name", ["tutorial", "flaky"])
def test_same_seed_same_delays(name: str) -> None:
    assert _draw(name, 42) == _draw(name, 42)
    assert _draw(name, 42) != _draw(name, 43)


def test_streams_are_independent_of_interleaving() -> None:
    s1, s2 = get_profile("tutorial").sampler(5), get_profile("tutorial").sampler(5)
    first = [s1.net_delay("connack") for _ in range(5)]
    for _ in range(7):
        s2.net_delay("suback")  # another kind drawn in between
    assert [s2.net_delay("connack") for _ in range(5)] == first


def test_instant_is_all_zero() -> None:
    instant = get_profile("instant")
    assert instant.instant
    s = instant.sampler(1)
    assert {s.host_delay(c) for c in ("echo", "answer", "boot", "register", "urc")} == {0.0}
    assert {s.net_delay(k) for k in ("connack", "http_result", "link_opened_tls")} == {0.0}
    assert s.next_fault("link_drop") is None and s.next_fault("pdp_loss") is None
    assert not s.lost("puback")
    assert s.pacing() is None
    assert not get_profile("tutorial").instant


@pytest.mark.parametrize(
    ("kind", "low", "high"),
    [
        ("http_result", 1.6, 2.2),
        ("link_opened_tls", 1.4, 2.3),
        ("connack", 0.215, 0.25),
        ("suback", 0.30, 0.33),
        ("puback", 0.28, 0.32),
    ],
)
def test_tutorial_network_numbers(kind: str, low: float, high: float) -> None:
    s = get_profile("tutorial").sampler(3)
    values = [s.net_delay(kind) for _ in range(200)]
    assert low <= min(values) and max(values) <= high
    assert max(values) - min(values) > (high - low) / 2  # really spread, not constant


def test_tutorial_host_numbers() -> None:
    s = get_profile("tutorial").sampler(0)
    answers = [s.host_delay("answer") for _ in range(100)]
    assert min(answers) >= 0.001 and max(answers) <= 0.006
    assert s.host_delay("echo") == 0.0
    assert s.host_delay("urc") == 0.0
    # RDY comes from the firmware's 1.5 s reboot timer; registration URCs 5.3 s later
    assert s.host_delay("boot") == 0.0 and s.host_delay("register") == pytest.approx(5.3)
    assert not PROFILES["tutorial"].boot_urcs_at_start


def test_flaky_faults() -> None:
    flaky = get_profile("flaky")
    assert flaky.faults.link_drop_interval and flaky.faults.pdp_loss_interval
    s = flaky.sampler(11)
    losses = sum(s.lost("puback") for _ in range(4000))
    assert 100 < losses < 300  # 5 %
    drops = [s.next_fault("link_drop") for _ in range(400)]
    assert all(d is not None and d > 0 for d in drops)
    assert 60 < sum(drops) / len(drops) < 120  # mean 90 s
    assert max(s.net_delay("link_failed") for _ in range(100)) > 5  # slow DNS


def test_custom_profile_and_pacing() -> None:
    p = Profile(
        "mine", host={"answer": Delay(0.01)}, net={"connack": Delay(0.1, 0.2)}, baudrate=115200
    )
    s = p.sampler()
    assert s.host_delay("answer") == 0.01
    assert 0.1 <= s.net_delay("connack") <= 0.2
    assert s.pacing() == 11520.0
    assert not p.instant
    assert Profile("lossy", faults=Faults(lose={"puback": 1.0})).sampler().lost("puback")


def test_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown latency profile 'slow'"):
        get_profile("slow")
    with pytest.raises(ValueError):
        Delay(0.3, 0.1)
    with pytest.raises(ValueError):
        Delay(-1)
    assert get_profile(PROFILES["flaky"]) is PROFILES["flaky"]


def test_event_kinds() -> None:
    assert event_kind(a.LinkOpened("mqtt")) == "link_opened"
    assert event_kind(a.LinkOpened("mqtt"), tls=True) == "link_opened_tls"
    assert event_kind(a.LinkFailed("mqtt", "dns")) == "link_failed"
    assert event_kind(a.HttpResult(200)) == "http_result"
    assert event_kind(a.HttpResult(601)) == "http_error"
    assert event_kind(a.MqttPuback(1)) == "puback"
    assert event_kind(a.MqttSuback(1, (0,))) == "suback"
    assert event_kind(a.MqttMessage("t", b"")) == "message"
    assert event_kind(a.PdpLost()) == "pdp_lost"
