"""Simulated time for a fleet: an asyncio loop whose clock jumps instead of sleeping.

Everything the simulated modems wait for is on their loop's clock: the firmware's timers,
the latency profile's delays (an answer no sooner than request time + sampled delay), the
profile's faults, the host's timeouts and publish schedule. :class:`VirtualTimeLoop`
makes that clock virtual: when nothing is ready to run, no real answer is awaited and the
next timer is due in *t* seconds, the clock moves *t* seconds on at once. A run of an hour
of traffic takes as long as its work.

The network stays real: a modem's request goes over a real socket to the cloud emulator
and its answer takes real time. While one is awaited (:meth:`VirtualTimeLoop.watch`
registers who knows: each :class:`~airlab.sim.netstack.NetStack` of the fleet), the
virtual clock stands still, so the answer arrives "at once" in virtual time and is then
held back to request time + the profile's delay, exactly as in real time when the profile's
delay is longer than the real round trip (true for every profile but ``instant``). Same
seed, same events in the same order, whatever the machine's speed.

A safety valve: when an awaited answer does not come for :data:`STALL` real seconds (a
peer that went silent), the clock moves on anyway, so a timeout in virtual time can fire.

Example:
    >>> import asyncio, time
    >>> loop = VirtualTimeLoop()
    >>> async def an_hour():
    ...     start = loop.time()
    ...     await asyncio.sleep(3600)
    ...     return round(loop.time() - start)
    >>> began = time.monotonic()
    >>> loop.run_until_complete(an_hour()), time.monotonic() - began < 5
    (3600, True)
    >>> loop.close()
"""

from __future__ import annotations

import asyncio
import selectors
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["STALL", "VirtualTimeLoop", "wall_clock"]

#: real seconds an awaited answer may take before the virtual clock moves on regardless
STALL = 5.0
_SLICE = 0.05  # real seconds per wait for an awaited answer (the stall check's grain)


class _Clock:
    def __init__(self) -> None:
        self.now = time.monotonic()  # starts where the real clock is: stamps look alike
        self.busy: list[Callable[[], bool]] = []
        self.lock = threading.Lock()

    def awaiting(self) -> bool:
        with self.lock:
            checks = list(self.busy)
        return any(check() for check in checks)


class _VirtualSelector(selectors.BaseSelector):
    """The loop's selector: waits for real I/O only while some is awaited."""

    def __init__(self, clock: _Clock) -> None:
        self._real = selectors.DefaultSelector()
        self._clock = clock
        self._stalled_since: float | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or (timeout is not None and timeout <= 0):
            self._stalled_since = None
            return ready
        if self._clock.awaiting():
            wait = _SLICE if timeout is None else min(_SLICE, timeout)
            ready = self._real.select(wait)
            if ready:
                self._stalled_since = None
                return ready
            now = time.monotonic()
            if self._stalled_since is None:
                self._stalled_since = now
            if now - self._stalled_since < STALL or timeout is None:
                return []
        self._stalled_since = None
        if timeout is None:  # nothing scheduled: only another thread can bring work
            return self._real.select(_SLICE)
        self._clock.now += timeout  # nothing to wait for: the next timer is due now
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated time (see the module docstring)."""

    def __init__(self) -> None:
        self._virtual = _Clock()
        super().__init__(_VirtualSelector(self._virtual))

    def time(self) -> float:
        return self._virtual.now

    @property
    def simulated(self) -> bool:
        """True: this loop's clock is simulated (the fleet checks it)."""
        return True

    def watch(self, awaiting: Callable[[], bool]) -> Callable[[], None]:
        """Hold the clock while ``awaiting()`` is true (a real answer is on its way);
        returns a function that stops watching."""
        with self._virtual.lock:
            self._virtual.busy.append(awaiting)

        def unwatch() -> None:
            with self._virtual.lock:
                if awaiting in self._virtual.busy:
                    self._virtual.busy.remove(awaiting)

        return unwatch


def wall_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """Epoch seconds that follow ``loop``'s clock from now on (on a
    :class:`VirtualTimeLoop`, simulated time): what the emulator's rules and logs read
    when they run on a fleet's loop.

    Example:
        >>> loop = VirtualTimeLoop()
        >>> wall = wall_clock(loop)
        >>> start = wall()
        >>> loop.run_until_complete(asyncio.sleep(3600))
        >>> round(wall() - start)
        3600
        >>> loop.close()
    """
    since, epoch = loop.time(), time.time()
    return lambda: epoch + (loop.time() - since)
