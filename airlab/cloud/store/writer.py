"""The registry's log writer: logging never blocks the broker.

:meth:`LogWriterMixin.log_connection` and :meth:`LogWriterMixin.log_message` only
enqueue; a writer thread commits in batches (``executemany``; every 200 records or
~50 ms). A record may carry ``on_commit``, called (in the writer thread, in queue
order) once its transaction is committed: the broker sends a PUBACK or a refusal only
then, so nothing acknowledged is missing from the log after a crash. Such a record ends
the batch's wait at once (group commit: whatever is queued goes in one transaction).

Example:
    >>> from airlab.cloud.registry import Registry
    >>> reg = Registry(); done = threading.Event()
    >>> reg.log_connection(ConnectionEvent(1.0, "mqtt", "connect", True), done.set)
    >>> done.wait(5)
    True
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from airlab.cloud.model import ConnectionEvent, MessageRecord
from airlab.cloud.store.base import StoreBase, transaction
from airlab.cloud.store.records import _explanation_json

__all__ = ["LogWriterMixin", "OnCommit"]

log = logging.getLogger("airlab.cloud.registry")

_BATCH = 200
_LINGER = 0.05
# Someone waits for the commit (a PUBACK, a refusal): gather what arrives within this
# window into the same transaction (group commit), then commit at once.
_GROUP_WINDOW = 0.002
OnCommit = Callable[[], None]
_Item = tuple[str, list[tuple[Any, ...]], OnCommit | None]  # sql, rows, on_commit
_FLUSH: _Item = ("flush", [], None)
_MESSAGE_SQL = (
    "INSERT INTO message_log (time, direction, product_key, device_name, client_id, "
    "topic, qos, payload, accepted, reason, explanation) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class LogWriterMixin(StoreBase):
    """The connection and message logs' queue and writer thread (started by
    :meth:`_start_writer`)."""

    def _start_writer(self) -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._enqueued = 0
        self._written = 0
        self.last_write_error: BaseException | None = None
        self._direct_conn: sqlite3.Connection | None = None  # see log_messages
        self._direct_lock = threading.Lock()
        self._writer = threading.Thread(
            target=self._write_loop, name="airlab-registry", daemon=True
        )
        self._writer.start()

    def log_connection(self, event: ConnectionEvent, on_commit: OnCommit | None = None) -> None:
        """Queue one connection-log line (returns at once; see :meth:`flush`);
        ``on_commit`` is called once it is committed."""
        dev = event.device
        self._enqueue(
            "INSERT INTO connection_log (time, protocol, event, accepted, product_key, "
            "device_name, client_id, remote, code, reason, explanation) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    event.time,
                    event.protocol,
                    event.event,
                    int(event.accepted),
                    dev.product_key if dev else None,
                    dev.device_name if dev else None,
                    event.client_id,
                    event.remote,
                    event.code,
                    event.reason,
                    _explanation_json(event.explanation),
                )
            ],
            on_commit,
        )

    def log_message(self, record: MessageRecord, on_commit: OnCommit | None = None) -> None:
        """Queue one message-log line (returns at once; see :meth:`flush`);
        ``on_commit`` is called once it is committed.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); done = threading.Event()
            >>> reg.log_message(MessageRecord(1.0, "up", "/t", 1, b"x", True), done.set)
            >>> done.wait(5), len(reg.message_log())
            (True, 1)
        """
        self._enqueue(_MESSAGE_SQL, [_message_row(record)], on_commit)

    def log_messages(self, records: list[MessageRecord], on_commit: OnCommit | None = None) -> None:
        """Log what the broker gathered for one commit, with one ``on_commit`` for all
        of it.

        A file registry writes and commits them at once, on the caller's thread, through
        a connection of its own: the broker's loop then never hands the GIL back and
        forth with a writer thread once per row (SQLite releases it for every step),
        which cost more than the writing; WAL mode lets readers on the registry's
        connection go on meanwhile. ``on_commit`` is called before this returns, and
        not at all if the commit failed (nothing unwritten is acknowledged). An
        in-memory registry has no second connection: there they are queued like
        :meth:`log_message` lines.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); done = threading.Event()
            >>> reg.log_messages([MessageRecord(1.0, "up", "/t", 1, b"x", True)] * 3, done.set)
            >>> done.wait(5), len(reg.message_log())
            (True, 3)
        """
        rows = [_message_row(r) for r in records]
        if self.path == ":memory:":
            self._enqueue(_MESSAGE_SQL, rows, on_commit)
            return
        with self._direct_lock:
            if self._closed:
                return
            conn = self._direct_conn
            if conn is None:
                conn = self._direct_conn = sqlite3.connect(
                    self.path, timeout=10.0, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with transaction(conn):
                    conn.executemany(_MESSAGE_SQL, rows)
            except Exception as exc:  # pragma: no cover - disk full, locked for 10 s ...
                self.last_write_error = exc
                log.error("the registry could not write %d log records: %r", len(rows), exc)
                return
        if on_commit is not None:
            on_commit()

    def _close_direct(self) -> None:
        with self._direct_lock:
            if self._direct_conn is not None:
                self._direct_conn.close()
                self._direct_conn = None

    def _enqueue(self, sql: str, rows: list[tuple[Any, ...]], on_commit: OnCommit | None) -> None:
        with self._cond:
            if self._closed:  # late lines from a stopping broker are dropped
                return
            self._enqueued += 1
        self._queue.put((sql, rows, on_commit))

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            if item is _FLUSH:
                continue
            batch = [item]
            urgent = item[2] is not None
            if urgent and len(item[1]) == 1:  # several rows: the broker grouped them already
                time.sleep(_GROUP_WINDOW)  # one wake-up per group, not one per record
            deadline = time.monotonic() + _LINGER
            while len(batch) < _BATCH:
                remaining = 0.0 if urgent else deadline - time.monotonic()
                try:
                    if remaining > 0:
                        nxt = self._queue.get(timeout=remaining)
                    else:
                        nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt is _FLUSH:  # someone waits: commit now instead of lingering
                    break
                batch.append(nxt)
                if nxt[2] is not None and not urgent:
                    urgent = True  # from now on take only what is already queued
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Item]) -> None:
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for sql, rows, _ in batch:
            grouped.setdefault(sql, []).extend(rows)
        committed = False
        try:
            with self._lock:
                with self._transaction(log_lines=True) as conn:
                    for sql, rows in grouped.items():
                        conn.executemany(sql, rows)
                committed = True
        except Exception as exc:  # pragma: no cover - disk full, locked for 10 s ...
            self.last_write_error = exc
            log.error("the registry could not write %d log records: %r", len(batch), exc)
        finally:
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()
        if committed:  # an unwritten record is never acknowledged
            for _, _, on_commit in batch:
                if on_commit is not None:
                    try:
                        on_commit()
                    except Exception:
                        log.exception("an on_commit callback of the registry failed")

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every record queued so far is committed; False on timeout.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry()
            >>> reg.log_connection(ConnectionEvent(1.0, "mqtt", "connect", True))
            >>> reg.flush(), len(reg.connection_log())
            (True, 1)
        """
        with self._cond:
            target = self._enqueued
            if self._written >= target:
                return True
        self._queue.put(_FLUSH)
        with self._cond:
            return self._cond.wait_for(lambda: self._written >= target, timeout)


def _message_row(record: MessageRecord) -> tuple[Any, ...]:
    dev = record.device
    return (
        record.time,
        record.direction,
        dev.product_key if dev else None,
        dev.device_name if dev else None,
        record.client_id,
        record.topic,
        record.qos,
        bytes(record.payload),
        int(record.accepted),
        record.reason,
        None,
    )
