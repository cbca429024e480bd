"""sscom serial-tool logs (the tutorial's captures): import, fast DataFrame import, export.

A record starts with ``[hh:mm:ss.mmm]发→◇`` (bytes sent by the host) or
``[hh:mm:ss.mmm]收←◆`` (bytes received), optionally indented (the indent of the header
line is removed from the record's continuation lines).  Text before the first record
(``SOURCE:`` / ``#`` lines) is metadata.

Byte reconstruction rule (derived from the tutorial's captures):

* the newline right before a record header is sscom's record separator, not data;
* every other newline inside a record's text is a CR LF on the wire;
* a ``□`` line closing a sent record is the CR LF sscom appended, so
  ``发→◇AT+CGATT?\\n□\\n[...`` → ``AT+CGATT?\\r\\n``; without the ``□`` line (seed
  logs) the blank line after the sent text is that CR LF:
  ``发→◇AT+CGATT?\\n\\n[...`` → ``AT+CGATT?\\r\\n``;
* the last record runs to the end of the file (no separator follows it), so a file
  ending in ``CONNACK OK\\n`` gives ``...CONNACK OK\\r\\n``.
* ``□`` is sscom's end-of-send mark: with CR LF appended the CR LF shows as the line
  break before it; without, it follows the text on the same line (``发→◇AT□`` → ``AT``).

HEX display mode ("HEX显示"): sscom writes each chunk as hex pairs, a space after
each, e.g. ``[10:48:58.563]发→◇41 54 2B 53 54 41 52 54 0A □ `` (sent; the ``□`` on
the same line) and ``[17:10:11.957]收←◆03 03 1E ... AD D9 `` (received), long
chunks possibly wrapped.  A hex body is the exact bytes: no CR LF is reconstructed
and the ``□`` adds nothing -- Modbus frames logged as ``01 03 00 00 00 01 84 0A □``
were answered, so no CR LF went out after them.  Which records are hex is decided
per file, then per record (:func:`_decide_hex`): so a text record ``AB CD`` stays
text unless the whole file is hex.

Variants also read (all seen in public logs / tools' source):

* stamps with a date (``[2024-07-22 10:20:36.670]``, ``[2024/07/22 10:20:36:670]``),
  or without milliseconds (``[10:20:36]``); a dated stamp's own date wins over the
  date rule below, and undated stamps in such a file take the date of the dated
  stamp before them;
* a space between the stamp and the marker (``[13:41:12.027] 收←◆``);
* bare markers at the start of a line (sscom with its time stamps switched off):
  ``收←◆5``; such records have no time (NaN);
* UartAssist-style headers ``[2019-07-13 11:21:44.870]# SEND ASCII>`` /
  ``# RECV ASCII>`` / ``# SEND HEX>`` / ``# RECV HEX>``: the data starts on the next
  line (the newline after ``>`` is not data); HEX records are decoded as hex.

The file is decoded as UTF-8 (GB18030 when that fails: sscom on Chinese Windows).
sscom is a display format: lone CR or LF bytes, and bytes that are not text, cannot
be told apart from CR LF after a round trip; use JSONL for exact bytes.

Plain stamps carry no date.  Date rule (:func:`~airlab.at.formats._common.resolve_date`):
``date=`` if given, else a ``YYYY-MM-DD``/``YYYYMMDD`` date in the file name, else
2000-01-01.  The clock is read as UTC.  A stamp more than 12 h earlier than the previous
one is taken as a midnight rollover (next day).  A header whose stamp cannot be read
becomes an unparsed record holding the whole record's text.

The text scan is in :mod:`airlab.at.formats.sscom_scan`, the fast DataFrame path in
:mod:`airlab.at.formats.sscom_fast`.

Example:
    >>> t = parse_sscom("[03:10:18.025]收←◆\\n+HTTPACTION: 1,200,124\\n", date="2024-07-22")
    >>> t[0].data
    b'\\r\\n+HTTPACTION: 1,200,124\\r\\n'
"""

from __future__ import annotations

import datetime as dt
import math
import os
from typing import TYPE_CHECKING

from airlab.at.events import Direction
from airlab.at.formats._common import (
    decode_log,
    read_log_text,
    resolve_date,
)
from airlab.at.formats.sscom_fast import (
    _clock,
    _scan_bytes_fast,
)
from airlab.at.formats.sscom_scan import (
    _HEADER,
    CRLF_MARK,
    RECEIVED_MARK,
    SENT_MARK,
    _Scan,
    _scan_text,
)
from airlab.at.transcript import Record, RecordKind, Transcript
from airlab.errors import CaptureFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "RECEIVED_MARK",
    "SENT_MARK",
    "parse_sscom",
    "read_sscom",
    "read_sscom_dataframe",
    "write_sscom",
]


# --------------------------------------------------------------------------- public API


