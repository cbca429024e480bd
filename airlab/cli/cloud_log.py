"""``airlab cloud log``: the connection and message logs, refusals with their reasons
(``--csv`` for a table), secrets masked unless ``--show-secrets``; ``--follow`` keeps
printing new lines as they are committed (polls ``PRAGMA data_version``).

Example:
    >>> _iso(0.0)
    '1970-01-01T00:00:00.000+00:00'
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import select
import sqlite3
import stat
import sys
import time
from pathlib import Path
from typing import Any

from airlab.cli.cloud_common import _existing_db
from airlab.errors import UsageError

__all__ = ["FOLLOW_INTERVAL"]

#: seconds between two checks for new log lines in ``log --follow``
FOLLOW_INTERVAL = 0.1


_CSV_COLUMNS = [
    "time", "kind", "protocol", "event", "accepted", "device", "client_id", "remote", "code",
    "direction", "topic", "qos", "size", "payload", "reason", "rule", "explanation", "details",
]  # fmt: skip


def _device_filter(device: str | None) -> Any:
    from airlab.cloud.model import DeviceRef

    if not device:
        return None
    pk, sep, dn = device.partition("/")
    if not sep or not pk or not dn:
        raise UsageError("device", f"write it as productKey/deviceName, not {device!r}")
    return DeviceRef(pk, dn)


def _event_dict(e: Any) -> dict[str, Any]:
    from airlab.cloud.model import CONNACK_MEANINGS

    exp = e.explanation
    reason = e.reason
    if e.protocol == "mqtt" and e.event == "refused" and e.code is not None and not reason:
        reason = CONNACK_MEANINGS.get(e.code)
    return {
        "time": e.time,
        "kind": "connection",
        "protocol": e.protocol,
        "event": e.event,
        "accepted": e.accepted,
        "device": str(e.device) if e.device else "",
        "client_id": e.client_id or "",
        "remote": e.remote or "",
        "code": "" if e.code is None else e.code,
        "reason": reason or "",
        "rule": exp.rule if exp else "",
        "explanation": exp.message if exp else "",
        "details": json.dumps(dict(exp.details), ensure_ascii=False) if exp else "",
        "_details": dict(exp.details) if exp else {},
    }


def _message_dict(m: Any, show_secrets: bool) -> dict[str, Any]:
    from airlab.at.redact import redact_bytes

    return {
        "time": m.time,
        "kind": "message",
        "protocol": "mqtt",
        "event": "publish",
        "accepted": m.accepted,
        "device": str(m.device) if m.device else "",
        "client_id": m.client_id or "",
        "direction": m.direction,
        "topic": m.topic,
        "qos": m.qos,
        "size": len(m.payload),
        "payload": (m.payload if show_secrets else redact_bytes(m.payload)).decode(
            "utf-8", errors="replace"
        ),
        "reason": m.reason or "",
    }


def _log_rows(db: Path, device: str | None, show_secrets: bool = False) -> list[dict[str, Any]]:
    from airlab.cloud.registry import Registry

    ref = _device_filter(device)
    with Registry(db) as registry:
        events = registry.connection_log(ref)
        messages = registry.message_log(ref)
    rows = [_event_dict(e) for e in events]
    rows += [_message_dict(m, show_secrets) for m in messages]
    rows.sort(key=lambda r: r["time"])
    return rows


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")


class _LogPrinter:
    """Prints log rows as the table (header once) or as CSV (header once)."""

    def __init__(self, as_csv: bool) -> None:
        self.as_csv = as_csv
        self._writer: csv.DictWriter[str] | None = None
        self._header = False

    def header(self) -> None:
        if self._header:
            return
        self._header = True
        if self.as_csv:
            self._writer = csv.DictWriter(
                sys.stdout, _CSV_COLUMNS, extrasaction="ignore", lineterminator="\n"
            )
            self._writer.writeheader()
        else:
            print(f"{'time (UTC)':<23} {'what':<16} {'ok':<3} {'device':<30} {'code':>4}  detail")

    def rows(self, rows: list[dict[str, Any]]) -> None:
        self.header()
        if self._writer is not None:
            for row in rows:
                self._writer.writerow({**row, "time": _iso(row["time"])})
            return
        for row in rows:
            _print_row(row)


def _print_row(row: dict[str, Any]) -> None:
    time_text = _iso(row["time"])[:23]
    ok = "yes" if row["accepted"] else "NO"
    code = str(row.get("code", ""))
    if row["kind"] == "message":
        arrow = "->" if row["direction"] == "up" else "<-"
        what = f"msg {row['direction']}"
        preview = row["payload"] if len(row["payload"]) <= 40 else row["payload"][:37] + "..."
        detail = f"{arrow} {row['topic']} qos{row['qos']} {row['size']}B {preview!r}"
        if row["reason"]:
            detail += f" ({row['reason']})"
    else:
        what = f"{row['protocol']} {row['event']}"
        detail = row["reason"] or ""
        if row["client_id"]:
            detail = f"client {row['client_id']!r} {detail}".strip()
    print(f"{time_text:<23} {what:<16} {ok:<3} {row['device'] or '-':<30} {code:>4}  {detail}")
    if row.get("explanation"):
        print(f"{'':<23}   why [{row['rule']}]: {row['explanation']}")
        for key, value in row.get("_details", {}).items():
            print(f"{'':<23}     {key}: {value}")


def _log(args: argparse.Namespace) -> int:
    db = _existing_db(args.db)
    if args.follow:
        return _follow(db, args.device, args.show_secrets, args.csv)
    rows = _log_rows(db, args.device, args.show_secrets)
    printer = _LogPrinter(args.csv)
    if not rows and not args.csv:
        print(f"(the log of {db} is empty)")
        return 0
    printer.rows(rows)
    return 0


class _LogTail:
    """Reads the log rows committed since the last read, by id, from another process's
    registry (SQLite in WAL mode: reading never blocks the writer)."""

    _TABLES = ("connection_log", "message_log")

    def __init__(self, db: Path, device: Any, show_secrets: bool) -> None:
        self._conn = sqlite3.connect(str(db), timeout=10.0, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._device = device
        self._show_secrets = show_secrets
        self._last = dict.fromkeys(self._TABLES, 0)
        self._version: int | None = None

    def close(self) -> None:
        self._conn.close()

    def changed(self) -> bool:
        """True when another connection committed since the last call (cheap)."""
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        if version == self._version:
            return False
        self._version = version
        return True

    def new_rows(self) -> list[dict[str, Any]]:
        from airlab.cloud.model import ConnectionEvent, DeviceRef, Explanation, MessageRecord

        where, params = "", []
        if self._device is not None:
            where = " AND product_key = ? AND device_name = ?"
            params = [self._device.product_key, self._device.device_name]
        rows: list[dict[str, Any]] = []
        for table in self._TABLES:
            top = self._conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0
            if top < self._last[table]:  # the file was replaced: ids start again
                self._last[table] = 0
            found = self._conn.execute(
                f"SELECT * FROM {table} WHERE id > ?{where} AND id <= ? ORDER BY id",
                [self._last[table], *params, top],
            ).fetchall()
            self._last[table] = max(self._last[table], top)
            for r in found:
                device = (
                    DeviceRef(r["product_key"], r["device_name"])
                    if r["product_key"] is not None and r["device_name"] is not None
                    else None
                )
                if table == "connection_log":
                    exp = None
                    if r["explanation"]:
                        data = json.loads(r["explanation"])
                        exp = Explanation(
                            data["rule"], data["message"], dict(data.get("details") or {})
                        )
                    event = ConnectionEvent(
                        r["time"], r["protocol"], r["event"], bool(r["accepted"]), device,
                        r["client_id"], r["remote"], r["code"], r["reason"], exp,
                    )  # fmt: skip
                    rows.append(_event_dict(event))
                else:
                    message = MessageRecord(
                        r["time"], r["direction"], r["topic"], r["qos"], bytes(r["payload"]),
                        bool(r["accepted"]), device, r["client_id"], r["reason"],
                    )  # fmt: skip
                    rows.append(_message_dict(message, self._show_secrets))
        rows.sort(key=lambda row: row["time"])
        return rows


def _reader_gone_waiter() -> Any:
    """A wait of ``FOLLOW_INTERVAL`` s that returns early, raising BrokenPipeError, when
    stdout is a pipe whose reader has left (``| head``): we learn it without writing."""
    try:
        fd = sys.stdout.fileno()
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
    except (OSError, ValueError, AttributeError):
        is_pipe = False
    if not is_pipe or not hasattr(select, "poll"):
        return lambda: time.sleep(FOLLOW_INTERVAL)
    poller = select.poll()
    poller.register(fd, 0)  # only POLLERR / POLLHUP: the reader closed its end

    def wait() -> None:
        if poller.poll(FOLLOW_INTERVAL * 1000):
            raise BrokenPipeError(f"the reader of stdout has gone ({fd})")

    return wait


def _follow(db: Path, device: str | None, show_secrets: bool, as_csv: bool) -> int:
    """Print the log, then every line committed later, until Ctrl-C (exit 0)."""
    tail = _LogTail(db, _device_filter(device), show_secrets)
    printer = _LogPrinter(as_csv)
    wait = _reader_gone_waiter()
    print(f"airlab cloud: following the log of {db} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        printer.header()
        sys.stdout.flush()
        while True:
            if tail.changed():
                rows = tail.new_rows()
                if rows:
                    printer.rows(rows)
                    sys.stdout.flush()
            wait()
    except KeyboardInterrupt:
        return 0
    finally:
        tail.close()
