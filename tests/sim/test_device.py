"""SimulatedModule: firmware + clock + network stack + profile, seen from the serial side."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlab.sim.config import FirmwareConfig
from airlab.sim.device import SimulatedModule
from airlab.sim.profiles import Delay, Profile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.skip("Debian's mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    conf = tmp_path_factory.mktemp("mosq") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.01)  # another process's port: polled with a deadline
    yield port
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def module() -> Iterator[SimulatedModule]:
    with SimulatedModule() as m:
        yield m


def expect(m: SimulatedModule, text: bytes, timeout: float = 5.0) -> bytes:
    out = m.read_until(text, timeout)
    assert out.endswith(text), f"expected {text!r}, got {out!r}"
    return out


# ---------------------------------------------------------------- serial side


def test_fast_path_answer_is_there_when_write_returns(module: SimulatedModule) -> None:
    assert module.write(b"AT\r") == 3
    assert module.in_waiting == 9
    assert module.read(100, timeout=0) == b"AT\r\r\nOK\r\n"
    assert module.in_waiting == 0


def test_read_timeout_semantics(module: SimulatedModule) -> None:
    module.write(b"AT\r")
    assert module.read(3) == b"AT\r"
    t0 = time.monotonic()
    assert module.read(100, timeout=0.05) == b"\r\nOK\r\n"  # partial after the timeout
    assert time.monotonic() - t0 >= 0.05
    assert module.read(1, timeout=0) == b""
    assert module.read_available(timeout=0.01) == b""
    module.write(b"ATI\r")
    module.reset_input_buffer()
    assert module.in_waiting == 0


def test_blocking_read_wakes_on_output(module: SimulatedModule) -> None:
    got = []
    reader = threading.Thread(target=lambda: got.append(module.read(9, timeout=None)))
    reader.start()
    module.write(b"AT\r")
    reader.join(5)
    assert got == [b"AT\r\r\nOK\r\n"]


def test_boot_urcs_hidden_by_default_and_shown_on_reset() -> None:
    with SimulatedModule() as m:
        assert m.in_waiting == 0  # a board powered on long ago
        m.reset()
        out = expect(m, b"+NITZ: ")
        assert out.startswith(b"\r\nRDY\r\n\r\n^MODE: 17,17\r\n")
    with SimulatedModule(boot_urcs=True) as m:
        assert m.read_available().startswith(b"\r\nRDY\r\n")


def test_delays_keep_the_order_of_the_line() -> None:
    profile = Profile("slow-answer", host={"answer": Delay(0.05)})
    with SimulatedModule(profile=profile) as m:
        t0 = time.monotonic()
        m.write(b"AT\r")
        m.write(b"ATI\r")
        assert m.read(3, timeout=1) == b"AT\r"  # the echo is not delayed
        out = expect(m, b"OK\r\n")
        assert out == b"\r\nOK\r\n" and time.monotonic() - t0 >= 0.05
        # the second echo came after the first (delayed) answer, not before it
        assert expect(m, b"OK\r\n").startswith(b"ATI\r")


def test_timers_drive_the_firmware() -> None:
    config = FirmwareConfig(reboot_seconds=0.05)
    with SimulatedModule(config=config) as m:
        m.write(b"AT+RESET\r")
        expect(m, b"OK\r\n")
        t0 = time.monotonic()
        expect(m, b"RDY\r\n")
        assert time.monotonic() - t0 >= 0.03
        expect(m, b"+NITZ: ")


def test_reset_timing_of_a_profile() -> None:
    profile = Profile("boot", host={"register": Delay(0.15)})
    config = FirmwareConfig(reboot_seconds=0.1)
    with SimulatedModule(profile=profile, config=config) as m:
        t0 = time.monotonic()
        m.reset()
        expect(m, b"RDY\r\n")
        t_rdy = time.monotonic() - t0
        expect(m, b"+E_UTRAN Service\r\n")
        t_reg = time.monotonic() - t0
    assert 0.1 <= t_rdy < t_reg and t_reg >= 0.15


def test_baud_pacing() -> None:
    with SimulatedModule(baudrate=1200) as m:  # 120 bytes/s
        t0 = time.monotonic()
        m.write(b"AT\r")
        assert m.read(9, timeout=2) == b"AT\r\r\nOK\r\n"
        assert time.monotonic() - t0 >= 9 / 120 * 0.9


def test_corrupt_next_byte_and_output_hook(module: SimulatedModule) -> None:
    seen: list[bytes] = []
    module.on_output = seen.append
    module.corrupt_next_byte()
    module.write(b"AT\r")
    assert module.read(9, timeout=1) == b"\xc1T\r\r\nOK\r\n"
    module.write(b"AT\r")
    assert module.read(9, timeout=1) == b"AT\r\r\nOK\r\n"
    assert b"".join(seen) == b"\xc1T\r\r\nOK\r\nAT\r\r\nOK\r\n"


def test_sink_diverts_output(module: SimulatedModule) -> None:
    sunk: list[bytes] = []
    module.set_sink(sunk.append)
    module.write(b"AT\r")
    assert sunk == [b"AT\r\r\nOK\r\n"] and module.in_waiting == 0
    module.set_sink(None)
    module.write(b"AT\r")
    assert module.in_waiting == 9


def test_closed_module() -> None:
    m = SimulatedModule()
    m.close()
    m.close()
    assert m.closed
    with pytest.raises(OSError):
        m.write(b"AT\r")
    assert m.read(10, timeout=None) == b""


# ---------------------------------------------------------------- network and faults


def _mqtt_up(m: SimulatedModule, port: int, client_id: str) -> None:
    m.write(f'AT+MCONFIG="{client_id}","",""\r'.encode())
    expect(m, b"OK\r\n")
    m.write(f'AT+MIPSTART="127.0.0.1",{port}\r'.encode())
    expect(m, b"CONNECT OK\r\n")
    m.write(b"AT+MCONNECT=1,60\r")
    expect(m, b"CONNACK OK\r\n")


def test_drop_link_prints_closed_and_delay_next_urc(
    module: SimulatedModule, mosquitto: int
) -> None:
    _mqtt_up(module, mosquitto, "dev-drop")
    module.delay_next_urc(0.2)
    t0 = time.monotonic()
    assert module.drop_link("mqtt") is True
    expect(module, b"\r\nCLOSED\r\n")
    assert time.monotonic() - t0 >= 0.2
    module.write(b"AT+MQTTSTATU\r")
    assert b"+MQTTSTATU :0" in expect(module, b"OK\r\n")
    assert module.drop_link("mqtt") is False


def test_lose_pdp(module: SimulatedModule, mosquitto: int) -> None:
    _mqtt_up(module, mosquitto, "dev-pdp")
    module.lose_pdp()
    expect(module, b"\r\n+CGEV: NW PDN DEACT 1\r\n")
    # lose_pdp scheduled the close on the network loop before this call, which runs on
    # the same loop after it: the link is already closed (no polling)
    assert not module.drop_link("mqtt")
    assert not module.netstack.is_open("mqtt")


def test_network_delays_of_a_profile(mosquitto: int) -> None:
    profile = Profile("net", net={"link_opened": Delay(0.2), "connack": Delay(0.1)})
    with SimulatedModule(profile=profile) as m:
        t0 = time.monotonic()
        m.write(f'AT+MIPSTART="127.0.0.1",{mosquitto}\r'.encode())
        expect(m, b"CONNECT OK\r\n")
        t1 = time.monotonic()
        m.write(b"AT+MCONNECT=1,60\r")
        expect(m, b"CONNACK OK\r\n")
        t2 = time.monotonic()
    assert t1 - t0 >= 0.2 and t2 - t1 >= 0.1


def test_flaky_faults_are_scheduled_from_the_seed() -> None:
    from airlab.sim.profiles import Faults

    profile = Profile("pdp-storm", faults=Faults(pdp_loss_interval=0.02))
    with SimulatedModule(profile=profile, seed=1) as m:
        expect(m, b"+CGEV: NW PDN DEACT 1\r\n")
        # a fault counts itself before it schedules the next one: at the second loss
        # the first is counted (no polling)
        expect(m, b"+CGEV: NW PDN DEACT 1\r\n")
        assert m.stats["fault_pdp_loss"] >= 1


def test_wildcard_mpub_is_sent_and_the_broker_close_is_reported(mosquitto: int) -> None:
    """Issue 8 item 5: `+`/`#` in an AT+MPUB topic: OK (the PUBLISH goes out as given), the
    broker closes the connection (MQTT 3.1.1 §3.3.2.1), the module prints CLOSED; later
    commands behave as after any server-side close, and a new session publishes QoS1."""
    with SimulatedModule() as m:
        m.write(b"ATE0\r")
        expect(m, b"OK\r\n")
        _mqtt_up(m, mosquitto, "dev-wild")
        m.write(b'AT+MPUB="a/+/b",1,0,"x"\r')
        assert m.read_until(b"CLOSED\r\n", 5) == b"\r\nOK\r\n\r\nCLOSED\r\n"
        m.write(b"AT+MQTTSTATU\r")
        assert expect(m, b"OK\r\n") == b"\r\n+MQTTSTATU :0\r\n\r\nOK\r\n"
        m.write(b'AT+MPUB="a/b",1,0,"x"\r')
        assert expect(m, b"767\r\n") == b"\r\n+CME ERROR: 767\r\n"
        m.write(b"AT+MIPCLOSE\r")
        assert expect(m, b"767\r\n") == b"\r\n+CME ERROR: 767\r\n"
        _mqtt_up(m, mosquitto, "dev-wild")
        for _ in range(2):  # no stale in-flight QoS1: each publish gets its PUBACK
            m.write(b'AT+MPUB="a/b",1,0,"x"\r')
            assert m.read_until(b"PUBACK\r\n", 5) == b"\r\nOK\r\n\r\nPUBACK\r\n"
        m.write(b'AT+MPUB="a/#",0,0,"x"\r')
        assert m.read_until(b"CLOSED\r\n", 5) == b"\r\nOK\r\n\r\nCLOSED\r\n"


# ---------------------------------------------------------------- the clock (issue 8 item 7)


@pytest.mark.parametrize("live_timer", [False, True])
def test_cancelled_timers_leave_the_clock(live_timer: bool) -> None:
    """Each AT+HTTPDATA=1,60000 starts a 60 s timer that the data cancels: the clock must
    not keep them (it held one entry per cycle until they expired).  With a live timer
    due earlier, the cancelled entries are not at the top and the heap is compacted."""
    config = FirmwareConfig(echo=False, register_seconds=30)
    cycles = 20_000
    with SimulatedModule(config=config) as m:
        m.write(b"AT+HTTPINIT\r")
        if live_timer:
            m.write(b"AT+CFUN=0\r")
            m.write(b"AT+CFUN=1\r")  # the registration timer: due in 30 s, before 60 s
        assert m.read_available().endswith(b"\r\nOK\r\n")
        most = 0
        for i in range(cycles):
            m.write(b"AT+HTTPDATA=1,60000\r")
            m.write(b"x")
            if i % 97 == 0:
                most = max(most, m.scheduled)
        out = m.read_available()
        assert out.count(b"\r\nDOWNLOAD\r\n\r\nOK\r\n") == cycles
        assert most <= 66 and m.scheduled <= 66  # live timers + fewer than 64 cancelled
        assert ("register" in m.firmware.pending_timers) is live_timer


def test_scheduler_compaction_keeps_live_calls() -> None:
    from airlab.sim.device import _Scheduler

    sched = _Scheduler("test-clock")
    ran = threading.Event()
    try:
        now = time.monotonic()
        sched.call_at(now + 0.05, ran.set)
        for _ in range(10_000):
            sched.call_at(now + 60, ran.clear).cancel()
        assert len(sched) <= 66
        assert ran.wait(5)
    finally:
        sched.close()
    sched = _Scheduler("test-clock")
    try:
        sched.call_at(time.monotonic() + 60, ran.clear).cancel()
        assert len(sched) == 0  # the next one due, cancelled: gone at once
    finally:
        sched.close()
