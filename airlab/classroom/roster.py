"""Who sits where: seat ids ``01``…``NN`` or a roster CSV of students' ids and names.

A roster is what a school's system or a spreadsheet exports: UTF-8 (with or without a
BOM) or GB18030 (Excel on a Chinese Windows), comma or semicolon separated, with a
header naming the columns (``seat``/``id``/``student_id``/``学号`` and
``name``/``student``/``姓名``) or without one (one column: names; two: id, name).
Seat ids become part of file names and are matched in ``open_lesson(seat=…)``, so they
are checked: 1–32 letters, digits, ``_``, ``-`` or ``.``, starting with a letter or digit.

Example:
    >>> [s.seat for s in numbered_seats(3)]
    ['01', '02', '03']
    >>> seats = parse_roster("学号,姓名\\n2024001,张三\\n2024002,李四\\n")
    >>> [(s.seat, s.label) for s in seats]
    [('2024001', '张三'), ('2024002', '李四')]
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from airlab.errors import UsageError

__all__ = [
    "MAX_STUDENTS",
    "SeatSpec",
    "numbered_seats",
    "parse_roster",
    "read_roster",
    "validate_seat_id",
]

MAX_STUDENTS = 500
_SEAT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_ID_HEADERS = {
    "seat", "id", "student_id", "studentid", "student id", "number", "no", "学号", "座位", "座号",
}  # fmt: skip
_NAME_HEADERS = {"name", "student", "student_name", "full name", "姓名", "名字", "学生"}
_MAX_LABEL = 64


@dataclass(frozen=True)
class SeatSpec:
    """A seat to create: its id and the student's name (may be empty)."""

    seat: str
    label: str = ""


def validate_seat_id(seat: object, option: str = "seat") -> str:
    """Return ``seat`` when it is a valid seat id, else raise
    :class:`~airlab.errors.UsageError` naming ``option``.

    Example:
        >>> validate_seat_id("07")
        '07'
        >>> validate_seat_id("../x")
        Traceback (most recent call last):
        ...
        airlab.errors.UsageError: seat: '../x' is not a seat id (1-32 letters, digits, _ - ., \
starting with a letter or digit)
    """
    if not isinstance(seat, str) or _SEAT_RE.fullmatch(seat) is None or seat in {".", ".."}:
        raise UsageError(
            option,
            f"{seat!r} is not a seat id (1-32 letters, digits, _ - ., starting with a letter "
            "or digit)",
        )
    return seat


def _label(text: str, line: int) -> str:
    label = unicodedata.normalize("NFC", text.strip())
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in label):
        raise UsageError("roster", f"line {line}: the name has control characters: {label!r}")
    if len(label) > _MAX_LABEL:
        raise UsageError("roster", f"line {line}: the name is longer than {_MAX_LABEL} characters")
    return label


def numbered_seats(count: int) -> list[SeatSpec]:
    """Seats ``01``…``NN`` (zero-padded to at least two digits)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_STUDENTS:
        raise UsageError("students", f"must be a number from 1 to {MAX_STUDENTS}, got {count!r}")
    width = max(2, len(str(count)))
    return [SeatSpec(str(i).zfill(width)) for i in range(1, count + 1)]


def parse_roster(text: str) -> list[SeatSpec]:
    """Seats from the text of a roster CSV (see the module docstring)."""
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    rows = [
        [cell.strip() for cell in row]
        for row in csv.reader(io.StringIO(text), delimiter=delimiter)
        if any(cell.strip() for cell in row)
    ]
    if not rows:
        raise UsageError("roster", "the roster has no rows")
    header = [cell.lower().lstrip("\ufeff") for cell in rows[0]]
    id_col = next((i for i, h in enumerate(header) if h in _ID_HEADERS), None)
    name_col = next((i for i, h in enumerate(header) if h in _NAME_HEADERS), None)
    first = 2
    if id_col is None and name_col is None:  # no header: name, or id + name
        first = 1
        width = max(len(r) for r in rows)
        id_col, name_col = (None, 0) if width == 1 else (0, 1)
    else:
        rows = rows[1:]
    if not rows:
        raise UsageError("roster", "the roster has a header but no students")
    if len(rows) > MAX_STUDENTS:
        raise UsageError("roster", f"more than {MAX_STUDENTS} students")
    width = max(2, len(str(len(rows))))
    seats: list[SeatSpec] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows):
        line = n + first
        raw_id = row[id_col] if id_col is not None and id_col < len(row) else ""
        seat = raw_id or str(n + 1).zfill(width)
        try:
            validate_seat_id(seat, "roster")
        except UsageError:
            raise UsageError(
                "roster",
                f"line {line}: {seat!r} is not a seat id (1-32 letters, digits, _ - ., "
                "starting with a letter or digit)",
            ) from None
        if seat in seen:
            raise UsageError("roster", f"line {line}: seat {seat!r} already on line {seen[seat]}")
        seen[seat] = line
        label = row[name_col] if name_col is not None and name_col < len(row) else ""
        seats.append(SeatSpec(seat, _label(label, line)))
    return seats


def read_roster(path: str | Path) -> list[SeatSpec]:
    """Read and parse a roster file (UTF-8, UTF-8 with BOM, or GB18030)."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError("roster", f"cannot read {file}: {exc.strerror or exc}") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return parse_roster(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    raise UsageError("roster", f"{file} is neither UTF-8 nor GB18030 text")
