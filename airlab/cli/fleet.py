"""``airlab fleet run``: N simulated modems in one process against the cloud emulator.

Each modem is a simulated Air780EP driven through its AT commands (a login by
``--methods``: direct, HTTPS auth or dynamic registration; ``AT+MPUB`` or ``AT+MPUBEX``
at ``--rate`` per second for ``--duration`` seconds), all on one event loop;
the emulator runs in a process of its own (``airlab cloud serve`` on a private registry,
see :class:`airlab.fleet.served.ServedCloud`), or with ``--clock simulated`` in this
process on the fleet's simulated clock (:class:`airlab.fleet.served.LoopCloud`).
``--endpoints-file PATH`` runs against a service already running (``airlab cloud
serve``, either engine, here or on another machine): each run makes a product of its
own, so fleets on several machines can share one service and each reads back only its
own log. A progress line goes to stderr on a terminal; the summary to stdout, as text
or (``--json``) one JSON object with :data:`airlab.fleet.results.SUMMARY_KEYS`. ``--out
DIR`` also writes the pairing table (``commands.csv``), the emulator's logs of the run
(``connections.csv``, ``messages.csv``) and ``summary.json``.

Example:
    $ airlab fleet run --modems 1000 --rate 1 --duration 60 --profile instant --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from airlab.cli.parsers import command_group
from airlab.errors import UsageError

__all__ = ["register"]

_DESCRIPTION = (
    "Run N simulated Air780EP modems on one event loop, each a device of its own, "
    "logging in by --methods (direct, http, dynreg, mqttreg, regnwl) and publishing "
    "with AT+MPUB (or AT+MPUBEX) at --rate per second for --duration seconds. The "
    "emulator is private (a child process; with --clock simulated, in this process on "
    "the simulated clock) unless --endpoints-file names a running service (either "
    "engine, any machine). A progress line goes to stderr on a terminal, the summary to "
    "stdout (--json: one JSON object); --out DIR writes commands.csv, connections.csv, "
    "messages.csv and summary.json."
)


def register(subparsers: Any) -> None:
    """Add the ``fleet`` group to the ``airlab`` command's subparsers.

    Example:
        >>> parser = argparse.ArgumentParser(prog="airlab")
        >>> register(parser.add_subparsers())
        >>> args = parser.parse_args(["fleet", "run", "--modems", "5", "--json"])
        >>> args.modems, args.rate, args.json
        (5, 1.0, True)
    """
    group = command_group(
        subparsers,
        "fleet",
        help="many simulated modems at once against the cloud emulator",
        dest="fleet_command",
    )
    run = group.add_parser(
        "run",
        help="run a fleet scenario and print its summary",
        description=_DESCRIPTION,
    )
    run.add_argument("--modems", type=int, default=10, help="how many modems (default 10)")
    run.add_argument("--rate", type=float, default=1.0, help="publishes per second per modem")
    run.add_argument("--duration", type=float, default=10.0, help="seconds of publishing")
    run.add_argument("--qos", type=int, default=1, choices=(0, 1), help="QoS (default 1)")
    run.add_argument(
        "--payload-size", type=int, default=32, help="bytes per message (at most 4100)"
    )
    run.add_argument(
        "--mpubex", action="store_true", help="publish with AT+MPUBEX (the > prompt, raw bytes)"
    )
    run.add_argument(
        "--methods",
        default="direct",
        help="how the modems log in: direct, http, dynreg, mqttreg, regnwl, or a mix by "
        "weight such as direct=3,http=1,dynreg=1 (default direct)",
    )
    run.add_argument("--profile", default="instant", help="latency profile (default instant)")
    run.add_argument("--seed", type=int, default=0, help="seed of the profile's streams")
    run.add_argument(
        "--ramp", type=float, help="seconds over which modems start (default: modems/100)"
    )
    run.add_argument("--plain", action="store_true", help="AT+MIPSTART instead of SSLMIPSTART")
    run.add_argument("--subscribe", action="store_true", help="also AT+MSUB to /user/get")
    run.add_argument(
        "--shared",
        type=int,
        default=0,
        help="modems that log in with a device another modem uses (they kick each other)",
    )
    run.add_argument(
        "--reconnect", default="backoff", help="after CLOSED: none, immediate or backoff"
    )
    run.add_argument("--reconnect-delay", type=float, default=1.0, help="seconds (backoff)")
    run.add_argument("--outage-at", type=float, help="network outage at this second")
    run.add_argument("--outage-for", type=float, default=5.0, help="outage length (s)")
    run.add_argument(
        "--no-throttle", action="store_true", help="the emulator drops no uplink by rate"
    )
    run.add_argument(
        "--endpoints-file",
        type=Path,
        metavar="PATH",
        help="run against the service of this endpoints file ('airlab cloud serve', either "
        "engine, on this or another machine) instead of a private emulator",
    )
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument("--out", type=Path, help="write the tables and summary to this folder")
    run.add_argument(
        "--clock",
        default="real",
        choices=("real", "simulated"),
        help="simulated: delays scheduled, not slept; the emulator's rules on the same clock",
    )
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from airlab.fleet.runner import run_fleet
    from airlab.fleet.scenario import Scenario

    ramp = args.ramp if args.ramp is not None else min(args.modems / 100.0, 60.0)
    scenario = Scenario(
        modems=args.modems,
        rate=args.rate,
        duration=args.duration,
        qos=args.qos,
        payload_size=args.payload_size,
        tls=not args.plain,
        subscribe=args.subscribe,
        ramp=ramp,
        reconnect=args.reconnect,
        reconnect_delay=args.reconnect_delay,
        outage_at=args.outage_at,
        outage_for=args.outage_for,
        profile=args.profile,
        seed=args.seed,
        clock=args.clock,
        shared=args.shared,
        methods=args.methods,
        mpubex=args.mpubex,
    )
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError("--out", f"{args.out} exists and is not a folder")
    show = _progress_line if sys.stderr.isatty() else None
    cloud = None
    if args.endpoints_file is not None:
        from airlab.cloud.discovery import RemoteCloud, load_endpoints

        if args.no_throttle:
            raise UsageError(
                "--no-throttle", "the running service keeps its own limits: drop --no-throttle"
            )
        cloud = RemoteCloud(load_endpoints(args.endpoints_file))
    try:
        result = run_fleet(scenario, cloud=cloud, throttle=not args.no_throttle, progress=show)
    finally:
        if cloud is not None:
            cloud.close()
    if show is not None:
        print(file=sys.stderr)
    if args.out is not None:
        _write(args.out, result)
    if args.json:
        print(json.dumps(result.summary, ensure_ascii=False))
    else:
        width = max(len(k) for k in result.summary)
        for key, value in result.summary.items():
            print(f"{key:<{width}}  {'-' if value is None else value}")
    return 0


def _progress_line(p: Any) -> None:
    done = p.published + p.skipped
    bar_width = 30
    filled = int(bar_width * done / p.planned) if p.planned else 0
    bar = "#" * filled + "." * (bar_width - filled)
    sys.stderr.write(
        f"\r[{bar}] {p.elapsed:6.1f}s online {p.online}/{p.modems} "
        f"published {p.published} acked {p.acked} skipped {p.skipped} "
        f"login failures {p.login_failures}   "
    )
    sys.stderr.flush()


def _write(folder: Path, result: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(folder / "commands.csv", index=False)
    result.connections.to_csv(folder / "connections.csv", index=False)
    result.messages.to_csv(folder / "messages.csv", index=False)
    (folder / "summary.json").write_text(
        json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
