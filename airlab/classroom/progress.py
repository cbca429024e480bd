"""Every seat's progress, as the cloud sees it, read incrementally from its logs.

The steps of a lesson, in order, and the log line that proves each one:

``attached``   the module reached the cloud at all (any HTTP or MQTT request naming the
               device): it is attached and has a data bearer;
``logged in``  an MQTT CONNECT accepted (CONNACK 0);
``subscribed`` a SUBSCRIBE granted;
``published``  an uplink PUBLISH accepted;
``received``   a cloud-to-device message delivered to it (the kick notice aside).

:meth:`ClassProgress.refresh` reads only the log rows added since its last call (by row
id), so a dashboard that refreshes every second costs little however long the logs
are; the first call reads the whole history of the class's product.  Refusals that name
no device (a CONNECT refused before its login was understood) count for a seat when
they mention its ProductKey and DeviceName, as :meth:`~airlab.cloud.service.CloudConsole.refusals`
does.  Online: from the service (``online=`` a callable such as ``cloud.online_devices``)
or, without one, from the logs (a connect not yet followed by its close).

Example:
    >>> from airlab.cloud.model import ConnectionEvent, DeviceRef
    >>> from airlab.cloud.registry import Registry
    >>> from airlab.classroom import create_class, numbered_seats
    >>> reg = Registry()
    >>> room = create_class(reg, numbered_seats(2), name="demo")
    >>> first = room.cards[0]
    >>> reg.log_connection(ConnectionEvent(5.0, "mqtt", "connect", True,
    ...     DeviceRef(first.product_key, first.device_name))); _ = reg.flush()
    >>> progress = ClassProgress(reg, "demo")
    >>> [(row.seat, row.reached, row.online) for row in progress.refresh()]
    [('01', 'logged in', True), ('02', None, False)]
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from airlab.cloud.registry import Registry, Seat
from airlab.errors import UsageError

__all__ = ["STEPS", "ClassProgress", "LiveMessage", "SeatProgress", "class_names", "hhmmss"]

#: Log rows read per query; a refresh reads pages until both logs are caught up.
_PAGE = 5000

STEPS: tuple[str, ...] = ("attached", "logged in", "subscribed", "published", "received")
_CLOSES = {"disconnect", "kicked", "keepalive"}
_KICK_TOPIC = "/ext/notify"


@dataclass
class SeatProgress:
    """One seat's row: when each step was first reached, online now, counts, and the
    latest refusal (``refusal``: one line; ``explanation``: the cloud's words)."""

    seat: str
    label: str
    product_key: str
    device_name: str
    steps: dict[str, float] = field(default_factory=dict)
    online: bool = False
    published: int = 0
    received: int = 0
    refused: int = 0
    kicked: int = 0
    last_seen: float | None = None
    refusal: str | None = None
    refusal_time: float | None = None
    explanation: str | None = None
    _open: int = field(default=0, repr=False)

    @property
    def reached(self) -> str | None:
        """The furthest step reached (in :data:`STEPS` order), or None."""
        done = [s for s in STEPS if s in self.steps]
        return done[-1] if done else None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (JSON-ready)."""
        return {
            "seat": self.seat,
            "label": self.label,
            "device": f"{self.product_key}/{self.device_name}",
            "online": self.online,
            **{step: self.steps.get(step) for step in STEPS},
            "published_count": self.published,
            "received_count": self.received,
            "refused_count": self.refused,
            "kicked_count": self.kicked,
            "last_seen": self.last_seen,
            "refusal": self.refusal,
            "refusal_time": self.refusal_time,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class LiveMessage:
    """One line of the class's live message log."""

    time: float
    direction: str
    seat: str | None
    device_name: str | None
    topic: str
    qos: int
    payload: bytes
    accepted: bool
    reason: str | None


def _explanation_text(raw: object) -> str | None:
    if not raw:
        return None
    try:
        data = json.loads(str(raw))
    except ValueError:
        return str(raw)
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("rule", "message") if data.get(k)]
        return ": ".join(parts) if parts else None
    return str(data)


def hhmmss(when: float | None) -> str:
    """A log time as the local ``HH:MM:SS`` the views show ("" for none).

    Example:
        >>> hhmmss(None)
        ''
    """
    return dt.datetime.fromtimestamp(when).strftime("%H:%M:%S") if when else ""


def class_names(cloud: Any) -> list[str]:
    """The classes on ``cloud`` (a :class:`~airlab.cloud.service.CloudConsole`), newest
    first; empty when it has none or its registry is not readable from here (in memory
    in another process, or on another machine).

    Example:
        >>> from airlab.cloud import CloudEmulator
        >>> class_names(CloudEmulator())
        []
    """
    try:
        return [name for name, _, _ in cloud.registry.classes()]
    except (UsageError, AttributeError):
        return []


