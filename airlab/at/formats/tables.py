"""Transcripts as tables: DataFrames, CSV and Parquet (pandas imported lazily).

Records table columns: ``time`` (``datetime64[us, UTC]`` from ``wall``; NaT when the
source has no time), ``mono`` (float seconds), ``direction`` (category
sent/received), ``kind`` (category data/unparsed/marker), ``text`` (str: the data
decoded as UTF-8, undecodable bytes replaced), ``nbytes``, ``line_no`` (Int64),
``unparsed`` (bool).

Files add the exact bytes: CSV a ``data_b64`` column (base64), Parquet a binary
``data`` column; both read back into a :class:`Transcript` with
:func:`read_records_table`.  Events tables (``level="events"``) have ``time``,
``mono``, ``direction``, ``kind`` (the :attr:`Event.kind`), ``text``, ``line``,
``name``, ``result``, ``code``, ``topic``, ``payload_len``, ``nbytes``.

Example:
    >>> from airlab.at.transcript import Transcript
    >>> t = Transcript(); t.add("sent", b"AT\\r", wall=0.0, mono=0.0)
    >>> records_frame(t.records)["direction"].tolist()
    ['sent']
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airlab.at.events import _KIND, Direction, Event
from airlab.at.transcript import Record, RecordKind, Transcript
from airlab.errors import CaptureFormatError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "DIRECTIONS",
    "EVENT_KINDS",
    "RECORD_KINDS",
    "assemble_records_frame",
    "events_frame",
    "read_records_table",
    "records_frame",
    "time_column",
    "write_csv",
    "write_parquet",
]

DIRECTIONS = ["sent", "received"]
RECORD_KINDS = [k.value for k in RecordKind]
KIND_CODES = {k: i for i, k in enumerate(RecordKind)}
EVENT_KINDS = list(dict.fromkeys(_KIND.values()))


def time_column(wall: np.ndarray) -> pd.Series:
    """Unix seconds (NaN = unknown) as a UTC ``datetime64[us]`` Series (NaT for NaN)."""
    import numpy as np
    import pandas as pd

    us = np.round(np.asarray(wall, dtype=float) * 1e6)
    missing = np.isnan(us)
    vals = np.where(missing, 0, us).astype(np.int64).view("datetime64[us]")
    if missing.any():
        vals = vals.copy()
        vals[missing] = np.datetime64("NaT")
    return pd.Series(vals).dt.tz_localize("UTC")


def assemble_records_frame(
    *,
    wall: np.ndarray,
    mono: np.ndarray,
    sent: np.ndarray,
    kind_codes: np.ndarray,
    text: Any,
    nbytes: np.ndarray,
    line_no: np.ndarray,
    data_rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Build a records DataFrame from columns (``line_no < 0`` means unknown)."""
    import numpy as np
    import pandas as pd

    sent = np.asarray(sent, bool)
    kind_codes = np.asarray(kind_codes, np.int8)
    line_no = np.asarray(line_no, np.int64)
    text_col = text if isinstance(text, pd.Series) else pd.Series(text, dtype="str")
    return pd.DataFrame(
        {
            "time": time_column(wall),
            "mono": np.asarray(mono, dtype=float),
            "direction": pd.Categorical.from_codes(
                np.where(sent, 0, 1).astype(np.int8), categories=DIRECTIONS
            ),
            "kind": pd.Categorical.from_codes(kind_codes, categories=RECORD_KINDS),
            "text": text_col.reset_index(drop=True),
            "nbytes": np.asarray(nbytes, np.int64),
            "line_no": pd.arrays.IntegerArray(line_no, line_no < 0),
            "unparsed": kind_codes == KIND_CODES[RecordKind.UNPARSED],
        }
    )


