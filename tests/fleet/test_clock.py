"""Simulated time: the clock jumps over idle waits, stands still while a real answer is on
its way, and a simulated run gives the same commands, results and URCs as a real one."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from airlab.fleet import Scenario, run_fleet
from airlab.fleet.clock import VirtualTimeLoop


def test_an_hour_of_timers_takes_no_real_hour() -> None:
    loop = VirtualTimeLoop()
    fired: list[tuple[str, float]] = []
    try:
        start = loop.time()
        for name, delay in (("c", 3000.0), ("a", 10.0), ("b", 600.0)):
            loop.call_later(delay, lambda n=name: fired.append((n, loop.time() - start)))
        began = time.monotonic()
        loop.run_until_complete(asyncio.sleep(3600))
        assert time.monotonic() - began < 2
    finally:
        loop.close()
    assert [(n, round(t)) for n, t in fired] == [("a", 10), ("b", 600), ("c", 3000)]


def test_the_clock_stands_still_while_a_real_answer_is_awaited() -> None:
    """A timer due 1 s (virtual) after a request must not fire before the real answer,
    which takes ~0.3 s of real time: the answer comes first, at virtual time ~0."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_late() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(16)
            time.sleep(0.3)  # the outside world's real latency (a peer, not a test wait)
            conn.sendall(b"pong")

    threading.Thread(target=answer_late, daemon=True).start()
    loop = VirtualTimeLoop()
    order: list[str] = []
    waiting = [True]
    loop.watch(lambda: waiting[0])

    async def exchange() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = loop.time()
        loop.call_later(1.0, order.append, "timer")
        writer.write(b"ping")
        await reader.readexactly(4)
        order.append("answer")
        waiting[0] = False
        took = loop.time() - start
        await asyncio.sleep(2)
        writer.close()
        return took

    try:
        took = loop.run_until_complete(exchange())
    finally:
        loop.close()
        server.close()
    assert order == ["answer", "timer"]
    assert took < 0.05  # virtually at once


def test_simulated_and_real_time_give_the_same_sequence() -> None:
    def sequence(clock: str) -> tuple[list[tuple[str, ...]], dict[str, object]]:
        scenario = Scenario(modems=2, rate=2, duration=2, ramp=0, profile="tutorial",
                            seed=7, clock=clock)  # fmt: skip
        result = run_fleet(scenario)
        cols = ["modem", "name", "qos", "final", "urc", "outcome"]
        rows = result.table[cols].astype(str).itertuples(index=False, name=None)
        return sorted(rows), result.summary

    real, real_summary = sequence("real")
    simulated, sim_summary = sequence("simulated")
    assert simulated == real
    assert sim_summary["published"] == real_summary["published"] == 8
    assert sim_summary["clock"] == "simulated"
    # the profile's PUBACK delay (0.28..0.32 s) is there in both
    for summary in (real_summary, sim_summary):
        assert 280 <= summary["puback_p50_ms"] <= 330  # type: ignore[operator]
