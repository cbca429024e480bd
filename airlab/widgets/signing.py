"""``SigningCalculator``: what to type for each connection method, live as you type.

Methods (``method``): ``direct`` (一机一密直连: client id, user name, password, the
``AT+MCONFIG`` line), ``http-auth`` (一机一密 HTTPS auth: the body for ``AT+HTTPDATA``
and its length in bytes), ``register`` (一型一密 HTTPS dynamic registration body) and
``mqtt-register`` (一型一密 over MQTT, ``authType=register`` or ``regnwl``).  Every
change of an input recomputes them with :mod:`airlab.aliyun` (pure, instant: no thread
needed).  A bad input shows the library's :class:`~airlab.errors.UsageError` message
in red.  Under the values, one copy button per value (:func:`copy_button`, an
``anywidget`` whose JavaScript writes to the clipboard: "copy, don't type", 切记).

Example:
    >>> from airlab.lesson import Identity
    >>> from airlab.widgets import SigningCalculator
    >>> calc = SigningCalculator(Identity.tutorial())
    >>> calc.credentials.password
    '0f655b12adf519b9a7a2b0a990f398b6'
    >>> calc.device_name.value = ""
    >>> calc.error
    'device_name: must not be empty'
    >>> calc.device_name.value = "868488076506128"; calc.method.value = "http-auth"
    >>> calc.values()["httpdata"]
    'AT+HTTPDATA=112,20000'
    >>> calc.copy_buttons["httpdata"].text        # what its copy button copies
    'AT+HTTPDATA=112,20000'
"""

from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING, Any

from airlab.aliyun import (
    MqttCredentials,
    SignMethod,
    direct_mqtt_credentials,
    http_auth_request,
)
from airlab.aliyun.dynreg import mqtt_register_credentials, register_request
from airlab.aliyun.forms import HttpFormRequest
from airlab.at.commands import httpdata, mconfig
from airlab.errors import UsageError
from airlab.widgets._box import BoxedWidget

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["COPY_ESM", "METHODS", "SigningCalculator", "copy_button"]

#: The calculator's methods: value -> label.
METHODS: dict[str, str] = {
    "direct": "direct MQTT (一机一密直连)",
    "http-auth": "HTTPS auth, then MQTT (一机一密 HTTP认证)",
    "register": "HTTPS dynamic registration (一型一密)",
    "mqtt-register": "MQTT dynamic registration (一型一密, register / regnwl)",
}

ERROR_STYLE = "color:#c00"

#: The copy button's front end: the Clipboard API where the page is a secure context
#: (https, localhost), else a hidden textarea and ``document.execCommand("copy")`` (a
#: JupyterLab reached over plain http on another host); the count of copies goes back
#: to Python (``copies``), a failure too (``error``).
COPY_ESM = """
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const done = document.execCommand("copy");
  area.remove();
  if (!done) throw new Error("the browser refused to copy");
}

function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "jupyter-widgets jupyter-button widget-button airlab-copy";
  const show = () => { button.textContent = "copy " + model.get("label"); };
  button.title = "copy the exact value to the clipboard (do not type it)";
  show();
  button.addEventListener("click", async () => {
    try {
      await copyText(model.get("text"));
      model.set("copies", model.get("copies") + 1);
      model.set("error", "");
      button.textContent = "copied \u2713";
    } catch (err) {
      model.set("error", String(err));
      button.textContent = "select the value and press Ctrl+C";
    }
    model.save_changes();
    setTimeout(show, 1500);
  });
  model.on("change:label", show);
  el.appendChild(button);
}
export default { render };
"""


@functools.cache
def _copy_button_class() -> type:
    import anywidget
    import traitlets

    class CopyButton(anywidget.AnyWidget):  # type: ignore[misc]
        """A button that copies ``text`` to the clipboard (in the browser)."""

        _esm = COPY_ESM
        text = traitlets.Unicode("").tag(sync=True)
        label = traitlets.Unicode("").tag(sync=True)
        copies = traitlets.Int(0).tag(sync=True)
        error = traitlets.Unicode("").tag(sync=True)

    return CopyButton


