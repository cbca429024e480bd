"""Transcripts: every chunk of bytes that crossed the serial line, in order, with its stamps.

A :class:`Record` is one chunk (``direction``, exact ``data``, ``wall`` and ``mono``
stamps, the ``line_no`` it came from in an imported log).  Lines of an imported log
that could not be read are kept as records of kind ``"unparsed"`` (their ``data`` is
the source text, UTF-8 encoded) and block separators of pasted logs as records of kind
``"marker"``: nothing is ever dropped silently, and neither kind is wire data.

A :class:`Transcript` is the ordered list of records plus metadata.  It parses itself
into :mod:`airlab.at.events` (``events()``), becomes a pandas DataFrame
(``to_dataframe()``), and saves to / loads from JSONL (``save()`` / ``load()``).
:class:`TranscriptWriter` appends one JSONL line per record and flushes it, so a killed
process loses at most the chunk in flight.

Transcripts hold secrets (``AT+MCONFIG`` passwords, signatures, tokens): every file
this module writes (:class:`TranscriptWriter`, :meth:`Transcript.save`,
:meth:`Transcript.to_csv`, :meth:`Transcript.to_parquet`) is created readable by its
owner only (mode 0600, never wider even for an instant), and an existing file written
to is set to 0600 (:func:`open_private`, :func:`make_private`).

Time conventions: ``wall`` is Unix epoch seconds (``NaN`` when the source has no
time); the ``time`` column of a DataFrame is ``datetime64[us, UTC]`` made from
``wall``.  Logs whose stamps carry no zone (sscom) are read as if their clock were UTC,
so ``time`` shows the log's own clock reading.  ``mono`` of an imported log is
``wall`` minus the wall time of its first timestamped record.

Example:
    >>> from airlab.at.events import Direction
    >>> t = Transcript()
    >>> t.add(Direction.SENT, b"AT\\r\\n", wall=0.0, mono=0.0)
    >>> t.add(Direction.RECEIVED, b"AT\\r\\n\\r\\nOK\\r\\n", wall=0.01, mono=0.01)
    >>> len(t), t.sent(), t.received()
    (2, b'AT\\r\\n', b'AT\\r\\n\\r\\nOK\\r\\n')
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from airlab.at.events import Direction, Event

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PRIVATE_MODE",
    "Record",
    "RecordKind",
    "Transcript",
    "TranscriptWriter",
    "make_private",
    "open_private",
]

NAN = math.nan

#: Permission bits of every transcript file airlab writes: owner read/write only.
PRIVATE_MODE = 0o600

log = logging.getLogger("airlab.at.transcript")


def _open_private_fd(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open`` creating with :data:`PRIVATE_MODE`; an existing file is chmod-ed."""
    fd = os.open(path, flags | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_MODE)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, PRIVATE_MODE)
        else:  # pragma: no cover - Windows: only the read-only bit exists
            os.chmod(path, PRIVATE_MODE)
    except PermissionError:  # not our file: its owner could read it anyway
        log.warning("cannot restrict %s to mode 0600 (not the owner)", os.fspath(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private(path: str | os.PathLike[str], mode: Literal["w", "a"] = "w") -> TextIO:
    """Open a UTF-8 text file for writing (``"w"`` truncates, ``"a"`` appends) that
    only its owner can read: a new file is created with mode 0600 (whatever the
    umask), an existing one is set to 0600 before anything is written.

    >>> import tempfile, os, stat
    >>> path = os.path.join(tempfile.mkdtemp(), "secret.jsonl")
    >>> with open_private(path) as fh:
    ...     _ = fh.write("AT+MCONFIG=...\\n")
    >>> oct(stat.S_IMODE(os.stat(path).st_mode))
    '0o600'
    """
    if mode not in ("w", "a"):
        from airlab.errors import UsageError

        raise UsageError("mode", f"expected 'w' or 'a', got {mode!r}")
    flags = os.O_WRONLY | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = _open_private_fd(path, flags)
    try:
        return os.fdopen(fd, mode, encoding="utf-8", newline="\n")
    except BaseException:
        os.close(fd)
        raise


def make_private(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty with mode 0600 if missing, else set its mode to 0600
    (its content is kept): a writer that opens it afterwards (``open(path, "w")``,
    pandas, pyarrow) keeps those bits.

    >>> import tempfile, os, stat
    >>> path = os.path.join(tempfile.mkdtemp(), "export.csv")
    >>> make_private(path)
    >>> oct(stat.S_IMODE(os.stat(path).st_mode)), os.path.getsize(path)
    ('0o600', 0)
    """
    os.close(_open_private_fd(path, os.O_WRONLY))


class RecordKind(StrEnum):
    """What a record holds."""

    DATA = "data"  # bytes that crossed the serial line
    UNPARSED = "unparsed"  # a source line that could not be read (data = its text)
    MARKER = "marker"  # a block separator / comment of a pasted log (data = its text)


@dataclass(frozen=True, slots=True)
class Record:
    """One chunk of bytes in one direction.

    ``data`` is exact for ``kind == "data"``.  For ``"unparsed"`` and ``"marker"``
    records it is the UTF-8 text of the source line(s) and ``direction`` is only a
    best guess (``received`` when unknown).

    >>> r = Record(Direction.SENT, b"AT+CGATT?\\r\\n", wall=1.0, mono=0.0, line_no=7)
    >>> r.text, r.unparsed
    ('AT+CGATT?\\r\\n', False)
    """

    direction: Direction
    data: bytes
    wall: float = NAN
    mono: float = NAN
    line_no: int | None = None
    kind: RecordKind = RecordKind.DATA

    @property
    def unparsed(self) -> bool:
        """True for a source line that could not be read."""
        return self.kind is RecordKind.UNPARSED

    @property
    def is_data(self) -> bool:
        """True when ``data`` holds bytes that crossed the line."""
        return self.kind is RecordKind.DATA

    @property
    def text(self) -> str:
        """``data`` decoded as UTF-8 (undecodable bytes replaced by U+FFFD)."""
        return self.data.decode("utf-8", "replace")


@dataclass
class Transcript:
    """Ordered records plus metadata (``source`` path, ``format``, ``date``, ``meta``).

    ``meta`` holds free-form metadata: ``device``, ``notes``, ``header`` (the comment
    lines before the first record of an imported log), ``date_source`` ...

    >>> t = Transcript(format="jsonl")
    >>> t.add("sent", b"AT\\r")
    >>> [r.direction.value for r in t]
    ['sent']
    """

    records: list[Record] = field(default_factory=list)
    source: str | None = None
    format: str | None = None
    date: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ container

    def append(self, record: Record) -> None:
        """Append one record."""
        self.records.append(record)

    def extend(self, records: Iterable[Record]) -> None:
        """Append several records."""
        self.records.extend(records)

    def add(
        self,
        direction: Direction | str,
        data: bytes,
        wall: float = NAN,
        mono: float = NAN,
        line_no: int | None = None,
    ) -> None:
        """Append a data record built from its parts."""
        self.records.append(Record(Direction(direction), bytes(data), wall, mono, line_no))

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Record:
        return self.records[index]

    # ------------------------------------------------------------------ views

    def data_records(self) -> list[Record]:
        """Records holding wire data (no unparsed lines, no markers)."""
        return [r for r in self.records if r.kind is RecordKind.DATA]

    def unparsed(self) -> list[Record]:
        """Source lines that could not be read, with their ``line_no``."""
        return [r for r in self.records if r.kind is RecordKind.UNPARSED]

    def sent(self) -> bytes:
        """All bytes the host sent, joined."""
        return b"".join(r.data for r in self.records if r.is_data and r.direction is Direction.SENT)

    def received(self) -> bytes:
        """All bytes the module sent, joined."""
        return b"".join(
            r.data for r in self.records if r.is_data and r.direction is Direction.RECEIVED
        )

    # ------------------------------------------------------------------ parsing

    def events(self) -> list[Event]:
        """Parse the records with :class:`airlab.at.parser.AtParser` into events.

        A marker record (a ``# ----- next block -----`` line of a pasted log) starts a
        fresh parser: blocks are separate excerpts, so no command spans two of them.
        Unparsed records are skipped.
        """
        from airlab.at.parser import AtParser

        events: list[Event] = []
        parser = AtParser()
        last_wall, last_mono = NAN, NAN
        fed = False
        for rec in self.records:
            if rec.kind is RecordKind.MARKER:
                if fed:
                    events.extend(parser.close(last_wall, last_mono))
                parser, fed = AtParser(), False
                continue
            if rec.kind is not RecordKind.DATA:
                continue
            events.extend(parser.feed(rec.direction, rec.data, rec.wall, rec.mono))
            last_wall, last_mono, fed = rec.wall, rec.mono, True
        if fed:
            events.extend(parser.close(last_wall, last_mono))
        return events

    # ------------------------------------------------------------------ tables

    def to_dataframe(self, level: Literal["events", "records"] = "events") -> pd.DataFrame:
        """The transcript as a DataFrame.

        ``level="records"``: one row per record, columns ``time``
        (``datetime64[us, UTC]``), ``mono`` (float), ``direction`` (category
        sent/received), ``kind`` (category data/unparsed/marker), ``text`` (str),
        ``nbytes``, ``line_no`` (Int64), ``unparsed`` (bool).

        ``level="events"``: one row per parsed event, columns ``time``, ``mono``,
        ``direction``, ``kind`` (category, :attr:`Event.kind`), ``text``, ``line``,
        ``name``, ``result``, ``code`` (Int64), ``topic``, ``payload_len`` (Int64),
        ``nbytes``.

        >>> Transcript().to_dataframe("records").columns.tolist()[:3]
        ['time', 'mono', 'direction']
        """
        from airlab.at.formats import tables

        if level == "records":
            return tables.records_frame(self.records)
        if level == "events":
            return tables.events_frame(self.events())
        from airlab.errors import UsageError

        raise UsageError("level", f"expected 'events' or 'records', got {level!r}")

    def to_csv(self, path: str | os.PathLike[str], level: str = "records") -> None:
        """Write the records (exact bytes as base64) or the events as CSV."""
        from airlab.at.formats import tables

        make_private(path)
        tables.write_csv(self, path, level=level)

    def to_parquet(self, path: str | os.PathLike[str], level: str = "records") -> None:
        """Write the records (exact bytes in a binary column) or the events as Parquet."""
        from airlab.at.formats import tables

        make_private(path)
        tables.write_parquet(self, path, level=level)

    # ------------------------------------------------------------------ JSONL

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the transcript as JSONL (lossless; see :mod:`airlab.at.formats.jsonl`),
        to a file only its owner can read (mode 0600)."""
        from airlab.at.formats import jsonl

        make_private(path)
        jsonl.write_jsonl(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Transcript:
        """Read a JSONL transcript; a torn last line becomes an unparsed record."""
        from airlab.at.formats import jsonl

        return jsonl.read_jsonl(path)


class TranscriptWriter:
    """Append records to a JSONL transcript, one flushed line per record.

    The file is opened in append mode; a header line is written first when the file
    is empty.  It is created with mode 0600 (an existing one is set to 0600): records
    hold passwords and tokens.  ``fsync=True`` also forces each line to disk (slower,
    survives a power cut, not only a killed process).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "t.jsonl")
    >>> with TranscriptWriter(path) as w:
    ...     w.write(Record(Direction.SENT, b"AT\\r", 1.0, 0.0))
    >>> len(Transcript.load(path))
    1
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> None:
        from airlab.at.formats import jsonl

        self.path = Path(path)
        self.fsync = fsync
        self._jsonl = jsonl
        torn = self._ends_torn(self.path)
        self._fh = open_private(self.path, "a")
        if torn:  # end a torn last line so it stays one unparsed line, apart from ours
            self._write_line("")
        if self._fh.tell() == 0:
            header = Transcript(source=None, format="jsonl", meta=dict(meta or {}))
            self._write_line(jsonl.header_line(header))

    @staticmethod
    def _ends_torn(path: Path) -> bool:
        try:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() == 0:
                    return False
                fh.seek(-1, os.SEEK_END)
                return fh.read(1) != b"\n"
        except FileNotFoundError:
            return False

    def write(self, record: Record) -> None:
        """Append one record and flush it."""
        self._write_line(self._jsonl.record_line(record))

    def add(
        self, direction: Direction | str, data: bytes, wall: float = NAN, mono: float = NAN
    ) -> None:
        """Append a data record built from its parts."""
        self.write(Record(Direction(direction), bytes(data), wall, mono))

    def _write_line(self, line: str) -> None:
        self._fh.write(line + "\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file (every record is already flushed)."""
        self._fh.close()

    def __enter__(self) -> TranscriptWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
