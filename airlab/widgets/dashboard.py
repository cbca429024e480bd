"""``ClassDashboard``: the instructor's live view of a class, in a notebook.

Every seat's row (online, the steps reached: attached, logged in, subscribed, published,
received; the latest refusal with the cloud's explanation), a progress bar per step,
the class's newest messages, and a publish box that sends a cloud-to-device message to
one student or to all.  A background thread refreshes it every ``interval`` seconds by
reading only the log rows added since the last refresh
(:class:`~airlab.classroom.ClassProgress`), and changes the page only when something
changed, so a class of 60 costs the lessons next to nothing (``benchmarks/bench_dashboard.py``).

Example:
    >>> from airlab.cloud import CloudEmulator
    >>> from airlab.classroom import create_class, numbered_seats
    >>> cloud = CloudEmulator().start()
    >>> room = create_class(cloud.registry, numbered_seats(2), name="demo")
    >>> board = ClassDashboard(cloud, "demo", interval=None)  # no auto-refresh
    >>> board.refresh().counts()["seats"]
    2
    >>> board.send("hello", seat=None)  # to every seat's user/get: nobody online yet
    0
    >>> board.close(); cloud.stop()
"""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING, Any

from airlab.classroom.progress import STEPS, ClassProgress, hhmmss
from airlab.errors import UsageError
from airlab.widgets._box import BoxedWidget

if TYPE_CHECKING:
    pass

__all__ = ["ClassDashboard", "render_messages_html", "render_table_html"]

_ALL = "__all__"


