"""Property tests: chunk invariance, and no exception on any wire input."""

from __future__ import annotations

import dataclasses
import functools
import os
import random

from at_wire import console_bytes, find_capture, sscom_chunks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlab.at.events import Direction, Event
from airlab.at.parser import AtParser, parse_stream

S, R = Direction.SENT, Direction.RECEIVED

PROPS = settings(
    max_examples=int(os.environ.get("AIRLAB_PROP_EXAMPLES", "60")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Record = tuple[Direction, bytes]

SYNTHETIC: list[Record] = [
    (R, b"\x00\r\n\xffRDY\r\n\r\n^MODE: 17,17\r\n\r\n+CGEV"),
    (R, b": ME PDN ACT 1\r\n"),
    (S, b"AT+HTTPDATA=10,20000\r\n"),
    (R, b"AT+HTTPDATA=10,20000\r\n\r\nDOWNLOAD\r\n"),
    (S, b"a=1\r\nb=2\r\n\r\n"),
    (R, b"\r\nOK\r\n"),
    (S, b"AT+HTTPREAD\r"),
    (R, b'AT+HTTPREAD\r\r\n+HTTPREAD: 12\r\n{"a":\r\n"b"}\r\n\r\nOK\r\n'),
    (S, b'AT+MPUBEX="t",1,0,4\r\n'),
    (R, b'AT+MPUBEX="t",1,0,4\r\n\r\n    > '),
    (S, b"\r\n>x"),
    (R, b"\r\nOK\r\n\r\nPUBACK\r\n"),
    (S, b"AT+CIPSEND\r\n"),
    (R, b"AT+CIPSEND\r\n\r\n> "),
    (S, b"hi\r\nthere\x1a"),
    (R, b"\r\nSEND OK\r\n"),
    (R, b'\r\n+MSUB: "a/b",9 byte,x\r\ny\r\nOK\r\n\r\n+MSUB:old/t,3 byte,abc\r\n'),
    (S, b"AT+MQTTMSGGET\r\n"),
    (R, b'AT+MQTTMSGGET\r\n\r\n+MSUB: "c",5 byte,{\n}\n!\r\n\r\nOK\r\n'),
    (R, b"\r\n+IPD,4:ab\r\n\r\n+HTTPREAD:0\r\n\r\nCLOSED\r\n"),
    (S, b"AT+CEREG?\r\n"),
    (R, b"AT+CEREG?\r\n\r\n+CEREG: 0,1\r\n\r\nOK\r\n\r\n+CEREG: 1\r\n"),
    (S, b"AT+HTTPDATA=5,1000\r\nabcde"),
    (R, b"AT+HTTPDATA=5,1000\r\n\r\nDOWNLOAD\r\n\r\nOK\r\n?\r\n\r\nCONNACK OK"),
]


# refused data phases (CR CR LF, data written before the refusal), a short data phase
REFUSED: list[Record] = [
    (S, b"AT+HTTPDATA=5000,1000\r\r\n"),
    (R, b"AT+HTTPDATA=5000,1000\r\r\nERROR\r\n"),
    (S, b"AT\r\n"),
    (R, b"AT\r\n\r\nOK\r\n"),
    (S, b'AT+MPUBEX="t",0,0,50\r\r\nAT+CSQ\r\nAT+CGATT?\r'),
    (R, b'AT+MPUBEX="t",0,0,50\r\r\n\r\n+CME ERROR: 767\r\n'),
    (R, b"AT+CSQ\r\n\r\n+CSQ: 25,0\r\n\r\nOK\r\n"),
    (S, b"\n"),
    (R, b"AT+CGATT?\r\r\n+CGATT: 1\r\n\r\nOK\r\n"),
    (S, b"AT+HTTPDATA=10,1000\r\n"),
    (R, b"AT+HTTPDATA=10,1000\r\n\r\nDOWNLOAD\r\n"),
    (S, b"abc"),
    (R, b"\r\nOK\r\n"),
    (S, b"AT+CIPSEND=5\r\r\n"),
    (R, b"AT+CIPSEND=5\r\r\nERROR\r\n"),
    (S, b"ATI\r\n"),
    (R, b"ATI\r\n\r\nAir780EP\r\n\r\nOK\r\n"),
]


def _records_from_chunks(chunks) -> list[Record]:
    return [(d, data) for d, data, _w, _m in chunks]


STREAMS: dict[str, list[Record]] = {
    "synthetic": SYNTHETIC,
    "refused": REFUSED,
    "http_auth": _records_from_chunks(sscom_chunks(find_capture("seed_http_auth_then_mqtt"))),
    "T04": _records_from_chunks(sscom_chunks(find_capture("T04"))),
    "T05": _records_from_chunks(sscom_chunks(find_capture("T05"))),
    "T07": [(R, console_bytes(find_capture("T07")))],
    "T06": [(R, console_bytes(find_capture("T06")))],
}


def key(e: Event) -> tuple:
    fields = (f.name for f in dataclasses.fields(e) if f.name not in ("wall", "mono"))
    return (type(e).__name__, *(getattr(e, name) for name in fields))


def run(records: list[Record]) -> list[tuple]:
    chunks = [(d, data, float(i), float(i)) for i, (d, data) in enumerate(records)]
    return [key(e) for e in parse_stream(chunks)]


def rechunk(records: list[Record], rnd: random.Random) -> list[Record]:
    """Split every record at random points; sometimes merge neighbours of one direction."""
    pieces: list[Record] = []
    for direction, data in records:
        pos = 0
        while pos < len(data):
            size = rnd.choice((1, 1, 2, 3, 5, 8, 13, 64, len(data)))
            pieces.append((direction, data[pos : pos + size]))
            pos += size
    merged: list[Record] = []
    for direction, data in pieces:
        if merged and merged[-1][0] == direction and rnd.random() < 0.3:
            merged[-1] = (direction, merged[-1][1] + data)
        else:
            merged.append((direction, data))
    return merged


@functools.cache
def reference(name: str) -> list[tuple]:
    return run(STREAMS[name])


@PROPS
@given(name=st.sampled_from(sorted(STREAMS)), seed=st.integers(0, 2**32 - 1))
def test_chunk_invariance(name: str, seed: int) -> None:
    chunks = rechunk(STREAMS[name], random.Random(seed))
    assert run(chunks) == reference(name)


def test_byte_by_byte_equals_whole() -> None:
    for name, records in STREAMS.items():
        single = [(d, data[i : i + 1]) for d, data in records for i in range(len(data))]
        assert run(single) == reference(name), name


def test_reference_streams_have_the_interesting_events() -> None:
    kinds = {k[0] for k in reference("synthetic")}
    assert {"Prompt", "DataSent", "Payload", "Urc", "Garbage", "Echo", "InfoLine"} <= kinds
    datas = [k for k in reference("synthetic") if k[0] == "DataSent"]
    assert [d[1] for d in datas] == [b"a=1\r\nb=2\r\n", b"\r\n>x", b"hi\r\nthere", b"abcde"]


def test_refused_stream_has_no_data_taken_from_commands() -> None:
    ref = reference("refused")
    commands = [k[-1] for k in ref if k[0] == "CommandSent"]
    assert commands == [
        "AT+HTTPDATA=5000,1000",
        "AT",
        'AT+MPUBEX="t",0,0,50',
        "AT+CSQ",
        "AT+CGATT?",
        "AT+HTTPDATA=10,1000",
        "AT+CIPSEND=5",
        "ATI",
    ]
    assert [k[1] for k in ref if k[0] == "DataSent"] == [b"abc"]


def _check(events: list[Event]) -> None:
    for e in events:
        assert isinstance(e, Event)
        assert isinstance(e.raw, bytes)


@PROPS
@given(data=st.binary(max_size=2000))
def test_random_received_bytes_never_raise(data: bytes) -> None:
    p = AtParser()
    out = p.feed_received(data, 0.0, 0.0)
    out += p.close(1.0, 1.0)
    _check(out)


@PROPS
@given(
    chunks=st.lists(
        st.tuples(st.booleans(), st.binary(max_size=300)),
        max_size=30,
    )
)
def test_random_interleaved_bytes_never_raise(chunks: list[tuple[bool, bytes]]) -> None:
    p = AtParser()
    out: list[Event] = []
    for i, (sent, data) in enumerate(chunks):
        out += p.feed(S if sent else R, data, float(i), float(i))
    out += p.close(99.0, 99.0)
    _check(out)


_TOKENS = [
    b"\r",
    b"\n",
    b"\r\n",
    b" ",
    b">",
    b"> ",
    b"\x1a",
    b"\x1b",
    b"\x00",
    b"\xff",
    b"AT",
    b'AT+MPUBEX="t",0,0,3\r\n',
    b"AT+CIPSEND\r\n",
    b"AT+HTTPDATA=3,1000\r",
    b"AT+MQTTMSGGET\r\n",
    b"DOWNLOAD\r\n",
    b"OK\r\n",
    b'+MSUB: "t",',
    b"3 byte,",
    b"+HTTPREAD: ",
    b"+FTPGET: 2,",
    b"5",
    b"+IPD,2:",
    b"+CME ERROR: ",
    b"CONNECT OK",
]


@PROPS
@given(
    name=st.sampled_from(sorted(STREAMS)),
    mutations=st.lists(
        st.tuples(
            st.integers(0, 10**6),
            st.integers(0, 2),
            st.sampled_from(_TOKENS) | st.binary(min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=8,
    ),
    seed=st.integers(0, 2**16),
)
def test_mutated_real_streams_never_raise(name: str, mutations, seed: int) -> None:
    records = [list(r) for r in STREAMS[name]]
    for where, op, token in mutations:
        rec = records[where % len(records)]
        data = rec[1]
        at = where % (len(data) + 1)
        if op == 0:
            data = data[:at] + token + data[at:]
        elif op == 1:
            data = data[:at] + data[at + len(token) :]
        else:
            data = data[:at] + token + data[at + len(token) :]
        rec[1] = data
    mutated = [(d, data) for d, data in records]
    first = run(mutated)
    # still chunk-invariant after mutation
    assert run(rechunk(mutated, random.Random(seed))) == first
