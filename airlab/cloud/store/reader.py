"""Reading the registry's logs back: records, raw rows for a live view, DataFrames.

Example:
    >>> from airlab.cloud.registry import Registry
    >>> reg = Registry()
    >>> reg.log_connection(ConnectionEvent(1.0, "mqtt", "connect", True))
    >>> list(reg.connection_frame()["event"])
    ['connect']
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airlab.cloud.model import ConnectionEvent, MessageRecord
from airlab.cloud.store.records import DeviceLike, _explanation_from, _ref, _row_ref
from airlab.cloud.store.writer import LogWriterMixin
from airlab.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LogReaderMixin",
    "connection_frame_from_rows",
    "mentions_product_key",
    "message_frame_from_rows",
]

_PAGE = 5000


def mentions_product_key(row: dict[str, Any], product_key: str) -> bool:
    """Whether an unattributed log row (a refused CONNECT names no device) mentions
    ``product_key`` in its client id, reason or explanation.

    Example:
        >>> mentions_product_key({"client_id": "a1B2c3D4e5F|securemode=2|"}, "a1B2c3D4e5F")
        True
    """
    text = " ".join(str(row.get(k) or "") for k in ("client_id", "reason", "explanation"))
    return product_key in text


class LogReaderMixin(LogWriterMixin):
    """The logs as records, rows and frames (reads flush the writer first, except
    :meth:`log_rows_after`), and the per-table row counts."""

    def connection_log(
        self, device: DeviceLike | None = None, limit: int | None = None
    ) -> list[ConnectionEvent]:
        """Connection-log lines, oldest first (the last ``limit`` ones); flushes first."""
        rows = self._log_rows("connection_log", device, limit)
        return [
            ConnectionEvent(
                time=r["time"],
                protocol=r["protocol"],
                event=r["event"],
                accepted=bool(r["accepted"]),
                device=_row_ref(r),
                client_id=r["client_id"],
                remote=r["remote"],
                code=r["code"],
                reason=r["reason"],
                explanation=_explanation_from(r["explanation"]),
            )
            for r in rows
        ]

    def message_log(
        self, device: DeviceLike | None = None, limit: int | None = None
    ) -> list[MessageRecord]:
        """Message-log lines, oldest first (the last ``limit`` ones); flushes first."""
        rows = self._log_rows("message_log", device, limit)
        return [
            MessageRecord(
                time=r["time"],
                direction=r["direction"],
                topic=r["topic"],
                qos=r["qos"],
                payload=bytes(r["payload"]),
                accepted=bool(r["accepted"]),
                device=_row_ref(r),
                client_id=r["client_id"],
                reason=r["reason"],
            )
            for r in rows
        ]

    def _log_rows(
        self, table: str, device: DeviceLike | None, limit: int | None
    ) -> list[sqlite3.Row]:
        self.flush()
        where = ""
        params: list[object] = []
        if device is not None:
            ref = _ref(device)
            where = "WHERE product_key = ? AND device_name = ?"
            params = [ref.product_key, ref.device_name]
        sql = f"SELECT * FROM {table} {where} ORDER BY id"
        if limit is not None:
            inner = f"SELECT * FROM {table} {where} ORDER BY id DESC LIMIT ?"
            sql = f"SELECT * FROM ({inner}) ORDER BY id"
            params.append(int(limit))
        return self._query(sql, params)

    def log_rows_after(
        self, table: str, after_id: int, product_key: str | None, *, limit: int = 5000
    ) -> list[dict[str, Any]]:
        """Rows of ``table`` (``connection_log`` or ``message_log``) with an id above
        ``after_id`` that concern ``product_key`` or name no device (a refused CONNECT
        before authentication), oldest first, at most ``limit``; as committed now (no
        flush: a live view polls again).  What a dashboard reads incrementally.
        ``product_key=None``: every row.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry()
            >>> reg.log_connection(ConnectionEvent(1.0, "mqtt", "refused", False)); _ = reg.flush()
            >>> [r["event"] for r in reg.log_rows_after("connection_log", 0, "pk1")]
            ['refused']
        """
        if table not in ("connection_log", "message_log"):
            raise UsageError("table", f"must be connection_log or message_log, not {table!r}")
        params: list[object]
        if product_key is None:
            sql, params = f"SELECT * FROM {table} WHERE id > ?", [int(after_id)]
        else:
            sql = f"SELECT * FROM {table} WHERE id > ? AND (product_key = ? OR product_key IS NULL)"
            params = [int(after_id), product_key]
        rows = self._query(sql + " ORDER BY id LIMIT ?", (*params, int(limit)))
        return [dict(r) for r in rows]

    def product_log_rows(self, table: str, product_key: str) -> list[dict[str, Any]]:
        """Every stored row of ``table`` (``"connection"`` or ``"message"``) that concerns
        ``product_key``: its devices' lines and the unattributed refusals that mention
        the key; oldest first, as stored (with ``id``; ``payload`` as bytes). Flushes
        first. What a fleet reads back of its own product while others share the service.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry()
            >>> reg.log_connection(ConnectionEvent(1.0, "mqtt", "refused", False,
            ...                                    client_id="pk1.dev|securemode=2|"))
            >>> reg.log_connection(ConnectionEvent(2.0, "mqtt", "refused", False))
            >>> [r["time"] for r in reg.product_log_rows("connection", "pk1")]
            [1.0]
        """
        if table not in ("connection", "message"):
            raise UsageError("table", f"must be connection or message, not {table!r}")
        self.flush()
        rows: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.log_rows_after(f"{table}_log", after, product_key, limit=_PAGE)
            rows += [
                r
                for r in page
                if r["product_key"] is not None or mentions_product_key(r, product_key)
            ]
            if len(page) < _PAGE:
                return rows
            after = page[-1]["id"]

    def connection_frame(self, device: DeviceLike | None = None) -> pd.DataFrame:
        """The connection log as a DataFrame: ``time`` datetime64 (UTC), ``protocol`` and
        ``event`` categorical, text columns ``str``, ``explanation`` as JSON text."""
        return connection_frame_from_rows(self._log_rows("connection_log", device, None))

    def message_frame(self, device: DeviceLike | None = None) -> pd.DataFrame:
        """The message log as a DataFrame: ``time`` datetime64 (UTC), ``direction``
        categorical, ``payload`` bytes, ``text`` the payload decoded (UTF-8, replaced),
        ``size`` its length."""
        return message_frame_from_rows(self._log_rows("message_log", device, None))

    def _tables(self) -> list[str]:
        """Every table of the registry, read from ``sqlite_master`` (SQLite's own, such
        as ``sqlite_sequence``, left out)."""
        rows = self._query(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
        return [r["name"] for r in rows]

    @staticmethod
    def _is_log(table: str) -> bool:
        return table.endswith("_log")

    def table_counts(self, *, logs_only: bool = False) -> dict[str, int]:
        """Rows per table (only the ``*_log`` tables with ``logs_only``); flushes first.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1")
            >>> reg.table_counts()["products"], reg.table_counts(logs_only=True)
            (1, {'connection_log': 0, 'message_log': 0})
        """
        self.flush()
        counts = {}
        for table in self._tables():
            if logs_only and not self._is_log(table):
                continue
            counts[table] = int(self._query(f'SELECT count(*) FROM "{table}"')[0][0])
        return counts


def connection_frame_from_rows(rows: Iterable[Any]) -> pd.DataFrame:
    """The connection-log frame of :meth:`Registry.connection_frame` from rows with its
    columns (``sqlite3.Row`` or dicts: what the admin API's ``/admin/log`` serves)."""
    import pandas as pd

    rows = list(rows)
    columns = [
        "time", "protocol", "event", "accepted", "product_key", "device_name",
        "client_id", "remote", "code", "reason", "explanation",
    ]  # fmt: skip
    frame = pd.DataFrame([tuple(r[c] for c in columns) for r in rows], columns=columns)
    frame["time"] = pd.to_datetime(frame["time"].astype("float64"), unit="s", utc=True)
    frame["accepted"] = frame["accepted"].astype(bool)
    frame["code"] = frame["code"].astype("Int64")
    for name in ("protocol", "event"):
        frame[name] = frame[name].astype("category")
    for name in ("product_key", "device_name", "client_id", "remote", "reason", "explanation"):
        frame[name] = frame[name].astype("string")
    frame.insert(4, "device", _device_column(frame))
    return frame


def message_frame_from_rows(rows: Iterable[Any]) -> pd.DataFrame:
    """The message-log frame of :meth:`Registry.message_frame` from rows with its
    columns (``payload`` as bytes)."""
    import pandas as pd

    rows = list(rows)
    columns = [
        "time", "direction", "product_key", "device_name", "client_id", "topic", "qos",
        "payload", "accepted", "reason",
    ]  # fmt: skip
    frame = pd.DataFrame([tuple(r[c] for c in columns) for r in rows], columns=columns)
    frame["time"] = pd.to_datetime(frame["time"].astype("float64"), unit="s", utc=True)
    frame["direction"] = frame["direction"].astype("category")
    frame["qos"] = frame["qos"].astype("int64")
    frame["accepted"] = frame["accepted"].astype(bool)
    frame["payload"] = frame["payload"].map(bytes).astype(object)
    frame["size"] = frame["payload"].map(len).astype("int64")
    frame["text"] = (
        frame["payload"].map(lambda b: b.decode("utf-8", errors="replace")).astype("string")
    )
    for name in ("product_key", "device_name", "client_id", "topic", "reason"):
        frame[name] = frame[name].astype("string")
    frame.insert(2, "device", _device_column(frame))
    return frame


def _device_column(frame: pd.DataFrame) -> pd.Series:
    joined = frame["product_key"].astype("string") + "/" + frame["device_name"].astype("string")
    return joined.astype("string")
