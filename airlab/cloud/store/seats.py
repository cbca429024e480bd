"""Classes (``airlab class create``): a product, one device per seat, and the class
tokens that give scoped access to the admin API.

Example:
    >>> from airlab.cloud.registry import Registry
    >>> reg = Registry(); _ = reg.add_product("pk1"); _ = reg.add_device("pk1", "dev1")
    >>> [s.seat for s in reg.add_class("room1", "pk1", [("01", "", "dev1")])]
    ['01']
"""

from __future__ import annotations

import hmac
import json
import secrets
import sqlite3
from collections.abc import Iterable
from typing import Any

from airlab.cloud.store.base import StoreBase
from airlab.cloud.store.records import Seat, _token_digest, _token_list
from airlab.errors import UsageError

__all__ = ["SeatsMixin"]


class SeatsMixin(StoreBase):
    """Classes, seats and class tokens."""

    def add_class(
        self, name: str, product_key: str, seats: Iterable[tuple[str, str, str]]
    ) -> list[Seat]:
        """Record class ``name`` on ``product_key`` with its ``(seat, label, device_name)``
        rows, in order (the product and devices must exist; names are validated by
        :mod:`airlab.classroom`).  One transaction: all seats or none.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1"); _ = reg.add_device("pk1", "dev1")
            >>> reg.add_class("room1", "pk1", [("01", "Ana", "dev1")])[0].device_name
            'dev1'
        """
        rows = [(name, s, label, product_key, dn, i) for i, (s, label, dn) in enumerate(seats)]
        now = self._clock()
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO classes (name, product_key, created) VALUES (?, ?, ?)",
                    (name, product_key, now),
                )
                conn.executemany("INSERT INTO seats VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError as exc:
            if any(c[0] == name for c in self.classes()):
                raise UsageError("name", f"class {name!r} already exists") from None
            raise UsageError("seats", f"cannot record the class: {exc}") from None
        return self.seats(name)

    def classes(self) -> list[tuple[str, str, float]]:
        """Every class as ``(name, product_key, created)``, newest first."""
        rows = self._query("SELECT name, product_key, created FROM classes ORDER BY created DESC")
        return [(r["name"], r["product_key"], r["created"]) for r in rows]

    def seats(self, class_name: str | None = None) -> list[Seat]:
        """The seats of one class (every class's when ``None``), in roster order."""
        sql = "SELECT * FROM seats"
        params: tuple[Any, ...] = ()
        if class_name is not None:
            sql += " WHERE class_name = ?"
            params = (class_name,)
        rows = self._query(sql + " ORDER BY class_name, position", params)
        return [
            Seat(r["class_name"], r["seat"], r["label"], r["product_key"], r["device_name"])
            for r in rows
        ]

    def add_class_token(self, name: str, *, revoke_others: bool = False) -> str:
        """A new class token for class ``name`` (``airlab class room-file``): scoped
        access to the admin API for the class's product.  Only its SHA-256 digest is
        stored; earlier tokens stay valid unless ``revoke_others``.

        Example:
            >>> from airlab.cloud.registry import Registry
            >>> reg = Registry(); _ = reg.add_product("pk1"); _ = reg.add_class("c1", "pk1", [])
            >>> token = reg.add_class_token("c1")
            >>> reg.class_of_token(token), reg.class_of_token("nope")
            (('c1', 'pk1'), None)
        """
        token = "class-" + secrets.token_urlsafe(24)
        digest = _token_digest(token)
        with self._write() as conn:
            rows = conn.execute(
                "SELECT token_hashes FROM classes WHERE name = ?", (name,)
            ).fetchall()
            if not rows:
                raise UsageError("name", f"no class {name!r}")
            kept = [] if revoke_others else _token_list(rows[0]["token_hashes"])
            conn.execute(
                "UPDATE classes SET token_hashes = ? WHERE name = ?",
                (json.dumps([*kept, digest]), name),
            )
        return token

    def class_of_token(self, token: str) -> tuple[str, str] | None:
        """``(class name, product key)`` of a class token, or None.  Every stored digest
        is compared in constant time (no early exit)."""
        if not isinstance(token, str) or not token or len(token) > 256:
            return None
        digest = _token_digest(token)
        found = None
        for row in self._query("SELECT name, product_key, token_hashes FROM classes"):
            for stored in _token_list(row["token_hashes"]):
                if hmac.compare_digest(stored.encode("ascii", "replace"), digest.encode()):
                    found = (row["name"], row["product_key"])
        return found
