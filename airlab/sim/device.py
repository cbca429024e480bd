"""The simulated Air780EP as a serial peer: firmware + network stack + clock + profile.

:class:`SimulatedModule` is what sits at the other end of the serial line.  The host
writes bytes (:meth:`~SimulatedModule.write`) and reads the module's output
(:meth:`~SimulatedModule.read`, :meth:`~SimulatedModule.read_available`,
:attr:`~SimulatedModule.in_waiting`); ports (the ``airsim://`` pyserial URL, the pty and
TCP bridges) are thin wrappers around these calls.

Inside, one lock protects the pure :class:`~airlab.sim.firmware.Firmware`.  Its actions
are carried out in order: bytes for the host go to the output buffer after the delay of
their latency category in the :mod:`profile <airlab.sim.profiles>` (a delayed output
holds back the later ones, so the order on the line is the firmware's order), timers
and delayed outputs run on a scheduler thread (a heap of due times on the monotonic
clock; a cancelled or restarted timer leaves it: :attr:`SimulatedModule.scheduled`),
network requests go to the :class:`~airlab.sim.netstack.NetStack` (started on the first
request), whose events come back into the firmware.

Fast path: when the delays are zero and nothing is pending, :meth:`write` runs the
firmware in the caller's thread and the answer is in the output buffer when it returns.

Power-on: by default the module is a board powered on long ago — :meth:`Firmware.boot`
runs at creation but its boot URCs (``RDY``, ``^MODE: 17,17`` ...) are not shown,
unless the profile says ``boot_urcs_at_start`` (or ``boot_urcs=True`` is passed);
:meth:`reset` always shows them.

Fault injection for lessons and tests: :meth:`drop_link` (the server closes the link:
the firmware prints ``CLOSED``), :meth:`lose_pdp`, :meth:`reset`,
:meth:`corrupt_next_byte`, :meth:`delay_next_urc`.

Example:
    >>> with SimulatedModule() as module:  # doctest: +SKIP
    ...     module.write(b"AT\\r")
    ...     module.read_available()
    b'AT\\r\\r\\nOK\\r\\n'
"""

from __future__ import annotations

import collections
import datetime
import heapq
import inspect
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from airlab.sim import actions as a
from airlab.sim import profiles
from airlab.sim.hosts import HostTable
from airlab.sim.netstack import NetStack
from airlab.sim.profiles import Profile, get_profile

__all__ = ["SimulatedModule"]

log = logging.getLogger(__name__)

OutputHook = Callable[[bytes], None]