def copy_button(text: str = "", label: str = "") -> Any:
    """A copy button (an ``anywidget``: JupyterLab runs its JavaScript) for ``text``;
    ``button.copies`` counts the copies the browser made, ``button.error`` tells why a
    copy failed.

    Example:
        >>> b = copy_button("AT+HTTPDATA=112,20000", "HTTPDATA line")
        >>> b.text, b.label, b.copies
        ('AT+HTTPDATA=112,20000', 'HTTPDATA line', 0)
    """
    return _copy_button_class()(text=text, label=label)


class SigningCalculator(BoxedWidget):
    """Inputs for the method, productKey, deviceName, deviceSecret (or ProductSecret
    and random for dynamic registration), sign method, optional timestamp and client
    id; shows what to type as you type.

    ``identity``: anything with ``product_key``, ``device_name``, ``device_secret``
    (and optionally ``product_secret``; ``lab.identity``) to fill the inputs, or None
    (empty).  ``credentials`` is the latest :class:`~airlab.aliyun.MqttCredentials`
    of an MQTT method, ``form`` the latest HTTPS form (each None otherwise or while the
    inputs are wrong), ``error`` the message shown instead, ``result`` the HTML widget
    showing either; :meth:`values` the strings as a dict.
    """

    def __init__(self, identity: Any = None, method: str = "direct") -> None:
        import ipywidgets as w

        def text(description: str, value: str, placeholder: str = "") -> ipywidgets.Text:
            return w.Text(
                value=value,
                description=description,
                placeholder=placeholder,
                style={"description_width": "9em"},
                layout=w.Layout(width="36em"),
            )

        if method not in METHODS:
            raise UsageError("method", f"must be one of {', '.join(METHODS)}, not {method!r}")
        self.method = w.Dropdown(
            options=[(label, key) for key, label in METHODS.items()],
            value=method,
            description="method",
            style={"description_width": "9em"},
            layout=w.Layout(width="36em"),
        )
        self.product_key = text("productKey", getattr(identity, "product_key", "") or "")
        self.device_name = text("deviceName", getattr(identity, "device_name", "") or "")
        self.device_secret = text("deviceSecret", getattr(identity, "device_secret", "") or "")
        self.sign_method = w.Dropdown(
            options=[m.value for m in SignMethod],
            value=SignMethod.HMACMD5.value,
            description="sign method",
            style={"description_width": "9em"},
        )
        self.timestamp = text("timestamp", "", "optional, milliseconds")
        self.client_id = text("client id", "", "optional: the device name")
        self.product_secret = text(
            "productSecret", getattr(identity, "product_secret", "") or "", "dynamic registration"
        )
        self.random = text("random", "123456", "dynamic registration: any text")
        self.auth_type = w.Dropdown(
            options=["register", "regnwl"],
            value="register",
            description="authType",
            style={"description_width": "9em"},
        )
        self.result = w.HTML()
        self.copy_buttons: dict[str, Any] = {}
        self.copy_bar = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.credentials: MqttCredentials | None = None
        self.form: HttpFormRequest | None = None
        self.error: str | None = None
        self._rows: list[tuple[str, str, str]] = []
        self.inputs = (
            self.method,
            self.product_key,
            self.device_name,
            self.device_secret,
            self.product_secret,
            self.random,
            self.auth_type,
            self.sign_method,
            self.timestamp,
            self.client_id,
        )
        for widget in self.inputs:
            widget.observe(self._update, names="value")
        self._box = w.VBox([*self.inputs, self.result, self.copy_bar])
        self._update()

    def compute(self) -> MqttCredentials:
        """The direct-MQTT credentials for the current inputs (UsageError when one is
        wrong)."""
        return direct_mqtt_credentials(**self._device_values())

    def _compute(self) -> MqttCredentials | HttpFormRequest:
        method = self.method.value
        if method == "direct":
            return self.compute()
        if method == "http-auth":
            return http_auth_request(**self._device_values())
        if method == "register":
            return register_request(**self._product_values())
        return mqtt_register_credentials(**self._product_values(), auth_type=self.auth_type.value)

    def _identity_values(self) -> dict[str, Any]:
        return {
            "product_key": self.product_key.value.strip(),
            "device_name": self.device_name.value.strip(),
        }

    def _device_values(self) -> dict[str, Any]:
        """The inputs of the device-secret methods, as keyword arguments."""
        return {
            **self._identity_values(),
            "device_secret": self.device_secret.value.strip(),
            "client_id": self.client_id.value.strip() or None,
            "sign_method": self.sign_method.value,
            "timestamp": self.timestamp.value.strip() or None,
        }

    def _product_values(self) -> dict[str, Any]:
        """The inputs of the product-secret (registration) methods, as keyword arguments."""
        return {
            **self._identity_values(),
            "product_secret": self.product_secret.value.strip(),
            "random": self.random.value.strip(),
            "sign_method": self.sign_method.value,
        }

    def _visible(self) -> None:
        method = self.method.value
        dynamic = method in ("register", "mqtt-register")
        shown = {
            self.device_secret: not dynamic,
            self.product_secret: dynamic,
            self.random: dynamic,
            self.auth_type: method == "mqtt-register",
            self.timestamp: not dynamic,
            self.client_id: not dynamic,
        }
        for widget, visible in shown.items():
            widget.layout.display = None if visible else "none"

    def _update(self, _change: object = None) -> None:
        self._visible()
        self.credentials, self.form = None, None
        try:
            result = self._compute()
            rows = _rows(result)
        except UsageError as exc:
            self.error = str(exc)
            self.result.value = f"<span style='{ERROR_STYLE}'>{html.escape(str(exc))}</span>"
            self.copy_bar.children = ()
            return
        if isinstance(result, HttpFormRequest):
            self.form = result
        else:
            self.credentials = result
        self.error = None
        self._rows = rows
        cells = "".join(
            f"<tr><td style='text-align:left'><b>{html.escape(label)}</b></td>"
            f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
            for _, label, v in rows
        )
        self.result.value = f"<table>{cells}</table>"
        self._update_copy_buttons(rows)

    def _update_copy_buttons(self, rows: list[tuple[str, str, str]]) -> None:
        shown = []
        for key, label, value in rows:
            button = self.copy_buttons.get(key)
            if button is None:
                try:
                    button = self.copy_buttons[key] = copy_button(value, label)
                except ImportError:  # the lab extra without anywidget: values still shown
                    import ipywidgets as w

                    self.copy_bar.children = (
                        w.HTML("<i>copy buttons need anywidget: pip install anywidget</i>"),
                    )
                    return
            else:
                button.text, button.label = value, label
            shown.append(button)
        self.copy_bar.children = tuple(shown)

    @property
    def copies(self) -> dict[str, int]:
        """How many times each value was copied in the browser (by key)."""
        return {key: b.copies for key, b in self.copy_buttons.items() if b.copies}

    def values(self) -> dict[str, str]:
        """The strings shown, by key (``client_id``, ``username``, ``password``,
        ``mconfig``, ``sign_content``, ``host`` for MQTT; ``url``, ``body``,
        ``length``, ``httpdata``, ``sign_content`` for HTTPS); empty while in error."""
        if self.error is not None:
            return {}
        return {key: value for key, _, value in self._rows}


def _rows(result: MqttCredentials | HttpFormRequest) -> list[tuple[str, str, str]]:
    if isinstance(result, HttpFormRequest):
        line, _ = httpdata(result.body)
        return [
            ("url", "URL (AT+HTTPPARA)", result.url),
            ("body", "body (after DOWNLOAD)", result.body),
            ("length", "length in bytes", str(result.length)),
            ("httpdata", "AT+HTTPDATA line", line),
            ("sign_content", "sign content", result.sign_content),
        ]
    return [
        ("client_id", "client id", result.client_id),
        ("username", "username", result.username),
        ("password", "password", result.password),
        ("mconfig", "AT+MCONFIG line", mconfig(result.client_id, result.username,
                                               result.password)),
        ("sign_content", "sign content", result.sign_content),
        ("host", "host", f"{result.host}:{result.port}"),
    ]  # fmt: skip
