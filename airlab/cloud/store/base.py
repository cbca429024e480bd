"""The registry's schema and its one SQLite connection (guarded by a lock).

:class:`StoreBase` opens the database and offers ``_query``/``_execute``; the other rooms
of :mod:`airlab.cloud.store` build on it.

Example:
    >>> base = StoreBase()
    >>> base._query("SELECT count(*) FROM products")[0][0]
    0
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from airlab.errors import UsageError

__all__ = ["StoreBase", "transaction"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    product_key TEXT PRIMARY KEY,
    product_secret TEXT NOT NULL,
    region TEXT NOT NULL,
    dynamic_registration INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    host_check INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS topic_classes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_key TEXT NOT NULL REFERENCES products(product_key) ON DELETE CASCADE,
    template TEXT NOT NULL,
    permission TEXT NOT NULL,
    UNIQUE (product_key, template)
);
CREATE TABLE IF NOT EXISTS devices (
    product_key TEXT NOT NULL REFERENCES products(product_key) ON DELETE CASCADE,
    device_name TEXT NOT NULL,
    device_secret TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    activated INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    iot_id TEXT NOT NULL UNIQUE,
    PRIMARY KEY (product_key, device_name)
);
CREATE TABLE IF NOT EXISTS tokens (
    iot_token TEXT PRIMARY KEY,
    iot_id TEXT NOT NULL,
    product_key TEXT NOT NULL,
    device_name TEXT NOT NULL,
    issued REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_id ON tokens (iot_id);
CREATE TABLE IF NOT EXISTS device_tokens (
    product_key TEXT NOT NULL,
    device_name TEXT NOT NULL,
    client_id TEXT NOT NULL,
    device_token TEXT NOT NULL,
    issued REAL NOT NULL,
    PRIMARY KEY (product_key, device_name, client_id)
);
CREATE TABLE IF NOT EXISTS connection_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    protocol TEXT NOT NULL,
    event TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    product_key TEXT,
    device_name TEXT,
    client_id TEXT,
    remote TEXT,
    code INTEGER,
    reason TEXT,
    explanation TEXT
);
CREATE TABLE IF NOT EXISTS message_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    direction TEXT NOT NULL,
    product_key TEXT,
    device_name TEXT,
    client_id TEXT,
    topic TEXT NOT NULL,
    qos INTEGER NOT NULL,
    payload BLOB NOT NULL,
    accepted INTEGER NOT NULL,
    reason TEXT,
    explanation TEXT
);
CREATE INDEX IF NOT EXISTS connection_log_device ON connection_log (product_key, device_name);
CREATE INDEX IF NOT EXISTS message_log_device ON message_log (product_key, device_name);
CREATE TABLE IF NOT EXISTS classes (
    name TEXT PRIMARY KEY,
    product_key TEXT NOT NULL REFERENCES products(product_key) ON DELETE CASCADE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seats (
    class_name TEXT NOT NULL REFERENCES classes(name) ON DELETE CASCADE,
    seat TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    product_key TEXT NOT NULL,
    device_name TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (class_name, seat),
    FOREIGN KEY (product_key, device_name)
        REFERENCES devices(product_key, device_name) ON DELETE CASCADE
);
-- counts the writes to what topic permissions are computed from, from any connection
-- (this one, another process; see StoreBase.rules_revision)
CREATE TABLE IF NOT EXISTS rules_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
"""

# one trigger per (table, write) that topic permissions depend on: rules_revision counts
# them, whichever connection or process writes (see StoreBase.rules_revision)
_SCHEMA += "".join(
    f"""
CREATE TRIGGER IF NOT EXISTS {table}_{op.lower()}_revision AFTER {op} ON {table}
BEGIN
    INSERT OR IGNORE INTO rules_revision VALUES (1, 0);
    UPDATE rules_revision SET value = value + 1 WHERE id = 1;
END;"""
    for table in ("products", "topic_classes")
    for op in ("INSERT", "UPDATE", "DELETE")
)

