"""Record / Transcript / TranscriptWriter / JSONL / tables."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlab.at.events import Direction
from airlab.at.formats import read_capture, write_capture
from airlab.at.transcript import Record, RecordKind, Transcript, TranscriptWriter, open_private

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"


def _sample() -> Transcript:
    t = Transcript(meta={"device": "Air780EP"})
    t.add(Direction.SENT, b"AT+CGATT?\r\n", wall=1000.0, mono=0.0, line_no=1)
    t.add(Direction.RECEIVED, b"AT+CGATT?\r\n\r\n+CGATT: 1\r\n\r\nOK\r\n", 1000.004, 0.004, 3)
    t.add(Direction.RECEIVED, b"\xff\xfe\x00junk", 1000.5, 0.5)
    t.append(Record(Direction.RECEIVED, b"[bad line", line_no=9, kind=RecordKind.UNPARSED))
    return t


def test_container_and_joins() -> None:
    t = _sample()
    assert len(t) == 4
    assert t.sent() == b"AT+CGATT?\r\n"
    assert t.received().startswith(b"AT+CGATT?\r\n\r\n+CGATT: 1")
    assert b"[bad line" not in t.received()
    assert [r.line_no for r in t.unparsed()] == [9]
    assert t[0].text == "AT+CGATT?\r\n"


def test_jsonl_save_load_roundtrip(tmp_path: Path) -> None:
    t = _sample()
    path = tmp_path / "t.jsonl"
    t.save(path)
    header = json.loads(path.read_text().splitlines()[0])
    assert header["format"] == "airlab-transcript" and header["version"] == 1
    back = Transcript.load(path)
    assert back.records == t.records
    assert back.meta["device"] == "Air780EP"
    assert '"b64"' in path.read_text().splitlines()[3]  # invalid UTF-8 stored as base64


_records = st.builds(
    Record,
    st.sampled_from(list(Direction)),
    st.binary(max_size=64),
    st.one_of(st.just(math.nan), st.floats(0, 2e9, allow_nan=False)),
    st.one_of(st.just(math.nan), st.floats(-1e6, 1e6, allow_nan=False)),
    st.one_of(st.none(), st.integers(1, 10**6)),
    st.sampled_from(list(RecordKind)),
)


def _same(a: Record, b: Record) -> bool:
    def eq(x: float, y: float) -> bool:
        return (math.isnan(x) and math.isnan(y)) or x == y

    return (
        (a.direction, a.data, a.line_no, a.kind) == (b.direction, b.data, b.line_no, b.kind)
        and eq(a.wall, b.wall)
        and eq(a.mono, b.mono)
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(_records, max_size=8))
def test_jsonl_lossless_for_any_bytes(tmp_path_factory: pytest.TempPathFactory, recs) -> None:
    path = tmp_path_factory.mktemp("h") / "t.jsonl"
    Transcript(records=list(recs)).save(path)
    back = Transcript.load(path)
    assert len(back) == len(recs)
    assert all(_same(a, b) for a, b in zip(recs, back, strict=True))


def test_writer_file_readable_after_each_record_and_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    recs = _sample().records[:3]
    with TranscriptWriter(path, fsync=True, meta={"port": "COM5"}) as w:
        for i, rec in enumerate(recs, start=1):
            w.write(rec)
            assert Transcript.load(path).records == recs[:i]  # flushed, no close needed
    # a killed process leaves half a line behind
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"dir": "received", "wall": 1.0, "te')
    back = Transcript.load(path)
    assert back.records[:3] == recs
    assert back[3].unparsed and back[3].line_no == 5
    assert back.meta["port"] == "COM5"
    # appending again keeps a single header
    with TranscriptWriter(path) as w:
        w.add("sent", b"AT\r")
    assert Transcript.load(path)[-1].data == b"AT\r"


def test_load_rejects_foreign_file(tmp_path: Path) -> None:
    from airlab.errors import CaptureFormatError

    path = tmp_path / "x.jsonl"
    path.write_text("hello\n")
    with pytest.raises(CaptureFormatError):
        Transcript.load(path)


def test_records_dataframe_dtypes() -> None:
    df = _sample().to_dataframe(level="records")
    assert str(df["time"].dtype) == "datetime64[us, UTC]"
    assert df["mono"].dtype == "float64"
    assert isinstance(df["direction"].dtype, pd.CategoricalDtype)
    assert list(df["direction"].cat.categories) == ["sent", "received"]
    assert df["text"].dtype == "str"
    assert str(df["line_no"].dtype) == "Int64"
    assert df["unparsed"].tolist() == [False, False, False, True]
    assert df["time"].iloc[0] == pd.Timestamp(1000.0, unit="s", tz="UTC")
    assert pd.isna(df["time"].iloc[3])


def test_events_dataframe_from_capture() -> None:
    t = read_capture(CAPTURES / "seed_http_auth_then_mqtt.log", date="2024-07-22")
    df = t.to_dataframe(level="events")
    assert isinstance(df["kind"].dtype, pd.CategoricalDtype)
    assert str(df["time"].dtype) == "datetime64[us, UTC]"
    assert df["name"].dtype == "str"
    urc = df[(df["kind"] == "urc") & (df["name"] == "+HTTPACTION")]
    assert urc["line"].tolist() == ["+HTTPACTION: 1,200,124"]
    assert urc["time"].iloc[0] == pd.Timestamp("2024-07-22 03:10:18.025", tz="UTC")
    payload = df[df["kind"] == "payload"]
    assert payload["payload_len"].tolist() == [124]
    assert "CONNACK OK" in set(df.loc[df["kind"] == "urc", "name"])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_export_readable_and_roundtrips(tmp_path: Path, fmt: str) -> None:
    t = _sample()
    path = tmp_path / f"t.{fmt}"
    write_capture(t, path)
    df = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    assert {"time", "mono", "direction", "text", "line_no", "unparsed"} <= set(df.columns)
    back = read_capture(path)
    assert all(_same(a, b) for a, b in zip(t, back, strict=True))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_events_table_export(tmp_path: Path, fmt: str) -> None:
    t = read_capture(CAPTURES / "seed_publish_subscribe.log")
    path = tmp_path / f"ev.{fmt}"
    write_capture(t, path, level="events")
    df = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    assert {"PUBACK", "SUBACK"} <= set(df["name"].dropna())


# ---------------------------------------------------------------- private files (audit item 3)


@pytest.fixture
def umask_022():  # type: ignore[no-untyped-def]
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@posix_only
@pytest.mark.usefixtures("umask_022")
def test_writer_creates_its_file_private(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    with TranscriptWriter(path) as w:
        assert _mode(path) == 0o600  # from the first moment, before any record
        w.write(Record(Direction.SENT, b'AT+MCONFIG="c","u","secret"\r\n', 1.0, 0.0))
    assert _mode(path) == 0o600


@posix_only
@pytest.mark.usefixtures("umask_022")
def test_writer_makes_an_existing_file_private(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    with TranscriptWriter(path) as w:
        w.add(Direction.SENT, b"AT\r")
    path.chmod(0o644)
    with TranscriptWriter(path) as w:
        w.add(Direction.SENT, b"ATI\r")
    assert _mode(path) == 0o600
    assert Transcript.load(path).sent() == b"AT\rATI\r"


@posix_only
@pytest.mark.usefixtures("umask_022")
@pytest.mark.parametrize("how", ["save", "save-existing", "csv", "parquet"])
def test_transcript_exports_are_private(tmp_path: Path, how: str) -> None:
    t = _sample()
    path = tmp_path / f"out.{how}"
    if how == "save-existing":
        path.write_text("old, readable by all\n")
        path.chmod(0o644)
    if how.startswith("save"):
        t.save(path)
        assert Transcript.load(path).sent() == t.sent()
    elif how == "csv":
        t.to_csv(path)
    else:
        pytest.importorskip("pyarrow")
        t.to_parquet(path)
    assert _mode(path) == 0o600


@posix_only
@pytest.mark.usefixtures("umask_022")
def test_open_private_text_file(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    with open_private(path, "w") as fh:
        fh.write("a\n")
    with open_private(path, "a") as fh:
        fh.write("b\n")
    assert path.read_text() == "a\nb\n" and _mode(path) == 0o600
    with open_private(path, "w") as fh:
        fh.write("c\n")
    assert path.read_text() == "c\n"
