"""The reader blocks on ports that let it (no polling while idle) and still sees what
arrives unasked; close() wakes it at once."""

from __future__ import annotations

import threading
from pathlib import Path

import serial

from airlab.at.events import Urc
from airlab.session import ModemSession
from airlab.sim.bridges import PtyBridge
from airlab.sim.device import SimulatedModule

IDLE = 0.3  # seconds of silence: a 0.05 s polling reader would read about 6 times


class _CountingReads:
    """Counts the calls of a port's ``read`` (wrapped in place)."""

    def __init__(self, port: serial.SerialBase) -> None:
        self.calls = 0
        inner = port.read

        def read(size: int = 1) -> bytes:
            self.calls += 1
            return inner(size)

        port.read = read  # type: ignore[method-assign]


def test_airsim_reader_does_not_poll() -> None:
    port = serial.serial_for_url("airsim://?profile=instant", timeout=1)
    reads = _CountingReads(port)
    with ModemSession(port) as s:
        assert s.command("AT").ok  # the caller read the answer itself
        before = reads.calls
        threading.Event().wait(IDLE)  # silence on the line (nothing to wait for)
        assert reads.calls == before
        assert s.reader_thread.is_alive()
    assert not s.reader_thread.is_alive()  # close() woke it (cancel_read)


def test_airsim_urc_while_idle_reaches_the_callback() -> None:
    with ModemSession("airsim://?profile=instant") as s:
        got = threading.Event()
        seen: list[str] = []

        def on_rdy(urc: Urc) -> None:
            seen.append(urc.name)
            got.set()

        s.on_urc("RDY", on_rdy)
        s.port.module.reset()  # the boot URCs arrive with no command waiting
        assert got.wait(5)
        assert seen == ["RDY"]
        assert any(isinstance(e, Urc) and e.name == "RDY" for e in s.events)


def test_cancel_read_wakes_a_waiting_reader() -> None:
    with SimulatedModule() as module:
        result: list[bool] = []
        started = threading.Event()

        def wait() -> None:
            started.set()
            result.append(module.wait_readable(None))

        t = threading.Thread(target=wait)
        t.start()
        started.wait(5)
        module.cancel_read()  # before or during the wait: it returns either way
        t.join(5)
        assert not t.is_alive() and result == [False]
        module.write(b"AT\r")
        assert module.wait_readable(0) and module.read(100, 0) == b"AT\r\r\nOK\r\n"


def test_pty_reader_blocks_and_close_cancels_it(tmp_path: Path) -> None:
    with SimulatedModule() as module, PtyBridge(module, tmp_path / "sim.pty") as bridge:
        port = serial.Serial(str(bridge.path), timeout=2)
        reads = _CountingReads(port)
        s = ModemSession(port)
        try:
            assert port.timeout is None  # the reader blocks in read(); close() cancels it
            assert s.command("AT").ok
            before = reads.calls
            threading.Event().wait(IDLE)
            assert reads.calls - before <= 1  # the read in progress, no polling
        finally:
            s.close()
        assert not s.reader_thread.is_alive() and not port.is_open


def test_dispatcher_thread_starts_with_the_first_subscription() -> None:
    with ModemSession("airsim://?profile=instant") as s:
        got = threading.Event()
        s.on_urc("RDY", lambda urc: got.set())
        assert s.dispatcher_thread.is_alive()
        s.port.module.reset()
        assert got.wait(5)
    s.dispatcher_thread.join(5)
    assert not s.dispatcher_thread.is_alive()


def test_no_dispatcher_thread_without_subscriptions() -> None:
    before = set(threading.enumerate())
    s = ModemSession("airsim://?profile=instant")
    try:
        assert s.command("AT").ok
        started = [t.name for t in threading.enumerate() if t not in before]
        assert started == ["airlab-session-reader"]
    finally:
        s.close()
    late = s.dispatcher_thread  # asked after close: it starts and stops at once
    late.join(5)
    assert not late.is_alive()