class ClassProgress:
    """Follow the seats of class ``class_name`` in ``registry`` (see the module doc).

    ``online``: a callable returning the devices connected now (objects with
    ``product_key`` and ``device_name``, such as ``cloud.online_devices``); ``messages``:
    how many recent messages :attr:`messages` keeps.
    """

    def __init__(
        self,
        registry: Registry,
        class_name: str | None = None,
        *,
        online: Callable[[], Iterable[Any]] | None = None,
        messages: int = 50,
    ) -> None:
        classes = registry.classes()
        if not classes:
            raise UsageError(
                "class", f"no class in {registry.path}: create one with 'airlab class create'"
            )
        if class_name is None:
            class_name = classes[0][0]  # the newest
        found = [c for c in classes if c[0] == class_name]
        if not found:
            names = ", ".join(c[0] for c in classes)
            raise UsageError("class", f"no class {class_name!r} (classes: {names})")
        self.registry = registry
        self.class_name = class_name
        self.product_key = found[0][1]
        self._online = online
        self.seats: list[Seat] = registry.seats(class_name)
        self.rows: dict[str, SeatProgress] = {
            s.device_name: SeatProgress(s.seat, s.label, s.product_key, s.device_name)
            for s in self.seats
        }
        self.messages: collections.deque[LiveMessage] = collections.deque(maxlen=messages)
        self._last = {"connection_log": 0, "message_log": 0}  # the last row id read of each
        self.last_refresh_seconds = 0.0
        self.rows_read = 0

    # -- reading ----------------------------------------------------------------------

    def refresh(self) -> list[SeatProgress]:
        """Read what the logs gained since the last call; return every seat's row."""
        started = time.perf_counter()
        read = 0
        while True:
            conns = self._read_page("connection_log", self._on_connection)
            msgs = self._read_page("message_log", self._on_message)
            read += conns + msgs
            if conns < _PAGE and msgs < _PAGE:  # both caught up
                break
        if self._online is not None:
            now_online = {
                str(d.device_name)
                for d in self._online()
                if str(getattr(d, "product_key", "")) == self.product_key
            }
            for name, row in self.rows.items():
                row.online = name in now_online
        self.rows_read += read
        self.last_refresh_seconds = time.perf_counter() - started
        return list(self.rows.values())

    def _read_page(self, table: str, handle: Callable[[dict[str, Any]], None]) -> int:
        """Hand the next page of the log ``table`` (rows after the last one read) to
        ``handle``, row by row; return how many rows it had."""
        rows = self.registry.log_rows_after(table, self._last[table], self.product_key, limit=_PAGE)
        for row in rows:
            handle(row)
        if rows:
            self._last[table] = int(rows[-1]["id"])
        return len(rows)

    def _seat_of(self, row: dict[str, Any]) -> SeatProgress | None:
        name = row.get("device_name")
        if name is not None:
            return self.rows.get(str(name)) if row.get("product_key") == self.product_key else None
        if row.get("accepted"):
            return None
        text = " ".join(str(row.get(k) or "") for k in ("client_id", "reason", "explanation"))
        if self.product_key not in text:
            return None
        for device_name, seat in self.rows.items():
            if device_name in text:
                return seat
        return None

    def _refusal(self, seat: SeatProgress, when: float, what: str, explanation: Any) -> None:
        seat.refused += 1
        if seat.refusal_time is None or when >= seat.refusal_time:
            seat.refusal, seat.refusal_time = what, when
            text = _explanation_text(explanation)
            message = text.split(": ", 1)[-1] if text else None
            seat.explanation = None if message and message in what else text

    def _on_connection(self, row: dict[str, Any]) -> None:
        seat = self._seat_of(row)
        if seat is None:
            return
        when = float(row["time"])
        seat.last_seen = max(seat.last_seen or when, when)
        seat.steps.setdefault("attached", when)
        protocol, event, accepted = row["protocol"], row["event"], bool(row["accepted"])
        if protocol == "mqtt" and event == "connect" and accepted:
            seat.steps.setdefault("logged in", when)
            seat._open += 1
        elif protocol == "mqtt" and event in _CLOSES:
            seat._open = max(0, seat._open - 1)
            seat.kicked += event == "kicked"
        elif protocol == "mqtt" and event == "subscribe" and accepted:
            seat.steps.setdefault("subscribed", when)
        if self._online is None:
            seat.online = seat._open > 0
        if not accepted:
            code = row.get("code")
            what = f"{protocol} {event}" + (f" (code {code})" if code is not None else "")
            reason = row.get("reason")
            what += f": {reason}" if reason else ""
            self._refusal(seat, when, what, row.get("explanation"))

    def _on_message(self, row: dict[str, Any]) -> None:
        seat = self._seat_of(row) if row.get("device_name") is not None else None
        when = float(row["time"])
        payload = bytes(row["payload"] or b"")
        self.messages.append(
            LiveMessage(
                when, str(row["direction"]), seat.seat if seat else None,
                row.get("device_name"), str(row["topic"]), int(row["qos"]), payload,
                bool(row["accepted"]), row.get("reason"),
            )
        )  # fmt: skip
        if seat is None:
            return
        seat.last_seen = max(seat.last_seen or when, when)
        seat.steps.setdefault("attached", when)
        if row["direction"] == "up":
            if row["accepted"]:
                seat.steps.setdefault("published", when)
                seat.published += 1
            else:
                self._refusal(seat, when, f"publish to {row['topic']}: {row.get('reason')}", None)
        elif row["accepted"] and row["topic"] != _KICK_TOPIC:
            seat.steps.setdefault("received", when)
            seat.received += 1

    # -- summaries --------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many seats reached each step, how many are online, and the kicks (a
        second login of a seat's device closed the first: two people on one seat)."""
        rows = list(self.rows.values())
        result = {step: sum(step in r.steps for r in rows) for step in STEPS}
        result["online"] = sum(r.online for r in rows)
        result["kicked"] = sum(r.kicked for r in rows)
        result["seats"] = len(rows)
        return result

    def frame(self) -> Any:
        """The rows as a pandas DataFrame (one row per seat)."""
        import pandas as pd

        return pd.DataFrame([r.as_dict() for r in self.rows.values()])
