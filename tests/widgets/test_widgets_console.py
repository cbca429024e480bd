"""AtConsole: driven like a user would, over a real simulated session."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

import pytest

from airlab.session import ModemSession, recipes
from airlab.widgets import AtConsole
from tests.session.helpers import ScriptedModem
from tests.widgets.helpers import wait_until

pytestmark = pytest.mark.usefixtures("widget_threads")

STAMP = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3} ")


def log_text(console: AtConsole) -> str:
    """The log as the browser gets it: the lines of the log widget's entries."""
    return "".join(e["line"] + "\n" for e in console.output.lines)


def test_import_is_light() -> None:
    code = "import sys, airlab, airlab.widgets; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_send_button_shows_command_echo_and_ok(session: ModemSession) -> None:
    console = AtConsole(session)
    try:
        console.text.value = "ATI"
        console.send_button.click()
        wait_until(lambda: "<< OK" in log_text(console))
        text = log_text(console)
        assert ">> ATI" in text
        assert "<< ATI   [echo]" in text
        assert "AirM2M_780EP" in text
        assert all(STAMP.match(line) for line in text.splitlines())
        assert console.text.value == ""
        assert sum(">> ATI" in line for line in console.lines) == 1  # sent once
    finally:
        console.close()


def test_quick_buttons_and_wait_for(session: ModemSession) -> None:
    with AtConsole(session, clock=False) as console:
        assert [b.description for b in console.quick_buttons] == [
            "AT",
            "ATI",
            "AT+CSQ",
            "AT+MQTTSTATU",
        ]
        console.quick_buttons[2].click()
        assert console.wait_for("+CSQ:").startswith("<< +CSQ: ")
        console.quick_buttons[3].click()
        assert console.wait_for("+MQTTSTATU") == ">> AT+MQTTSTATU"
        console.wait_for("OK")
        assert console.wait_idle()
        assert console.tail(2).splitlines() == ["<< +MQTTSTATU :0", "<< OK"]


def test_errors_are_one_readable_line(session: ModemSession) -> None:
    with AtConsole(session, clock=False) as console:
        console.text.value = "AT+NOSUCH"
        line = console.wait_for("!!")
        assert line.startswith("!! CommandError: AT+NOSUCH -> ERROR")
        assert "\n" not in line and "Traceback" not in log_text(console)
        assert console.wait_idle()
        # the error comes after the module's ERROR, drawn as an error of the host side
        assert console.lines[-2:] == ["<< ERROR", line]
        assert console.entries[-1]["dir"] == "!!" and console.entries[-1]["kind"] == "error"
        assert console.entries[-2]["dir"] == "rx" and console.entries[-2]["kind"] == "error"

        console.send("AT+HTTPDATA=5,1000")  # a data phase: refused before sending
        assert console.wait_for("!! UsageError").startswith("!! UsageError: line:")

        fut = console.send("AT+MQTTSTATU")
        assert fut.result(5) is not None and fut.result().ok


def test_timeout_is_one_line() -> None:
    modem = ScriptedModem(lambda line: b"\r\nOK\r\n" if line != "AT+SILENT" else None)
    s = ModemSession(modem.url)
    try:
        with AtConsole(s, clock=False, timeout=0.3) as console:
            console.send("AT+SILENT")
            line = console.wait_for("!!")
            assert line.startswith("!! ResponseTimeout: AT+SILENT: no final result")
            assert console.send("AT").result(5) is not None  # still usable
    finally:
        s.close()
        modem.close()


def test_closed_session_is_one_line(session: ModemSession) -> None:
    with AtConsole(session, clock=False) as console:
        session.close()
        console.send("AT")
        assert console.wait_for("!!").startswith("!! PortClosed: AT: the session is closed")


def test_urcs_and_other_senders_are_logged(session: ModemSession) -> None:
    with AtConsole(session, clock=False) as console:
        recipes.attach(session)
        recipes.direct_mqtt(
            session,
            product_key="k1hipglLdjU",
            device_name="868488076506128",
            device_secret="fef32adf6dad46c2c7cbf335d3a7b021",
        )
        assert console.wait_for("CONNACK OK", since=0) == "<< CONNACK OK   [URC]"
        assert "<< CONNECT OK   [URC]" in console.lines
        assert any(line.startswith(">> AT+MCONFIG=") for line in console.lines)


def test_history_and_max_lines(session: ModemSession) -> None:
    session.command("ATI")
    with AtConsole(session, clock=False, history=True, max_lines=10) as console:
        assert console.wait_for("AirM2M", since=0)
        for _ in range(5):
            console.send("AT")
        assert console.wait_idle()
        assert len(console.lines) == 10
        assert len(console.output.lines) == 10  # the browser gets the kept lines only
        assert [e["line"] for e in console.output.lines] == console.lines
        console.clear()
        assert console.lines == [] and console.output.lines == []


def test_close_stops_threads(session: ModemSession) -> None:
    console = AtConsole(session)
    console.send("AT").result(5)
    console.close()
    console.close()  # idempotent
    names = [t.name for t in threading.enumerate()]
    assert "airlab-console-send" not in names and "airlab-console-log" not in names
    assert console.send_button.disabled
    assert console.send("AT").exception(1) is not None  # closed: refused, not sent


def test_display_bundle_is_stable(session: ModemSession) -> None:
    with AtConsole(session) as console:
        bundle = console._repr_mimebundle_()
        assert bundle["text/plain"].startswith("AtConsole(")
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert console.widget is console._box


def test_history_of_a_long_session_shows_each_event_in_the_window_once() -> None:
    # 150 commands, 3 events each, in a window of 100 events: the console's history
    # starts at the window's oldest event and repeats none (issue 8 item 8's window).
    with ModemSession("airsim://?profile=instant", max_events=100) as session:
        for i in range(150):
            session.command("AT+CSQ" if i % 2 else "AT")
        assert session.first_index == session.mark() - 100 > 0
        with AtConsole(session, history=True, clock=False) as console:
            wait_until(lambda: console._follower.position >= session.mark())
            sent = [line for line in console.lines if line.startswith(">> ")]
            assert len(sent) == len([e for e in session.events if e.kind == "command"])
            assert len(sent) <= 34
            assert len(console.lines) <= 100  # one line at most per event in the window
            console.text.value = "ATI"
            console.send_button.click()
            console.wait_for("AirM2M_780EP")
            assert sum(line == ">> ATI" for line in console.lines) == 1


def test_raw_mode_types_like_sscom(session: ModemSession) -> None:
    # AT+HTTPDATA typed by hand, as the tutorial does: the prompt, then the body
    with AtConsole(session, clock=False, raw=True) as console:
        assert console.guards_switch.value is True
        console.guards_switch.value = False
        assert session.guards is False
        console.text.value = "AT+HTTPINIT"
        console.wait_for("<< OK")
        console.text.value = "AT+HTTPDATA=5,2000"
        console.wait_for("DOWNLOAD")
        wait_until(lambda: "waits for the body" in console.state.value)
        console.crlf_switch.value = False  # the body's bytes, nothing more
        console.text.value = "hello"
        console.wait_for("<< OK")
        assert any("hello" in line and line.startswith(">>") for line in console.lines)
        console.crlf_switch.value = True
        console.text.value = "AT+HTTPTERM "  # typed with a trailing space: sent as is
        console.wait_for("AT+HTTPTERM")
        assert any(e.text == "AT+HTTPTERM " for e in session.events if e.kind == "command")
    session.guards = True
