"""The seat a student picked once (:class:`airlab.widgets.SeatPicker`), kept for every
later lesson on this computer.

Saved as ``$XDG_CONFIG_HOME/airlab/seat.json`` (``~/.config/airlab/seat.json``, 0600):
the seat id and its class, or the path of a handout's seat file.  ``open_lesson`` uses it
when neither its ``seat`` argument nor ``$AIRLAB_SEAT`` says otherwise
(``AIRLAB_SEAT=`` set to nothing means "no seat", whatever is saved).

Example:
    >>> import os, tempfile
    >>> before = os.environ.get("XDG_CONFIG_HOME")
    >>> os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp()
    >>> save_seat("07", "cs101")
    SavedSeat(seat='07', class_name='cs101')
    >>> saved_seat()
    SavedSeat(seat='07', class_name='cs101')
    >>> forget_seat(); saved_seat() is None
    True
    >>> _ = os.environ.pop("XDG_CONFIG_HOME") if before is None else os.environ.update(
    ...     XDG_CONFIG_HOME=before)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from airlab.errors import UsageError

__all__ = ["SavedSeat", "forget_seat", "save_seat", "saved_seat", "seat_choice_path"]


@dataclass(frozen=True)
class SavedSeat:
    """A saved choice: a seat id (with its class) or a seat file's path."""

    seat: str
    class_name: str | None = None


def seat_choice_path() -> Path:
    """Where the choice is kept."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "airlab" / "seat.json"


def saved_seat() -> SavedSeat | None:
    """The saved choice, or None (no file, or one that is not a choice: ignored)."""
    try:
        data = json.loads(seat_choice_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("seat"), str) or not data["seat"]:
        return None
    name = data.get("class")
    return SavedSeat(data["seat"], name if isinstance(name, str) and name else None)


def save_seat(seat: str, class_name: str | None = None) -> SavedSeat:
    """Keep ``seat`` (an id, or a seat file's path: made absolute) for later lessons."""
    from airlab.classroom.handouts import is_seat_file
    from airlab.classroom.roster import validate_seat_id

    text = str(seat).strip()
    if is_seat_file(text):
        path = Path(text).expanduser().resolve()
        if not path.is_file():
            raise UsageError("seat", f"no seat file at {path}")
        text = str(path)
    else:
        validate_seat_id(text)
    target = seat_choice_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"seat": text, "class": class_name}, f)
    return SavedSeat(text, class_name)


def forget_seat() -> None:
    """Remove the saved choice (lessons then use a device of their own)."""
    seat_choice_path().unlink(missing_ok=True)
