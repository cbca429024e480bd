"""``airlab class ...``: a class of students, each with a device of their own.

* ``create`` adds a product and one device per student to the registry (seats
  ``01``…``NN`` from ``--students``, or the ids and names of a ``--roster`` CSV) and
  writes the handouts to ``--out``: ``index.html`` (one printed page per student),
  ``seat-<seat>.html``, ``seat-<seat>.json`` (for a student's own laptop) and
  ``roster.csv``; secrets stay in those files (0600), never on the terminal;
* ``handouts`` writes them again for an existing class;
* ``list`` shows the classes and their seats;
* ``room-file`` writes what a student's own laptop needs to use the room's emulator
  (``airlab cloud serve --host 0.0.0.0 --db class.db``) over the network: its addresses,
  its CA certificate and a new *class token* (0600; not the admin token, not the
  registry's path). ``open_lesson(seat="seat-07.json", cloud="room.json")`` (or
  ``AIRLAB_CLOUD=room.json``) then reads the logs, adds devices and publishes through the
  emulator's admin API, for the class's product only (docs/cloud.md "Class tokens").
  Each run adds a token; earlier ones stay valid unless ``--revoke-others``;
* ``watch`` is the instructor's live view in a terminal: every seat's progress
  (online, attached, logged in, subscribed, published, received) and latest refusal,
  and the class's newest messages; ``--once`` prints it once, ``--json`` as JSON lines.

``--db`` defaults to the registry ``make lab`` keeps (``~/.local/share/airlab/lab.db``);
a service running on it sees the new class at once.

Example:
    $ airlab class create --students 30 --out handouts/
    $ airlab class room-file --out handouts/room.json
    $ airlab class watch
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from airlab.cli.parsers import command_group
from airlab.errors import UsageError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``class`` group to the ``airlab`` command's subparsers.

    Example:
        >>> parser = argparse.ArgumentParser(prog="airlab")
        >>> register(parser.add_subparsers())
        >>> args = parser.parse_args(["class", "create", "--students", "3", "--out", "h"])
        >>> args.students, args.name
        ('3', 'class')
    """
    group = command_group(
        subparsers,
        "class",
        help="a class of students: a device per student, handouts, the instructor's view",
        description="Classroom mode: create a class, write its handouts, watch its progress.",
        dest="class_command",
    )
    db_help = "registry file (default: the one 'make lab' keeps, ~/.local/share/airlab/lab.db)"

    create = group.add_parser(
        "create",
        help="a product and one device per student, and their handouts",
        description=(
            "Create a class: a product like the tutorial's and one device per seat (seats "
            "01..N, or the ids and names of a roster CSV), and write one printable page and "
            "one seat file per student to --out."
        ),
    )
    create.add_argument("--db", help=db_help)
    create.add_argument("--students", metavar="N", help="number of students (seats 01..N)")
    create.add_argument(
        "--roster", metavar="CSV", help="students' ids and names (header seat/id/学号, name/姓名)"
    )
    create.add_argument("--out", metavar="DIR", required=True, help="folder for the handouts")
    create.add_argument("--name", default="class", help="class name (default: class)")
    create.add_argument("--product-key", help="the class's ProductKey (default: a fresh one)")
    create.add_argument(
        "--endpoints-file", help="a running emulator's endpoints, printed on the handouts"
    )
    create.set_defaults(func=_create)

    handouts = group.add_parser("handouts", help="write an existing class's handouts again")
    handouts.add_argument("--db", help=db_help)
    handouts.add_argument("--name", default=None, help="class name (default: the newest)")
    handouts.add_argument("--out", metavar="DIR", required=True, help="folder for the handouts")
    handouts.add_argument("--endpoints-file", help="a running emulator's endpoints file")
    handouts.set_defaults(func=_handouts)

    listing = group.add_parser("list", help="the classes and their seats")
    listing.add_argument("--db", help=db_help)
    listing.set_defaults(func=_list)

    room = group.add_parser(
        "room-file",
        help="a student's endpoints file for the room's emulator, with a class token",
        description=(
            "Write, from the running emulator's endpoints, the file a student's own laptop "
            "uses to reach it over the network (open_lesson(seat='seat-07.json', "
            "cloud='room.json') or AIRLAB_CLOUD=room.json): the addresses, the CA "
            "certificate and a new class token. The class token reaches only the class's "
            "product through the admin API: its devices' logs and refusals, its devices "
            "(without their secrets), adding a device, ResetThing, its settings, publishing "
            "to its topics, its online devices; anything else needs the admin token, which "
            "the file never holds (nor the registry's path). Written 0600. Each run adds a "
            "new token; earlier ones stay valid unless --revoke-others."
        ),
    )
    room.add_argument("--out", metavar="FILE", required=True, help="the room file to write")
    room.add_argument("--name", default=None, help="class name (default: the newest)")
    room.add_argument("--db", help="the emulator's registry (default: the one its endpoints name)")
    room.add_argument(
        "--endpoints-file",
        help="the running emulator's endpoints (default: the one 'make lab' writes)",
    )
    room.add_argument(
        "--revoke-others", action="store_true", help="earlier tokens of the class stop working"
    )
    room.set_defaults(func=_room_file)

    watch = group.add_parser(
        "watch",
        help="the instructor's live view: every seat's progress and refusals",
        description=(
            "Every seat of a class: online, the steps reached (attached, logged in, "
            "subscribed, published, received) and the latest refusal with the cloud's "
            "explanation; then the class's newest messages. Refreshes until Ctrl-C."
        ),
    )
    watch.add_argument("--db", help=db_help)
    watch.add_argument("--name", default=None, help="class name (default: the newest)")
    watch.add_argument("--interval", default="2", metavar="S", help="seconds between refreshes")
    watch.add_argument("--once", action="store_true", help="print once and exit")
    watch.add_argument("--json", action="store_true", help="one JSON object per refresh")
    watch.add_argument("--endpoints-file", help="the running emulator's endpoints (for online)")
    watch.set_defaults(func=_watch)


