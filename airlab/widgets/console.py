"""``AtConsole``: type AT commands, see every line that crosses the serial line.

The click handler only queues the line; a worker thread sends it with
:meth:`~airlab.session.ModemSession.command`; an event follower thread writes each
event of the session (whoever sent the command: the console, a recipe, another cell)
to an ``Output`` widget with ``append_stdout``.  Errors (``CommandError``, timeouts, a
refused line) become one ``!!`` line, never a traceback.

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
    >>> console.close(); s.close()
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airlab.at.events import Event, Prompt
from airlab.session import ModemSession, Response
from airlab.widgets._format import format_error, format_event
from airlab.widgets._threads import EventFollower, Worker

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["QUICK_COMMANDS", "AtConsole"]

#: The quick buttons' commands.
QUICK_COMMANDS: tuple[str, ...] = ("AT", "ATI", "AT+CSQ", "AT+MQTTSTATU")


class AtConsole:
    """A text box, a Send button, quick buttons and a scrolling log of a session.

    ``clock``: prefix log lines with ``HH:MM:SS.mmm``; ``timeout``: seconds for each
    command's final result (default: the session's); ``max_lines``: lines kept;
    ``history``: also log the events the session already had.  Display the console by
    leaving it last in a cell (or ``display(console.widget)``); :meth:`close` stops its
    threads.  Enter (or leaving the text box) sends the line, like the Send button.

    ``raw=True`` (or the *raw* switch) types like sscom, the tutorial's tool: each line
    goes to the module exactly as typed (no strip, no check, no waiting), followed by CR
    LF only while *add CR LF* is on; after ``DOWNLOAD`` or ``>`` the next line is the
    body, so switch CR LF off to send exactly its bytes.  The *guards* switch is the
    session's :attr:`~airlab.session.ModemSession.guards` (off: wrong lengths, a second
    QoS1 before PUBACK and a late MCONNECT reach the module).

    Parts, for tests and scripts: ``text``, ``send_button``, ``quick_buttons``,
    ``raw_switch``, ``crlf_switch``, ``guards_switch``, ``output`` (the log), ``lines``
    (the log as strings).
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
        self._count = 0  # lines ever logged (absolute index of the next line)
        self._submit_index = 0  # self._count when the latest line was queued
        self._cond = threading.Condition()
        self._pending_errors: list[tuple[int, str]] = []  # (event mark, line)
        self._chunks = 0
        self._seen = 0  # index of the next session event the log will show
        self._closed = False

        self.text = w.Text(
            placeholder="AT command, e.g. AT+CSQ (Enter sends)",
            continuous_update=False,
            layout=w.Layout(width="28em"),
        )
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane")
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
        self.output = w.Output(
            layout=w.Layout(height="260px", overflow="auto", border="1px solid #bbb", padding="2px")
        )
        self.state = w.HTML(value=self._state_html())
        self._box = w.VBox(
            [
                w.HBox([self.text, self.send_button, self.state]),
                w.HBox([*self.quick_buttons, self.clear_button]),
                w.HBox([self.raw_switch, self.crlf_switch, self.guards_switch]),
                self.output,
            ]
        )
        self.text.observe(self._on_text, names="value")
        self.send_button.on_click(self._on_send)
        for button, cmd in zip(self.quick_buttons, quick, strict=True):
            button.on_click(lambda _b, cmd=cmd: self.send(cmd))
        self.clear_button.on_click(lambda _b: self.clear())

        self._worker = Worker("airlab-console-send")
        self._seen = 0 if history else session.mark()
        self._follower = EventFollower(
            session, self._on_events, since=self._seen, name="airlab-console-log"
        )

    # ------------------------------------------------------------------ display

    @property
    def widget(self) -> ipywidgets.VBox:
        """The whole console, to ``display()`` or put in a layout."""
        return self._box

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self._box._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = "AtConsole()"
        return bundle

    def _state_html(self, busy: int = 0) -> str:
        if self._closed:
            return "<span style='color:gray'>closed</span>"
        if busy:
            return f"<span style='color:#b60'>sending… ({busy} queued)</span>"
        return "<span style='color:gray'>idle</span>"

    # ------------------------------------------------------------------ sending

    def _typed(self, text: str) -> str:
        return text if self.raw_switch.value else text.strip()

    def _on_text(self, change: dict[str, Any]) -> None:
        line = self._typed(str(change.get("new") or ""))
        if line:
            self.text.value = ""
            self.send(line)

    def _on_send(self, _button: object = None) -> None:
        line = self._typed(self.text.value)
        if line:
            self.text.value = ""  # the observer sees "" and does nothing
            self.send(line)

    def _on_guards(self, change: dict[str, Any]) -> None:
        self.session.guards = bool(change.get("new"))

    def send(self, line: str) -> concurrent.futures.Future[Response | None]:
        """Queue ``line``; the worker sends it.  Returns a future of the
        :class:`~airlab.session.Response` (``None`` when the command failed: the error
        is in the log)."""
        with self._cond:
            self._submit_index = self._count
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

    def _log_error(self, exc: BaseException) -> None:
        """Log after the events the failed command produced, so the order reads right."""
        mark = self.session.mark()
        line = format_error(exc)
        with self._cond:
            if self._seen >= mark or not self._follower.alive:
                self._append([line], error=True)
            else:
                self._pending_errors.append((mark, line))

    # ------------------------------------------------------------------ the log

    def _on_events(self, events: Sequence[Event], end: int) -> None:
        lines = [t for t in (format_event(e, clock=self.clock) for e in events) if t]
        prompts = [e for e in events if isinstance(e, Prompt)]
        if prompts and self.raw_switch.value:
            self.state.value = (
                f"<span style='color:#06c'>{prompts[-1].prompt}: the module waits for the "
                "body (switch off 'add CR LF' to send exactly its bytes)</span>"
            )
        with self._cond:
            if lines:
                self._append(lines)
            self._seen = end
            due = [p for p in self._pending_errors if p[0] <= end]
            if due:
                self._pending_errors = [p for p in self._pending_errors if p[0] > end]
                self._append([p[1] for p in due], error=True)

    def _append(self, lines: list[str], *, error: bool = False) -> None:
        """Record and show lines (``self._cond`` held)."""
        self._lines.extend(lines)
        self._count += len(lines)
        text = "\n".join(lines) + "\n"
        if self._chunks >= self.max_lines:  # keep the widget's state small: one chunk
            self.output.outputs = (
                {"output_type": "stream", "name": "stdout", "text": "\n".join(self._lines) + "\n"},
            )
            self._chunks = 1
        elif error:
            self.output.append_stderr(text)
            self._chunks += 1
        else:
            self.output.append_stdout(text)
            self._chunks += 1
        self._cond.notify_all()

    def clear(self) -> None:
        """Empty the log (the session's transcript keeps everything)."""
        with self._cond:
            self._lines.clear()
            self._submit_index = self._count  # wait_for() then looks at new lines
            self._chunks = 0
            self.output.outputs = ()

    @property
    def lines(self) -> list[str]:
        """The log lines kept (the last ``max_lines``)."""
        with self._cond:
            return list(self._lines)

    def tail(self, n: int = 10) -> str:
        """The last ``n`` log lines, one string."""
        with self._cond:
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
                self._append([p[1] for p in self._pending_errors], error=True)
                self._pending_errors = []
        self._closed = True
        for widget in (self.text, self.send_button, *self.quick_buttons):
            widget.disabled = True
        self.state.value = self._state_html()

    def __enter__(self) -> AtConsole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
