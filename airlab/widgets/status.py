"""``StatusPanel``: MQTT state, signal, registration, last URC and the cloud's view.

Refresh (the button or :meth:`StatusPanel.refresh`) runs ``AT+MQTTSTATU``, ``AT+CSQ``,
``AT+CEREG?`` and ``AT+CGATT?`` in a worker thread and asks the cloud emulator's
console for the online devices; the labels are widget traits set from that thread.
"Last URC" follows the session's URCs live (``session.on_urc("*", …)``).

Example:
    >>> from airlab.session import ModemSession
    >>> from airlab.widgets import StatusPanel
    >>> s = ModemSession("airsim://?profile=instant")
    >>> panel = StatusPanel(s)
    >>> snap = panel.refresh()          # blocking; the button does it in the background
    >>> snap["mqtt"], snap["signal"]
    ('+MQTTSTATU: 0 (offline)', '+CSQ: 25,0 → -63 dBm (good)')
    >>> panel.close(); s.close()
"""

from __future__ import annotations

import concurrent.futures
import html
import threading
from typing import TYPE_CHECKING, Any

from airlab.at.events import Urc
from airlab.session import ModemSession, Response
from airlab.widgets._box import BoxedWidget
from airlab.widgets._format import clock_text, format_error
from airlab.widgets._threads import Worker

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["StatusPanel", "describe_csq", "describe_mqtt_status", "describe_registration"]

MQTT_STATES = {0: "offline", 1: "connected", 2: "TCP link up, no MCONNECT yet"}
REG_STATES = {
    0: "not registered, not searching",
    1: "registered, home network",
    2: "searching",
    3: "registration denied",
    4: "unknown",
    5: "registered, roaming",
}
FIELDS = ("mqtt", "signal", "registration", "attach", "last_urc", "online")
TITLES = {
    "mqtt": "MQTT",
    "signal": "Signal",
    "registration": "Registration",
    "attach": "Packet attach",
    "last_urc": "Last URC",
    "online": "Online (cloud)",
}


def describe_mqtt_status(value: int) -> str:
    """``+MQTTSTATU: 1 (connected)``.

    >>> describe_mqtt_status(2)
    '+MQTTSTATU: 2 (TCP link up, no MCONNECT yet)'
    """
    return f"+MQTTSTATU: {value} ({MQTT_STATES.get(value, 'unknown state')})"


def describe_csq(rssi: int, ber: int | None = None) -> str:
    """``+CSQ: 25,99 → -63 dBm (good)``: rssi 0-31 means -113 + 2·rssi dBm, 99 unknown.

    >>> describe_csq(99)
    '+CSQ: 99 → no signal / not known'
    """
    head = f"+CSQ: {rssi}" + ("" if ber is None else f",{ber}")
    if not 0 <= rssi <= 31:
        return f"{head} → no signal / not known"
    dbm = -113 + 2 * rssi
    quality = "good" if rssi >= 20 else "fair" if rssi >= 10 else "weak"
    return f"{head} → {dbm} dBm ({quality})"


def describe_registration(stat: int) -> str:
    """``+CEREG: 1 (registered, home network)``.

    >>> describe_registration(5)
    '+CEREG: 5 (registered, roaming)'
    """
    return f"+CEREG: {stat} ({REG_STATES.get(stat, 'unknown')})"


def _int(args: tuple[str, ...], i: int) -> int | None:
    if len(args) > i and args[i].strip().isdigit():
        return int(args[i])
    return None


