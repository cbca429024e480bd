"""StatusPanel, SigningCalculator, StepThrough: built, clicked, checked."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from airlab.lesson import Identity
from airlab.session import ModemSession, recipes
from airlab.widgets import SigningCalculator, StatusPanel, StepThrough, recipes_for
from tests.widgets.helpers import wait_until

pytestmark = pytest.mark.usefixtures("widget_threads")

TUTORIAL_PASSWORD = "0f655b12adf519b9a7a2b0a990f398b6"


# ---------------------------------------------------------------- StatusPanel


def test_status_panel_refresh_before_and_after_login(
    session: ModemSession, cloud: tuple[Any, Path]
) -> None:
    emu = cloud[0]
    with StatusPanel(session, emu) as panel:
        assert panel.values["mqtt"] == "—"  # nothing sent before a refresh
        panel.refresh_button.click()
        wait_until(lambda: "+MQTTSTATU" in panel.labels["mqtt"].value)
        assert panel.wait_idle()
        assert "+MQTTSTATU: 0 (offline)" in panel.labels["mqtt"].value
        assert panel.values["signal"].startswith("+CSQ: ")
        assert "dBm" in panel.values["signal"]
        assert panel.values["registration"] == "+CEREG: 1 (registered, home network)"
        assert panel.values["online"] == "(nobody)"

        recipes.attach(session)
        login = recipes.direct_mqtt(session, **Identity.tutorial().device())
        wait_until(lambda: "CONNACK OK" in panel.labels["last_urc"].value)

        panel.refresh_button.click()
        wait_until(lambda: "+MQTTSTATU: 1" in panel.labels["mqtt"].value)
        assert panel.wait_idle()
        assert panel.values["mqtt"] == "+MQTTSTATU: 1 (connected)"
        assert panel.values["attach"] == "+CGATT: 1 (attached)"
        assert panel.values["online"] == login.client_id
        assert "refreshed" in panel.message.value


def test_status_panel_errors_are_red_lines(session: ModemSession) -> None:
    panel = StatusPanel(session)
    try:
        assert panel.values["online"] == "— (no cloud console)"
        session.close()
        snap = panel.refresh()
        assert snap["mqtt"] == "—"
        assert "color:#c00" in panel.message.value
        assert "PortClosed" in panel.message.value
        assert "Traceback" not in panel.message.value
    finally:
        panel.close()
    assert "airlab-status-refresh" not in [t.name for t in threading.enumerate()]
    assert panel._sub.key not in session._dispatcher._subs  # unsubscribed


# ---------------------------------------------------------------- SigningCalculator


def test_signing_calculator_tutorial_password() -> None:
    calc = SigningCalculator(Identity.tutorial())
    assert calc.credentials is not None
    assert calc.credentials.password == TUTORIAL_PASSWORD
    assert TUTORIAL_PASSWORD in calc.result.value
    assert calc.values()["client_id"] == "868488076506128|securemode=3,signmethod=hmacmd5|"
    assert calc.values()["username"] == "868488076506128&k1hipglLdjU"
    assert calc.values()["sign_content"] == (
        "clientId868488076506128deviceName868488076506128productKeyk1hipglLdjU"
    )


def test_signing_calculator_is_live() -> None:
    calc = SigningCalculator()
    assert calc.error is not None  # empty inputs: a message, not a traceback
    calc.product_key.value = "k1hipglLdjU"
    calc.device_name.value = "868488076506128"
    calc.device_secret.value = "fef32adf6dad46c2c7cbf335d3a7b021"
    assert calc.error is None and calc.values()["password"] == TUTORIAL_PASSWORD
    calc.sign_method.value = "hmacsha1"
    calc.timestamp.value = "132323232"
    assert calc.values()["client_id"].endswith("signmethod=hmacsha1,timestamp=132323232|")
    assert len(calc.values()["password"]) == 40
    calc.client_id.value = "12345"
    assert calc.values()["sign_content"].startswith("clientId12345deviceName")


def test_signing_calculator_covers_every_method() -> None:
    # the tutorial's numbers: a 112-byte auth body, a 120-byte registration body
    calc = SigningCalculator(Identity.tutorial(), method="http-auth")
    assert calc.form is not None and calc.credentials is None
    assert calc.values()["httpdata"] == "AT+HTTPDATA=112,20000"
    assert calc.values()["body"].startswith("productKey=k1hipglLdjU&")
    assert calc.device_secret.layout.display is None and calc.random.layout.display == "none"
    calc.method.value = "register"
    calc.product_secret.value = "8LQwOYSZMwp3DFBd"
    assert calc.values()["httpdata"] == "AT+HTTPDATA=120,20000"
    assert calc.values()["sign_content"] == (
        "deviceName868488076506128productKeyk1hipglLdjUrandom123456"
    )
    assert calc.device_secret.layout.display == "none"
    calc.method.value = "mqtt-register"
    calc.auth_type.value = "regnwl"
    assert "authType=regnwl" in calc.values()["client_id"]
    assert calc.values()["mconfig"].startswith('AT+MCONFIG="')
    calc.method.value = "direct"
    assert calc.values()["password"] == TUTORIAL_PASSWORD
    calc.product_secret.value = ""
    calc.method.value = "register"
    assert calc.error is not None and calc.values() == {}


def test_signing_calculator_bad_input_shows_usage_error_in_red() -> None:
    calc = SigningCalculator(Identity.tutorial())
    calc.device_name.value = ""
    assert calc.credentials is None
    assert calc.error == "device_name: must not be empty"
    assert "color:#c00" in calc.result.value
    assert "device_name: must not be empty" in calc.result.value
    assert TUTORIAL_PASSWORD not in calc.result.value
    calc.device_name.value = "868488076506128"
    assert calc.error is None and TUTORIAL_PASSWORD in calc.result.value


# ---------------------------------------------------------------- StepThrough


def test_step_through_direct_login(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    steps = recipes_for("direct", Identity.tutorial())
    with_flow = StepThrough(session, steps)
    try:
        for _ in steps:
            with_flow.next_button.click()
        assert with_flow.wait_idle()
        assert all("color:#c00" not in r.value for r in with_flow.results)
        names = [s.name for s in steps]
        assert with_flow.status[names.index("SSLMIPSTART")].endswith("then CONNECT OK")
        assert with_flow.status[names.index("MCONNECT")].endswith("then CONNACK OK")
        assert with_flow.status[-1] == "AT+MQTTSTATU -> OK (+MQTTSTATU :1)"
        assert " ms" in with_flow.results[0].value
        assert [d.client_id for d in cloud[0].online_devices()]
        # a step again, by its own button
        with_flow.buttons[0].click()
        assert with_flow.wait_idle()
        assert with_flow.next_index == 1
    finally:
        with_flow.close()
    assert "airlab-steps" not in [t.name for t in threading.enumerate()]


def test_step_through_failed_step_is_red(session: ModemSession) -> None:
    steps = recipes_for("direct", Identity.tutorial())
    flow = StepThrough(session, steps)
    try:  # MCONNECT with no TCP link: the module refuses it
        assert flow.run_step([s.name for s in steps].index("MCONNECT")).result(10) is None
        text = flow.status[flow.next_index - 1]
        assert text.startswith("!! CommandError: AT+MCONNECT=1,120 -> +CME ERROR: 767")
        assert "color:#c00" in flow.results[flow.next_index - 1].value
    finally:
        flow.close()


def test_recipes_for_rejects_unknown_method() -> None:
    from airlab.errors import UsageError

    with pytest.raises(UsageError, match="method"):
        recipes_for("telepathy", Identity.tutorial())


def test_status_panel_shows_only_its_device(session: ModemSession, cloud: tuple[Any, Path]) -> None:
    """A class shares one emulator: with ``device=`` the panel shows that device only."""
    emu = cloud[0]
    tutorial = Identity.tutorial()
    recipes.attach(session)
    login = recipes.direct_mqtt(session, **tutorial.device())
    with StatusPanel(session, emu, device=("k1hipglLdjU", "nobody-else")) as panel:
        panel.refresh()
        assert panel.values["online"] == "(not online)"
    with StatusPanel(session, emu, device=tutorial) as panel:
        panel.refresh()
        assert panel.values["online"] == login.client_id
