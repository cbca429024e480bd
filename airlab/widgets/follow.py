"""``FollowTutorial``: check, live, the AT commands you type against the tutorial.

Beside an :class:`~airlab.widgets.AtConsole` in raw mode: after each command you type
completes, a table shows per step of the tutorial (its Chinese name first) what you sent
and got, the line expected for *your* device built the tutorial's way, and what the
tutorial's capture sent and got; the step is marked ok / differs / missing and a
difference says why.  The checking is :mod:`airlab.follow` (pure); this widget follows
the session's events from a background thread (``EventFollower``) and re-renders.

Example:
    >>> import airlab
    >>> from types import SimpleNamespace
    >>> from airlab.session import ModemSession
    >>> from airlab.widgets import FollowTutorial
    >>> me = SimpleNamespace(product_key="k1hipglLdjU", device_name="869480000000017",
    ...     device_secret="0123456789abcdef0123456789abcdef", product_secret=None,
    ...     region="cn-shanghai")
    >>> s = ModemSession("airsim://?profile=instant", guards=False)
    >>> check = FollowTutorial(s, "http_auth_then_mqtt", me)
    >>> check.type("AT+CGATT?").verdict.value
    'ok'
    >>> check.type('AT+SAPBR=3,1,"APN","CMIOT"').label
    '3 激活网络 · APN'
    >>> check.report.step("sapbr_contype").verdict.value
    'missing'
    >>> check.close(); s.close()
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from airlab.at.events import Event, FinalResult, Prompt, UnknownLine, Urc
from airlab.follow import (
    MCONNECT_WINDOW,
    DeviceLike,
    FollowReport,
    Method,
    StepCheck,
    TutorialFollower,
    Verdict,
)
from airlab.follow.tutorial import AWAITED_URCS, step_key
from airlab.session import ModemSession, ResponseTimeout
from airlab.widgets._box import BoxedWidget
from airlab.widgets._threads import EventFollower

if TYPE_CHECKING:
    pass

__all__ = ["FollowTutorial"]

_COLORS = {
    Verdict.OK: "#e7f6e7",
    Verdict.DIFFERS: "#fde8e8",
    Verdict.MISSING: "#fff4d6",
    Verdict.PENDING: "#eef3fb",
    Verdict.TODO: "#ffffff",
    Verdict.EXTRA: "#f3f3f3",
}
_ENDS = ("CLOSED", "ERROR", "CONNECT FAIL")


class FollowTutorial(BoxedWidget):
    """The side-by-side checker of one method, following ``session`` live.

    ``method``: ``"http_auth_then_mqtt"``, ``"direct_mqtt"``, ``"dynamic_register"`` or
    ``"publish_subscribe"`` (:class:`~airlab.follow.Method`); ``identity``: your device
    (``lab.identity``); ``sign_method`` / ``timestamp``: what the direct-MQTT login must
    use (default the tutorial's: hmacmd5, either); ``since``: the session event index to
    start from (default: now).  :meth:`type` types a line as sscom does and returns its
    row; :attr:`report` is the latest :class:`~airlab.follow.FollowReport`;
    :meth:`close` stops following.  Parts: ``title``, ``table`` (HTML), ``reset_button``.
    """

    def __init__(
        self,
        session: ModemSession,
        method: Method | str,
        identity: DeviceLike,
        *,
        sign_method: str | None = None,
        timestamp: bool | None = None,
        since: int | None = None,
        window: float = MCONNECT_WINDOW,
        captures: str | None = None,
    ) -> None:
        import ipywidgets as w

        self.session = session
        self.checker = TutorialFollower(
            method,
            identity,
            sign_method=sign_method,
            timestamp=timestamp,
            captures=captures,
            window=window,
        )
        self.method = self.checker.method
        self._cond = threading.Condition()
        self._closed = False
        self.title = w.HTML()
        self.table = w.HTML()
        self.reset_button = w.Button(
            description="Start over", tooltip="forget what was typed so far", icon="refresh"
        )
        self.reset_button.on_click(lambda _b: self.reset())
        self._box = w.VBox([w.HBox([self.title, self.reset_button]), self.table])
        self._render(self.checker.report)
        start = session.mark() if since is None else since
        self._follower = EventFollower(
            session, self._on_events, since=start, name="airlab-widget-follow"
        )

    # ------------------------------------------------------------------ display

    def _plain(self) -> str:
        return f"FollowTutorial({self.method.value!r})"

    @property
    def report(self) -> FollowReport:
        """The latest report (recomputed at each event)."""
        with self._cond:
            return self.checker.report

    def text(self, *, notes: bool = False) -> str:
        """The per-step table as plain text (:meth:`FollowReport.to_text`)."""
        return self.report.to_text(notes=notes)

    def _on_events(self, events: Sequence[Event], end: int) -> None:
        with self._cond:
            report = self.checker.feed(events)
            self._cond.notify_all()
        self._render(report)

    def _render(self, report: FollowReport) -> None:
        self.title.value = (
            f"<b>{html.escape(report.method.title_zh)}</b> · "
            f"{html.escape(report.method.title_en)} — <b>{report.progress}</b>"
        )
        rows = list(report.steps)
        extras = [r for r in report.rows if r.verdict is Verdict.EXTRA][-5:]
        self.table.value = _table(rows + extras)

    # ------------------------------------------------------------------ typing

    def type(self, text: str, *, end: str | None = None, timeout: float = 10.0) -> StepCheck:
        """Type ``text`` to the module as sscom does (``end``: ``None`` adds the
        session's CR LF, ``""`` sends the bytes alone, as for a body), wait for its
        answer (and the URC its step waits for), and return its row.

        Example: ``check.type(body, end="")`` after ``DOWNLOAD``.
        """
        mark = self.session.send_text(text, end=end, timeout=timeout)
        deadline = time.monotonic() + timeout
        body = not text.lstrip().upper().startswith("AT")
        key = "body" if body else step_key(text)

        def left() -> float:
            return max(0.01, deadline - time.monotonic())

        try:
            first = self.session.wait_for_event(
                lambda e: isinstance(e, FinalResult | Prompt), left(), since=mark
            )
            waits = AWAITED_URCS.get(key or "", ())
            if waits and isinstance(first, FinalResult) and first.ok:
                self.session.wait_for_event(
                    lambda e: (
                        (isinstance(e, Urc) and e.name in (*waits, *_ENDS))
                        or isinstance(e, UnknownLine)
                        or (isinstance(e, FinalResult) and not e.ok)
                    ),
                    left(),
                    since=mark,
                )
        except ResponseTimeout:
            pass  # the row says it is still waiting
        self.wait_idle(left())
        rows = [r for r in self.report.rows if r.verdict is not Verdict.MISSING]
        return rows[-1]

    def wait_for(self, key_or_index: str | int, timeout: float = 10.0) -> StepCheck:
        """Wait until a step is settled (not to do, not waiting) and return its row."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                row = self.checker.report.step(key_or_index)
                if row.verdict not in (Verdict.TODO, Verdict.PENDING):
                    return row
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"step {key_or_index!r} is still {row.verdict.value} after {timeout:g} s"
                    )
                self._cond.wait(left)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every event of the session so far is in the table."""
        return self._follower.wait_caught_up(self.session.mark(), timeout)

    def reset(self) -> None:
        """Forget what was typed so far: the table starts over from now."""
        with self._cond:
            self.checker.reset()
            report = self.checker.report
        self._follower.close()
        self._follower = EventFollower(
            self.session, self._on_events, since=self.session.mark(), name="airlab-widget-follow"
        )
        self._render(report)

    def close(self) -> None:
        """Stop following the session (idempotent); the table stays as it is."""
        if self._closed:
            return
        self._closed = True
        self._follower.close()
        self.reset_button.disabled = True

    def __enter__(self) -> FollowTutorial:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cell(text: str | None, *, mono: bool = True) -> str:
    if not text:
        return "<td></td>"
    style = "font-family:monospace;" if mono else ""
    return (
        f"<td style='{style}word-break:break-all;vertical-align:top;padding:2px 4px'>"
        f"{html.escape(text).replace(chr(10), '<br>')}</td>"
    )


def _table(rows: Sequence[StepCheck]) -> str:
    head = (
        "<tr style='background:#ddd'><th>#</th><th>步骤 step</th><th>you sent</th>"
        "<th>you got</th><th>expected for your device</th><th>tutorial's capture sent</th>"
        "<th>capture got</th><th>mark</th><th>why</th></tr>"
    )
    body = []
    for row in rows:
        step = row.step
        index = str(step.index) if step else ""
        name = (
            f"<td style='vertical-align:top;padding:2px 4px'>{html.escape(step.name_zh)}"
            f"<br><small>{html.escape(step.name_en)}</small></td>"
            if step
            else "<td style='vertical-align:top'><i>not a tutorial step</i></td>"
        )
        why = "\n".join(f"✗ {f}" for f in row.mistakes)
        notes = "\n".join(f"· {f}" for f in row.notes)
        body.append(
            f"<tr style='background:{_COLORS[row.verdict]}'>"
            f"<td style='vertical-align:top'>{index}</td>{name}"
            + _cell(row.sent)
            + _cell("\n".join(row.got))
            + _cell(row.expected if row.step else None)
            + _cell(row.capture_sent)
            + _cell("\n".join(row.capture_got))
            + f"<td style='vertical-align:top;white-space:nowrap'>{row.verdict.mark}</td>"
            + _cell("\n".join(x for x in (why, notes) if x), mono=False)
            + "</tr>"
        )
    return (
        "<table style='border-collapse:collapse;font-size:12px;width:100%'>"
        + head
        + "".join(body)
        + "</table>"
    )