def _first_stamp_day(scan: _Scan) -> dt.date | None:
    """The date of the first stamp that carries one (``[2024-07-22 10:20:36.670]``)."""
    if scan.days is None:
        return None
    for d in scan.days:
        if not math.isnan(d):
            return dt.date(1970, 1, 1) + dt.timedelta(days=int(d // 86400))
    return None


def parse_sscom(
    text: str, date: str | dt.date | None = None, source: str | None = None
) -> Transcript:
    """Parse the text of an sscom log into a :class:`Transcript` (see the module doc)."""
    import numpy as np

    day, date_source = resolve_date(date, source)
    scan = _scan_text(text)
    secs = np.asarray(scan.secs, dtype=float)
    wall, mono = _clock(secs, day, scan.days)
    stamp_day = _first_stamp_day(scan)
    if stamp_day is not None:
        day, date_source = stamp_day, "stamp"
    t = Transcript(source=source, format="sscom", date=day.isoformat())
    t.meta["date_source"] = date_source
    if scan.header:
        t.meta["header"] = scan.header
    assert scan.kinds is not None
    recs = t.records
    for i, text_i in enumerate(scan.texts):
        direction = Direction.SENT if scan.sent[i] else Direction.RECEIVED
        recs.append(
            Record(
                direction,
                scan.raw[i] if i in scan.raw else text_i.encode("utf-8"),
                float(wall[i]),
                float(mono[i]),
                int(scan.lines[i]),
                scan.kinds[i],
            )
        )
    return t


def read_sscom(path: str | os.PathLike[str], date: str | dt.date | None = None) -> Transcript:
    """Read an sscom log file into a :class:`Transcript`.

    >>> t = read_sscom("data/captures/seed_direct_mqtt.log")  # doctest: +SKIP
    """
    text = read_log_text(path)
    if _HEADER.search(text) is None:
        raise CaptureFormatError(str(path), "no sscom record ([hh:mm:ss.mmm]发→◇ / 收←◆) found")
    return parse_sscom(text, date=date, source=str(path))


def read_sscom_dataframe(
    path: str | os.PathLike[str], date: str | dt.date | None = None
) -> pd.DataFrame:
    """Read an sscom log straight into a records DataFrame (fast, vectorised).

    Same rows and columns as ``read_sscom(path, date).to_dataframe("records")``, but
    without building a Python object per record: use it for large logs.

    >>> df = read_sscom_dataframe("data/captures/seed_direct_mqtt.log")  # doctest: +SKIP
    >>> df.columns.tolist()  # doctest: +SKIP
    ['time', 'mono', 'direction', 'kind', 'text', 'nbytes', 'line_no', 'unparsed']
    """
    import numpy as np
    import pandas as pd

    from airlab.at.formats import tables

    day, _ = resolve_date(date, path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise CaptureFormatError(str(path), "no such file") from None
    with fh:
        try:
            fast = _scan_bytes_fast(fh)
        except ImportError:  # no pyarrow: the per-record scanner does the job
            fast = None
        if fast is None:
            fh.seek(0)
            raw = fh.read()
    if fast is None:
        text = decode_log(raw)
        del raw
        if _HEADER.search(text) is None:
            raise CaptureFormatError(str(path), "no sscom record found")
        return _frame_of(_scan_text(text), day)
    scan, nbytes = fast
    wall, mono = _clock(scan.secs, day)
    text = pd.Series(
        pd.arrays.ArrowStringArray(scan.texts, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    )
    return tables.assemble_records_frame(
        wall=wall,
        mono=mono,
        sent=scan.sent,
        kind_codes=np.zeros(len(wall), np.int8),
        text=text,
        nbytes=nbytes,
        line_no=scan.lines,
    )


def _frame_of(scan: _Scan, day: dt.date) -> pd.DataFrame:
    import numpy as np

    from airlab.at.formats import tables

    secs = np.asarray(scan.secs, dtype=float)
    wall, mono = _clock(secs, day, scan.days)
    assert scan.kinds is not None
    data = [k is RecordKind.DATA for k in scan.kinds]
    texts = scan.texts
    nbytes = [len(t) if t.isascii() else len(t.encode()) for t in texts]
    if scan.raw:
        texts = list(texts)
        for i, b in scan.raw.items():
            texts[i] = b.decode("utf-8", "replace")
            nbytes[i] = len(b)
    return tables.assemble_records_frame(
        wall=wall,
        mono=mono,
        sent=np.asarray(scan.sent, bool),
        kind_codes=np.asarray([tables.KIND_CODES[k] for k in scan.kinds], np.int8),
        text=texts,
        nbytes=np.asarray(nbytes, np.int64),
        line_no=np.asarray(scan.lines, np.int64),
        data_rows=np.asarray(data, bool),
    )


def _stamp(wall: float) -> str:
    if math.isnan(wall):
        return "00:00:00.000"
    ms_total = round(wall * 1000) % 86_400_000
    h, rest = divmod(ms_total, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def format_sscom(transcript: Transcript, *, crlf_mark: bool = True) -> str:
    """The transcript as sscom log text.

    ``crlf_mark=True`` writes the tutorial's layout (a ``□`` line for the CR LF that
    ends a sent record); ``False`` writes the seed logs' layout (a blank line).
    Metadata header lines are written first; unparsed and marker records are left
    out (sscom has no place for them).  A record without a time gets the previous
    record's stamp.

    >>> from airlab.at.transcript import Transcript
    >>> t = Transcript(); t.add("sent", b"AT\\r\\n", wall=3600.0)
    >>> format_sscom(t)
    '[01:00:00.000]发→◇AT\\n□'
    """
    out: list[str] = [line + "\n" for line in transcript.meta.get("header", [])]
    first = True
    last_wall = math.nan
    for rec in transcript.records:
        if not rec.is_data:
            continue
        wall = rec.wall if not math.isnan(rec.wall) else last_wall
        last_wall = wall
        text = rec.data.decode("utf-8", "replace").replace("\r\n", "\n")
        sent = rec.direction is Direction.SENT
        if sent and crlf_mark and text.endswith("\n"):
            text += CRLF_MARK
        mark = SENT_MARK if sent else RECEIVED_MARK
        out.append(("" if first else "\n") + f"[{_stamp(wall)}]{mark}{text}")
        first = False
    return "".join(out)


def write_sscom(
    transcript: Transcript, path: str | os.PathLike[str], *, crlf_mark: bool = True
) -> None:
    """Write the transcript as an sscom log (UTF-8); see :func:`format_sscom`."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(format_sscom(transcript, crlf_mark=crlf_mark))
