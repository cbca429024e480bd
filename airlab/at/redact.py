"""Redact secrets, signatures and tokens from transcripts before sharing them.

A masked value keeps its length (``*`` for every byte), so the transcript stays
parseable: ``+HTTPREAD: 124`` is still followed by 124 bytes, an ``AT+HTTPDATA=112``
block still holds 112 bytes.  Each direction's byte stream is redacted as a whole and
cut again at the original chunk boundaries, so a value split over two chunks is caught.

Found automatically (``auto=True``): the password of ``AT+MCONFIG`` (an HMAC or an
iotToken), ``sign=`` in HTTP form bodies, and the JSON values of ``iotToken``,
``deviceSecret``, ``deviceToken`` and ``productSecret``; plus any value you pass
(device or product secrets, which never cross the serial line in the normal flows).

Example:
    >>> redact_bytes(b'AT+MCONFIG="dev","dev&pk","0f655b12adf519b9"\\r\\n')
    b'AT+MCONFIG="dev","dev&pk","****************"\\r\\n'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from airlab.at.events import Direction
from airlab.at.transcript import Record, Transcript

__all__ = ["AUTO_PATTERNS", "redact_bytes", "redact_transcript"]

#: (pattern, group) pairs: the group's bytes are masked.
AUTO_PATTERNS: tuple[re.Pattern[bytes], ...] = (
    # AT+MCONFIG=<client id>,<user>,<password>[,...]: the third (quoted or bare) argument
    re.compile(
        rb'(?i)AT\+MCONFIG=(?:"[^"\r\n]*"|[^,\r\n]*),(?:"[^"\r\n]*"|[^,\r\n]*),"?([^",\r\n]+)'
    ),
    re.compile(rb"(?:^|[&?\r\n])sign=([0-9A-Fa-f]+)"),
    re.compile(rb'"(?:iotToken|deviceSecret|deviceToken|productSecret)"\s*:\s*"([^"]*)"'),
)


def _mask(data: bytearray, start: int, end: int) -> None:
    data[start:end] = b"*" * (end - start)


def redact_bytes(data: bytes, values: Iterable[str | bytes] = (), *, auto: bool = True) -> bytes:
    """``data`` with every given value and every automatically found secret masked.

    >>> redact_bytes(b"productKey=pk&sign=ABCDEF&clientId=c", auto=True)
    b'productKey=pk&sign=******&clientId=c'
    >>> redact_bytes(b"secret fef3 here", ["fef3"], auto=False)
    b'secret **** here'
    """
    out = bytearray(data)
    if auto:
        for pattern in AUTO_PATTERNS:
            for m in pattern.finditer(data):
                _mask(out, m.start(1), m.end(1))
    for value in values:
        needle = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if not needle:
            continue
        start = data.find(needle)
        while start != -1:
            _mask(out, start, start + len(needle))
            start = data.find(needle, start + 1)
    return bytes(out)


def redact_transcript(
    transcript: Transcript, values: Iterable[str | bytes] = (), *, auto: bool = True
) -> Transcript:
    """A copy of ``transcript`` with secrets masked (same record boundaries and stamps).

    >>> t = Transcript()
    >>> t.add("sent", b'AT+MCONFIG="d","d&pk","0f65', wall=0.0)
    >>> t.add("sent", b'5b12"\\r\\n', wall=0.1)
    >>> [r.data for r in redact_transcript(t).records]
    [b'AT+MCONFIG="d","d&pk","****', b'****"\\r\\n']
    """
    values = list(values)
    redacted: dict[int, bytes] = {}
    for direction in (Direction.SENT, Direction.RECEIVED):
        idx = [
            i for i, r in enumerate(transcript.records) if r.is_data and r.direction is direction
        ]
        stream = redact_bytes(b"".join(transcript.records[i].data for i in idx), values, auto=auto)
        pos = 0
        for i in idx:
            n = len(transcript.records[i].data)
            redacted[i] = stream[pos : pos + n]
            pos += n
    records = [
        Record(r.direction, redacted[i], r.wall, r.mono, r.line_no, r.kind) if i in redacted else r
        for i, r in enumerate(transcript.records)
    ]
    meta = dict(transcript.meta)
    meta["redacted"] = True
    return Transcript(
        records=records, source=transcript.source, format=transcript.format,
        date=transcript.date, meta=meta,
    )  # fmt: skip
