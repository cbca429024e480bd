"""``airlab cloud reset``: start clean (the tutorial's product and device only;
``--logs-only``: the logs only), through the running service when one uses the registry.

Example:
    >>> _summary({"products": 1, "devices": 2, "tokens": 0}, False)
    '1 product, 2 devices, 0 log rows'
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from airlab.cli.cloud_common import _existing_db
from airlab.errors import UsageError

__all__: list[str] = []


def _service_on(db: Path) -> dict[str, Any] | None:
    """The endpoints of a running service whose registry is ``db``: the default
    endpoints file or another JSON file in its folder; None when none runs."""
    from airlab.cloud.discovery import EndpointsError, default_endpoints_path, load_endpoints

    target = db.resolve()
    default = default_endpoints_path()
    candidates = [default]
    if default.parent.is_dir():
        candidates += sorted(p for p in default.parent.glob("*.json") if p != default)
    for path in candidates:
        try:
            data = load_endpoints(path, check=False)
        except EndpointsError:
            continue
        named = data.get("db")
        if not isinstance(named, str) or Path(named).resolve() != target:
            continue
        try:
            return load_endpoints(path)  # it must still answer
        except EndpointsError:
            continue
    return None


def _summary(counts: dict[str, int], logs_only: bool) -> str:
    logs = sum(n for table, n in counts.items() if table.endswith("_log"))
    if logs_only:
        return f"{logs} log row{'s' if logs != 1 else ''}"
    products, devices = counts.get("products", 0), counts.get("devices", 0)
    return (
        f"{products} product{'s' if products != 1 else ''}, "
        f"{devices} device{'s' if devices != 1 else ''}, "
        f"{logs} log row{'s' if logs != 1 else ''}"
    )


def _confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _reset(args: argparse.Namespace) -> int:
    from airlab.cloud.discovery import RemoteCloud, load_endpoints
    from airlab.cloud.registry import Registry

    if args.db is not None and args.endpoints_file is not None:
        raise UsageError("db", "give either --db (the registry file) or --endpoints-file")
    interactive = sys.stdin.isatty()
    if not args.yes and not interactive:
        raise UsageError("yes", "not a terminal, so nobody can confirm: add --yes to reset")
    endpoints: dict[str, Any] | None
    if args.endpoints_file is not None:
        endpoints = load_endpoints(args.endpoints_file)
        named = endpoints.get("db")
        db = Path(named) if isinstance(named, str) and named else None
    else:
        db = _existing_db(args.db)
        endpoints = _service_on(db)
    label = str(db.resolve()) if db is not None else "the in-memory registry"
    if endpoints is not None:
        how = f" through the running cloud emulator (pid {endpoints.get('pid')})"
        fixture = endpoints.get("fixture")
        remote = RemoteCloud(endpoints)
        try:
            counts = remote.wipe(logs_only=args.logs_only, dry_run=True)
            if not args.yes and not _confirm(_question(label, counts, args.logs_only)):
                print("airlab cloud: nothing reset", file=sys.stderr)
                return 1
            removed = remote.wipe(logs_only=args.logs_only)
        finally:
            remote.close()
    else:
        assert db is not None
        how, fixture = "", "tutorial"
        with Registry(db) as registry:
            counts = registry.table_counts(logs_only=args.logs_only)
            if not args.yes and not _confirm(_question(label, counts, args.logs_only)):
                print("airlab cloud: nothing reset", file=sys.stderr)
                return 1
            removed = registry.reset(fixture, logs_only=args.logs_only)
    what = "the logs of " if args.logs_only else ""
    line = f"reset {what}{label}{how}: removed {_summary(removed, args.logs_only)}"
    if not args.logs_only:
        line += f"; loaded the {fixture} fixture again" if fixture else "; no fixture to load"
    print(line)
    return 0


def _question(label: str, counts: dict[str, int], logs_only: bool) -> str:
    what = "the logs of " if logs_only else ""
    return f"reset {what}{label}: {_summary(counts, logs_only)} will be removed"
