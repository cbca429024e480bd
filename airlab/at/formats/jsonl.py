"""JSONL transcripts: the lossless native format.

Layout: the first line is a header object, every further line one record::

    {"format": "airlab-transcript", "version": 1, "source": ..., "source_format": ...,
     "date": "2024-08-22", "meta": {...}}
    {"dir": "sent", "wall": 1724297417.105, "mono": 0.0, "line": 7, "text": "AT+CGATT?\\r\\n"}
    {"dir": "received", "wall": null, "mono": null, "b64": "/wA="}

``text`` is used when the data is valid UTF-8 (strict: no lone surrogates), ``b64``
(standard base64) otherwise, so any bytes round-trip exactly while the common case
stays readable.  ``wall``/``mono`` are ``null`` for NaN.  ``line`` (source line) is
present when known; ``kind`` is present only for ``"unparsed"`` / ``"marker"`` records.

A line that cannot be read (a torn last line left by a killed writer, hand edits)
becomes an unparsed record with its line number: loading never fails on one bad line.

Example:
    >>> from airlab.at.transcript import Record
    >>> from airlab.at.events import Direction
    >>> record_line(Record(Direction.RECEIVED, b"\\xff\\r\\n", 1.5, 0.0))
    '{"dir": "received", "wall": 1.5, "mono": 0.0, "b64": "/w0K"}'
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any

from airlab.at.events import Direction
from airlab.at.transcript import Record, RecordKind, Transcript
from airlab.errors import CaptureFormatError

__all__ = ["FORMAT_NAME", "VERSION", "header_line", "read_jsonl", "record_line", "write_jsonl"]

FORMAT_NAME = "airlab-transcript"
VERSION = 1

_DIRS = {"sent": Direction.SENT, "received": Direction.RECEIVED}


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x


def header_line(transcript: Transcript) -> str:
    """The JSON header line (without newline) of ``transcript``."""
    return json.dumps(
        {
            "format": FORMAT_NAME,
            "version": VERSION,
            "source": transcript.source,
            "source_format": transcript.format,
            "date": transcript.date,
            "meta": transcript.meta,
        },
        ensure_ascii=False,
        default=str,
    )


def record_line(record: Record) -> str:
    """One record as a JSON line (without newline)."""
    obj: dict[str, Any] = {
        "dir": record.direction.value,
        "wall": _num(record.wall),
        "mono": _num(record.mono),
    }
    if record.line_no is not None:
        obj["line"] = record.line_no
    if record.kind is not RecordKind.DATA:
        obj["kind"] = record.kind.value
    try:
        obj["text"] = record.data.decode("utf-8")
    except UnicodeDecodeError:
        obj["b64"] = base64.b64encode(record.data).decode("ascii")
    return json.dumps(obj, ensure_ascii=False)


def write_jsonl(transcript: Transcript, path: str | os.PathLike[str]) -> None:
    """Write ``transcript`` to ``path`` (overwriting it)."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(header_line(transcript) + "\n")
        for rec in transcript.records:
            fh.write(record_line(rec) + "\n")


def _record_from(obj: Any, line_no: int) -> Record:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    direction = _DIRS[obj["dir"]]
    if "b64" in obj:
        data = base64.b64decode(obj["b64"], validate=True)
    else:
        text = obj["text"]
        if not isinstance(text, str):
            raise ValueError("text is not a string")
        data = text.encode("utf-8")
    wall = obj.get("wall")
    mono = obj.get("mono")
    line = obj.get("line")
    return Record(
        direction,
        data,
        NAN if wall is None else float(wall),
        NAN if mono is None else float(mono),
        int(line) if line is not None else None,
        RecordKind(obj.get("kind", "data")),
    )


NAN = math.nan


def read_jsonl(path: str | os.PathLike[str]) -> Transcript:
    """Read a JSONL transcript written by :func:`write_jsonl` or a ``TranscriptWriter``.

    Lines that do not hold a record (torn, edited) become unparsed records.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise CaptureFormatError(str(path), "no such file") from None
    text = raw.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    t = Transcript(source=str(path), format="jsonl")
    start = 0
    if lines:
        first: Any = None
        try:
            first = json.loads(lines[0])
        except ValueError:
            first = None
        if isinstance(first, dict) and first.get("format") == FORMAT_NAME:
            start = 1
            t.date = first.get("date")
            meta = first.get("meta")
            t.meta = dict(meta) if isinstance(meta, dict) else {}
            origin = {k: first.get(k) for k in ("source", "source_format") if first.get(k)}
            if origin:
                t.meta.setdefault("origin", origin)
        elif not (isinstance(first, dict) and "dir" in first):
            raise CaptureFormatError(str(path), "not an airlab JSONL transcript (no header line)")
    for i in range(start, len(lines)):
        line = lines[i].rstrip("\r")
        if not line.strip():
            continue
        try:
            rec = _record_from(json.loads(line), i + 1)
        except (ValueError, KeyError, TypeError):
            rec = Record(
                Direction.RECEIVED, line.encode("utf-8"), line_no=i + 1, kind=RecordKind.UNPARSED
            )
        t.records.append(rec)
    return t