# -- helpers ----------------------------------------------------------------------------


def _db(value: str | None, *, must_exist: bool) -> Path:
    from airlab.cli.lab import user_data_dir

    path = Path(value).expanduser() if value else user_data_dir() / "lab.db"
    if must_exist and not path.is_file():
        hint = "give --db" if value else "run 'make lab' once, or give --db"
        raise UsageError("db", f"no registry at {path}: {hint}")
    return path


def _endpoints_for(db: Path, value: str | None) -> dict[str, Any] | None:
    """The endpoints of a service running on ``db`` (or of ``--endpoints-file``)."""
    from airlab.cloud.discovery import EndpointsError, load_endpoints

    try:
        endpoints = load_endpoints(value)
    except EndpointsError:
        if value:
            raise
        return None
    served = endpoints.get("db")
    if value or (isinstance(served, str) and Path(served).resolve() == db.resolve()):
        return endpoints
    return None


def _positive(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise UsageError(option, f"must be a whole number, got {value!r}")
    return int(text)


def _class_info(registry: Any, name: str | None) -> Any:
    from airlab.classroom import ClassInfo, SeatCard

    classes = registry.classes()
    if not classes:
        raise UsageError(
            "name", f"no class in {registry.path}: create one with 'airlab class create'"
        )
    chosen = classes[0] if name is None else next((c for c in classes if c[0] == name), None)
    if chosen is None:
        raise UsageError("name", f"no class {name!r} (classes: {', '.join(c[0] for c in classes)})")
    cards = []
    for seat in registry.seats(chosen[0]):
        device = registry.get_device(seat.product_key, seat.device_name)
        product = registry.get_product(seat.product_key)
        if device is None or product is None:
            continue
        cards.append(
            SeatCard(
                seat.class_name, seat.seat, seat.label, seat.product_key, seat.device_name,
                device.device_secret, product.product_secret, product.region,
            )
        )  # fmt: skip
    return ClassInfo(chosen[0], chosen[1], tuple(cards))


def _report_handouts(info: Any, out: Path) -> None:
    seats = [c.seat for c in info.cards]
    span = seats[0] if len(seats) == 1 else f"{seats[0]}…{seats[-1]}"
    print(
        f"handouts in {out}: index.html (print it: one page per student), seat-{span}.html, "
        f"seat-{span}.json (for a student's own laptop), roster.csv"
    )
    print(
        f'students open their lessons with open_lesson(seat="{seats[0]}") or AIRLAB_SEAT={seats[0]}'
    )


# -- create / handouts / list -----------------------------------------------------------


def _create(args: argparse.Namespace) -> int:
    from airlab.classroom import create_class, numbered_seats, read_roster, write_handouts
    from airlab.cloud.registry import Registry

    students = _positive(args.students, "students")
    if args.roster:
        seats = read_roster(args.roster)
        if students is not None and students != len(seats):
            raise UsageError(
                "students", f"the roster has {len(seats)} students, not {students}: drop --students"
            )
    elif students is None:
        raise UsageError("students", "give --students N or --roster CSV")
    else:
        seats = numbered_seats(students)
    db = _db(args.db, must_exist=False)
    db.parent.mkdir(parents=True, exist_ok=True)
    out = Path(args.out).expanduser()
    endpoints = _endpoints_for(db, args.endpoints_file)
    with Registry(db) as registry:
        info = create_class(registry, seats, name=args.name, product_key=args.product_key)
    write_handouts(info, out, endpoints)
    print(f"class {info.name!r}: product {info.product_key}, {len(info.cards)} students, "
          f"one device each, in {db}")  # fmt: skip
    _report_handouts(info, out)
    return 0


def _handouts(args: argparse.Namespace) -> int:
    from airlab.classroom import write_handouts
    from airlab.cloud.registry import Registry

    db = _db(args.db, must_exist=True)
    with Registry(db) as registry:
        info = _class_info(registry, args.name)
    out = Path(args.out).expanduser()
    write_handouts(info, out, _endpoints_for(db, args.endpoints_file))
    _report_handouts(info, out)
    return 0


def _list(args: argparse.Namespace) -> int:
    from airlab.cloud.registry import Registry

    db = _db(args.db, must_exist=True)
    with Registry(db) as registry:
        classes = registry.classes()
        if not classes:
            print(f"(no class in {db}: create one with 'airlab class create')")
            return 0
        for name, product_key, created in classes:
            seats = registry.seats(name)
            when = dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M")
            print(f"{name}: product {product_key}, {len(seats)} seats, created {when}")
            for seat in seats:
                label = f"  {seat.label}" if seat.label else ""
                print(f"  {seat.seat:<6} {seat.device_name}{label}")
    return 0


# -- room-file --------------------------------------------------------------------------


_ROOM_KEYS = ("http", "https", "mqtt", "mqtts", "bind", "address", "region")


def _room_file(args: argparse.Namespace) -> int:
    import ipaddress

    from airlab.cloud.discovery import load_endpoints
    from airlab.cloud.registry import Registry
    from airlab.cloud.service import write_json_atomic

    endpoints = load_endpoints(args.endpoints_file)
    served = endpoints.get("db")
    if not isinstance(served, str) or not served:
        raise UsageError(
            "endpoints_file",
            f"the emulator of {endpoints['endpoints_file']} keeps its registry in memory: a "
            "class token lives in the registry, so serve the class with "
            "'airlab cloud serve --host 0.0.0.0 --db class.db'",
        )
    db = Path(args.db).expanduser() if args.db else Path(served)
    if not db.is_file():
        raise UsageError("db", f"no registry at {db}")
    if db.resolve() != Path(served).resolve():
        raise UsageError(
            "db",
            f"the emulator of {endpoints['endpoints_file']} serves {served}, not {db}: a "
            "token stored there would not open its admin API",
        )
    ca = endpoints.get("ca")
    if not isinstance(ca, str) or "BEGIN CERTIFICATE" not in ca:
        raise UsageError("endpoints_file", "the endpoints hold no CA certificate")
    with Registry(db) as registry:
        info = _class_info(registry, args.name)
        token = registry.add_class_token(info.name, revoke_others=args.revoke_others)
    room: dict[str, Any] = {"airlab_room": 1, "class": info.name, "product_key": info.product_key}
    room.update({k: endpoints[k] for k in _ROOM_KEYS if k in endpoints})
    admin = endpoints.get("admin") or {}
    room["admin"] = {"url": admin.get("url"), "token": token, "scope": "class"}
    room["ca"] = ca
    room["version"] = endpoints.get("version", 1)
    out = Path(args.out).expanduser()
    try:
        write_json_atomic(out, room, mode=0o600)
    except OSError as exc:
        raise UsageError("out", f"cannot write {out}: {exc.strerror or exc}") from None
    address = str(endpoints.get("address") or "")
    print(f"room file for class {info.name!r} (product {info.product_key}): {out} (0600)")
    print(
        f"students: open_lesson(seat='seat-NN.json', cloud='{out.name}') or "
        f"AIRLAB_CLOUD={out.name}; the class token reaches product {info.product_key} only"
        + ("; earlier class tokens revoked" if args.revoke_others else "")
    )
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        print(
            f"note: the emulator advertises {address}, which other machines cannot reach: "
            "serve it with --host 0.0.0.0 (and --advertise <this machine's address>)",
            file=sys.stderr,
        )
    return 0


# -- watch ------------------------------------------------------------------------------

_MARK = {True: "✓", False: "·"}


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide characters (姓名) take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def render_watch(progress: Any, *, width: int = 100) -> str:
    """The text of one refresh of ``airlab class watch``."""
    import textwrap

    from airlab.classroom import STEPS
    from airlab.classroom.progress import hhmmss

    rows = list(progress.rows.values())
    counts = progress.counts()
    head = (
        f"class {progress.class_name} · product {progress.product_key} · {counts['seats']} "
        f"seats · {counts['online']} online · "
        + " · ".join(f"{step} {counts[step]}" for step in STEPS)
        + (f" · KICKED {counts['kicked']} (two people on one seat?)" if counts["kicked"] else "")
    )
    label_width = max([4, *(_width(r.label) for r in rows)])
    lines = [head, ""]
    lines.append("  ".join(["seat", "name".ljust(label_width), "online", *STEPS, "refused"]))
    for r in rows:
        cells = [
            _pad(r.seat, 4), _pad(r.label, label_width), _MARK[r.online].center(6),
            *(_MARK[s in r.steps].center(len(s)) for s in STEPS),
            str(r.refused or "").rjust(7),
        ]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
    refused = sorted((r for r in rows if r.refusal), key=lambda r: r.refusal_time or 0)
    if refused:
        lines += ["", "latest refusal of each seat:"]
        for r in refused[-10:]:
            text = f"{r.seat} {hhmmss(r.refusal_time)} {r.refusal}"
            if r.explanation:
                text += f" — {r.explanation}"
            lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="      ")
    recent = list(progress.messages)[-8:]
    if recent:
        lines += ["", "newest messages:"]
        for m in recent:
            arrow = "↑" if m.direction == "up" else "↓"
            who = f"seat {m.seat}" if m.seat else (m.device_name or "-")
            payload = m.payload[:40].decode("utf-8", "replace")
            state = "" if m.accepted else f"  (dropped: {m.reason})"
            lines.append(f"  {hhmmss(m.time)} {arrow} {who:<10} {m.topic}  {payload!r}{state}")
    return "\n".join(lines)