# Columns added after the first release: (table, column, definition). A registry written
# by an older version gets them on open (ALTER TABLE ... ADD COLUMN keeps every row and
# gives it the default).
_ADDED_COLUMNS = (
    ("products", "host_check", "INTEGER NOT NULL DEFAULT 0"),
    ("products", "tls_required", "INTEGER NOT NULL DEFAULT 0"),
    # SHA-256 hex digests of the class's tokens (JSON list; see add_class_token)
    ("classes", "token_hashes", "TEXT NOT NULL DEFAULT '[]'"),
    # 动态注册状态: 1 once a dynamic registration issued the current DeviceSecret (see
    # Registry.registration_secret); ResetThing sets it back to 0 (未注册)
    ("devices", "registered", "INTEGER NOT NULL DEFAULT 0"),
)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on ``conn`` (autocommit mode); ``ROLLBACK`` and
    re-raise on any exception.

    Example:
        >>> conn = sqlite3.connect(":memory:", isolation_level=None)
        >>> with transaction(conn) as c:
        ...     _ = c.execute("CREATE TABLE t (x)")
        >>> conn.in_transaction
        False
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class StoreBase:
    """The SQLite connection of a registry: ``path`` is a file path (created if
    missing, readable by its owner only) or ``":memory:"``; ``clock`` gives the epoch
    seconds used for ``created``/``issued`` stamps. The schema is created (and an older
    file migrated) on open."""

    _closed: bool

    def __init__(
        self, path: str | Path = ":memory:", *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = str(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        self._changes = 0  # writes other than log lines made through this connection
        if self.path != ":memory:":
            _make_private(self.path)
        self._conn = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
            self._migrate()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            self._check_open()
            return self._conn.execute(sql, params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            self._check_open()
            self._changes += 1
            return self._conn.execute(sql, params).rowcount

    @contextlib.contextmanager
    def _transaction(self, *, log_lines: bool = False) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; ``ROLLBACK`` and re-raise on any exception
        (the caller holds :attr:`_lock`). Counted in :attr:`local_changes` unless it only
        adds ``log_lines``."""
        try:
            with transaction(self._conn) as conn:
                yield conn
        finally:
            if not log_lines:
                self._changes += 1

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write of the registry: hold :attr:`_lock`, refuse a closed registry, and
        run the body in one :meth:`_transaction` (all of it or none)."""
        with self._lock:
            self._check_open()
            with self._transaction() as conn:
                yield conn

    @property
    def local_changes(self) -> int:
        """How many writes (log lines aside) this registry object has made: a cheap
        test of whether :meth:`rules_revision` is worth reading again."""
        return self._changes

    def rules_revision(self) -> int:
        """A number that changes whenever any connection (this object, another process)
        writes a product or a topic class: what topic permissions are computed from.
        Counted by triggers in the file, so log lines and device updates leave it.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); before = reg.rules_revision()
            >>> _ = reg.add_product("pk1"); reg.rules_revision() != before
            True
            >>> before = reg.rules_revision(); d = reg.add_device("pk1", "dev1")
            >>> reg.mark_activated(d); reg.rules_revision() == before
            True
        """
        with self._lock:
            self._check_open()
            row = self._conn.execute("SELECT value FROM rules_revision").fetchone()
            return int(row[0]) if row else 0

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("registry", "the registry is closed")

    def _migrate(self) -> None:
        """Add the columns an older registry lacks (another process may race us: a
        column it added meanwhile is fine)."""
        for table, column, definition in _ADDED_COLUMNS:
            present = {r["name"] for r in self._conn.execute(f"PRAGMA table_info({table})")}
            if column in present:
                continue
            try:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc).lower():
                    raise


def _make_private(path: str) -> None:
    """Create the registry file (and its ``-wal``/``-shm`` companions, if any) readable
    by its owner only: it holds secrets and tokens. SQLite creates the WAL and SHM files
    with the main file's permissions, so they follow."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return  # sqlite3.connect reports the problem in its own words
    try:
        if os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            companion = path + suffix
            if os.stat(companion).st_uid == os.getuid():
                os.chmod(companion, 0o600)
