"""Helpers shared by the log importers: file decoding, dates, header lines."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from airlab.errors import CaptureFormatError, UsageError

__all__ = ["DEFAULT_DATE", "decode_log", "epoch_of_date", "read_log_text", "resolve_date"]

#: Date given to sscom stamps (which carry none) when neither ``date=`` nor the file
#: name says otherwise.  Fixed, so an import is reproducible on any machine.
DEFAULT_DATE = dt.date(2000, 1, 1)

_NAME_DATE = re.compile(r"(?<!\d)(20\d\d)[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])(?!\d)")


def decode_log(raw: bytes) -> str:
    """Decode a serial-tool log: UTF-8 (BOM stripped), else GB18030 (Chinese Windows)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", "replace")
    return text[1:] if text.startswith("\ufeff") else text


def read_log_text(path: str | os.PathLike[str]) -> str:
    """Read and decode a log file; a missing file is a :class:`CaptureFormatError`."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise CaptureFormatError(str(path), "no such file") from None
    except IsADirectoryError:
        raise CaptureFormatError(str(path), "is a directory, not a capture file") from None
    return decode_log(raw)


def resolve_date(
    date: str | dt.date | None, path: str | os.PathLike[str] | None = None
) -> tuple[dt.date, str]:
    """The date for stamps without one, and where it came from.

    Rule: ``date`` given → that date (``"argument"``); else a ``YYYY-MM-DD`` /
    ``YYYYMMDD`` date in the file name (``"file name"``); else :data:`DEFAULT_DATE`
    (``"default"``).

    >>> resolve_date(None, "logs/2024-08-22_aliyun.log")
    (datetime.date(2024, 8, 22), 'file name')
    >>> resolve_date("2024-07-01")
    (datetime.date(2024, 7, 1), 'argument')
    """
    if isinstance(date, dt.datetime):
        return date.date(), "argument"
    if isinstance(date, dt.date):
        return date, "argument"
    if date is not None:
        try:
            return dt.date.fromisoformat(str(date).strip()), "argument"
        except ValueError:
            raise UsageError("date", f"expected YYYY-MM-DD, got {date!r}") from None
    if path is not None:
        m = _NAME_DATE.search(Path(path).name)
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3])), "file name"
            except ValueError:
                pass
    return DEFAULT_DATE, "default"


def epoch_of_date(day: dt.date) -> float:
    """Unix seconds of midnight UTC of ``day``."""
    return float((day - dt.date(1970, 1, 1)).days * 86400)


def is_header_line(line: str) -> bool:
    """A comment line of the captures' preamble (``SOURCE: ...`` or ``# ...``)."""
    s = line.lstrip()
    return s.startswith("#") or s.startswith("SOURCE:")
