"""Classroom mode: a device per student, handouts, and the instructor's view.

* :func:`create_class` adds a product and one device per seat (``airlab class create``);
* :func:`write_handouts` writes a printable page and a seat file per student;
* :class:`ClassProgress` follows every seat's progress in the cloud's logs (online,
  attached, logged in, subscribed, published, received, last refusal), read
  incrementally so a dashboard refresh costs little (``airlab class watch`` and
  :class:`airlab.widgets.ClassDashboard`).

A student's lesson uses the seat's device with ``open_lesson(seat="07")`` or
``AIRLAB_SEAT=07`` (see :mod:`airlab.lesson`).

Example:
    >>> from airlab.cloud.registry import Registry
    >>> reg = Registry()
    >>> room = create_class(reg, numbered_seats(2), name="demo")
    >>> [row.seat for row in ClassProgress(reg, "demo").refresh()]
    ['01', '02']
"""

from airlab.classroom.create import ClassInfo, SeatCard, create_class, validate_class_name
from airlab.classroom.handouts import handout_html, seat_file_name, write_handouts
from airlab.classroom.progress import STEPS, ClassProgress, SeatProgress, class_names
from airlab.classroom.roster import SeatSpec, numbered_seats, parse_roster, read_roster

__all__ = [
    "STEPS",
    "ClassInfo",
    "ClassProgress",
    "SeatCard",
    "SeatProgress",
    "SeatSpec",
    "class_names",
    "create_class",
    "handout_html",
    "numbered_seats",
    "parse_roster",
    "read_roster",
    "seat_file_name",
    "validate_class_name",
    "write_handouts",
]
