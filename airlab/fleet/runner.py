"""Run a :class:`~airlab.fleet.scenario.Scenario`: N simulated modems on one event loop,
each logging in as a device of its own and publishing through the AT commands, against
the cloud emulator.

:func:`run_fleet` starts a private :class:`~airlab.cloud.service.CloudEmulator` (its
registry in a temporary folder) unless one is given, adds a product and one device per
modem, starts every modem on one :class:`~airlab.mqtt.loopthread.LoopThread` (a host
coroutine per modem, no thread per modem), and returns a
:class:`~airlab.fleet.results.FleetResult`: the pairing table of every modem's commands
(the analysis's own table, with a ``modem`` column), the emulator's logs of the run, and
the summary.

One modem's life: ``AT+MCONFIG`` (direct login, signed as the tutorial does),
``AT+(SSL)MIPSTART`` → ``CONNECT OK``, ``AT+MCONNECT`` → ``CONNACK OK``, optionally
``AT+MSUB`` → ``SUBACK``, then one ``AT+MPUB`` per period (QoS 1 waits for its
``PUBACK``); after ``CLOSED`` it follows the scenario's reconnect policy (``immediate``:
at once, then every ``reconnect_delay`` while logins fail; ``backoff``: doubling waits
with jitter); at the end ``AT+MDISCONNECT`` and ``AT+MIPCLOSE``. A publish whose time
came while the modem was offline is skipped (counted), not sent late; one the module
answers ``ERROR`` (the link just went down) is counted as failed.

With ``Scenario(clock="simulated")`` the modems run on a
:class:`~airlab.fleet.clock.VirtualTimeLoop`: the profile's delays, timers, faults and
the publish schedule are on simulated time, so a run takes as long as its work. The
private emulator then runs in this process (:class:`~airlab.fleet.served.LoopCloud`), its
MQTT broker on the same loop: the platform's rules (CONNECT window, keepalive, the
per-second throttle, log times) read the same simulated clock.

Example:
    >>> from airlab.fleet.scenario import Scenario
    >>> result = run_fleet(Scenario(modems=3, rate=5, duration=0.4, ramp=0))
    >>> result.summary["modems"], result.summary["published"], result.summary["acked"]
    (3, 6, 6)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from airlab.at.commands import mpub, mpubex
from airlab.cloud.names import new_product_key
from airlab.fleet.clock import VirtualTimeLoop
from airlab.fleet.logins import REGISTERING, FleetDevice, assign_methods, log_in, uses_http
from airlab.fleet.modem import Exchange, FleetModem
from airlab.fleet.results import FleetResult, build_result
from airlab.fleet.scenario import Scenario
from airlab.fleet.served import LoopCloud, ServedCloud
from airlab.mqtt.loopthread import LoopThread
from airlab.sim.hosts import HostNotFound, HostTable

__all__ = ["FleetProgress", "run_fleet"]

_GRACE = 30.0  # seconds past the planned end before the stragglers are stopped
_MAX_BACKOFF = 60.0


@dataclass
class FleetProgress:
    """Counters of a running fleet, updated on its loop (read them from any thread)."""

    modems: int
    planned: int  # publishes planned in all
    started: float = field(default_factory=time.monotonic)
    online: int = 0
    logins: int = 0
    login_failures: int = 0
    published: int = 0
    acked: int = 0
    failed: int = 0  # AT+MPUB answered ERROR (the link was down)
    skipped: int = 0
    link_down: int = 0
    finished: int = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class _OutageHosts(HostTable):
    """The fleet's DNS: the emulator's names, unresolvable while the network is down."""

    def __init__(self, table: HostTable) -> None:
        super().__init__()
        self._table = table
        self.down = False

    def resolve(self, name: str, port: int, *, tls: bool = False) -> tuple[str, int]:
        if self.down:
            raise HostNotFound(name, "network outage (fleet scenario)")
        return self._table.resolve(name, port, tls=tls)


def fleet_device_name(index: int) -> str:
    """The IMEI-like DeviceName of modem ``index``: ``86950`` + 9 digits + Luhn digit.

    Example:
        >>> fleet_device_name(7)
        '869500000000074'
    """
    from airlab.cloud.names import _luhn_sum

    body = f"86950{index:09d}"
    return body + str((10 - _luhn_sum(body + "0")) % 10)


def run_fleet(
    scenario: Scenario,
    *,
    cloud: Any = None,
    throttle: bool = True,
    progress: Callable[[FleetProgress], None] | None = None,
    progress_every: float = 0.5,
) -> FleetResult:
    """Run ``scenario`` (see the module docstring); ``cloud``: a running emulator to use
    instead of a private one — a :class:`~airlab.cloud.service.CloudEmulator`, or a
    :class:`~airlab.cloud.discovery.RemoteCloud` for a service elsewhere (either
    engine; several fleets may share it: each reads back only its own product's log)
    — (the private one is a
    :class:`~airlab.fleet.served.ServedCloud` in a process of its own, or on simulated
    time a :class:`~airlab.fleet.served.LoopCloud` on the fleet's loop); ``throttle``:
    the private emulator keeps the platform's per-device uplink limits;
    ``progress(counters)`` is called about every ``progress_every`` seconds, from
    another thread."""
    simulated = scenario.clock == "simulated"
    with contextlib.ExitStack() as stack:
        factory = VirtualTimeLoop if simulated else asyncio.new_event_loop
        runner = LoopThread("airlab-fleet", factory).start()
        stack.callback(runner.stop)
        local_broker = False  # then only HTTP answers hold simulated time
        if cloud is None and simulated:
            cloud = stack.enter_context(LoopCloud(runner, throttle=throttle))
            local_broker = True  # the broker answers on the fleet's own loop
        elif cloud is None:
            cloud = stack.enter_context(ServedCloud(throttle=throttle))
        devices = _provision(cloud, scenario)
        hosts = _OutageHosts(HostTable.from_endpoints(cloud.endpoints))
        counters = FleetProgress(scenario.modems, scenario.modems * scenario.publishes_per_modem)
        stack.enter_context(_fewer_collections())
        began = time.time()
        done = threading.Event()
        future = asyncio.run_coroutine_threadsafe(
            _run(scenario, devices, hosts, runner, counters, local_broker),
            runner.loop,  # type: ignore[arg-type]
        )
        future.add_done_callback(lambda _: done.set())
        limit = scenario.ramp + scenario.duration + _GRACE + 60.0
        if simulated:
            limit = max(limit, 3600.0)  # real seconds: the run goes as fast as its work
        while not done.wait(progress_every):
            if progress is not None:
                progress(counters)
            if counters.elapsed > limit:  # pragma: no cover - a hung run: stop it
                future.cancel()
        modems: list[FleetModem] = future.result(timeout=60)
        if progress is not None:
            progress(counters)
        ended = time.time()
        if isinstance(cloud, ServedCloud | LoopCloud):
            cloud.stop()  # a clean stop: every log line of the run is committed
        method_of = {m.name: d.method for m, d in zip(modems, devices, strict=True)}
        product_key = devices[0].product_key
        return build_result(scenario, modems, cloud, product_key, counters, began, ended, method_of)


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """The run keeps every modem's events: a full collection of the interpreter's
    garbage collector then walks them all and stalls the loop for ~0.2 s (seen as p99
    PUBACK spikes every ~9 s at 1,000 modems). What exists is frozen and the young
    generation collected less often for the run; both are undone after it."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 50_000), threshold[1], max(threshold[2], 50))
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _provision(cloud: Any, scenario: Scenario) -> list[FleetDevice]:
    """A product for the run (dynamic registration on when a modem registers) and a
    device per modem, each with its login method (secrets stay in memory); the last
    ``scenario.shared`` modems reuse the first ones' devices."""
    product_key = new_product_key()
    own = scenario.modems - scenario.shared
    methods = assign_methods(scenario.method_shares, own)
    registering = any(m in REGISTERING for m in methods)
    product = cloud.add_product(product_key, dynamic_registration=registering)
    devices = []
    for i in range(own):
        name, method = fleet_device_name(i), methods[i]
        if method in REGISTERING:  # it learns its secret (or token) by registering
            if method != "regnwl":  # 免预注册: the platform adds it when it registers
                cloud.add_device(product_key, name)
            devices.append(FleetDevice(product_key, name, None, method, product.product_secret))
        else:
            devices.append(
                FleetDevice(product_key, name, cloud.add_device(product_key, name), method)
            )
    return devices + [devices[i % own] for i in range(scenario.shared)]


async def _run(
    scenario: Scenario,
    devices: list[FleetDevice],
    hosts: _OutageHosts,
    runner: LoopThread,
    counters: FleetProgress,
    local_broker: bool,
) -> list[FleetModem]:
    loop = asyncio.get_running_loop()
    t_start = loop.time()
    seen: dict[str, int] = {}
    labels = []
    for d in devices:  # a modem sharing its device is "<device name>#2", "#3" ...
        seen[d.device_name] = seen.get(d.device_name, 0) + 1
        n = seen[d.device_name]
        labels.append(d.device_name if n == 1 else f"{d.device_name}#{n}")
    modems = [
        FleetModem(
            labels[i],
            runner,
            hosts=hosts,
            profile=scenario.profile,
            seed=f"{scenario.seed}/{i}",
            imei=d.device_name,
            t0=t_start,
            held_by=(("http",) if uses_http(d.method) else ()) if local_broker else None,
        )
        for i, d in enumerate(devices)
    ]
    counters.started = time.monotonic()
    t0 = loop.time()
    outage: list[asyncio.TimerHandle] = []
    if scenario.outage_at is not None:
        outage.append(loop.call_at(t0 + scenario.outage_at, _outage_starts, hosts, modems))
        end = t0 + scenario.outage_at + scenario.outage_for
        outage.append(loop.call_at(end, setattr, hosts, "down", False))
    step = scenario.ramp / (len(modems) - 1) if len(modems) > 1 else 0.0
    tasks = [
        loop.create_task(_drive(m, d, scenario, t0 + i * step, counters))
        for i, (m, d) in enumerate(zip(modems, devices, strict=True))
    ]
    deadline = scenario.ramp + scenario.duration + _GRACE
    _, late = await asyncio.wait(tasks, timeout=deadline)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=5)
    for handle in outage:
        handle.cancel()
    for m in modems:
        m.close()
    return modems


def _outage_starts(hosts: _OutageHosts, modems: list[FleetModem]) -> None:
    hosts.down = True
    for m in modems:
        m.drop_link()


async def _drive(
    m: FleetModem, d: FleetDevice, s: Scenario, start: float, counters: FleetProgress
) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start - loop.time()))
    up = f"/{d.product_key}/{d.device_name}/user/update"
    jitter = random.Random(f"{s.seed}/{m.name}/backoff")
    first_login = loop.time()
    try:
        online = await _login(m, d, s, counters)
        slot, delay, failed_before = 0, s.reconnect_delay, not online
        base = loop.time()
        while slot < s.publishes_per_modem:
            if not online:
                if s.reconnect == "none":
                    counters.skipped += s.publishes_per_modem - slot
                    break
                if failed_before:  # right after CLOSED: "immediate" tries at once
                    wait = delay * (0.5 + jitter.random()) if s.reconnect == "backoff" else delay
                    await asyncio.sleep(wait)
                    if s.reconnect == "backoff":
                        delay = min(delay * 2, _MAX_BACKOFF)
                await m.command("AT+MIPCLOSE", timeout=10)
                online = await _login(m, d, s, counters)
                failed_before = not online
                if loop.time() - first_login > s.ramp + s.duration + _GRACE:
                    break
                continue
            delay = s.reconnect_delay
            due = base + slot * s.period
            now = loop.time()
            if due < now - s.period:  # its time came while offline: skipped, not sent late
                missed = min(int((now - due) / s.period), s.publishes_per_modem - slot)
                counters.skipped += missed
                slot += missed
                continue
            await asyncio.sleep(max(0.0, due - now))
            ex = await _publish(m, up, s, slot, d.device_name)
            slot += 1
            if ex.ok:
                counters.published += 1
                if ex.urc == "PUBACK" or s.qos == 0:
                    counters.acked += 1
            else:
                counters.failed += 1  # the module refused it (the link went down meanwhile)
            if _went_down(ex, m):
                online, failed_before = False, False
                counters.online -= 1
        if online:
            await m.command("AT+MDISCONNECT", timeout=10)
            await m.command("AT+MIPCLOSE", timeout=10)
            counters.online -= 1
    finally:
        counters.link_down += m.link_down
        counters.finished += 1


async def _login(m: FleetModem, d: FleetDevice, s: Scenario, counters: FleetProgress) -> bool:
    if not await log_in(m, d, s, str(s.seed)):
        counters.login_failures += 1
        return False
    counters.logins += 1
    counters.online += 1
    m.down_mark = m.link_down  # CLOSED from now on means this session ended
    return True


async def _publish(m: FleetModem, topic: str, s: Scenario, slot: int, name: str) -> Exchange:
    head = f"{name}#{slot}:"
    payload = (head + "x" * s.payload_size)[: s.payload_size]
    urc = ("PUBACK",) if s.qos == 1 else ()
    if s.mpubex:
        data = payload.encode()
        line = mpubex(topic, s.qos, 0, len(data))
        return await m.command(line, urc=urc, timeout=30, data=data)
    return await m.command(mpub(topic, s.qos, 0, payload), urc=urc, timeout=30)


def _went_down(ex: Exchange, m: FleetModem) -> bool:
    if ex.urc in ("CLOSED", "CONNECT FAIL") or ex.final == "timeout":
        return True
    return m.link_down > m.down_mark
