"""``SigningCalculator``: the direct-MQTT strings (一机一密直连), live as you type.

Every change of an input recomputes client id, user name, password and sign content
with :func:`airlab.aliyun.direct_mqtt_credentials` (pure, instant: no thread needed).
A bad input shows the library's :class:`~airlab.errors.UsageError` message in red.

Example:
    >>> from airlab.lesson import Identity
    >>> from airlab.widgets import SigningCalculator
    >>> calc = SigningCalculator(Identity.tutorial())
    >>> calc.credentials.password
    '0f655b12adf519b9a7a2b0a990f398b6'
    >>> calc.device_name.value = ""
    >>> calc.error
    'device_name: must not be empty'
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from airlab.aliyun import MqttCredentials, SignMethod, direct_mqtt_credentials
from airlab.errors import UsageError

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["SigningCalculator"]

ERROR_STYLE = "color:#c00"


class SigningCalculator:
    """Inputs for productKey, deviceName, deviceSecret, sign method, optional timestamp
    and client id; shows the MQTT connect strings as you type.

    ``identity``: anything with ``product_key``, ``device_name``, ``device_secret``
    (``lab.identity``) to fill the inputs, or None (empty).  ``credentials`` is the
    latest :class:`~airlab.aliyun.MqttCredentials` (None while the inputs are wrong),
    ``error`` the message shown instead, ``result`` the HTML widget showing either.
    """

    def __init__(self, identity: Any = None) -> None:
        import ipywidgets as w

        def text(description: str, value: str, placeholder: str = "") -> ipywidgets.Text:
            return w.Text(
                value=value,
                description=description,
                placeholder=placeholder,
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
        self.result = w.HTML()
        self.credentials: MqttCredentials | None = None
        self.error: str | None = None
        self.inputs = (
            self.product_key,
            self.device_name,
            self.device_secret,
            self.sign_method,
            self.timestamp,
            self.client_id,
        )
        for widget in self.inputs:
            widget.observe(self._update, names="value")
        self._box = w.VBox([*self.inputs, self.result])
        self._update()

    @property
    def widget(self) -> ipywidgets.VBox:
        """The calculator, to ``display()`` or put in a layout."""
        return self._box

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self._box._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = "SigningCalculator()"
        return bundle

    def compute(self) -> MqttCredentials:
        """The credentials for the current inputs (UsageError when one is wrong)."""
        return direct_mqtt_credentials(
            self.product_key.value.strip(),
            self.device_name.value.strip(),
            self.device_secret.value.strip(),
            client_id=self.client_id.value.strip() or None,
            sign_method=self.sign_method.value,
            timestamp=self.timestamp.value.strip() or None,
        )

    def _update(self, _change: object = None) -> None:
        try:
            creds = self.compute()
        except UsageError as exc:
            self.credentials, self.error = None, str(exc)
            self.result.value = f"<span style='{ERROR_STYLE}'>{html.escape(str(exc))}</span>"
            return
        self.credentials, self.error = creds, None
        rows = (
            ("client id", creds.client_id),
            ("username", creds.username),
            ("password", creds.password),
            ("sign content", creds.sign_content),
            ("host", f"{creds.host}:{creds.port}"),
        )
        cells = "".join(
            f"<tr><td style='text-align:left'><b>{k}</b></td>"
            f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
            for k, v in rows
        )
        self.result.value = f"<table>{cells}</table>"

    def values(self) -> dict[str, str]:
        """client id, username, password, sign content (empty dict while in error)."""
        c = self.credentials
        if c is None:
            return {}
        return {
            "client_id": c.client_id,
            "username": c.username,
            "password": c.password,
            "sign_content": c.sign_content,
        }
