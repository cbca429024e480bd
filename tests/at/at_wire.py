"""Rebuild wire bytes from the tutorial captures (sscom logs and console logs).

A plain module (not conftest) so that test files import it by a name no other test
folder uses.
"""

from __future__ import annotations

import re
from pathlib import Path

from airlab.at.events import Direction

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"
LUAT = CAPTURES / "luat_docs"

Chunk = tuple[Direction, bytes, float, float]

_STAMP = re.compile(r"^\s*\[(\d\d):(\d\d):(\d\d)\.(\d\d\d)\](发→◇|收←◆)(.*)$")

#: the multi-line JSON message of T07: LF only inside the payload on the wire
T07_JSON = '{\n  "msg": "hello"\n}'


def sscom_chunks(path: Path) -> list[Chunk]:
    """Records of an sscom log as chunks.

    Sent record: the text + CRLF (the '□' line).  Received record: its lines joined by
    CRLF; a record whose display ends with an empty line ended with CRLF on the wire,
    one without ended mid-line (sscom starts the next record on a new line).  An empty
    received record is an invisible junk byte (NUL); a '?' line is an undecodable byte.
    """
    records: list[tuple[str, list[str], float]] = []
    for raw_line in path.read_text(encoding="utf-8").splitlines():
        m = _STAMP.match(raw_line)
        if m:
            hh, mm, ss, ms, arrow, rest = m.groups()
            t = int(hh) * 3600 + int(mm) * 60 + int(ss) + int(ms) / 1000
            records.append(("S" if arrow == "发→◇" else "R", [rest], t))
        elif records:
            line = (
                raw_line[3:] if raw_line.startswith("   ") and "ftp" not in raw_line else raw_line
            )
            records[-1][1].append(line)
    chunks: list[Chunk] = []
    for kind, lines, t in records:
        if kind == "S":
            chunks.append((Direction.SENT, lines[0].encode() + b"\r\n", t, t))
            continue
        while len(lines) > 2 and lines[-1] == "" and lines[-2] == "":
            lines.pop()  # runs of blank lines between blocks in edited docs
        if lines == [""]:
            data = b"\x00"
        elif lines[-1] == "":
            data = "\r\n".join(lines[:-1]).encode() + b"\r\n"
        else:
            data = "\r\n".join(lines).encode()
        data = data.replace(b"\r\n?\r\n", b"\r\n\xff\r\n")
        if data.startswith(b"?\r\n"):
            data = b"\xff" + data[1:]
        chunks.append((Direction.RECEIVED, data, t, t))
    return chunks


def console_bytes(path: Path) -> bytes:
    """A console log (no timestamps, received side only): every newline is a CRLF."""
    text = path.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.startswith(("SOURCE:", "# "))]
    body = "\n".join(lines) + "\n"
    body = body.replace(T07_JSON, "\x01JSON\x01")
    wire = body.replace("\n", "\r\n")
    return wire.replace("\x01JSON\x01", T07_JSON).encode("utf-8")


def _find(name: str) -> Path:
    for base in (CAPTURES, LUAT):
        hits = sorted(base.glob(name + "*"))
        if hits:
            return hits[0]
    raise FileNotFoundError(name)


def find_capture(name: str) -> Path:
    return _find(name)