class _Call:
    """A scheduled call; :meth:`cancel` takes it out of the scheduler."""

    __slots__ = ("args", "cancelled", "fn", "sched")

    def __init__(self, sched: _Scheduler, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.sched: _Scheduler | None = sched  # None once run, cancelled or dropped
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run it (no effect once it has run)."""
        sched = self.sched
        if sched is not None:
            sched._cancel(self)


class _Scheduler:
    """Calls functions at monotonic due times on one background thread (started lazily).

    A cancelled call leaves the heap at once when it is the next one due, else when the
    cancelled entries make up more than half of the heap (the heap is then rebuilt
    without them, as asyncio does): the heap stays proportional to the live calls however
    many timers are started and cancelled (issue 8 item 7: 200,000 ``AT+HTTPDATA``
    windows of 60 s used to keep 200,000 entries until they expired).
    """

    _COMPACT_MIN = 64  # fewer cancelled entries than this are left to expire

    def __init__(self, name: str) -> None:
        self._name = name
        self._heap: list[tuple[float, int, _Call]] = []
        self._cancelled = 0  # cancelled entries still in the heap
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def __len__(self) -> int:
        """Entries held in the heap, cancelled ones not yet removed included."""
        return len(self._heap)

    def call_at(self, due: float, fn: Callable[..., Any], *args: Any) -> _Call:
        call = _Call(self, fn, args)
        with self._cond:
            if self._closed:
                call.sched = None
                return call
            heapq.heappush(self._heap, (due, next(self._seq), call))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            else:
                self._cond.notify()
        return call

    def _cancel(self, call: _Call) -> None:
        with self._cond:
            if call.sched is None:  # ran, or was cancelled or dropped meanwhile
                return
            call.sched = None
            call.cancelled = True
            self._cancelled += 1
            if self._heap[0][2] is call:
                self._drop_cancelled_top()
            elif self._cancelled >= self._COMPACT_MIN and 2 * self._cancelled > len(self._heap):
                self._heap = [e for e in self._heap if not e[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _drop_cancelled_top(self) -> None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled -= 1

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    self._drop_cancelled_top()
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._closed:
                    return
                _, _, call = heapq.heappop(self._heap)
                call.sched = None
            try:
                call.fn(*call.args)
            except Exception:
                log.exception("simulator scheduler: %r failed", call.fn)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for _, _, call in self._heap:
                call.sched = None
            self._heap.clear()
            self._cancelled = 0
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class SimulatedModule:
    """A simulated Air780EP reachable as a byte stream (see the module docstring).

    ``config``: a :class:`~airlab.sim.config.FirmwareConfig`; ``profile``: a profile name
    or :class:`~airlab.sim.profiles.Profile`; ``seed``: seeds its delays and faults;
    ``hosts``: the simulator's DNS (:class:`~airlab.sim.hosts.HostTable`, default: dotted
    IPv4 only); ``baudrate``: pace the output at ``baudrate / 10`` bytes/s (default: the
    profile's, usually none); ``boot_urcs``: show the boot URCs at creation (default: the
    profile's ``boot_urcs_at_start``, False for the built-in ones); ``firmware``: an
    already built firmware object (tests).
    """

    def __init__(
        self,
        *,
        config: Any = None,
        profile: str | Profile = "instant",
        seed: int | str = 0,
        hosts: HostTable | None = None,
        baudrate: int | None = None,
        boot_urcs: bool | None = None,
        firmware: Any = None,
        tls_verify: bool = False,
        cafile: str | None = None,
    ) -> None:
        self.profile = get_profile(profile)
        self.seed = seed
        self.sampler = self.profile.sampler(seed)
        self.hosts = hosts if hosts is not None else HostTable()
        if firmware is None:
            from airlab.sim.firmware import Firmware

            firmware = Firmware(config)
        self.firmware = firmware
        self._timer_takes_now = _accepts(firmware.timer, "now")
        baud = baudrate if baudrate is not None else self.profile.baudrate
        self.baudrate = baud
        self._rate = baud / 10.0 if baud else None
        self._instant = self.profile.instant and self._rate is None
        self._zero = {c: self.profile.host_zero(c) for c in profiles.HOST_CATEGORIES}
        self._boot_shift = 0.0  # reset(): the reboot time the firmware uses for AT+RESET

        self._lock = threading.Lock()
        self._readable = threading.Condition(self._lock)
        self._out = bytearray()
        self._cancel = False  # cancel_read(): the next wait for output returns
        self._pending: collections.deque[tuple[float, bytes]] = collections.deque()
        self._line_free = 0.0  # monotonic time the paced line is free again
        self._timers: dict[str, tuple[int, _Call]] = {}  # name -> (generation, call)
        self._timer_seq = itertools.count(1)
        self._sched = _Scheduler("airlab-sim-clock")
        self._net: Any = None
        self._tls_verify, self._cafile = tls_verify, cafile
        self._sink: OutputHook | None = None
        self.on_output: OutputHook | None = None
        self._corrupt = 0
        self._urc_extra = 0.0
        self._batch: bytearray | None = None
        self._closed = False
        self.stats = collections.Counter[str]()

        show = self.profile.boot_urcs_at_start if boot_urcs is None else boot_urcs
        with self._lock:
            actions = self.firmware.boot(_now())
            if not show:
                actions = [
                    x
                    for x in actions
                    if not (isinstance(x, a.ToHost) and x.latency in ("boot", "register"))
                ]
            self._apply(actions)
        self._start_faults()

    # ---------------------------------------------------------------- host side

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Bytes from the host to the module (returns the count, like a serial port)."""
        if self._closed:
            raise OSError("simulated module is closed")
        data = bytes(data)
        if not data:
            return 0
        with self._lock:
            self.stats["rx_bytes"] += len(data)
            self._apply(self.firmware.receive(data))
        return len(data)

    def read(self, size: int = 1, timeout: float | None = None) -> bytes:
        """Up to ``size`` output bytes: waits until ``size`` are there, ``timeout``
        seconds pass (None: forever, 0: no wait) or :meth:`cancel_read` is called —
        pyserial's ``read`` semantics."""
        with self._readable:
            out = self._out
            if len(out) < size and timeout != 0 and not self._closed:
                if timeout is None:
                    while len(out) < size and not self._closed and not self._cancelled():
                        self._readable.wait()
                else:
                    deadline = time.monotonic() + timeout
                    while len(out) < size and not self._closed and not self._cancelled():
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._readable.wait(left)
            if len(out) <= size:
                data = bytes(out)
                out.clear()
            else:
                data = bytes(out[:size])
                del out[:size]
            return data

    def read_available(self, timeout: float = 0.0) -> bytes:
        """All output bytes available now, waiting up to ``timeout`` for the first one."""
        with self._readable:
            if not self._out and timeout and not self._closed:
                deadline = time.monotonic() + timeout
                while not self._out and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._readable.wait(left)
            data = bytes(self._out)
            self._out.clear()
            return data

    def read_until(self, expected: bytes, timeout: float = 5.0) -> bytes:
        """Output up to and including ``expected`` (or what came before the deadline)."""
        deadline = time.monotonic() + timeout
        with self._readable:
            while True:
                i = self._out.find(expected)
                if i >= 0:
                    end = i + len(expected)
                    data = bytes(self._out[:end])
                    del self._out[:end]
                    return data
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    data = bytes(self._out)
                    self._out.clear()
                    return data
                self._readable.wait(left)

    def wait_readable(self, timeout: float | None = None) -> bool:
        """Wait, without reading, until output is ready to read (True), ``timeout``
        seconds pass (None: forever), :meth:`cancel_read` is called or the module closes
        (False when nothing is there): a reader thread blocks here instead of polling.

        >>> with SimulatedModule() as module:
        ...     module.wait_readable(0), module.write(b"AT\\r"), module.wait_readable()
        (False, 3, True)
        """
        with self._readable:
            if not self._out and timeout != 0:
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._out and not self._closed and not self._cancelled():
                    if deadline is None:
                        self._readable.wait()
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._readable.wait(left)
            return bool(self._out)

    def cancel_read(self) -> None:
        """Wake the :meth:`read` or :meth:`wait_readable` in progress (or the next one, as
        pyserial's ``cancel_read``): it returns what is there."""
        with self._readable:
            self._cancel = True
            self._readable.notify_all()

    def _cancelled(self) -> bool:
        """Consume a pending :meth:`cancel_read` (lock held)."""
        if self._cancel:
            self._cancel = False
            return True
        return False

    @property
    def in_waiting(self) -> int:
        """Output bytes ready to read."""
        return len(self._out)

    def reset_input_buffer(self) -> None:
        """Discard the output not read yet (the host's input buffer)."""
        with self._lock:
            self._out.clear()

    def set_sink(self, sink: OutputHook | None) -> None:
        """Divert the output to ``sink(bytes)`` instead of the read buffer (bridges).

        The sink is called in order, with the module's lock held: it must not block nor
        call back into the module.  ``None`` restores buffering.
        """
        with self._lock:
            self._sink = sink

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop the clock and the network stack; readers return what is left."""
        if self._closed:
            return
        self._closed = True
        self._sched.close()
        if self._net is not None:
            self._net.close()
        with self._readable:
            self._readable.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> SimulatedModule:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SimulatedModule(profile={self.profile.name!r}, seed={self.seed!r})"

    # ---------------------------------------------------------------- fault injection

    def drop_link(self, link: str = "mqtt") -> bool:
        """The server side closes ``link`` (the firmware then prints ``CLOSED``).

        Returns whether the link was open.
        """
        if self._net is None:
            return False
        return self._net.drop_link(link)

    def lose_pdp(self) -> None:
        """The network deactivates the PDP context (``+CGEV: NW PDN DEACT 1``): every
        socket dies silently; the firmware decides what the host sees."""
        if self._net is not None:
            self._net.close_links()
        with self._lock:
            self._apply(self.firmware.lose_pdp())

    def reset(self) -> None:
        """Power-cycle the module: links and timers are gone, the boot URCs follow."""
        if self._net is not None:
            self._net.close_links()
        with self._lock:
            for _, call in self._timers.values():
                call.cancel()
            self._timers.clear()
            if not self._instant:
                self._boot_shift = float(getattr(self.firmware.config, "reboot_seconds", 0.0))
            try:
                self._apply(self.firmware.reset(_now()))
            finally:
                self._boot_shift = 0.0

    def corrupt_next_byte(self) -> None:
        """Flip the high bit of the next byte sent to the host (line noise)."""
        with self._lock:
            self._corrupt += 1

    def delay_next_urc(self, seconds: float) -> None:
        """Hold the next network-caused URC back by ``seconds`` more."""
        with self._lock:
            self._urc_extra += seconds

    @property
    def scheduled(self) -> int:
        """Entries in the module's clock: pending timers and delayed outputs (a cancelled
        timer may count until the heap is next compacted, at most as many as live ones)."""
        return len(self._sched)

    @property
    def netstack(self) -> Any:
        """The network stack (started on first use)."""
        return self._network()

    # ---------------------------------------------------------------- internals

    def _network(self) -> Any:
        if self._net is None:
            self._net = NetStack(
                self._on_net_event,
                self.hosts,
                sampler=None if self.profile.instant else self.sampler,
                tls_verify=self._tls_verify,
                cafile=self._cafile,
            )
            self._net.start()
        return self._net

    def _apply(self, actions: list[Any]) -> None:
        """Carry out firmware actions in order (lock held).

        Bytes that go out at once are gathered and emitted in one piece at the end (one
        write to a bridge instead of several); anything delayed is emitted later by the
        scheduler, which needs this lock, so the order on the line holds.
        """
        self._batch = bytearray()
        try:
            self._apply_actions(actions)
        finally:
            batch, self._batch = self._batch, None
            if batch:
                self._emit(bytes(batch))

    def _apply_actions(self, actions: list[Any]) -> None:
        for action in actions:
            if type(action) is a.ToHost:
                self._to_host(action)
            elif isinstance(action, a.StartTimer):
                gen = next(self._timer_seq)
                due = time.monotonic() + max(0.0, action.seconds)
                call = self._sched.call_at(due, self._fire_timer, action.name, gen)
                old = self._timers.get(action.name)
                self._timers[action.name] = (gen, call)
                if old is not None:  # a restart: the previous expiry leaves the heap
                    old[1].cancel()
            elif isinstance(action, a.CancelTimer):
                old = self._timers.pop(action.name, None)
                if old is not None:
                    old[1].cancel()
            elif isinstance(action, a.NetRequest):
                if not self._closed:
                    self._network().submit(action)
            elif isinstance(action, a.ToHost):
                self._to_host(action)
            else:
                log.warning("unknown firmware action %r", action)

    def _to_host(self, action: a.ToHost) -> None:
        data = action.data
        if not data:
            return
        if self._instant and not self._pending and not self._urc_extra:
            self._batch += data
            return
        latency = action.latency
        if latency == "boot" and b"RDY" not in data:
            latency = "register"  # the registration URCs after RDY
        delay = 0.0 if self._zero.get(latency, False) else self.sampler.host_delay(latency)
        if latency in ("boot", "register"):
            delay += self._boot_shift
        if latency == "urc" and self._urc_extra:
            delay += self._urc_extra
            self._urc_extra = 0.0
        if not delay and not self._pending and self._rate is None:
            self._batch += data
            return
        now = time.monotonic()
        due = now + delay
        if self._pending:
            due = max(due, self._pending[-1][0])
        if self._rate is not None:
            due = max(due, self._line_free) + len(data) / self._rate
            self._line_free = due
        self._pending.append((due, data))
        self._sched.call_at(due, self._flush)

    def _flush(self) -> None:
        with self._lock:
            now = time.monotonic()
            pending = self._pending
            while pending and pending[0][0] <= now:
                self._emit(pending.popleft()[1])

    def _emit(self, data: bytes) -> None:
        """Bytes onto the line (lock held)."""
        if self._corrupt:
            n = min(self._corrupt, len(data))
            data = bytes(b ^ 0x80 for b in data[:n]) + data[n:]
            self._corrupt -= n
        self.stats["tx_bytes"] += len(data)
        sink = self._sink
        if sink is not None:
            sink(data)
        else:
            self._out += data
            self._readable.notify_all()
        hook = self.on_output
        if hook is not None:
            try:
                hook(data)
            except Exception:
                log.exception("on_output hook failed")

    def _fire_timer(self, name: str, gen: int) -> None:
        with self._lock:
            entry = self._timers.get(name)
            if self._closed or entry is None or entry[0] != gen:
                return
            del self._timers[name]
            if self._timer_takes_now:
                actions = self.firmware.timer(name, now=_now())
            else:
                actions = self.firmware.timer(name)
            self._apply(actions)

    def _on_net_event(self, event: a.NetEvent) -> None:
        with self._lock:
            if self._closed:
                return
            self._apply(self.firmware.network(event))

    def _start_faults(self) -> None:
        for kind in ("link_drop", "pdp_loss"):
            self._schedule_fault(kind)

    def _schedule_fault(self, kind: str) -> None:
        wait = self.sampler.next_fault(kind)
        if wait is not None and not self._closed:
            self._sched.call_at(time.monotonic() + wait, self._fault, kind)

    def _fault(self, kind: str) -> None:
        if self._closed:
            return
        if kind == "link_drop":
            self.drop_link("mqtt")
        else:
            self.lose_pdp()
        self.stats["fault_" + kind] += 1
        self._schedule_fault(kind)


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
