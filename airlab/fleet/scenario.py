"""What a fleet run does: how many modems, how they log in, what they publish, what goes
wrong. A :class:`Scenario` is checked when it is made, so a bad value fails before any
modem starts, with the name of the setting and what it accepts.

Example:
    >>> s = Scenario(modems=100, rate=1.0, duration=60)
    >>> s.publishes_per_modem, s.period
    (60, 1.0)
    >>> Scenario(modems=0)
    Traceback (most recent call last):
    ...
    airlab.errors.UsageError: modems: must be 1..5000, not 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from airlab.at.commands import MPUB_MAX
from airlab.errors import UsageError
from airlab.sim.profiles import PROFILES

__all__ = ["MAX_MODEMS", "MAX_PAYLOAD", "RECONNECT_POLICIES", "Scenario"]

MAX_MODEMS = 5000
#: the largest message of ``AT+MPUB`` and ``AT+MPUBEX`` on the Air780EP
MAX_PAYLOAD = MPUB_MAX
#: after CLOSED: ``none`` stays offline; ``immediate`` logs in again at once, then every
#: ``reconnect_delay`` seconds while that fails (a connect storm when an outage ends);
#: ``backoff`` waits ``reconnect_delay`` seconds, doubled after each failure up to 60 s,
#: with seeded jitter (what a careful device does)
RECONNECT_POLICIES = ("none", "immediate", "backoff")


@dataclass(frozen=True)
class Scenario:
    """A fleet run (see the module docstring).

    * ``modems``: how many; each is a device of its own in the emulator;
    * ``rate``: publishes per second per modem (0: log in and stay idle);
      ``duration``: seconds of publishing; ``qos`` 0 or 1 (QoS 1 waits for its PUBACK
      before the next, as the module allows one in flight); ``payload_size`` bytes;
      ``mpubex``: publish with ``AT+MPUBEX`` (length, the ``>`` prompt, raw bytes)
      instead of a quoted ``AT+MPUB`` message;
    * ``tls``: ``AT+SSLMIPSTART`` (default) or ``AT+MIPSTART``; ``subscribe``: also
      ``AT+MSUB`` to the device's ``/user/get``;
    * ``ramp``: seconds over which the modems start (0: all at once — a connect storm);
    * ``reconnect`` / ``reconnect_delay``: see :data:`RECONNECT_POLICIES`;
    * ``outage_at`` / ``outage_for``: the network is down for everyone (links dropped,
      lookups fail) from ``outage_at`` seconds into the run, for ``outage_for`` seconds;
    * ``profile``: the simulator's latency and fault profile; ``seed``: its streams;
    * ``keepalive``: the ``AT+MCONNECT`` keepalive (the platform accepts 30..1200);
    * ``shared``: how many modems log in with a device another modem already uses (a
      batch flashed with one certificate): the platform keeps one session per device,
      so each login kicks the other (``kicks`` in the summary);
    * ``clock``: ``real``, or ``simulated`` (delays scheduled, not slept: the run takes
      as long as its work; see :mod:`airlab.fleet.clock`);
    * ``methods``: how the modems log in, one method or a mix by weight
      (``"direct=3,http=1,dynreg=1"``; see :mod:`airlab.fleet.logins`).
    """

    modems: int = 10
    rate: float = 1.0
    duration: float = 10.0
    qos: int = 1
    payload_size: int = 32
    tls: bool = True
    subscribe: bool = False
    ramp: float = 1.0
    reconnect: str = "backoff"
    reconnect_delay: float = 1.0
    outage_at: float | None = None
    outage_for: float = 5.0
    profile: str = "instant"
    seed: int = 0
    keepalive: int = 120
    clock: str = "real"
    shared: int = 0
    methods: str = "direct"
    mpubex: bool = False

    def __post_init__(self) -> None:
        for name, ok, accepts in _rules(self):
            if not ok:
                raise UsageError(name, f"must be {accepts}, not {getattr(self, name)!r}")
        self.method_shares  # noqa: B018 - checks the mix (UsageError naming "methods")

    @property
    def method_shares(self) -> tuple[tuple[str, float], ...]:
        """The login methods and their shares (see :func:`airlab.fleet.logins.parse_methods`)."""
        from airlab.fleet.logins import parse_methods

        return parse_methods(self.methods)

    @property
    def period(self) -> float:
        """Seconds between two publishes of one modem (``inf`` when ``rate`` is 0)."""
        return 1.0 / self.rate if self.rate else math.inf

    @property
    def publishes_per_modem(self) -> int:
        """How many publishes each modem starts during ``duration``."""
        return math.ceil(self.duration * self.rate - 1e-9) if self.rate else 0


def _rules(s: Scenario) -> list[tuple[str, bool, str]]:
    """(setting, whether its value is good, what it accepts) for every setting."""
    outage = s.outage_at is None or (_number(s.outage_at) and s.outage_at >= 0)
    return [
        ("modems", _int(s.modems) and 1 <= s.modems <= MAX_MODEMS, f"1..{MAX_MODEMS}"),
        ("rate", _number(s.rate) and 0 <= s.rate <= 100, "0..100 publishes per second"),
        ("duration", _number(s.duration) and 0 < s.duration <= 86_400,
         "more than 0 and at most 86400 seconds"),
        ("qos", s.qos in (0, 1) and _int(s.qos), "0 or 1"),
        ("payload_size", _int(s.payload_size) and 1 <= s.payload_size <= MAX_PAYLOAD,
         f"1..{MAX_PAYLOAD} bytes"),
        ("ramp", _number(s.ramp) and 0 <= s.ramp <= 3600, "0..3600 seconds"),
        ("reconnect", s.reconnect in RECONNECT_POLICIES,
         "one of " + ", ".join(RECONNECT_POLICIES)),
        ("reconnect_delay", _number(s.reconnect_delay) and 0 <= s.reconnect_delay <= 600,
         "0..600 seconds"),
        ("outage_at", outage, "a time in seconds from the start"),
        ("outage_for", _number(s.outage_for) and 0 < s.outage_for <= 3600,
         "more than 0 and at most 3600 seconds"),
        ("profile", s.profile in PROFILES, "one of " + ", ".join(PROFILES)),
        ("keepalive", _int(s.keepalive) and 30 <= s.keepalive <= 1200,
         "30..1200 seconds (the platform's range)"),
        ("clock", s.clock in ("real", "simulated"), "real or simulated"),
        ("mpubex", isinstance(s.mpubex, bool), "True or False"),
        ("shared", _int(s.shared) and 0 <= s.shared < max(_int(s.modems) and s.modems, 1),
         "0 or more, and fewer than modems"),
    ]  # fmt: skip


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
