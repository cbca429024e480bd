"""What the instructor's view costs with a class of 60 (issue 10: "runs for a class of 60
without slowing the lessons").

Measured in one run, side by side:

* a refresh of :class:`~airlab.classroom.ClassProgress` after each student published once
  more (60 new message rows), against a baseline that re-reads the whole history every
  time (a fresh ``ClassProgress``), over a registry file holding ``--history`` messages
  per seat;
* rendering the dashboard's table (``render_table_html``) for 60 seats;
* the lessons' side: QoS1 publishes through the AT path (session → simulated module →
  emulator) while a dashboard refreshes every ``--interval`` seconds on the same
  registry, against the same publishes with no dashboard (p50/p99 PUBACK latency).

Run: ``.venv/bin/python benchmarks/bench_dashboard.py [--seats 60] [--history 500]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airlab.classroom import ClassProgress, create_class, numbered_seats
from airlab.cloud.model import ConnectionEvent, DeviceRef, MessageRecord
from airlab.cloud.registry import Registry
from airlab.cloud.service import CloudEmulator
from airlab.lesson import Identity
from airlab.session import ModemSession, recipes
from airlab.widgets.dashboard import render_table_html


def fill(reg: Registry, cards, history: int) -> None:  # type: ignore[no-untyped-def]
    now = time.time() - 3600
    for card in cards:
        ref = DeviceRef(card.product_key, card.device_name)
        reg.log_connection(ConnectionEvent(now, "mqtt", "connect", True, ref, "c"))
        reg.log_connection(ConnectionEvent(now, "mqtt", "subscribe", True, ref, "c"))
        for i in range(history):
            topic = f"/{card.product_key}/{card.device_name}/user/update"
            reg.log_message(MessageRecord(now + i, "up", topic, 1, b'{"t":21.5}', True, ref, "c"))
    reg.flush(timeout=120)


def tick(reg: Registry, cards) -> None:  # type: ignore[no-untyped-def]
    for card in cards:
        ref = DeviceRef(card.product_key, card.device_name)
        topic = f"/{card.product_key}/{card.device_name}/user/update"
        reg.log_message(MessageRecord(time.time(), "up", topic, 1, b'{"t":21.6}', True, ref, "c"))
    reg.flush()


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return statistics.median(best)


def refresh_costs(seats: int, history: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "class.db"
        writer = Registry(db)  # the service's side
        room = create_class(writer, numbered_seats(seats), name="bench")
        fill(writer, room.cards, history)
        reader = Registry(db)  # the dashboard's side: its own connection, as in another process
        progress = ClassProgress(reader, "bench")
        t0 = time.perf_counter()
        progress.refresh()
        first = time.perf_counter() - t0
        incremental, naive = [], []
        for _ in range(repeat):
            tick(writer, room.cards)
            t0 = time.perf_counter()
            progress.refresh()
            incremental.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ClassProgress(reader, "bench").refresh()
            naive.append(time.perf_counter() - t0)
        render = timed(lambda: render_table_html(progress), repeat)
        rows = history * seats
        inc, full = statistics.median(incremental), statistics.median(naive)
        print(f"class of {seats}, {rows:,} messages of history, {seats} new per refresh:")
        print(f"  first refresh (whole history)   {first * 1e3:8.1f} ms")
        print(f"  refresh, incremental            {inc * 1e3:8.2f} ms")
        print(f"  refresh, re-reading everything  {full * 1e3:8.2f} ms   (baseline)")
        print(f"  ratio incremental / baseline    {inc / full:8.3f}")
        print(f"  render the table (HTML)         {render * 1e3:8.2f} ms")
        reader.close()
        writer.close()


def publish_latency(count: int, board: bool, interval: float, seats: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        cloud = CloudEmulator(Path(tmp) / "class.db").start()
        room = create_class(cloud.registry, numbered_seats(seats), name="bench")
        fill(cloud.registry, room.cards, 100)
        card = room.cards[0]
        ep = cloud.write_endpoints(Path(tmp) / "ep.json")
        stop = threading.Event()
        thread = None
        if board:
            reader = Registry(Path(tmp) / "class.db")
            progress = ClassProgress(reader, "bench", online=cloud.online_devices)

            def loop() -> None:
                while not stop.wait(interval):
                    progress.refresh()
                    render_table_html(progress)

            thread = threading.Thread(target=loop, daemon=True)
            thread.start()
        session = ModemSession(f"airsim://?profile=instant&imei={card.device_name}&cloud={ep}")
        recipes.attach(session, apn="CMIOT")
        ident = Identity(card.product_key, card.device_name, card.device_secret)
        recipes.direct_mqtt(session, **ident.device())
        topic = ident.topic("user/update")
        latencies = []
        for i in range(count):
            r = session.publish(topic, f'{{"n":{i}}}', 1)
            latencies.append(float(r.urc_latency or 0.0))
            if i % 8 == 7:
                time.sleep(0.1)  # stay under the platform's 10 QoS1/s per device
        session.close()
        stop.set()
        if thread is not None:
            thread.join()
        cloud.stop()
        return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seats", type=int, default=60)
    parser.add_argument("--history", type=int, default=500, help="messages per seat already logged")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--publishes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.2, help="dashboard refresh (s)")
    args = parser.parse_args()
    refresh_costs(args.seats, args.history, args.repeat)
    print(f"lesson side: {args.publishes} QoS1 publishes through the AT path")
    for label, board in (("no dashboard", False), (f"dashboard every {args.interval:g} s", True)):
        lat = sorted(publish_latency(args.publishes, board, args.interval, args.seats))
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]
        print(f"  {label:28} PUBACK p50 {p50 * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms")


if __name__ == "__main__":
    main()
