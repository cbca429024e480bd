"""One modem of a fleet: a simulated Air780EP's firmware on the fleet's shared loop, and
the host program that talks AT to it.

:class:`~airlab.sim.device.SimulatedModule` gives one module a scheduler thread and a
network thread of its own, and a :class:`~airlab.session.ModemSession` adds a reader
thread: three threads per modem. Here the firmware is the same pure
:class:`~airlab.sim.firmware.Firmware` (``receive(bytes) -> actions``), and everything
it asks for runs on one asyncio loop that all the modems share: its timers and the
profile's delays are ``call_at``\\ s, its links a :class:`~airlab.sim.netstack.NetStack`
on that loop (``runner=``), and the host side is a coroutine that writes command lines
and waits for their final result and URC, parsed by the same
:class:`~airlab.at.parser.AtParser` as every transcript (so the pairing table of
:func:`airlab.analysis.pair_commands` reads what it recorded). Every chunk each way is
kept, timed, in :attr:`FleetModem.transcript`.

The bytes and their order are the firmware's own: what a fleet modem prints is what
``airsim://`` prints for the same commands.

Example:
    >>> import asyncio
    >>> from airlab.mqtt.loopthread import LoopThread
    >>> runner = LoopThread("doc-fleet").start()
    >>> async def hello():
    ...     modem = FleetModem("m1", runner)
    ...     exchange = await modem.command("AT+CGATT?")
    ...     modem.close()
    ...     return exchange.final, exchange.ok
    >>> runner.run(hello())
    ('OK', True)
    >>> runner.stop()
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from airlab.at.events import Event, FinalResult, Payload, Prompt, Urc
from airlab.at.parser import AtParser
from airlab.at.transcript import Transcript
from airlab.mqtt.loopthread import LoopThread
from airlab.sim import actions as a
from airlab.sim import profiles
from airlab.sim.config import FirmwareConfig
from airlab.sim.firmware import Firmware
from airlab.sim.hosts import HostTable
from airlab.sim.netstack import NetStack
from airlab.sim.profiles import Profile, get_profile

__all__ = ["Exchange", "FleetModem"]

#: URCs that end a wait for another URC: the link went down meanwhile
LINK_DOWN = ("CLOSED", "CONNECT FAIL")
#: what else ends it: the link was up already; a late ``ERROR`` (a refused CONNACK, a
#: SUBACK refusing the topic) comes as a second final result
_OTHER_ENDS = ("ALREADY CONNECT",)


@dataclass(frozen=True, slots=True)
class Exchange:
    """What one command got: ``final`` result word (``"OK"``, ``"ERROR"``,
    ``"+CME ERROR"``, or ``"timeout"``), its ``code``, the ``urc`` waited for (its
    name, ``None`` when none came or none was asked for) and that URC's ``urc_args``;
    ``payload``: the length-framed body the command answered (``AT+HTTPREAD``)."""

    command: str
    final: str
    code: int | None = None
    urc: str | None = None
    urc_args: tuple[str, ...] = ()
    payload: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.final == "OK"


class FleetModem:
    """One simulated module on ``runner``'s loop (see the module docstring).

    ``name`` labels it (the device name); ``hosts``: the simulator's DNS; ``profile`` /
    ``seed``: its delays and faults, as for ``airsim://``; ``t0``: the monotonic time
    its transcript's ``mono`` stamps count from (a fleet's modems share one, so their
    tables line up). ``held_by``: on a loop with simulated time, the links (``"mqtt"``,
    ``"http"``) whose awaited answers hold the clock (default: all; ``()``: none, when
    every peer is served on the same loop). Methods other than :meth:`close` and the properties are
    called on the loop.
    """

    def __init__(
        self,
        name: str,
        runner: LoopThread,
        *,
        hosts: HostTable | None = None,
        profile: str | Profile = "instant",
        seed: int | str = 0,
        imei: str | None = None,
        t0: float | None = None,
        held_by: Collection[str] | None = None,
    ) -> None:
        self.name = name
        loop = runner.loop
        if loop is None:
            raise RuntimeError("the fleet's loop is not running")
        self.loop: asyncio.AbstractEventLoop = loop
        self.profile = get_profile(profile)
        self.sampler = self.profile.sampler(seed)
        config = FirmwareConfig(imei=imei) if imei else FirmwareConfig()
        self.firmware = Firmware(config)
        self._zero = {c: self.profile.host_zero(c) for c in profiles.HOST_CATEGORIES}
        self.net = NetStack(
            self._on_net_event,
            hosts,
            sampler=None if self.profile.instant else self.sampler,
            runner=runner,
        )
        self.net.start()
        watch = getattr(loop, "watch", None)  # a loop on simulated time holds its clock
        self._unwatch = None
        if watch is not None and held_by != ():
            net = self.net
            self._unwatch = watch(lambda: net.awaiting_network(held_by))
        self.parser = AtParser()
        self.transcript = Transcript(format="fleet", meta={"device": name})
        self.events: list[Event] = []
        self._seen = 0  # events already looked at by waiters
        self._wake: asyncio.Future[None] | None = None  # set by the next new events
        self._pending: collections.deque[tuple[float, bytes]] = collections.deque()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.faults: collections.Counter[str] = collections.Counter()  # injected, by kind
        self.link_down = 0  # CLOSED / CONNECT FAIL URCs seen so far
        self.down_mark = 0  # link_down when the current session began (kept by the host)
        self.closed = False
        self._t0 = loop.time() if t0 is None else t0  # mono stamps count from it
        self._wall0 = time.time() - (loop.time() - self._t0)  # wall time at t0
        # a board powered on long ago: the boot URCs are not shown
        boot = self.firmware.boot(self._now())
        self._apply([x for x in boot if not isinstance(x, a.ToHost)])
        for kind in ("link_drop", "pdp_loss"):
            self._schedule_fault(kind)

    # ---------------------------------------------------------------- the host side

    async def command(
        self,
        line: str,
        *,
        urc: tuple[str, ...] = (),
        timeout: float = 30.0,
        data: bytes | None = None,
    ) -> Exchange:
        """Send ``line``; wait for its final result and, when it is OK and ``urc`` names
        some, for one of them, a link-down URC, ``ALREADY CONNECT`` or a late ``ERROR``
        (then ``urc`` is that word). A missing answer gives ``"timeout"``. ``data``: the
        raw bytes of a data phase (``AT+HTTPDATA``, ``AT+MPUBEX``), sent when the module
        prompts (``DOWNLOAD`` / ``>``).
        """
        if self.closed:
            raise RuntimeError(f"modem {self.name} is closed")
        start = self._seen = len(self.events)
        self.write(line.encode() + b"\r\n")
        deadline = self.loop.time() + timeout
        if data is not None:
            asked = await self._next(deadline, lambda e: isinstance(e, Prompt | FinalResult))
            if asked is None:
                return Exchange(line, "timeout")
            if isinstance(asked, Prompt):
                self.write(data)
            else:
                self._seen -= 1  # the final result came instead of the prompt
        final = await self._next(deadline, lambda e: isinstance(e, FinalResult))
        if final is None:
            return Exchange(line, "timeout")
        assert isinstance(final, FinalResult)
        body = next(
            (e.data for e in self.events[start : self._seen] if isinstance(e, Payload)), None
        )
        if not urc or not final.ok:
            return Exchange(line, final.result, final.code, payload=body)
        names = urc + LINK_DOWN + _OTHER_ENDS

        def ends(e: Event) -> bool:
            return (isinstance(e, Urc) and e.name in names) or (
                isinstance(e, FinalResult) and not e.ok
            )

        got = await self._next(deadline, ends)
        name = got.name if isinstance(got, Urc) else None
        if isinstance(got, FinalResult):
            name = got.text
        args = got.args if isinstance(got, Urc) else ()
        return Exchange(line, final.result, final.code, name, args, body)

    async def wait_urc(self, names: tuple[str, ...], timeout: float) -> Urc | None:
        """The next URC named in ``names`` (or a link-down one) after what the last
        command took; None when none comes within ``timeout`` seconds."""
        wanted = names + LINK_DOWN
        got = await self._next(
            self.loop.time() + timeout, lambda e: isinstance(e, Urc) and e.name in wanted
        )
        return got if isinstance(got, Urc) else None

    def write(self, data: bytes) -> None:
        """Bytes from the host to the module."""
        wall, mono = self._stamp()
        self.transcript.add("sent", data, wall, mono)
        self.events.extend(self.parser.feed_sent(data, wall, mono))
        self._apply(self.firmware.receive(data))

    async def _next(self, deadline: float, match: Any) -> Event | None:
        while True:
            events = self.events
            while self._seen < len(events):
                event = events[self._seen]
                self._seen += 1
                if match(event):
                    return event
            if self.loop.time() >= deadline:
                return None
            # a bare future and one timer: asyncio.wait_for would make a task per wait
            wake = self._wake = self.loop.create_future()
            timer = self.loop.call_at(deadline, _set_once, wake)
            try:
                await wake
            finally:
                timer.cancel()
                self._wake = None

    def _stamp(self) -> tuple[float, float]:
        """(wall, mono) on the loop's clock, which may be simulated."""
        mono = self.loop.time() - self._t0
        return self._wall0 + mono, mono

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self._stamp()[0], datetime.UTC)

    def _received(self, data: bytes) -> None:
        wall, mono = self._stamp()
        self.transcript.add("received", data, wall, mono)
        new = self.parser.feed_received(data, wall, mono)
        if not new:
            return
        self.events.extend(new)
        for event in new:
            if isinstance(event, Urc) and event.name in LINK_DOWN:
                self.link_down += 1
        if self._wake is not None:
            _set_once(self._wake)

    # ---------------------------------------------------------------- faults

    def drop_link(self) -> bool:
        """The server closes the MQTT link (the firmware prints ``CLOSED``)."""
        return self.net.drop_link("mqtt")

    def lose_pdp(self) -> None:
        """The network deactivates the PDP context."""
        self.net.close_links()
        self._apply(self.firmware.lose_pdp())

    def _schedule_fault(self, kind: str) -> None:
        """The profile's faults (``flaky``: link drops, PDP losses) at its seeded times."""
        wait = self.sampler.next_fault(kind)
        if wait is not None and not self.closed:
            self._timers[f"fault:{kind}"] = self.loop.call_later(wait, self._fault, kind)

    def _fault(self, kind: str) -> None:
        if self.closed:
            return
        if kind == "link_drop":
            self.drop_link()
        else:
            self.lose_pdp()
        self.faults[kind] += 1
        self._schedule_fault(kind)

    def close(self) -> None:
        """Cancel the timers and close the links (any thread)."""
        if self.closed:
            return
        self.closed = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._unwatch is not None:
            self._unwatch()
        self.net.close()

    # ---------------------------------------------------------------- the firmware's actions

    def _apply(self, actions: list[Any]) -> None:
        for action in actions:
            kind = type(action)
            if kind is a.ToHost:
                self._to_host(action)
            elif kind is a.StartTimer:
                old = self._timers.pop(action.name, None)
                if old is not None:
                    old.cancel()
                self._timers[action.name] = self.loop.call_later(
                    max(0.0, action.seconds), self._fire, action.name
                )
            elif kind is a.CancelTimer:
                old = self._timers.pop(action.name, None)
                if old is not None:
                    old.cancel()
            elif isinstance(action, a.NetRequest):
                if not self.closed:
                    self.net.submit(action)
            elif isinstance(action, a.ToHost):
                self._to_host(action)

    def _to_host(self, action: a.ToHost) -> None:
        data = action.data
        if not data:
            return
        latency = action.latency
        delay = 0.0 if self._zero.get(latency, False) else self.sampler.host_delay(latency)
        if not delay and not self._pending:
            self._received(data)
            return
        due = self.loop.time() + delay
        if self._pending:  # a delayed output holds back the later ones
            due = max(due, self._pending[-1][0])
        self._pending.append((due, data))
        self.loop.call_at(due, self._flush)

    def _flush(self) -> None:
        now = self.loop.time()
        pending = self._pending
        while pending and pending[0][0] <= now:
            self._received(pending.popleft()[1])

    def _fire(self, name: str) -> None:
        self._timers.pop(name, None)
        if not self.closed:
            self._apply(self.firmware.timer(name, now=self._now()))

    def _on_net_event(self, event: a.NetEvent) -> None:
        if not self.closed:
            self._apply(self.firmware.network(event))


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
