"""The emulator's registry (设备注册表): products, topic classes, devices, tokens, and the
connection and message logs, in SQLite.

* A file by default (``":memory:"`` for tests); WAL mode, so another process (``airlab
  cloud add-device --db same.db`` while ``serve`` runs) can write, and rows are never
  cached here: the running service sees a new device on its next lookup.
* Thread-safe: one connection guarded by a lock (the broker thread, the HTTP threads and
  the notebook all share it).
* Logging never blocks the broker: :meth:`Registry.log_connection` and
  :meth:`Registry.log_message` only enqueue; a writer thread commits in batches
  (``executemany``; every 200 records or ~50 ms). A record may carry ``on_commit``,
  called (in the writer thread, in queue order) once its transaction is committed:
  the broker sends a PUBACK or a refusal only then, so nothing acknowledged is missing
  from the log after a crash. Such a record ends the batch's wait at once (group
  commit: whatever is queued goes in one transaction). The broker's batches
  (:meth:`Registry.log_messages`) are committed on its own thread instead, through a
  second connection (file registries). :meth:`Registry.flush` waits
  until everything queued is written; reads of the logs flush first;
  :meth:`Registry.close` flushes.

Example:
    >>> reg = Registry()
    >>> reg.add_product("k1hipglLdjU", "8LQwOYSZMwp3DFBd").dynamic_registration
    False
    >>> dev = reg.add_device("k1hipglLdjU", "868488076506128",
    ...                      "fef32adf6dad46c2c7cbf335d3a7b021")
    >>> reg.get_device("k1hipglLdjU", "868488076506128").device_secret
    'fef32adf6dad46c2c7cbf335d3a7b021'
    >>> [c.template for c in reg.topic_classes("k1hipglLdjU")][2]
    '/${productKey}/${deviceName}/user/get'
    >>> len(reg.issue_token(dev.ref).iot_id)
    26
    >>> reg.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from airlab.cloud.store.base import StoreBase
from airlab.cloud.store.reader import (
    LogReaderMixin,
    connection_frame_from_rows,
    message_frame_from_rows,
)
from airlab.cloud.store.records import (
    TOKEN_LIFETIME,
    Device,
    DeviceLike,
    DeviceToken,
    Product,
    Seat,
    Token,
)
from airlab.cloud.store.records import _random_text as _random_text  # for airlab.cloud.auth
from airlab.cloud.store.records import _ref as _ref
from airlab.cloud.store.seats import SeatsMixin
from airlab.cloud.store.tokens import TokensMixin
from airlab.cloud.store.writer import OnCommit as OnCommit
from airlab.errors import UsageError

__all__ = [
    "TOKEN_LIFETIME",
    "Device",
    "DeviceLike",
    "DeviceToken",
    "Product",
    "Registry",
    "Seat",
    "Token",
    "connection_frame_from_rows",
    "message_frame_from_rows",
]


class Registry(TokensMixin, SeatsMixin, LogReaderMixin, StoreBase):
    """SQLite-backed registry shared by every part of the emulator.

    ``path`` is a file path (created if missing) or ``":memory:"``. ``clock`` gives the
    epoch seconds used for ``created``/``issued`` stamps.

    Example:
        >>> with Registry() as reg:
        ...     _ = reg.add_product("pk1", dynamic_registration=True)
        ...     len(reg.get_product("pk1").product_secret)
        16
    """

    def __init__(
        self, path: str | Path = ":memory:", *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(path, clock=clock)
        self._start_writer()

    # -- plumbing ---------------------------------------------------------------------

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.path!r})"

    # -- reset (airlab cloud reset): every table emptied, the fixture loaded again ------

    def reset(
        self,
        fixture: str | Callable[[Registry], object] | None = None,
        *,
        logs_only: bool = False,
    ) -> dict[str, int]:
        """Empty every table (every ``*_log`` table only, with ``logs_only``) in one
        transaction, then load ``fixture`` (a name from
        :data:`airlab.cloud.fixtures.FIXTURES` or a callable taking the registry); returns
        the rows removed per table.

        Tables are read from ``sqlite_master``, so a table added later is emptied too.
        AUTOINCREMENT counters are kept: log ids keep growing across a reset, so a reader
        following the log by id (``airlab cloud log --follow``) sees the new rows.

        Example:
            >>> reg = Registry(); _ = reg.add_product("a1Other")
            >>> reg.reset("tutorial")["products"]
            1
            >>> [p.product_key for p in reg.products()]
            ['k1hipglLdjU']
        """
        load: Callable[[Registry], object] | None
        if isinstance(fixture, str):
            from airlab.cloud.fixtures import FIXTURES

            if fixture not in FIXTURES:
                known = ", ".join(sorted(FIXTURES))
                raise UsageError("fixture", f"unknown fixture {fixture!r} (known: {known})")
            load = FIXTURES[fixture]
        else:
            load = fixture
        self.flush()  # queued log lines land before the reset, not after it
        removed: dict[str, int] = {}
        with self._lock:
            self._check_open()
            tables = [t for t in self._tables() if not logs_only or self._is_log(t)]
            with self._transaction() as conn:
                # rows reference each other (devices -> products, seats -> devices ...):
                # check the foreign keys at COMMIT, when every table is empty
                conn.execute("PRAGMA defer_foreign_keys = ON")
                for table in tables:  # counted first: a cascade empties some early
                    count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                    removed[table] = int(count[0])
                for table in tables:
                    conn.execute(f'DELETE FROM "{table}"')
        if load is not None and not logs_only:
            load(self)
        return removed

    def close(self) -> None:
        """Flush the logs, stop the writer and close the database (idempotent)."""
        with self._cond:
            if self._closed:
                return
        self.flush()
        with self._cond:
            self._closed = True
        self._queue.put(None)
        self._writer.join(timeout=10)
        self._close_direct()
        with self._lock:
            self._conn.close()
