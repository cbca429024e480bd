"""``StepThrough``: run a connection method one AT command per click.

:func:`recipes_for` gives the steps of a method (``"direct"``: attach, bearer,
``AT+MCONFIG``, ``AT+SSLMIPSTART`` → ``CONNECT OK``, ``AT+MCONNECT`` → ``CONNACK OK``,
``AT+MQTTSTATU``); :class:`StepThrough` shows one button per step and a "Next step"
button.  Each click runs one step in a worker thread and shows its result and latency.

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
    >>> flow.close(); s.close()
"""

from __future__ import annotations

import concurrent.futures
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airlab.aliyun import direct_mqtt_credentials
from airlab.at.commands import mconfig, mconnect, mipstart, sapbr
from airlab.errors import UsageError
from airlab.session import ModemSession, Response
from airlab.widgets._format import format_error
from airlab.widgets._threads import Worker

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["METHODS", "FlowStep", "StepThrough", "recipes_for"]

METHODS = ("direct",)


@dataclass(frozen=True)
class FlowStep:
    """One step: a name, the command line it sends, and how to run it."""

    name: str
    command: str
    run: Callable[[ModemSession], Response]
    explain: str = ""


def _cmd(line: str, *, check: bool = True) -> Callable[[ModemSession], Response]:
    return lambda s: s.command(line, check=check)


def recipes_for(
    method: str,
    lab: Any,
    *,
    sign_method: str = "hmacmd5",
    timestamp: str | int | None = None,
    keepalive: int = 120,
    tls: bool = True,
) -> list[FlowStep]:
    """The steps of ``method`` (``"direct"``, 一机一密直连) for ``lab`` (a
    :class:`~airlab.lesson.Lesson`: its identity and bench address) or an identity.

    >>> from airlab.lesson import Identity
    >>> [s.name for s in recipes_for("direct", Identity.tutorial())][-3:]
    ['SSLMIPSTART', 'MCONNECT', 'MQTTSTATU']
    """
    if method not in METHODS:
        raise UsageError("method", f"step-through knows {', '.join(METHODS)}, got {method!r}")
    identity = getattr(lab, "identity", lab)
    target = lab.mqtt_target(tls) if hasattr(lab, "mqtt_target") else {}
    creds = direct_mqtt_credentials(
        identity.product_key,
        identity.device_name,
        identity.device_secret or "",
        sign_method=sign_method,
        timestamp=timestamp,
        region=getattr(identity, "region", "cn-shanghai"),
        **target,
    )
    open_line = mipstart(creds.host, creds.port, tls=tls)
    connect_line = mconnect(1, keepalive)
    return [
        FlowStep("CGATT?", "AT+CGATT?", _cmd("AT+CGATT?"), "attached to the packet network?"),
        FlowStep(
            "SAPBR CONTYPE", sapbr(3, 1, "CONTYPE", "GPRS"), _cmd(sapbr(3, 1, "CONTYPE", "GPRS"))
        ),
        FlowStep("SAPBR APN", sapbr(3, 1, "APN", ""), _cmd(sapbr(3, 1, "APN", ""))),
        FlowStep(
            "SAPBR open", sapbr(1, 1), _cmd(sapbr(1, 1), check=False), "an error: already open"
        ),
        FlowStep("SAPBR query", sapbr(2, 1), _cmd(sapbr(2, 1)), "the bearer's IP address"),
        FlowStep(
            "MCONFIG",
            mconfig(creds.client_id, creds.username, creds.password),
            _cmd(mconfig(creds.client_id, creds.username, creds.password)),
            "client id, user name, password",
        ),
        FlowStep(
            "SSLMIPSTART" if tls else "MIPSTART",
            open_line,
            lambda s: s.command_and_wait(
                open_line,
                urc=("CONNECT OK", "ALREADY CONNECT"),
                fail=("CONNECT FAIL", "CLOSED", "ERROR"),
            ),
            "TCP/TLS link; click MCONNECT at once after CONNECT OK",
        ),
        FlowStep(
            "MCONNECT",
            connect_line,
            lambda s: s.command_and_wait(connect_line, urc="CONNACK OK", fail=("ERROR", "CLOSED")),
            "MQTT CONNECT -> CONNACK OK",
        ),
        FlowStep("MQTTSTATU", "AT+MQTTSTATU", _cmd("AT+MQTTSTATU"), "1 = connected"),
    ]


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


class StepThrough:
    """A button per step and a "Next step" button; results and latencies beside them.

    ``status[i]``: the text shown for step ``i`` (result without times);
    ``latency[i]``: seconds to the final result (and the URC) or None.
    """

    def __init__(self, session: ModemSession, steps: Sequence[FlowStep]) -> None:
        import ipywidgets as w

        if not steps:
            raise UsageError("steps", "give at least one step (recipes_for('direct', lab))")
        self.session = session
        self.steps = list(steps)
        self.status: list[str] = ["" for _ in self.steps]
        self.latency: list[tuple[float, float | None] | None] = [None for _ in self.steps]
        self.next_index = 0
        self.buttons = [
            w.Button(
                description=f"{i + 1}. {step.name}",
                tooltip=step.command,
                layout=w.Layout(width="12em"),
            )
            for i, step in enumerate(self.steps)
        ]
        self.results = [w.HTML(f"<span style='color:gray'>{html.escape(s.explain)}</span>")
                        for s in self.steps]  # fmt: skip
        for i, button in enumerate(self.buttons):
            button.on_click(lambda _b, i=i: self.run_step(i))
        self.next_button = w.Button(description="Next step", button_style="primary")
        self.next_button.on_click(lambda _b: self.run_next())
        rows = [w.HBox([b, r]) for b, r in zip(self.buttons, self.results, strict=True)]
        self._box = w.VBox([*rows, self.next_button])
        self._worker = Worker("airlab-steps")
        self._closed = False

    @property
    def widget(self) -> ipywidgets.VBox:
        """The flow, to ``display()``."""
        return self._box

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self._box._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = f"StepThrough({len(self.steps)} steps)"
        return bundle

    def run_next(self) -> concurrent.futures.Future[Response | None]:
        """Run the next step (wraps around at the end)."""
        i = self.next_index % len(self.steps)
        self.next_index = i + 1
        return self.run_step(i)

    def run_step(self, i: int) -> concurrent.futures.Future[Response | None]:
        """Run step ``i`` in the worker thread; the future gives its response (None
        when it failed: the error is shown in red beside the step)."""
        self.results[i].value = "<span style='color:gray'>running…</span>"
        self.next_index = i + 1
        return self._worker.submit(lambda: self._run(i))

    def _run(self, i: int) -> Response | None:
        step = self.steps[i]
        try:
            r = step.run(self.session)
        except Exception as exc:
            self.status[i] = format_error(exc)
            self.latency[i] = None
            self.results[i].value = f"<span style='color:#c00'>{html.escape(self.status[i])}</span>"
            return None
        self.status[i] = describe_response(r)
        self.latency[i] = (r.latency, r.urc_latency)
        ms = f"{r.latency * 1000:.1f} ms"
        if r.urc_latency is not None:
            ms += f", URC after {r.urc_latency * 1000:.1f} ms"
        color = "#070" if r.ok else "#c00"
        self.results[i].value = (
            f"<code style='color:{color}'>{html.escape(self.status[i])}</code> "
            f"<span style='color:gray'>{ms}</span>"
        )
        return r

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until the clicked steps have run."""
        return self._worker.wait_idle(timeout)

    def close(self) -> None:
        """Stop the worker thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._worker.close(timeout=self.session.urc_timeout + 2)
        for b in (*self.buttons, self.next_button):
            b.disabled = True
