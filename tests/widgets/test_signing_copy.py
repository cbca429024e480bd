"""The signing calculator's copy buttons: one per value, always holding the value shown,
and a front end that writes to the clipboard (checked as far as Python can)."""

from __future__ import annotations

import pytest

from airlab.lesson import Identity
from airlab.widgets import SigningCalculator
from airlab.widgets.signing import COPY_ESM, METHODS, copy_button

pytest.importorskip("anywidget")


@pytest.mark.parametrize("method", list(METHODS))
def test_one_button_per_value(method: str) -> None:
    calc = SigningCalculator(Identity.tutorial(), method=method)
    values = calc.values()
    assert values
    shown = {b.label: b.text for b in calc.copy_bar.children}
    assert len(shown) == len(values)
    assert sorted(shown.values()) == sorted(values.values())
    for key, value in values.items():
        assert calc.copy_buttons[key].text == value


def test_buttons_follow_the_inputs_and_errors() -> None:
    calc = SigningCalculator(Identity.tutorial())
    password = calc.copy_buttons["password"]
    before = password.text
    calc.sign_method.value = "hmacsha256"
    assert calc.copy_buttons["password"] is password  # the same widget, new value
    assert password.text == calc.values()["password"] != before and len(password.text) == 64
    calc.device_name.value = ""
    assert calc.copy_bar.children == ()  # nothing to copy while the inputs are wrong
    calc.device_name.value = "868488076506128"
    assert password in calc.copy_bar.children
    calc.method.value = "http-auth"
    assert calc.copy_buttons["httpdata"].text == "AT+HTTPDATA=166,20000"  # hmacsha256 sign
    assert password not in calc.copy_bar.children


def test_the_browser_reports_copies() -> None:
    calc = SigningCalculator(Identity.tutorial())
    # what the front end sends after navigator.clipboard.writeText succeeded
    calc.copy_buttons["mconfig"].set_state({"copies": 1})
    assert calc.copies == {"mconfig": 1}
    b = copy_button("x", "x")
    b.set_state({"error": "NotAllowedError: denied"})
    assert b.error.startswith("NotAllowedError")


def test_the_front_end_copies() -> None:
    b = copy_button("AT+MCONFIG=...", "AT+MCONFIG line")
    state = b.get_state()
    assert state["text"] == "AT+MCONFIG=..." and state["_esm"] == COPY_ESM
    assert "navigator.clipboard.writeText(text)" in COPY_ESM
    assert 'document.execCommand("copy")' in COPY_ESM  # plain-http JupyterLab
    assert 'model.set("copies", model.get("copies") + 1)' in COPY_ESM
    assert "export default { render }" in COPY_ESM
    bundle, _meta = b._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