def records_frame(records: Sequence[Record]) -> pd.DataFrame:
    """One row per record (see the module doc for the columns)."""
    import numpy as np

    return assemble_records_frame(
        wall=np.fromiter((r.wall for r in records), float, len(records)),
        mono=np.fromiter((r.mono for r in records), float, len(records)),
        sent=np.fromiter((r.direction is Direction.SENT for r in records), bool, len(records)),
        kind_codes=np.fromiter((KIND_CODES[r.kind] for r in records), np.int8, len(records)),
        text=[r.data.decode("utf-8", "replace") for r in records],
        nbytes=np.fromiter((len(r.data) for r in records), np.int64, len(records)),
        line_no=np.fromiter(
            (-1 if r.line_no is None else r.line_no for r in records), np.int64, len(records)
        ),
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def events_frame(events: Sequence[Event]) -> pd.DataFrame:
    """One row per parsed event (see the module doc for the columns)."""
    import numpy as np
    import pandas as pd

    def payload_len(ev: Event) -> int | None:
        data = getattr(ev, "data", None)
        if data is None:
            data = getattr(ev, "payload", None)
        return None if data is None else len(data)

    return pd.DataFrame(
        {
            "time": time_column(np.fromiter((e.wall for e in events), float, len(events))),
            "mono": np.fromiter((e.mono for e in events), float, len(events)),
            "direction": pd.Categorical([e.direction.value for e in events], categories=DIRECTIONS),
            "kind": pd.Categorical([e.kind for e in events], categories=EVENT_KINDS),
            "text": pd.Series([e.text for e in events], dtype="str"),
            "line": pd.Series([_opt_str(getattr(e, "line", None)) for e in events], dtype="str"),
            "name": pd.Series(
                [_opt_str(getattr(e, "name", None) or getattr(e, "source", None)) for e in events],
                dtype="str",
            ),
            "result": pd.Series(
                [_opt_str(getattr(e, "result", None)) for e in events], dtype="str"
            ),
            "code": pd.array([getattr(e, "code", None) for e in events], dtype="Int64"),
            "topic": pd.Series([_opt_str(getattr(e, "topic", None)) for e in events], dtype="str"),
            "payload_len": pd.array([payload_len(e) for e in events], dtype="Int64"),
            "nbytes": np.fromiter((len(e.raw) for e in events), np.int64, len(events)),
        }
    )


# --------------------------------------------------------------------------- files


def _level_frame(transcript: Transcript, level: str) -> pd.DataFrame:
    if level == "records":
        return records_frame(transcript.records)
    if level == "events":
        return events_frame(transcript.events())
    raise UsageError("level", f"expected 'records' or 'events', got {level!r}")


def write_csv(transcript: Transcript, path: str | os.PathLike[str], level: str = "records") -> None:
    """Write records (with a ``data_b64`` column of exact bytes) or events as CSV.

    ``time`` is written in ISO 8601 with ``+00:00``; rows end with CR LF (RFC 4180), so
    texts holding a lone CR are quoted and read back intact.
    """
    df = _level_frame(transcript, level)
    if level == "records":
        df["data_b64"] = [base64.b64encode(r.data).decode("ascii") for r in transcript.records]
    # CR LF row ends make the csv module quote every field holding a CR or an LF
    df.to_csv(path, index=False, lineterminator="\r\n")


def write_parquet(
    transcript: Transcript, path: str | os.PathLike[str], level: str = "records"
) -> None:
    """Write records (with a binary ``data`` column of exact bytes) or events as Parquet."""
    import pandas as pd

    df = _level_frame(transcript, level)
    if level == "records":
        df["data"] = pd.Series([r.data for r in transcript.records], dtype=object)
    df.to_parquet(path, index=False)


def read_records_table(path: str | os.PathLike[str], fmt: str | None = None) -> Transcript:
    """Read a records CSV/Parquet written by :func:`write_csv` / :func:`write_parquet`."""
    import pandas as pd

    p = os.fspath(path)
    fmt = fmt or ("parquet" if p.endswith(".parquet") else "csv")
    if not os.path.exists(p):
        raise CaptureFormatError(p, "no such file")
    try:
        if fmt == "parquet":
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, dtype={"data_b64": "str", "text": "str"}, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise CaptureFormatError(p, f"cannot read as {fmt}: {exc}") from None
    need = {"time", "mono", "direction"}
    if not need <= set(df.columns) or ("data" not in df and "data_b64" not in df):
        raise CaptureFormatError(p, "not a records table (needs time, mono, direction, data)")
    times = pd.to_datetime(df["time"].replace("", None), utc=True, format="ISO8601")
    wall = (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(float, na_value=math.nan)
    mono = pd.to_numeric(df["mono"].replace("", None)).to_numpy(float, na_value=math.nan)
    if "data" in df:
        datas = [bytes(x) for x in df["data"]]
    else:
        datas = [base64.b64decode(x) for x in df["data_b64"]]
    kinds = df["kind"].astype(str).tolist() if "kind" in df else ["data"] * len(df)
    lines = df["line_no"].tolist() if "line_no" in df else [None] * len(df)
    t = Transcript(source=p, format=fmt)
    for i in range(len(df)):
        ln = lines[i]
        t.records.append(
            Record(
                Direction(str(df["direction"].iat[i])),
                datas[i],
                float(wall[i]),
                float(mono[i]),
                None if ln is None or pd.isna(ln) or ln == "" else int(ln),
                RecordKind(kinds[i]),
            )
        )
    return t