def render_table_html(progress: ClassProgress) -> str:
    """The seats table and the per-step bars as HTML (escaped; no secrets)."""
    e = html.escape
    counts = progress.counts()
    total = max(1, counts["seats"])
    bars = "".join(
        f"<div style='display:inline-block;margin:0 12px 4px 0'>{e(step)} "
        f"<b>{counts[step]}</b>/{counts['seats']}<div style='width:110px;height:6px;"
        f"background:#e5e5e5'><div style='width:{100 * counts[step] // total}%;height:6px;"
        f"background:#2a7'></div></div></div>"
        for step in STEPS
    )
    head = "".join(f"<th>{e(h)}</th>" for h in ("seat", "name", "online", *STEPS, "latest refusal"))
    body = []
    for row in progress.rows.values():
        dot = "#2a7" if row.online else "#bbb"
        cells = [
            f"<td><b>{e(row.seat)}</b></td>",
            f"<td>{e(row.label)}</td>",
            f"<td style='text-align:center'><span style='color:{dot}'>●</span></td>",
        ]
        for step in STEPS:
            when = row.steps.get(step)
            cells.append(
                f"<td style='text-align:center' title='{e(hhmmss(when))}'>"
                + (
                    "<span style='color:#2a7'>✓</span>"
                    if when
                    else "<span style='color:#ccc'>·</span>"
                )
                + "</td>"
            )
        if row.refusal:
            why = (
                f"<br><span style='color:#555'>{e(row.explanation)}</span>"
                if row.explanation
                else ""
            )
            cells.append(
                f"<td style='color:#b22;max-width:36em'>{e(hhmmss(row.refusal_time))} "
                f"{e(row.refusal)}{why}</td>"
            )
        else:
            cells.append("<td></td>")
        body.append(f"<tr data-seat='{e(row.seat)}'>{''.join(cells)}</tr>")
    summary = (
        f"<div><b>class {e(progress.class_name)}</b> · product {e(progress.product_key)} · "
        f"{counts['seats']} seats · <b>{counts['online']}</b> online"
        + (
            f" · <b style='color:#b22'>{counts['kicked']} kicked</b> (two people on one seat?)"
            if counts["kicked"]
            else ""
        )
        + "</div>"
    )
    style = (
        "<style>.airlab-seats th,.airlab-seats td{padding:2px 10px;"
        "border-bottom:1px solid #eee;text-align:left}</style>"
    )
    return (
        f"<div class='airlab-dashboard'>{style}{summary}<div>{bars}</div>"
        "<table style='border-collapse:collapse;font-size:13px' class='airlab-seats'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def render_messages_html(progress: ClassProgress, count: int = 15) -> str:
    """The class's newest messages, newest last."""
    e = html.escape
    lines = []
    for m in list(progress.messages)[-count:]:
        arrow = "↑" if m.direction == "up" else "↓"
        who = f"seat {m.seat}" if m.seat else (m.device_name or "-")
        text = m.payload[:80].decode("utf-8", "replace")
        state = (
            "" if m.accepted else f" <span style='color:#b22'>dropped: {e(str(m.reason))}</span>"
        )
        lines.append(
            f"<div class='airlab-msg'>{e(hhmmss(m.time))} {arrow} <b>{e(who)}</b> "
            f"<code>{e(m.topic)}</code> {e(repr(text))}{state}</div>"
        )
    if not lines:
        lines.append("<div style='color:#888'>(no message yet)</div>")
    return "<div style='font-family:monospace;font-size:12px'>" + "".join(lines) + "</div>"


class ClassDashboard(BoxedWidget):
    """The live view of class ``class_name`` (the newest when ``None``) on ``cloud``
    (default: the lessons' cloud, :func:`~airlab.cloud.discovery.cloud_for_lesson`).

    ``interval``: seconds between refreshes (``None``: only :meth:`refresh`).  Parts for
    tests: ``table``, ``messages``, ``target``, ``topic``, ``payload``, ``qos``,
    ``send_button``, ``result``; :attr:`progress` holds the data.
    """

    def __init__(
        self, cloud: Any = None, class_name: str | None = None, *, interval: float | None = 2.0
    ) -> None:
        import ipywidgets as w

        if cloud is None:
            from airlab.cloud.discovery import cloud_for_lesson

            cloud = cloud_for_lesson()
        self.cloud = cloud
        self.progress = ClassProgress(cloud.registry, class_name, online=cloud.online_devices)
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.refreshes = 0
        self.table = w.HTML()
        self.messages = w.HTML(layout=w.Layout(max_height="220px", overflow="auto"))
        options = [("all students", _ALL)] + [
            (f"{s.seat} · {s.label}" if s.label else s.seat, s.seat) for s in self.progress.seats
        ]
        self.target = w.Dropdown(options=options, value=_ALL, description="to")
        self.topic = w.Text(value="user/get", description="topic /pk/dn/")
        self.payload = w.Text(value='{"led":1}', description="payload")
        self.qos = w.Dropdown(
            options=[0, 1], value=0, description="QoS", layout=w.Layout(width="9em")
        )
        self.send_button = w.Button(
            description="Publish", button_style="primary", icon="paper-plane"
        )
        self.send_button.on_click(lambda _b: self._on_send())
        self.result = w.HTML()
        self._box = w.VBox(
            [
                self.table,
                w.HTML("<b>newest messages</b>"),
                self.messages,
                w.HTML("<b>publish to students</b> (the console's 发布消息)"),
                w.HBox([self.target, self.topic]),
                w.HBox([self.payload, self.qos, self.send_button]),
                self.result,
            ]
        )
        self.refresh()
        self._thread: threading.Thread | None = None
        if interval is not None:
            if interval <= 0:
                raise UsageError("interval", f"must be positive seconds or None, got {interval!r}")
            self._thread = threading.Thread(target=self._loop, name="airlab-dashboard", daemon=True)
            self._thread.start()

    # -- display ----------------------------------------------------------------------

    def _plain(self) -> str:
        return f"ClassDashboard({self.progress.class_name!r})"

    # -- refreshing -------------------------------------------------------------------

    def refresh(self) -> ClassProgress:
        """Read what is new and update the page (only the parts that changed)."""
        with self._lock:
            self.progress.refresh()
            table = render_table_html(self.progress)
            messages = render_messages_html(self.progress)
            if table != self.table.value:
                self.table.value = table
            if messages != self.messages.value:
                self.messages.value = messages
            self.refreshes += 1
        return self.progress

    def _loop(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as exc:  # the cloud went away: say so, keep trying
                self.result.value = (
                    f"<span style='color:#b22'>refresh failed: {html.escape(str(exc))}</span>"
                )

    # -- publishing -------------------------------------------------------------------

    def send(
        self, payload: str, seat: str | None = None, *, suffix: str = "user/get", qos: int = 0
    ) -> int:
        """Publish ``payload`` to ``/<pk>/<dn>/<suffix>`` of one seat (or every seat when
        ``seat`` is None); returns how many clients it reached."""
        suffix = suffix.strip().lstrip("/")
        if not suffix or any(ch in suffix for ch in "+#\x00"):
            raise UsageError("topic", f"{suffix!r} is not a topic suffix such as user/get")
        seats = (
            self.progress.seats
            if seat is None
            else [s for s in self.progress.seats if s.seat == seat]
        )
        if not seats:
            raise UsageError("seat", f"no seat {seat!r} in class {self.progress.class_name!r}")
        reached = 0
        for s in seats:
            reached += int(
                self.cloud.publish(f"/{s.product_key}/{s.device_name}/{suffix}", payload, qos) or 0
            )
        return reached

    def _on_send(self) -> None:
        seat = None if self.target.value == _ALL else str(self.target.value)
        try:
            reached = self.send(
                self.payload.value, seat, suffix=self.topic.value, qos=int(self.qos.value)
            )
        except Exception as exc:
            self.result.value = f"<span style='color:#b22'>{html.escape(str(exc))}</span>"
            return
        who = "every seat" if seat is None else f"seat {seat}"
        self.result.value = f"published to {html.escape(who)}: reached {reached} client(s)"

    def close(self) -> None:
        """Stop refreshing (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> ClassDashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
