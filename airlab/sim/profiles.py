"""Latency and fault profiles of the simulated module: named, seeded, reproducible.

A :class:`Profile` maps

* each *host latency category* of a :class:`~airlab.sim.actions.ToHost` action
  (``"echo"``, ``"answer"``, ``"boot"``, ``"urc"``) to the delay before those bytes go
  out (a delayed output also holds back the outputs after it);
* each *network event kind* (:func:`event_kind`: ``"link_opened_tls"``, ``"connack"``,
  ``"puback"``, ``"http_result"`` ...) to a **minimum total** delay: an answer is
  delivered at ``max(actual arrival, request time + sampled delay)``; unsolicited events
  (``"message"``, ``"link_closed"``) are delayed from their arrival;
* faults: server-side link drops and PDP losses at seeded random times (exponential
  intervals), and per-kind loss probabilities (a lost ``"puback"`` is never reported,
  a lost ``"dns"`` lookup fails).

Delays are sampled by a :class:`LatencySampler` made with :meth:`Profile.sampler`:
each category and kind has its own ``random.Random`` stream seeded from
``(seed, profile name, stream name)``, so the same seed gives the same delays whatever
the threads interleave.

Profiles (seconds; ``U(a, b)`` = uniform):

``instant``
    every delay 0, no faults (tests, benchmarks).
``tutorial``
    fitted to the timestamped captures (spec §2.5, T01/T03/T04): answers U(0.001, 0.006);
    echo 0; URCs caused by network events 0 (the network delay already elapsed);
    ``boot`` 0 and ``register`` 5.3: the firmware's own reboot timer puts ``RDY`` 1.5 s
    after ``AT+RESET`` (``FirmwareConfig.reboot_seconds``; the device applies the same
    1.5 s to :meth:`SimulatedModule.reset` when the profile is not instant) and the
    registration URCs follow 5.3 s later, 6.8 s after the reset (T04); TLS link
    U(1.4, 2.3); plain TCP link U(0.3, 0.8) (no capture: a guess); HTTP result
    U(1.6, 2.2); CONNACK U(0.215, 0.25); SUBACK/UNSUBACK U(0.30, 0.33); PUBACK/PUBREC
    U(0.28, 0.32); PUBCOMP U(0.56, 0.64); DNS failure and HTTP module errors (6xx)
    U(0.5, 1.5) (unconfirmed timing); no faults.
``flaky``
    the tutorial's delays with long tails (slow DNS: failures U(2, 10), TLS link
    U(1.4, 6), HTTP U(1.6, 8), MQTT acks up to 2 s, messages U(0, 0.5)), plus faults: the
    server drops the MQTT link every ~90 s on average, the PDP context is lost every
    ~300 s on average (``+CGEV: NW PDN DEACT 1``), 5 % of PUBACKs and 2 % of SUBACKs are
    lost, 3 % of DNS lookups fail.

Example:
    >>> s1, s2 = get_profile("tutorial").sampler(seed=7), get_profile("tutorial").sampler(seed=7)
    >>> [s1.net_delay("connack") for _ in range(3)] == [s2.net_delay("connack") for _ in range(3)]
    True
    >>> 0.215 <= s1.net_delay("connack") <= 0.25
    True
    >>> get_profile("instant").sampler(0).host_delay("answer")
    0.0
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from airlab.sim import actions as _a

__all__ = [
    "HOST_CATEGORIES",
    "NET_KINDS",
    "PROFILES",
    "Delay",
    "Faults",
    "LatencySampler",
    "Profile",
    "event_kind",
    "get_profile",
]

#: ToHost latency categories (``"register"``: registration URCs after a reset).
HOST_CATEGORIES = ("echo", "answer", "boot", "register", "urc")
#: Network event kinds a profile can delay (see :func:`event_kind`).
NET_KINDS = (
    "link_opened",
    "link_opened_tls",
    "link_failed",
    "link_closed",
    "http_result",
    "http_error",
    "connack",
    "suback",
    "unsuback",
    "puback",
    "pubrec",
    "pubcomp",
    "message",
    "pdp_lost",
)


@dataclass(frozen=True)
class Delay:
    """A delay uniformly distributed in ``[low, high]`` seconds (``Delay(x)`` = constant).

    >>> Delay(0.2, 0.3).sample(random.Random(1)) == Delay(0.2, 0.3).sample(random.Random(1))
    True
    >>> Delay(1.5).sample(random.Random(1))
    1.5
    """

    low: float = 0.0
    high: float | None = None

    def __post_init__(self) -> None:
        high = self.low if self.high is None else self.high
        if self.low < 0 or high < self.low:
            raise ValueError(f"invalid delay range [{self.low}, {high}]")
        object.__setattr__(self, "high", high)

    @property
    def zero(self) -> bool:
        return self.low == 0 and self.high == 0

    def sample(self, rng: random.Random) -> float:
        assert self.high is not None
        if self.high == self.low:
            return float(self.low)
        return rng.uniform(self.low, self.high)


_ZERO = Delay(0.0)


@dataclass(frozen=True)
class Faults:
    """Faults injected at seeded random times.

    ``link_drop_interval`` / ``pdp_loss_interval``: mean seconds between server-side
    drops of the MQTT link / PDP losses (exponentially distributed; None = never).
    ``lose``: probability per event kind (``"puback"``, ``"suback"`` ...; ``"dns"`` makes
    a lookup fail) that it is lost.
    """

    link_drop_interval: float | None = None
    pdp_loss_interval: float | None = None
    lose: Mapping[str, float] = field(default_factory=dict)

    @property
    def none(self) -> bool:
        return (
            self.link_drop_interval is None
            and self.pdp_loss_interval is None
            and not any(self.lose.values())
        )


@dataclass(frozen=True)
class Profile:
    """A named latency/fault profile (see the module docstring for the built-in ones).

    ``boot_urcs_at_start``: show the boot URCs (``RDY`` ...) when the simulated module is
    created; False (default) models a board powered on long ago (``reset()`` shows them).
    ``baudrate``: pace the output at ``baudrate / 10`` bytes per second (None: no pacing).
    """

    name: str
    host: Mapping[str, Delay] = field(default_factory=dict)
    net: Mapping[str, Delay] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    boot_urcs_at_start: bool = False
    baudrate: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", MappingProxyType(dict(self.host)))
        object.__setattr__(self, "net", MappingProxyType(dict(self.net)))

    @property
    def instant(self) -> bool:
        """True when every delay is zero and there are no faults nor pacing."""
        return (
            all(d.zero for d in self.host.values())
            and all(d.zero for d in self.net.values())
            and self.faults.none
            and not self.baudrate
        )

    def host_zero(self, category: str) -> bool:
        return self.host.get(category, _ZERO).zero

    def sampler(self, seed: int | str = 0) -> LatencySampler:
        return LatencySampler(self, seed)


class LatencySampler:
    """Seeded delay source for one simulated module (one stream per category/kind)."""

    def __init__(self, profile: Profile, seed: int | str = 0) -> None:
        self.profile = profile
        self.seed = seed
        self._streams: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    def _rng(self, stream: str) -> random.Random:
        rng = self._streams.get(stream)
        if rng is None:
            with self._lock:
                rng = self._streams.get(stream)
                if rng is None:
                    rng = random.Random(f"{self.seed}/{self.profile.name}/{stream}")
                    self._streams[stream] = rng
        return rng

    def host_delay(self, category: str) -> float:
        """Seconds before a ToHost of ``category`` goes out (0 for unknown categories)."""
        delay = self.profile.host.get(category, _ZERO)
        return 0.0 if delay.zero else delay.sample(self._rng("host:" + category))

    def net_delay(self, kind: str) -> float:
        """Minimum total seconds from request to delivery for an event of ``kind``."""
        delay = self.profile.net.get(kind, _ZERO)
        return 0.0 if delay.zero else delay.sample(self._rng("net:" + kind))

    def lost(self, kind: str) -> bool:
        """Whether this occurrence of ``kind`` is lost (flaky profile)."""
        p = self.profile.faults.lose.get(kind, 0.0)
        return p > 0 and self._rng("lose:" + kind).random() < p

    def next_fault(self, kind: str) -> float | None:
        """Seconds until the next ``"link_drop"`` or ``"pdp_loss"`` fault (None = never)."""
        faults = self.profile.faults
        mean = {"link_drop": faults.link_drop_interval, "pdp_loss": faults.pdp_loss_interval}[kind]
        if mean is None:
            return None
        return self._rng("fault:" + kind).expovariate(1.0 / mean)

    def pacing(self) -> float | None:
        """Bytes per second for the output (None: unpaced)."""
        baud = self.profile.baudrate
        return baud / 10.0 if baud else None


def event_kind(event: _a.NetEvent, *, tls: bool = False) -> str:
    """The profile kind of a network event.

    >>> event_kind(_a.LinkOpened("mqtt"), tls=True), event_kind(_a.HttpResult(603))
    ('link_opened_tls', 'http_error')
    """
    if isinstance(event, _a.LinkOpened):
        return "link_opened_tls" if tls else "link_opened"
    if isinstance(event, _a.HttpResult):
        return "http_error" if event.status >= 600 else "http_result"
    return _EVENT_KINDS.get(type(event), "other")


_EVENT_KINDS: dict[type, str] = {
    _a.LinkFailed: "link_failed",
    _a.LinkClosed: "link_closed",
    _a.MqttConnack: "connack",
    _a.MqttSuback: "suback",
    _a.MqttUnsuback: "unsuback",
    _a.MqttPuback: "puback",
    _a.MqttPubrec: "pubrec",
    _a.MqttPubcomp: "pubcomp",
    _a.MqttMessage: "message",
    _a.PdpLost: "pdp_lost",
}

U = Delay

_TUTORIAL_HOST = {
    "echo": _ZERO,
    "answer": U(0.001, 0.006),
    "boot": _ZERO,
    "register": U(5.3),
    "urc": _ZERO,
}
_TUTORIAL_NET = {
    "link_opened": U(0.3, 0.8),
    "link_opened_tls": U(1.4, 2.3),
    "link_failed": U(0.5, 1.5),
    "http_result": U(1.6, 2.2),
    "http_error": U(0.5, 1.5),
    "connack": U(0.215, 0.25),
    "suback": U(0.30, 0.33),
    "unsuback": U(0.30, 0.33),
    "puback": U(0.28, 0.32),
    "pubrec": U(0.28, 0.32),
    "pubcomp": U(0.56, 0.64),
}

PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        "instant": Profile("instant", description="no delays, no faults (tests)"),
        "tutorial": Profile(
            "tutorial",
            host=_TUTORIAL_HOST,
            net=_TUTORIAL_NET,
            description="delays fitted to the tutorial's timestamped captures",
        ),
        "flaky": Profile(
            "flaky",
            host=_TUTORIAL_HOST,
            net={
                **_TUTORIAL_NET,
                "link_opened": U(0.3, 3.0),
                "link_opened_tls": U(1.4, 6.0),
                "link_failed": U(2.0, 10.0),
                "http_result": U(1.6, 8.0),
                "http_error": U(2.0, 10.0),
                "connack": U(0.215, 1.5),
                "suback": U(0.3, 2.0),
                "unsuback": U(0.3, 2.0),
                "puback": U(0.25, 2.0),
                "message": U(0.0, 0.5),
            },
            faults=Faults(
                link_drop_interval=90.0,
                pdp_loss_interval=300.0,
                lose={"puback": 0.05, "suback": 0.02, "dns": 0.03},
            ),
            description="long tails, link drops, PDP losses, lost acks, failing DNS",
        ),
    }
)


def get_profile(profile: str | Profile) -> Profile:
    """A built-in profile by name (or the profile itself); ValueError lists the names."""
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(
            f"unknown latency profile {profile!r}: choose one of {', '.join(PROFILES)}"
        ) from None
