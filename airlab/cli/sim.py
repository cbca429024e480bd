"""``airlab sim serve``: a simulated Air780EP on a TCP port or a pty.

The module reaches the cloud emulator named by its endpoints file (``--cloud``; by
default the running emulator's, the file ``make lab`` / ``airlab cloud serve`` write:
``$AIRLAB_CLOUD_ENDPOINTS`` or ``~/.cache/airlab/cloud-endpoints.json``, printed at
start): the Aliyun host names (``iot-auth.<region>.aliyuncs.com``,
``<pk>.iot-as-mqtt.<region>…``) resolve to the emulator's listeners.  Any serial tool
then talks to it: with ``--tcp`` through pyserial's ``socket://127.0.0.1:PORT``, with
``--pty`` through the given path (picocom, minicom, ``serial.Serial(path)``).  Ctrl-C
or SIGTERM stops it cleanly.

Example:
    $ airlab sim serve --tcp 7780 --profile tutorial
    airlab sim: cloud emulator of /home/me/.cache/airlab/cloud-endpoints.json
    airlab sim: Air780EP (profile tutorial, seed 0) on socket://127.0.0.1:7780
    $ airlab sim serve --cloud endpoints.json --pty /tmp/airlab-sim.pty
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from airlab.cli.parsers import command_group
from airlab.errors import UsageError

__all__ = ["register", "serve"]


def register(subparsers: Any) -> None:
    """Add the ``sim`` group to the ``airlab`` command's subparsers.

    Example:
        >>> parser = argparse.ArgumentParser(prog="airlab")
        >>> register(parser.add_subparsers())
        >>> args = parser.parse_args(["sim", "serve", "--cloud", "e.json", "--tcp", "0"])
        >>> args.tcp, args.profile, args.seed
        (0, 'instant', 0)
    """
    group = command_group(
        subparsers,
        "sim",
        help="run the simulated Air780EP module",
        description="Run the simulated Air780EP module.",
        dest="sim_command",
    )
    serve_p = group.add_parser(
        "serve",
        help="serve the simulated module on a TCP port or a pty",
        description="Serve a simulated Air780EP on a TCP port (socket://) or a pty.",
    )
    serve_p.add_argument(
        "--cloud",
        metavar="ENDPOINTS_FILE",
        help="the cloud emulator's endpoints JSON (Aliyun host names resolve to it; default: "
        "the running emulator's, $AIRLAB_CLOUD_ENDPOINTS or ~/.cache/airlab/cloud-endpoints.json"
        ", which 'make lab' and 'airlab cloud serve' write)",
    )
    where = serve_p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=int, metavar="PORT", help="TCP port (0: any free port)")
    where.add_argument("--pty", metavar="PATH", help="symlink to create for the pty")
    serve_p.add_argument(
        "--host", default="127.0.0.1", help="address for --tcp (default 127.0.0.1)"
    )
    serve_p.add_argument(
        "--profile",
        default="instant",
        choices=["instant", "tutorial", "flaky"],
        help="latency/fault profile (default instant)",
    )
    serve_p.add_argument("--seed", type=int, default=0, help="seed of the profile (default 0)")
    serve_p.add_argument("--imei", help="IMEI the module reports (default 868488076506128)")
    serve_p.add_argument("--baud", type=int, help="pace the output at this baud rate")
    serve_p.add_argument("--boot", action="store_true", help="print the boot URCs at start")
    serve_p.set_defaults(func=serve)


def serve(args: argparse.Namespace, *, ready: threading.Event | None = None,
          stop: threading.Event | None = None) -> int:  # fmt: skip
    """Run until Ctrl-C / SIGTERM (or ``stop`` is set); returns the exit code."""
    from airlab.sim.bridges import PtyBridge, TcpBridge
    from airlab.sim.config import FirmwareConfig
    from airlab.sim.device import SimulatedModule
    from airlab.sim.hosts import HostTable

    if args.cloud is None:
        from airlab.cloud.discovery import EndpointsError, default_endpoints_path, load_endpoints

        path = default_endpoints_path()
        try:
            hosts = HostTable.from_endpoints(load_endpoints(path))
        except EndpointsError as exc:
            raise UsageError("cloud", f"{exc.message}; or give --cloud ENDPOINTS_FILE") from None
        print(f"airlab sim: cloud emulator of {path}", flush=True)
    else:
        try:
            hosts = HostTable.from_endpoints(args.cloud)
        except (OSError, ValueError) as exc:
            raise UsageError("cloud", f"cannot read the endpoints file: {exc}") from exc
    if args.tcp is not None and not 0 <= args.tcp <= 65535:
        raise UsageError("tcp", f"port out of range: {args.tcp}")
    try:
        config = FirmwareConfig(imei=args.imei) if args.imei else None
    except ValueError as exc:
        raise UsageError("imei", str(exc)) from exc

    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())

    module = SimulatedModule(
        config=config,
        profile=args.profile,
        seed=args.seed,
        hosts=hosts,
        baudrate=args.baud,
        boot_urcs=True if args.boot else None,
    )
    bridge: Any = None
    try:
        try:
            if args.tcp is not None:
                bridge = TcpBridge(module, args.host, args.tcp)
                bridge.start()
                where = bridge.url
            else:
                bridge = PtyBridge(module, args.pty)
                bridge.start()
                where = f"{bridge.path} (-> {bridge.slave_name})"
        except OSError as exc:
            raise UsageError("tcp" if args.tcp is not None else "pty", str(exc)) from exc
        print(
            f"airlab sim: Air780EP (profile {args.profile}, seed {args.seed}) on {where}",
            flush=True,
        )
        if ready is not None:
            ready.set()
        while not stop.wait(0.5):
            pass
        print("airlab sim: stopped", file=sys.stderr, flush=True)
        return 0
    finally:
        if bridge is not None:
            bridge.close()
        module.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