class StatusPanel(BoxedWidget):
    """Labels for the module's and the cloud's state, and a Refresh button.

    ``cloud``: a cloud console (``lab.cloud``) for the online devices, or None;
    ``device``: show only this device (``lab.identity``, or ``(pk, dn)``) among them —
    a class shares one emulator, and a student wants to see their own module.
    ``values`` holds the labels' texts by field (``mqtt``, ``signal``,
    ``registration``, ``attach``, ``last_urc``, ``online``); ``labels`` the HTML
    widgets.  Nothing is sent until a refresh.
    """

    def __init__(
        self, session: ModemSession, cloud: Any = None, *, device: Any = None, clock: bool = True
    ) -> None:
        import ipywidgets as w

        self.session = session
        self.cloud = cloud
        if device is not None and not isinstance(device, tuple):
            device = (device.product_key, device.device_name)
        self.device: tuple[str, str] | None = device
        self.clock = clock
        self._lock = threading.Lock()
        self.values: dict[str, str] = dict.fromkeys(FIELDS, "—")
        if cloud is None:
            self.values["online"] = "— (no cloud console)"
        self.labels: dict[str, ipywidgets.HTML] = {name: w.HTML() for name in FIELDS}
        self.message = w.HTML()
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _b: self.refresh_async())
        rows = [
            w.HBox([w.HTML(f"<b>{TITLES[name]}</b>", layout=w.Layout(width="9em")), label])
            for name, label in self.labels.items()
        ]
        self._box = w.VBox([*rows, w.HBox([self.refresh_button, self.message])])
        for name in FIELDS:
            self._show(name)
        self._worker = Worker("airlab-status-refresh")
        self._sub = session.on_urc("*", self._on_urc)
        self._closed = False

    def _set(self, name: str, text: str) -> None:
        with self._lock:
            self.values[name] = text
        self._show(name)

    def _show(self, name: str) -> None:
        self.labels[name].value = f"<code>{html.escape(self.values[name])}</code>"

    def _on_urc(self, urc: Urc) -> None:  # dispatcher thread: set a trait, nothing else
        stamp = f"{clock_text(urc.wall)} " if self.clock else ""
        self._set("last_urc", f"{stamp}{urc.line}")

    # ------------------------------------------------------------------ refresh

    def refresh_async(self) -> concurrent.futures.Future[dict[str, str]]:
        """Refresh in the worker thread (what the button does)."""
        self.message.value = "<span style='color:gray'>refreshing…</span>"
        return self._worker.submit(self._refresh)

    def refresh(self, timeout: float = 30.0) -> dict[str, str]:
        """Refresh in the worker thread, wait for it, and return the texts."""
        return self.refresh_async().result(timeout)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until queued refreshes are done."""
        return self._worker.wait_idle(timeout)

    def _query(self, line: str) -> Response:
        return self.session.command(line)

    def _refresh(self) -> dict[str, str]:
        errors: list[str] = []
        try:
            self._set("mqtt", describe_mqtt_status(self.session.mqtt_status()))
        except Exception as exc:
            errors.append(format_error(exc))
        steps: list[tuple[str, str, Any]] = [
            ("signal", "AT+CSQ", self._csq),
            ("registration", "AT+CEREG?", self._cereg),
            ("attach", "AT+CGATT?", self._cgatt),
        ]
        for name, line, describe in steps:
            try:
                self._set(name, describe(self._query(line)))
            except Exception as exc:
                errors.append(format_error(exc))
        if self.cloud is not None:
            try:
                online = [
                    d.client_id
                    for d in self.cloud.online_devices()
                    if self.device is None or (d.product_key, d.device_name) == self.device
                ]
                nobody = "(nobody)" if self.device is None else "(not online)"
                self._set("online", ", ".join(online) if online else nobody)
            except Exception as exc:
                errors.append(format_error(exc))
        if errors:
            text = "<br>".join(html.escape(e) for e in errors)
            self.message.value = f"<span style='color:#c00'>{text}</span>"
        else:
            self.message.value = "<span style='color:gray'>refreshed</span>"
        with self._lock:
            return dict(self.values)

    @staticmethod
    def _csq(r: Response) -> str:
        args = r.args("+CSQ") or ()
        rssi, ber = _int(args, 0), _int(args, 1)
        return describe_csq(99 if rssi is None else rssi, ber)

    @staticmethod
    def _cereg(r: Response) -> str:
        args = r.args("+CEREG") or ()
        stat = _int(args, 1 if len(args) >= 2 else 0)
        return describe_registration(4 if stat is None else stat)

    @staticmethod
    def _cgatt(r: Response) -> str:
        args = r.args("+CGATT") or ()
        state = _int(args, 0)
        return f"+CGATT: {state} ({'attached' if state == 1 else 'detached'})"

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Unsubscribe from the URCs and stop the worker (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._sub.cancel()
        self._worker.close(timeout=self.session.default_timeout * 4 + 2)
        self.refresh_button.disabled = True

    def __enter__(self) -> StatusPanel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
