"""Jupyter widgets over a :class:`~airlab.session.ModemSession` (ipywidgets, extra ``lab``).

* :class:`AtConsole` - type AT commands; a log of every line that crossed the serial
  line, sscom-style (``发→`` host, ``收←`` module, coloured by kind, errors as one ``!!``
  line), following the newest line; ↑/↓ history, hex view, a body field after a prompt,
  save as JSONL/CSV/sscom.
* :class:`StatusPanel` - MQTT state, signal, registration, last URC, online devices.
* :class:`SigningCalculator` - client id, user name, password, sign content as you type,
  each with a copy button (:func:`copy_button`).
* :class:`ClassDashboard` - the instructor's live view of a class: every seat's
  progress and refusals, the newest messages, a publish box.
* :class:`SeatPicker` - a student picks their class seat once; later lessons use it.
* :class:`StepThrough` and :func:`recipes_for` - every connection method
  (:data:`STEP_METHODS`), one click per AT command, or "Run all".

ipywidgets is imported when a widget is built, not by ``import airlab.widgets``.  All
serial I/O runs in background threads: a click only hands work over, and the widgets
update through traits (synced to the browser).

Example:
    >>> from airlab.lesson import open_lesson            # doctest: +SKIP
    >>> from airlab.widgets import AtConsole             # doctest: +SKIP
    >>> lab = open_lesson()                              # doctest: +SKIP
    >>> console = AtConsole(lab.session); console        # doctest: +SKIP
    >>> console.send("ATI"); console.wait_for("OK")      # doctest: +SKIP
    '… << OK'
"""

from airlab.widgets._format import format_error, format_event
from airlab.widgets.console import QUICK_COMMANDS, AtConsole
from airlab.widgets.dashboard import ClassDashboard
from airlab.widgets.follow import FollowTutorial
from airlab.widgets.seat import SeatPicker
from airlab.widgets.signing import SigningCalculator, copy_button
from airlab.widgets.status import StatusPanel
from airlab.widgets.steps import METHODS as STEP_METHODS
from airlab.widgets.steps import FlowState, FlowStep, StepThrough, recipes_for

__all__ = [
    "QUICK_COMMANDS",
    "STEP_METHODS",
    "AtConsole",
    "ClassDashboard",
    "FlowState",
    "FlowStep",
    "FollowTutorial",
    "SeatPicker",
    "SigningCalculator",
    "StatusPanel",
    "StepThrough",
    "copy_button",
    "format_error",
    "format_event",
    "recipes_for",
]
