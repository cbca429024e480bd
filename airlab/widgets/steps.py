"""``StepThrough``: run a connection method one AT command per click.

:func:`recipes_for` gives the steps of every method (:data:`METHODS`):

* ``"http-auth"`` (一机一密, HTTPS auth then MQTT): bearer, ``AT+HTTPINIT``,
  ``AT+HTTPPARA`` URL and ``Content-type: ``, ``AT+HTTPDATA`` and the body,
  ``AT+HTTPACTION=1``, ``AT+HTTPREAD`` (the iotId and iotToken), ``AT+HTTPTERM``, then
  ``AT+MCONFIG`` with the iotId and iotToken *of that reply*, ``AT+SSLMIPSTART``,
  ``AT+MCONNECT``, ``AT+MQTTSTATU``;
* ``"direct"`` (一机一密直连; any ``sign_method``, with or without ``timestamp``);
* ``"register"`` (一型一密 over HTTPS, ``/auth/register/device``) then the direct login
  with the DeviceSecret of the reply;
* ``"mqtt-register"`` (一型一密 over MQTT, ``authType=register``): the ``/ext/register``
  push gives the DeviceSecret, then the direct login;
* ``"mqtt-regnwl"`` (免预注册, ``authType=regnwl``): the ``/ext/regnwl`` push gives a
  clientId and a DeviceToken, then the ``authType=connwl`` login.

A step whose command depends on an earlier reply takes the value from that reply when
it runs (its command shows ``<iotToken from HTTPREAD>`` until then).  :class:`StepThrough`
shows one button per step, "Next step" and "Run all"; beside each step the command, the
bytes on the wire (``\\r\\n`` visible, secrets masked by :mod:`airlab.at.redact`), the
reply, its latency and what it means.  Steps run in a worker thread.

The steps themselves are built in :mod:`airlab.widgets.flow` (:class:`FlowStep`,
:class:`FlowState`, the shared steps) and :mod:`airlab.widgets.flow_recipes`
(:func:`recipes_for`); this module shows and runs them.

Example:
    >>> from airlab.session import ModemSession
    >>> from airlab.lesson import Identity
    >>> from airlab.widgets import StepThrough, recipes_for
    >>> s = ModemSession("airsim://?profile=instant")
    >>> flow = StepThrough(s, recipes_for("direct", Identity.tutorial()))
    >>> flow.run_next().result(5).result      # what "Next step" does
    'OK'
    >>> flow.status[0]
    'AT+CGATT? -> OK (+CGATT: 1)'
    >>> print(flow.wire[0])
    → AT+CGATT?\\r\\n
    ← AT+CGATT?\\r\\n\\r\\n+CGATT: 1\\r\\n\\r\\nOK\\r\\n
    >>> flow.close(); s.close()
"""

from __future__ import annotations

import concurrent.futures
import html
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any

from airlab.at.events import Direction, Urc
from airlab.at.redact import redact_bytes
from airlab.at.transcript import Record
from airlab.errors import UsageError
from airlab.session import ModemSession, Response
from airlab.widgets._box import BoxedWidget
from airlab.widgets._format import format_error
from airlab.widgets._threads import Worker
from airlab.widgets.flow import (
    FlowState,
    FlowStep,
    Outcome,
)
from airlab.widgets.flow import (
    Reader as Reader,  # re-exported
)
from airlab.widgets.flow import (
    Runner as Runner,  # re-exported
)
from airlab.widgets.flow_recipes import (
    METHODS,
    recipes_for,
)

__all__ = [
    "METHODS",
    "FlowState",
    "FlowStep",
    "StepThrough",
    "describe_outcome",
    "describe_response",
    "recipes_for",
    "wire_text",
]


# ---------------------------------------------------------------------------- display


def describe_response(r: Response) -> str:
    """``AT+CGATT? -> OK (+CGATT: 1)`` plus the URC when there is one (no times)."""
    result = r.result if r.code is None else f"{r.result}: {r.code}"
    text = f"{r.command} -> {result}"
    info = [line for line in r.lines if line.strip()]
    if info:
        text += f" ({'; '.join(info)})"
    if r.urc is not None:
        text += f" then {r.urc.line}"
    return text


def describe_outcome(outcome: Outcome) -> str:
    """:func:`describe_response`, or ``<- <URC line>`` for an awaited URC."""
    if isinstance(outcome, Urc):
        return f"<- {outcome.line}"
    return describe_response(outcome)


