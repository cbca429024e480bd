"""What the ``airlab cloud`` subcommands share: option checks, the lab registry
(``--db`` omitted) and JSON output.

Example:
    >>> _port("1883", "mqtt_port")
    1883
    >>> lab_db().name
    'lab.db'
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airlab.errors import UsageError

__all__ = ["lab_db"]

_PORT_OPTIONS = ("http_port", "https_port", "mqtt_port", "mqtts_port")


def _port(value: str, name: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise UsageError(name, f"must be a port number from 0 to 65535, not {value!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(name, f"must be a port number from 0 to 65535, not {value!r}")
    return port


def _required(value: str | None, name: str) -> str:
    if value is None or value == "":
        raise UsageError(name, "is required")
    return value


def lab_db() -> Path:
    """The registry ``make lab`` (``airlab lab``) keeps: ``<data dir>/lab.db``."""
    from airlab.cli.lab import user_data_dir

    return user_data_dir() / "lab.db"


def _db_or_lab(value: str | None) -> Path:
    """``--db`` as given, or the lab registry when omitted."""
    if value is not None and value != "":
        return Path(value).expanduser()
    return lab_db()


def _say_lab_db(value: str | None, path: Path) -> None:
    """Say on stderr which registry a command without ``--db`` uses."""
    if value is None or value == "":
        print(f"airlab cloud: registry {path} (the one 'make lab' keeps; --db for another)",
              file=sys.stderr, flush=True)  # fmt: skip


def _existing_db(value: str | None) -> Path:
    given = value is not None and value != ""
    path = _db_or_lab(value)
    if not path.is_file():
        if not given:
            raise UsageError("db", f"no registry at {path}: run 'make lab' (or 'airlab lab') "
                             "once, or give --db")  # fmt: skip
        raise UsageError("db", f"no registry at {path} (create it with 'airlab cloud serve "
                         "--db' or 'airlab cloud add-product --db')")  # fmt: skip
    _say_lab_db(value, path)
    return path


def _print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, ensure_ascii=False))


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by Ctrl-C, SIGTERM or SIGHUP while the block runs (a service's
    clean stop); the previous handlers come back after it.

    Example:
        >>> with stop_on_signals() as stop:
        ...     stop.is_set()
        False
    """
    stop = threading.Event()
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
