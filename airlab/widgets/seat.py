"""``SeatPicker``: a student says once which seat is theirs; every later lesson uses it.

In a class (``airlab class create``), each seat has a device of its own.  The picker
lists the seats of the class on the lessons' cloud (the running ``airlab lab``) or, where
it has none (a student's own laptop), takes the path of the handout's seat file.  The
choice is saved for this computer (:mod:`airlab.classroom.choice`) and
``open_lesson()`` uses it from then on; "Forget" goes back to a device per run.

Example:
    >>> import os, tempfile
    >>> before = os.environ.get("XDG_CONFIG_HOME")
    >>> os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp()
    >>> from airlab.cloud import CloudEmulator
    >>> from airlab.classroom import create_class, numbered_seats
    >>> cloud = CloudEmulator().start()
    >>> _ = create_class(cloud.registry, numbered_seats(3), name="cs101")
    >>> picker = SeatPicker(cloud)
    >>> picker.choose("02")
    'Your lessons now use seat 02 of class cs101.'
    >>> picker.forget()
    'No seat saved: each lesson uses a device of its own.'
    >>> cloud.stop()
    >>> _ = os.environ.pop("XDG_CONFIG_HOME") if before is None else os.environ.update(
    ...     XDG_CONFIG_HOME=before)
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airlab.classroom.choice import forget_seat, save_seat, saved_seat
from airlab.classroom.handouts import is_seat_file, read_seat_file
from airlab.classroom.progress import class_names
from airlab.errors import UsageError
from airlab.widgets._box import BoxedWidget

if TYPE_CHECKING:
    pass

__all__ = ["SeatPicker"]


class SeatPicker(BoxedWidget):
    """Pick this student's seat once (see the module doc).  ``cloud``: default the
    lessons' cloud.  Parts for tests: ``seats`` (a Dropdown, when the cloud has a
    class), ``path`` (a Text for a seat file), ``use_button``, ``forget_button``,
    ``status``."""

    def __init__(self, cloud: Any = None) -> None:
        import ipywidgets as w

        if cloud is None:
            from airlab.cloud.discovery import cloud_for_lesson

            cloud = cloud_for_lesson()
        self.cloud = cloud
        self._class: str | None = None
        options: list[tuple[str, str]] = []
        classes = class_names(cloud)
        if classes:
            self._class = classes[0]
            options = [
                (f"{s.seat} · {s.label}" if s.label else s.seat, s.seat)
                for s in cloud.registry.seats(self._class)
            ]
        self.seats = (
            w.Dropdown(options=options, description=f"class {self._class}:") if options else None
        )
        self.path = w.Text(
            placeholder="your seat id (07) or the path of your handout's seat-07.json",
            layout=w.Layout(width="34em"),
        )
        self.use_button = w.Button(description="This is my seat", button_style="primary")
        self.forget_button = w.Button(description="Forget")
        self.status = w.HTML(value=self._status_html(self._current()))
        self.use_button.on_click(lambda _b: self._on_use())
        self.forget_button.on_click(lambda _b: self._show(self.forget()))
        chooser = self.seats if self.seats is not None else self.path
        self._box = w.VBox([w.HBox([chooser, self.use_button, self.forget_button]), self.status])

    # ------------------------------------------------------------------

    @staticmethod
    def _current() -> str:
        if (os.environ.get("AIRLAB_SEAT") or "").strip():
            return f"AIRLAB_SEAT={os.environ['AIRLAB_SEAT'].strip()} is set: it decides the seat."
        saved = saved_seat()
        if saved is None:
            return "No seat saved: each lesson uses a device of its own."
        where = f" of class {saved.class_name}" if saved.class_name else ""
        return f"Your lessons use seat {saved.seat}{where}."

    @staticmethod
    def _status_html(text: str, error: bool = False) -> str:
        color = "#b22" if error else "#333"
        return f"<span style='color:{color}'>{html.escape(text)}</span>"

    def _show(self, text: str, error: bool = False) -> None:
        self.status.value = self._status_html(text, error)

    def _on_use(self) -> None:
        value = self.seats.value if self.seats is not None else self.path.value
        try:
            self._show(self.choose(str(value or "")))
        except UsageError as exc:
            self._show(str(exc.message), error=True)

    def choose(self, seat: str) -> str:
        """Check ``seat`` (an id of the class, or a seat file) and save it; returns what
        the status line says."""
        text = seat.strip()
        if not text:
            raise UsageError("seat", "type your seat id or the path of your seat file")
        if is_seat_file(text):
            path = Path(text).expanduser()
            card = read_seat_file(path)
            save_seat(str(path), None)
            return f"Your lessons now use seat {card.seat} (from {path.name})."
        known = [s.seat for s in self.cloud.registry.seats(self._class)] if self._class else []
        if text not in known:
            raise UsageError(
                "seat",
                f"no seat {text!r} in class {self._class}" if self._class
                else "this cloud has no class: give the path of your handout's seat file",
            )  # fmt: skip
        save_seat(text, self._class)
        return f"Your lessons now use seat {text} of class {self._class}."

    def forget(self) -> str:
        """Remove the saved seat."""
        forget_seat()
        return self._current()
