"""Capture file formats: detection, import (:func:`read_capture`), export (:func:`write_capture`).

Import formats: ``jsonl`` (native, lossless), ``sscom`` and ``llcom`` (serial-tool
logs), ``console`` (untimestamped logs pasted from docs), ``bytes`` (``b'...'`` lines),
``csv`` and ``parquet`` (records tables written by airlab).  Export formats: ``jsonl``,
``csv``, ``parquet``, ``sscom``, ``llcom``.

Detection (:func:`detect_format`): by extension first (``.jsonl``, ``.csv``,
``.parquet``), then by content: ``发→◇``/``收←◆`` (or UartAssist's
``[stamp]# SEND ASCII>``-style headers) → sscom, ``[INF] <-``/``[INF] ->``/
``[DBG] [HEX]``/``[START]Logs by LLCOM`` → llcom, a ``b'...'`` line → bytes, a JSON
header line → jsonl, anything else → console.

Example:
    >>> t = read_capture("data/captures/seed_direct_mqtt.log")  # doctest: +SKIP
    >>> t.format, len(t)  # doctest: +SKIP
    ('sscom', 8)
    >>> write_capture(t, "direct.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

from airlab.at.formats.sscom import read_sscom_dataframe
from airlab.at.transcript import Transcript
from airlab.errors import CaptureFormatError, UsageError

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "detect_format",
    "read_capture",
    "read_sscom_dataframe",
    "write_capture",
]

IMPORT_FORMATS = ("jsonl", "sscom", "llcom", "console", "bytes", "csv", "parquet")
EXPORT_FORMATS = ("jsonl", "csv", "parquet", "sscom", "llcom")

_EXTENSIONS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_LLCOM = re.compile(
    r"\[INF\]\s?(?:Raw)?(?:<-|->)|\[DBG\]\s?\[(?:Raw )?HEX\]|\[(?:START|SRART)\]Logs by LLCOM"
)
# UartAssist-style headers the sscom reader also takes: [2019-07-13 11:21:44.870]# RECV ASCII>
_UART_ASSIST = re.compile(
    r"^[ \t]*\[[^\]\n]{0,40}\][ \t]?#[ \t]?(?:SEND|RECV)[ \t]?(?:ASCII|HEX)>", re.M
)
_BYTES = re.compile(r"""^\s*[bB][rR]?['"]""", re.M)


def detect_format(path: str | os.PathLike[str]) -> str:
    """Guess the format of a capture file from its name, else from its first 64 KiB.

    >>> detect_format("data/captures/luat_docs/T11_air724ug_raw_bytes_echo_framing.txt")
    'bytes'
    """
    p = Path(path)
    ext = _EXTENSIONS.get(p.suffix.lower())
    if ext:
        return ext
    try:
        with open(p, "rb") as fh:
            head = fh.read(65536)
    except FileNotFoundError:
        raise CaptureFormatError(str(path), "no such file") from None
    except IsADirectoryError:
        raise CaptureFormatError(str(path), "is a directory, not a capture file") from None
    from airlab.at.formats._common import decode_log

    text = decode_log(head)
    if "发→◇" in text or "收←◆" in text or _UART_ASSIST.search(text):
        return "sscom"
    if _LLCOM.search(text):
        return "llcom"
    if _BYTES.search(text):
        return "bytes"
    first = text.lstrip().split("\n", 1)[0]
    if first.startswith("{"):
        try:
            obj = json.loads(first)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and ("format" in obj or "dir" in obj):
            return "jsonl"
    return "console"


def _check_format(fmt: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    if fmt is None:
        return None
    name = fmt.strip().lower()
    if name not in allowed:
        raise UsageError(field, f"unknown format {fmt!r} (choose from {', '.join(allowed)})")
    return name


def read_capture(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    date: str | dt.date | None = None,
) -> Transcript:
    """Read a capture file of any supported format into a :class:`Transcript`.

    ``fmt`` is guessed when ``None`` (:func:`detect_format`).  ``date`` is the day of
    stamps that carry none (sscom; see :func:`~airlab.at.formats._common.resolve_date`).
    Unreadable lines never raise: they become unparsed records.
    """
    from airlab.at.formats import bytesrepr, console, jsonl, llcom, sscom, tables

    fmt = _check_format(fmt, IMPORT_FORMATS, "from")
    if date is not None:
        from airlab.at.formats._common import resolve_date

        date = resolve_date(date)[0]
    if not Path(path).exists():
        raise CaptureFormatError(str(path), "no such file")
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        return jsonl.read_jsonl(path)
    if fmt == "sscom":
        return sscom.read_sscom(path, date=date)
    if fmt == "llcom":
        return llcom.read_llcom(path)
    if fmt == "console":
        return console.read_console(path)
    if fmt == "bytes":
        return bytesrepr.read_bytesrepr(path)
    return tables.read_records_table(path, fmt)


def export_format_for(path: str | os.PathLike[str]) -> str:
    """The export format a file name implies (``.jsonl``/``.csv``/``.parquet``; ``.log``/``.txt``
    are written as sscom logs).  Any other name needs an explicit format.

    >>> export_format_for("run.parquet"), export_format_for("run.log")
    ('parquet', 'sscom')
    """
    suffix = Path(path).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if suffix in (".log", ".txt"):
        return "sscom"
    raise UsageError(
        "to",
        f"cannot tell the output format from the name {Path(path).name!r}; "
        f"give one of {', '.join(EXPORT_FORMATS)}",
    )


def write_capture(
    transcript: Transcript,
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    level: str = "records",
) -> str:
    """Write ``transcript`` to ``path``; returns the format used.

    ``fmt`` defaults to the one the extension implies (:func:`export_format_for`).
    ``level="events"`` writes the parsed events instead of records (csv/parquet only).
    """
    from airlab.at.formats import jsonl, llcom, sscom, tables

    fmt = _check_format(fmt, EXPORT_FORMATS, "to") or export_format_for(path)
    if level not in ("records", "events"):
        raise UsageError("level", f"expected 'records' or 'events', got {level!r}")
    if level == "events" and fmt not in ("csv", "parquet"):
        raise UsageError("level", f"events can only be written as csv or parquet, not {fmt}")
    from airlab.at.transcript import make_private

    make_private(path)  # a capture holds signatures and tokens unless redacted
    if fmt == "jsonl":
        jsonl.write_jsonl(transcript, path)
    elif fmt == "csv":
        tables.write_csv(transcript, path, level=level)
    elif fmt == "parquet":
        tables.write_parquet(transcript, path, level=level)
    elif fmt == "sscom":
        sscom.write_sscom(transcript, path)
    else:
        llcom.write_llcom(transcript, path)
    return fmt