def _visible(data: bytes) -> str:
    text = data.decode("utf-8", "backslashreplace")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def wire_text(records: Sequence[Any], secrets: Sequence[str] = ()) -> str:
    """The bytes of transcript ``records``, one line per direction change (``→`` host,
    ``←`` module), CR and LF written ``\\r`` ``\\n``, secrets masked.

    >>> from airlab.at.transcript import Record
    >>> wire_text([Record("sent", b"AT\\r"), Record("received", b"AT\\r\\r\\nOK\\r\\n")])
    '→ AT\\\\r\\n← AT\\\\r\\\\r\\\\nOK\\\\r\\\\n'
    """
    blocks: list[tuple[Direction, bytearray]] = []
    for rec in records:
        direction = Direction(rec.direction)
        if blocks and blocks[-1][0] is direction:
            blocks[-1][1].extend(rec.data)
        else:
            blocks.append((direction, bytearray(rec.data)))
    lines = []
    for direction, data in blocks:
        arrow = "→" if direction is Direction.SENT else "←"
        lines.append(f"{arrow} {_visible(redact_bytes(bytes(data), secrets))}")
    return "\n".join(lines)


def _takes_state(run: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(run).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


class StepThrough(BoxedWidget):
    """A button per step, "Next step" and "Run all"; beside each step its command, the
    bytes on the wire, the reply, its latency and what it means.

    ``status[i]``: the reply of step ``i`` (without times; an error as ``!! …``);
    ``latency[i]``: ``(to the final result, to the URC or None)`` in seconds, or None;
    ``commands[i]``: the command as sent (secrets masked); ``wire[i]``: its bytes
    (:func:`wire_text`); ``meaning[i]``: what the reply means; ``state``: the values
    handed between steps (:class:`FlowState`); ``done``: every step ran without error.
    """

    def __init__(self, session: ModemSession, steps: Sequence[FlowStep], lab: Any = None) -> None:
        import ipywidgets as w

        if not steps:
            raise UsageError("steps", "give at least one step (recipes_for('direct', lab))")
        self.session = session
        self.steps = list(steps)
        identity = getattr(lab, "identity", lab)
        self.state = FlowState(
            [getattr(identity, "device_secret", None), getattr(identity, "product_secret", None)]
        )
        n = len(self.steps)
        self.status: list[str] = ["" for _ in range(n)]
        self.latency: list[tuple[float, float | None] | None] = [None] * n
        self.commands: list[str] = [self.state.redact(s.command) for s in self.steps]
        self.wire: list[str] = ["" for _ in range(n)]
        self.meaning: list[str] = ["" for _ in range(n)]
        self.ok: list[bool | None] = [None] * n
        self.next_index = 0
        self._takes_state = [_takes_state(s.run) for s in self.steps]
        self.buttons = [
            w.Button(
                description=f"{i + 1}. {step.name}",
                tooltip=self.commands[i],
                layout=w.Layout(width="14em"),
            )
            for i, step in enumerate(self.steps)
        ]
        self.results = [w.HTML(self._html(i, running=False)) for i in range(n)]
        for i, button in enumerate(self.buttons):
            button.on_click(lambda _b, i=i: self.run_step(i))
        self.next_button = w.Button(description="Next step", button_style="primary")
        self.next_button.on_click(lambda _b: self.run_next())
        self.all_button = w.Button(description="Run all", button_style="info")
        self.all_button.on_click(lambda _b: self.run_all())
        rows = [w.HBox([b, r]) for b, r in zip(self.buttons, self.results, strict=True)]
        self._box = w.VBox([*rows, w.HBox([self.next_button, self.all_button])])
        self._worker = Worker("airlab-steps")
        self._closed = False

    @property
    def done(self) -> bool:
        """Every step has run, the last run of each without error."""
        return all(self.ok)

    def _plain(self) -> str:
        return f"StepThrough({len(self.steps)} steps)"

    def _html(self, i: int, *, running: bool) -> str:
        step = self.steps[i]
        esc = html.escape
        parts = [f"<code>{esc(self.commands[i])}</code>"]
        if step.explain:
            parts.append(f"<span style='color:gray'>{esc(step.explain)}</span>")
        if running:
            parts.append("<span style='color:gray'>running…</span>")
        elif self.ok[i] is not None:
            color = "#070" if self.ok[i] else "#c00"
            reply = f"<code style='color:{color}'>{esc(self.status[i])}</code>"
            if self.latency[i] is not None:
                final, urc = self.latency[i]  # type: ignore[misc]
                ms = f"{final * 1000:.1f} ms"
                if urc is not None:
                    ms += f", URC after {urc * 1000:.1f} ms"
                reply += f" <span style='color:gray'>{ms}</span>"
            parts.append(reply)
            if self.wire[i]:
                parts.append(
                    "<details><summary>bytes on the wire</summary><pre style='margin:0'>"
                    f"{esc(self.wire[i])}</pre></details>"
                )
            if self.meaning[i]:
                parts.append(f"<i>{esc(self.meaning[i])}</i>")
        return "<div style='line-height:1.4'>" + "<br>".join(parts) + "</div>"

    def run_next(self) -> concurrent.futures.Future[Outcome | None]:
        """Run the next step (wraps around at the end)."""
        i = self.next_index % len(self.steps)
        self.next_index = i + 1
        return self.run_step(i)

    def run_step(self, i: int) -> concurrent.futures.Future[Outcome | None]:
        """Run step ``i`` in the worker thread; the future gives its response (a
        :class:`~airlab.at.events.Urc` for a step that awaits one; None when it failed:
        the error is shown in red beside the step)."""
        self.results[i].value = self._html(i, running=True)
        self.next_index = i + 1
        return self._worker.submit(lambda: self._run(i))

    def run_all(self) -> concurrent.futures.Future[bool]:
        """Run the steps from the next one to the end, stopping at the first failure;
        the future gives True when the last step ran without error."""
        start = self.next_index % len(self.steps)
        self.next_index = len(self.steps)

        def job() -> bool:
            for i in range(start, len(self.steps)):
                if self._run(i) is None:
                    self.next_index = i + 1
                    return False
            return True

        return self._worker.submit(job)

    def _records_between(self, start: float, end: float) -> list[Any]:
        return [r for r in list(self.session.transcript.records) if start <= r.mono <= end]

    def _run(self, i: int) -> Outcome | None:
        step = self.steps[i]
        self.results[i].value = self._html(i, running=True)
        started = time.monotonic()
        try:
            out = (
                step.run(self.session, self.state)
                if self._takes_state[i]
                else step.run(self.session)
            )
        except Exception as exc:
            self._fail(i, exc, started)
            return None
        if isinstance(out, Urc):
            since = self.state.get("register_sent", self.state.get("mconnect_sent", started))
            delay = out.mono - since
            self.latency[i] = (delay, None)
            first = min(started, out.mono)
        else:
            self.latency[i] = (out.latency, out.urc_latency)
            first = started
            self.commands[i] = self.state.redact(out.command)
        self.status[i] = self.state.redact(describe_outcome(out))
        if isinstance(out, Urc):
            # the URC's own line: its bytes may share a read chunk with the reply before it
            own = Record(Direction.RECEIVED, f"\r\n{out.line}\r\n".encode(), mono=out.mono)
            self.wire[i] = wire_text([own], self.state.secrets)
        else:
            records = self._records_between(first, time.monotonic())
            self.wire[i] = wire_text(records, self.state.secrets)
        try:
            if step.read is not None:
                self.meaning[i] = self.state.redact(step.read(out, self.state))
            elif isinstance(out, Response) and not out.ok:
                self.meaning[i] = out.meaning or ""
        except Exception as exc:
            self._fail(i, exc, started, keep_status=True)
            return None
        self.ok[i] = not isinstance(out, Response) or out.ok or step.name in _MAY_FAIL
        self.results[i].value = self._html(i, running=False)
        return out

    def _fail(self, i: int, exc: BaseException, started: float, keep_status: bool = False) -> None:
        error = self.state.redact(format_error(exc))
        if keep_status:
            self.meaning[i] = error
        else:
            self.status[i] = error
            self.latency[i] = None
            self.wire[i] = wire_text(
                self._records_between(started, time.monotonic()), self.state.secrets
            )
            self.meaning[i] = ""
        self.ok[i] = False
        self.results[i].value = self._html(i, running=False)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until the clicked steps have run."""
        return self._worker.wait_idle(timeout)

    def close(self) -> None:
        """Stop the worker thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._worker.close(timeout=self.session.urc_timeout + 2)
        for b in (*self.buttons, self.next_button, self.all_button):
            b.disabled = True


#: Steps whose error reply is part of the flow (already open, nothing to close).
_MAY_FAIL = frozenset({"SAPBR open", "HTTPTERM", "MDISCONNECT", "MIPCLOSE"})
