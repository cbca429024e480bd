"""``airlab cloud serve``: run the emulator until Ctrl-C/SIGTERM, print its endpoints
and write them as JSON (atomically, once it is ready; removed on a clean stop).

Example:
    >>> _alive(os.getpid())
    True
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from airlab.cli.cloud_common import _PORT_OPTIONS, _port, stop_on_signals
from airlab.errors import UsageError

__all__: list[str] = []


def _serve(args: argparse.Namespace) -> int:
    from airlab.cloud.discovery import EndpointsError, default_endpoints_path, load_endpoints
    from airlab.cloud.mqtt_core import UPLINK_LIMITS
    from airlab.cloud.service import CloudEmulator

    ports = {name: _port(getattr(args, name), name) for name in _PORT_OPTIONS}
    rate = None
    if args.connect_rate_limit is not None:
        try:
            rate = int(args.connect_rate_limit)
        except ValueError:
            raise UsageError("connect_rate_limit", "must be a whole number") from None
    watch = None
    if args.watch_pid is not None:
        if not args.watch_pid.isdigit():
            raise UsageError("watch_pid", f"must be a process id, not {args.watch_pid!r}")
        watch = int(args.watch_pid)
    path = (
        Path(args.endpoints_file).expanduser() if args.endpoints_file else default_endpoints_path()
    )
    if path.is_dir():
        raise UsageError("endpoints_file", f"{path} is a folder")
    try:
        existing = load_endpoints(path)
    except EndpointsError:
        existing = None
    if existing is not None:
        raise UsageError(
            "endpoints_file",
            f"another cloud emulator (pid {existing.get('pid')}) is serving with {path}: "
            "stop it first or choose another --endpoints-file",
        )
    fixture = None if args.fixture in ("none", "") else args.fixture
    cloud = CloudEmulator(
        args.db or ":memory:",
        host=args.host,
        fixture=fixture,
        connect_rate_limit=rate,
        uplink_limits=None if args.no_throttle else UPLINK_LIMITS,
        advertise=args.advertise,
        **ports,
    )
    with stop_on_signals() as stop:
        cloud.start()
        try:
            _announce(cloud, cloud.write_endpoints(path))
            while not stop.wait(1.0):
                if watch is not None and not _alive(watch):
                    print("airlab cloud: parent process ended, stopping", flush=True)
                    break
        finally:
            cloud.stop()
    print("airlab cloud: stopped", flush=True)
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _announce(cloud: Any, path: Path) -> None:
    ep = cloud.endpoints
    lines = [
        f"airlab cloud: serving (pid {ep['pid']}, registry {ep['db'] or 'in memory'}, "
        f"fixture {ep['fixture'] or 'none'})",
        f"  http   {ep['http']}",
        f"  https  {ep['https']}",
        f"  mqtt   {ep['mqtt']}",
        f"  mqtts  {ep['mqtts']}",
        f"  admin  {ep['admin']['url']}",
        f"  endpoints file: {path}",
        f"  CA certificate: {path.with_name(path.stem + '.ca.pem')}",
    ]
    if ep["bind"] != ep["address"]:
        lines.append(f"  listening on {ep['bind']}, advertised as {ep['address']}")
    lines.append("Ctrl-C stops it.")
    print("\n".join(lines), flush=True)