def _watch(args: argparse.Namespace) -> int:
    from airlab.classroom import ClassProgress
    from airlab.cloud.discovery import RemoteCloud
    from airlab.cloud.registry import Registry

    try:
        interval = float(args.interval)
    except ValueError:
        interval = -1.0
    if not 0.1 <= interval <= 3600:
        raise UsageError("interval", f"must be seconds from 0.1 to 3600, got {args.interval!r}")
    db = _db(args.db, must_exist=True)
    endpoints = _endpoints_for(db, args.endpoints_file)
    online = RemoteCloud(endpoints).online_devices if endpoints else None
    tty = sys.stdout.isatty() and not args.json
    with Registry(db) as registry:
        progress = ClassProgress(registry, args.name, online=online)
        try:
            while True:
                progress.refresh()
                if args.json:
                    print(json.dumps({
                        "class": progress.class_name, "counts": progress.counts(),
                        "seats": [r.as_dict() for r in progress.rows.values()],
                        "refresh_ms": round(progress.last_refresh_seconds * 1e3, 3),
                    }, ensure_ascii=False), flush=True)  # fmt: skip
                else:
                    text = render_watch(progress, width=shutil.get_terminal_size().columns)
                    print(("\x1b[H\x1b[2J" if tty else "") + text, flush=True)
                if args.once:
                    return 0
                if not tty and not args.json:
                    print(flush=True)
                time.sleep(interval)
        except KeyboardInterrupt:
            return 0
