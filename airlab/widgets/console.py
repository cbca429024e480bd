"""``AtConsole``: type AT commands, see every line that crosses the serial line.

The browser side (``console_log``: anywidgets with ``console.js``) draws the log the way
sscom does (``[time]发→◇AT□``, ``[time]收←◆OK``), one colour per kind of line, and
scrolls to the newest line unless you have scrolled up to read; Enter sends the line
(leaving the box does not), ↑/↓ walk the history like a shell, *hex* shows each line's
bytes (sscom's HEX显示), and after ``DOWNLOAD`` / ``>`` in raw mode a body field sends
its exact bytes.  *Save* writes the session's transcript (JSONL, CSV or an sscom log,
secrets masked on request) next to the notebook.

The click handler only queues the line; a worker thread sends it with
:meth:`~airlab.session.ModemSession.command`; an event follower thread adds each event
of the session (whoever sent the command: the console, a recipe, another cell) to the
log.  Errors (``CommandError``, timeouts, a refused line) become one ``!!`` line, never a
traceback.

Example:
    >>> from airlab.session import ModemSession
    >>> from airlab.widgets import AtConsole
    >>> s = ModemSession("airsim://?profile=instant")
    >>> console = AtConsole(s, clock=False)
    >>> console.text.value = "ATI"      # what typing + Enter does
    >>> console.wait_for("OK")
    '<< OK'
    >>> print(console.tail(3))
    << ATI   [echo]
    << AirM2M_780EP_V1007_LTE_AT
    << OK
    >>> console.text.history
    ['ATI']
    >>> console.close(); s.close()
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import html
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airlab.at.events import CommandSent, Event, FinalResult, Prompt
from airlab.session import ModemSession, Response
from airlab.session.guards import data_phase_length
from airlab.widgets._box import BoxedWidget
from airlab.widgets._format import format_error
from airlab.widgets._threads import EventFollower, Worker
from airlab.widgets.console_log import console_input, console_log, entry_of, error_entry
from airlab.widgets.console_save import SAVE_FORMATS, default_name, save_transcript

if TYPE_CHECKING:
    pass

__all__ = ["QUICK_COMMANDS", "AtConsole"]

#: The quick buttons' commands.
QUICK_COMMANDS: tuple[str, ...] = ("AT", "ATI", "AT+CSQ", "AT+MQTTSTATU")

#: Lines kept in the ↑/↓ history.
HISTORY_SIZE = 200


class SendButton:
    """The Send button's Python side (the button is drawn by the command line's
    JavaScript, beside the box: a click there is an Enter).  ``click()`` submits what
    :attr:`AtConsole.text` holds; ``disabled`` follows the command line."""

    description = "Send"

    def __init__(self, console: AtConsole) -> None:
        self._console = console

    def click(self) -> None:
        """Submit the line, as a click in the browser does."""
        self._console._submit_typed(self._console.text.value)

    @property
    def disabled(self) -> bool:
        return bool(self._console.text.disabled)


class AtConsole(BoxedWidget):
    """A command line, quick buttons, switches, a scrolling log and save buttons over a
    session.

    ``clock``: prefix log lines with ``HH:MM:SS.mmm``; ``timeout``: seconds for each
    command's final result (default: the session's); ``max_lines``: lines kept;
    ``history``: also log the events the session already had.  Display the console by
    leaving it last in a cell (or ``display(console.widget)``); :meth:`close` stops its
    threads.  Enter (or the Send button) sends the line; leaving the box does not.

    ``raw=True`` (or the *raw* switch) types like sscom, the tutorial's tool: each line
    goes to the module exactly as typed (no strip, no check, no waiting), followed by CR
    LF only while *add CR LF* is on.  After ``DOWNLOAD`` or ``>`` a body field opens
    (:meth:`send_body`: its exact bytes, no CR LF); typing the body in the line with
    *add CR LF* off works too.  The *guards* switch is the session's
    :attr:`~airlab.session.ModemSession.guards` (off: wrong lengths, a second QoS1
    before PUBACK and a late MCONNECT reach the module).

    Parts, for tests and scripts: ``text`` (the command line: setting ``text.value``
    submits it; ``text.history``; ``text.body_open``), ``send_button``,
    ``quick_buttons``, ``raw_switch``, ``crlf_switch``, ``guards_switch``,
    ``hex_switch``, ``output`` (the log widget: ``output.lines`` are :attr:`entries`),
    ``save_button``, ``save_format``, ``redact_switch``, ``save_message``; ``lines`` (the
    log as strings), :meth:`save`.

    Example:
        >>> from airlab.session import ModemSession
        >>> with ModemSession("airsim://?profile=instant") as s:
        ...     with AtConsole(s, clock=False) as console:
        ...         _ = console.send("AT").result(5); _ = console.wait_for("OK")
        ...         console.hex_switch.value = True
        ...         console.entries[0]["hex"], console.output.hex_view
        ('41 54', True)
    """

    def __init__(
        self,
        session: ModemSession,
        *,
        clock: bool = True,
        timeout: float | None = None,
        max_lines: int = 500,
        history: bool = False,
        quick: Sequence[str] = QUICK_COMMANDS,
        raw: bool = False,
    ) -> None:
        import ipywidgets as w

        self.session = session
        self.clock = clock
        self.timeout = timeout
        self.max_lines = max(10, int(max_lines))
        self._lines: collections.deque[str] = collections.deque(maxlen=self.max_lines)
        self._entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=self.max_lines)
        self._count = 0  # lines ever logged (absolute index of the next line)
        self._submit_index = 0  # self._count when the latest line was queued
        self._cond = threading.Condition()
        self._pending_errors: list[tuple[int, str]] = []  # (event mark, line)
        self._seen = 0  # index of the next session event the log will show
        self._last_command = ""  # the latest command line sent (for a prompt's body)
        self._closed = False

        self.text = console_input()
        self.text.observe(self._on_value, names="value")
        self.text.observe(self._on_body, names="body")
        self.text.on_msg(self._on_message)
        self.send_button = SendButton(self)
        self.quick_buttons = [
            w.Button(description=cmd, tooltip=f"send {cmd}", layout=w.Layout(width="auto"))
            for cmd in quick
        ]
        self.clear_button = w.Button(description="Clear log", layout=w.Layout(width="auto"))
        self.raw_switch = w.Checkbox(
            value=bool(raw), description="raw (as typed, like sscom)", indent=False
        )
        self.crlf_switch = w.Checkbox(value=True, description="add CR LF", indent=False)
        self.guards_switch = w.Checkbox(
            value=session.guards, description="guards (stop the pitfalls)", indent=False
        )
        self.guards_switch.observe(self._on_guards, names="value")
        self.output = console_log()
        self.hex_switch = w.Checkbox(value=False, description="hex (HEX显示)", indent=False)
        self._hex_link = w.link((self.hex_switch, "value"), (self.output, "hex_view"))
        self.save_format = w.Dropdown(
            options=[("JSONL", "jsonl"), ("CSV", "csv"), ("sscom text", "sscom")],
            value="jsonl",
            layout=w.Layout(width="9em"),
        )
        self.redact_switch = w.Checkbox(
            value=False, description="mask secrets (passwords, signs, tokens)", indent=False
        )
        self.save_button = w.Button(
            description="Save session", icon="download", layout=w.Layout(width="auto")
        )
        self.save_message = w.HTML(value="")
        self.state = w.HTML(value=self._state_html())
        self._box = w.VBox(
            [
                w.HBox([self.text, self.state]),
                w.HBox([*self.quick_buttons, self.clear_button]),
                w.HBox([self.raw_switch, self.crlf_switch, self.guards_switch, self.hex_switch]),
                self.output,
                w.HBox([self.save_button, self.save_format, self.redact_switch]),
                self.save_message,
            ]
        )
        for button, cmd in zip(self.quick_buttons, quick, strict=True):
            button.on_click(lambda _b, cmd=cmd: self.send(cmd))
        self.clear_button.on_click(lambda _b: self.clear())
        self.save_button.on_click(self._on_save)

        self._worker = Worker("airlab-console-send")
        self._seen = 0 if history else session.mark()
        self._follower = EventFollower(
            session, self._on_events, since=self._seen, name="airlab-console-log"
        )

    # ------------------------------------------------------------------ display

    def _state_html(self, busy: int = 0) -> str:
        if self._closed:
            return "<span style='color:gray'>closed</span>"
        if busy:
            return f"<span style='color:#b60'>sending… ({busy} queued)</span>"
        return "<span style='color:gray'>idle</span>"

    # ------------------------------------------------------------------ sending

    def _typed(self, text: str) -> str:
        return text if self.raw_switch.value else text.strip()

    def _submit_typed(self, text: str) -> None:
        """A line from the command line (Enter, Send, ``text.value``)."""
        line = self._typed(str(text or ""))
        if line and not self._closed:
            self.send(line)

    def _on_value(self, change: dict[str, Any]) -> None:
        if change.get("new"):
            self.text.value = ""  # the observer sees "" and does nothing
            self._submit_typed(str(change["new"]))

    def _on_body(self, change: dict[str, Any]) -> None:
        if change.get("new"):
            self.text.body = ""
            self.send_body(str(change["new"]))

    def _on_message(self, _widget: object, content: Any, _buffers: object) -> None:
        """The browser's Enter / Send (``submit``) and Send body (``body``)."""
        if not isinstance(content, dict):
            return
        if content.get("event") == "submit":
            self._submit_typed(str(content.get("text") or ""))
        elif content.get("event") == "body" and not self._closed:
            self.send_body(str(content.get("text") or ""), ctrl_z=bool(content.get("ctrl_z")))

    def _on_guards(self, change: dict[str, Any]) -> None:
        self.session.guards = bool(change.get("new"))

    def _remember(self, line: str) -> None:
        """Add ``line`` to the ↑/↓ history (not twice in a row, like a shell)."""
        history = list(self.text.history)
        if not history or history[-1] != line:
            self.text.history = [*history, line][-HISTORY_SIZE:]

    def send(self, line: str) -> concurrent.futures.Future[Response | None]:
        """Queue ``line``; the worker sends it.  Returns a future of the
        :class:`~airlab.session.Response` (``None`` when the command failed: the error
        is in the log; ``None`` too in raw mode, which does not wait)."""
        with self._cond:
            self._submit_index = self._count
        if line.strip():
            self._remember(line)
        self.state.value = self._state_html(busy=1)
        return self._worker.submit(lambda: self._run(line))

    def _run(self, line: str) -> Response | None:
        try:
            if self.raw_switch.value:  # as typed; the log shows what the module answers
                end = self.session.line_ending if self.crlf_switch.value else ""
                self.session.send_text(line, end=end, timeout=self.timeout)
                return None
            return self.session.command(line, self.timeout)
        except Exception as exc:  # every error is one log line
            self._log_error(exc)
            return None
        finally:
            self.state.value = self._state_html()

    def send_body(
        self, body: str | bytes, *, ctrl_z: bool | None = None
    ) -> concurrent.futures.Future[None]:
        """Send a data phase's body: exactly its bytes (UTF-8 for text), no CR LF.

        ``ctrl_z``: end with 0x1A, which a ``>`` prompt without a length waits for
        (default: the body field's checkbox, on for such a prompt).  The body field
        closes when the module's final result arrives.
        """
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if ctrl_z is None:
            ctrl_z = bool(self.text.body_ctrl_z)
        if ctrl_z and not data.endswith(b"\x1a"):
            data += b"\x1a"
        with self._cond:
            self._submit_index = self._count
        self.state.value = self._state_html(busy=1)

        def run() -> None:
            try:
                self.session.send_text(data, end="", timeout=self.timeout)
            except Exception as exc:
                self._log_error(exc)
            finally:
                self.state.value = self._state_html()

        return self._worker.submit(run)

    def _log_error(self, exc: BaseException) -> None:
        """Log after the events the failed command produced, so the order reads right."""
        mark = self.session.mark()
        line = format_error(exc)
        with self._cond:
            if self._seen >= mark or not self._follower.alive:
                self._append_errors([line])
            else:
                self._pending_errors.append((mark, line))

    # ------------------------------------------------------------------ the body field

    def _watch_prompts(self, events: Sequence[Event]) -> None:
        """Open the body field on a prompt (raw mode), close it on the final result."""
        for event in events:
            if isinstance(event, CommandSent):
                self._last_command = event.line
                if self.text.body_open:
                    self.text.body_open = False
            elif isinstance(event, FinalResult) and self.text.body_open:
                self.text.body_open = False
            elif isinstance(event, Prompt) and self.raw_switch.value:
                self._open_body(event.prompt)

    def _open_body(self, prompt: str) -> None:
        command = self._last_command
        length = data_phase_length(command) if command else False
        expected = length if isinstance(length, int) and length is not True else -1
        want = f"{expected} bytes" if expected >= 0 else "its bytes, ended by Ctrl+Z (1A)"
        self.text.body_expected = expected
        self.text.body_ctrl_z = expected < 0
        self.text.body_hint = f"{prompt}: {command or 'the module'} waits for the body: {want}"
        self.text.body_open = True
        self.state.value = (
            f"<span style='color:#06c'>{html.escape(prompt)}: the module waits for the "
            "body (type it in the body field, or switch off 'add CR LF' to send exactly "
            "the typed line's bytes)</span>"
        )

    # ------------------------------------------------------------------ the log

    def _on_events(self, events: Sequence[Event], end: int) -> None:
        self._watch_prompts(events)
        with self._cond:
            entries = []
            for event in events:
                entry = entry_of(event, self._count + len(entries), clock=self.clock)
                if entry is not None:
                    entries.append(entry)
            if entries:
                self._append(entries)
            self._seen = end
            due = [p for p in self._pending_errors if p[0] <= end]
            if due:
                self._pending_errors = [p for p in self._pending_errors if p[0] > end]
                self._append_errors([p[1] for p in due])

    def _append_errors(self, lines: list[str]) -> None:
        """Record and show ``!!`` lines (``self._cond`` held)."""
        self._append(
            [error_entry(line, self._count + i, clock=self.clock) for i, line in enumerate(lines)]
        )

    def _append(self, entries: list[dict[str, Any]]) -> None:
        """Record and show entries (``self._cond`` held); the browser gets them in one
        update and draws only the new ones."""
        self._entries.extend(entries)
        self._lines.extend(e["line"] for e in entries)
        self._count += len(entries)
        self.output.lines = list(self._entries)
        self._cond.notify_all()

    def clear(self) -> None:
        """Empty the log (the session's transcript keeps everything)."""
        with self._cond:
            self._lines.clear()
            self._entries.clear()
            self._submit_index = self._count  # wait_for() then looks at new lines
            self.output.lines = []

    @property
    def lines(self) -> list[str]:
        """The log lines kept (the last ``max_lines``)."""
        with self._cond:
            return list(self._lines)

    @property
    def entries(self) -> list[dict[str, Any]]:
        """The log lines kept, as the browser draws them: dicts with ``n``, ``time``,
        ``dir`` (``tx``/``rx``/``!!``), ``kind``, ``text``, ``tag``, ``hex``, ``line``
        (see :mod:`airlab.widgets.console_log`)."""
        with self._cond:
            return [dict(e) for e in self._entries]

    def tail(self, n: int = 10, *, hex: bool = False) -> str:
        """The last ``n`` log lines, one string (``hex=True``: each line's bytes)."""
        with self._cond:
            if hex:
                return "\n".join(e["hex"] or e["line"] for e in list(self._entries)[-n:])
            return "\n".join(list(self._lines)[-n:])

    def wait_for(self, text: str, timeout: float = 5.0, *, since: int | None = None) -> str:
        """Wait until a log line containing ``text`` appears and return it.

        Lines are searched from the latest :meth:`send` on (``since``: an absolute line
        count, 0 for the whole log).  Raises :class:`TimeoutError` naming the last lines.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            start = self._submit_index if since is None else since
            while True:
                first = self._count - len(self._lines)
                for line in list(self._lines)[max(0, start - first) :]:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    last = " | ".join(list(self._lines)[-4:])
                    raise TimeoutError(f"no log line with {text!r} within {timeout:g} s: {last}")
                self._cond.wait(left)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued line was sent and every event so far is in the log."""
        deadline = time.monotonic() + timeout
        if not self._worker.wait_idle(timeout):
            return False
        left = max(0.0, deadline - time.monotonic())
        if not self._follower.wait_caught_up(self.session.mark(), left):
            return False
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending_errors, left)

    # ------------------------------------------------------------------ saving

    def save(
        self,
        path: str | os.PathLike[str] | None = None,
        format: str | None = None,
        *,
        redact: bool = False,
        secrets: Iterable[str | bytes] = (),
    ) -> Path:
        """Write the session's transcript (every byte both ways, not only the lines kept
        in the log) to ``path``, mode 0600; returns the absolute path.

        ``format``: ``"jsonl"`` (airlab's transcript: ``Transcript.load``), ``"csv"``
        or ``"sscom"`` (the tutorial tool's log, ``[time]发→◇…``); default from the
        extension, else JSONL.  ``path`` defaults to ``console-<date>-<time>.<ext>`` in
        the current folder (the notebook's).  ``redact=True`` masks the MQTT password,
        ``sign=`` values and tokens (same lengths) and the given ``secrets``.
        """
        from airlab.at.formats import export_format_for

        fmt = format
        if fmt is None:
            fmt = "jsonl"
            if path is not None:
                with contextlib.suppress(Exception):
                    fmt = export_format_for(path)
        if path is None:
            path = Path.cwd() / default_name(fmt if fmt in SAVE_FORMATS else "jsonl")
        return save_transcript(self.session.transcript, path, fmt, redact=redact, secrets=secrets)

    def _on_save(self, _button: object = None) -> None:
        try:
            path = self.save(format=self.save_format.value, redact=self.redact_switch.value)
        except Exception as exc:
            self.save_message.value = (
                f"<span style='color:#cf222e'>{html.escape(format_error(exc))}</span>"
            )
            return
        masked = ", secrets masked" if self.redact_switch.value else ""
        self.save_message.value = (
            f"saved to <code>{html.escape(str(path))}</code> (beside the notebook: open it "
            f"from the file browser; only you can read it{masked})"
        )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Finish queued lines, stop the worker and the log thread (idempotent); the
        session stays open."""
        if self._closed:
            return
        self._worker.close(timeout=(self.timeout or self.session.default_timeout) + 2)
        self._follower.close()
        with self._cond:
            if self._pending_errors:
                self._append_errors([p[1] for p in self._pending_errors])
                self._pending_errors = []
        self._closed = True
        self.text.disabled = True
        self.text.body_open = False
        for widget in self.quick_buttons:
            widget.disabled = True
        self.state.value = self._state_html()

    def __enter__(self) -> AtConsole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
