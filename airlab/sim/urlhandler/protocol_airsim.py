"""``airsim://`` — a pyserial port backed by a simulated Air780EP.

URL: ``airsim://[name]?option=value&...`` (the host part is optional and ignored: a
label).  Options:

``profile``  latency profile: ``instant`` (default), ``tutorial``, ``flaky``
``seed``     seed of the profile's delays and faults (default 0)
``cloud``    path of the cloud emulator's endpoints JSON: Aliyun host names resolve to it
``baud``     pace the module's output at baud/10 bytes per second (default: no pacing)
``boot``     ``1`` shows the boot URCs when the port opens (default: the profile's)
``imei``, ``echo`` and any other :class:`~airlab.sim.config.FirmwareConfig` field
             (``qos1_overlap=cme767``, ``reboot_seconds=0`` ...); booleans as 0/1.

An unknown option raises :class:`AirsimURLError` (a ``ValueError`` and a
``SerialException``) naming it.  The port's ``module`` attribute is the
:class:`~airlab.sim.device.SimulatedModule`, for fault injection
(``port.module.drop_link()``).  :meth:`Serial.wait_readable` (not in pyserial) blocks
until output is ready without reading it, and :meth:`Serial.cancel_read` wakes it: a
:class:`~airlab.session.session.ModemSession` reader waits there instead of polling.

Imports of the simulator happen in :meth:`Serial.open`, so that an error there is
reported as itself and not as pyserial's "protocol 'airsim' not known".

Example:
    >>> import serial
    >>> from airlab.sim.urlhandler import register_url_handler
    >>> register_url_handler()
    >>> port = serial.serial_for_url("airsim://?echo=0", timeout=1)
    >>> port.write(b"AT\\r")
    3
    >>> port.read(6)
    b'\\r\\nOK\\r\\n'
    >>> port.close()
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

__all__ = ["AirsimURLError", "Serial", "parse_url"]

_OWN = ("profile", "seed", "cloud", "baud", "boot")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class AirsimURLError(SerialException, ValueError):
    """A bad ``airsim://`` URL (unknown option, bad value)."""


def _bool(name: str, text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise AirsimURLError(f"airsim:// option {name!r}: expected 0 or 1, got {text!r}")


def parse_url(url: str) -> dict[str, Any]:
    """The keyword arguments of :class:`~airlab.sim.device.SimulatedModule` for ``url``.

    >>> sorted(parse_url("airsim://lab?profile=tutorial&seed=3&imei=123&echo=0"))
    ['config', 'profile', 'seed']
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "airsim":
        raise AirsimURLError(f"expected an airsim:// URL, got {url!r}")
    from airlab.sim.config import FirmwareConfig

    fields = {f.name: f for f in dataclasses.fields(FirmwareConfig)}
    kwargs: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name == "profile":
            from airlab.sim.profiles import PROFILES

            if value not in PROFILES:
                raise AirsimURLError(
                    f"airsim:// option 'profile': unknown profile {value!r} "
                    f"(choose {', '.join(PROFILES)})"
                )
            kwargs["profile"] = value
        elif name == "seed":
            kwargs["seed"] = int(value) if value.lstrip("-").isdigit() else value
        elif name == "cloud":
            from airlab.sim.hosts import HostTable

            try:
                kwargs["hosts"] = HostTable.from_endpoints(value)
            except (OSError, ValueError) as exc:
                raise AirsimURLError(f"airsim:// option 'cloud': {exc}") from exc
        elif name == "baud":
            if not value.isdigit() or int(value) <= 0:
                raise AirsimURLError(f"airsim:// option 'baud': bad rate {value!r}")
            kwargs["baudrate"] = int(value)
        elif name == "boot":
            kwargs["boot_urcs"] = _bool(name, value)
        elif name in fields:
            overrides[name] = _convert(name, value, fields[name].type)
        else:
            raise AirsimURLError(
                f"airsim:// unknown option {name!r} (known: {', '.join(_OWN)}, "
                "or a FirmwareConfig field such as imei, echo)"
            )
    if overrides:
        try:
            kwargs["config"] = FirmwareConfig(**overrides)
        except (TypeError, ValueError) as exc:
            raise AirsimURLError(f"airsim:// firmware option: {exc}") from exc
    return kwargs


def _convert(name: str, text: str, annotation: Any) -> Any:
    kind = str(annotation)
    try:
        if kind == "bool":
            return _bool(name, text)
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bytes":
            return text.encode("latin-1")
        if kind == "str":
            return text
    except ValueError as exc:
        raise AirsimURLError(f"airsim:// option {name!r}: bad value {text!r}") from exc
    raise AirsimURLError(f"airsim:// option {name!r} cannot be set from a URL")


class Serial(SerialBase):
    """A pyserial port whose other end is a simulated Air780EP."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.module: Any = None
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        kwargs = parse_url(self.portstr)
        from airlab.sim.device import SimulatedModule

        self.module = SimulatedModule(**kwargs)
        self.is_open = True

    def close(self) -> None:
        if self.module is not None:
            self.module.close()
        self.is_open = False

    def _reconfigure_port(self) -> None:
        """Serial settings do not matter to the simulator (pacing comes from ``baud=``)."""

    def from_url(self, url: str) -> dict[str, Any]:
        return parse_url(url)

    # ---------------------------------------------------------------- data

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        return self.module.in_waiting

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        if size <= 0:
            return b""
        return self.module.read(size, self._timeout)

    def write(self, data: Any) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        return self.module.write(memoryview(data).tobytes())

    def flush(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()

    def reset_input_buffer(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
        self.module.reset_input_buffer()

    def reset_output_buffer(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()

    @property
    def out_waiting(self) -> int:
        return 0

    def wait_readable(self, timeout: float | None = None) -> bool:
        """Block until the module's output is ready to read (True), ``timeout`` seconds
        pass (None: forever) or :meth:`cancel_read` is called (False when nothing is
        there), without reading: a reader thread waits here and then reads under its own
        lock, so that another thread may read the port too without reordering bytes.
        A closed module raises :class:`~serial.SerialException` once its output is read.
        """
        if not self.is_open:
            raise PortNotOpenError()
        module = self.module
        if module.wait_readable(timeout):
            return True
        if module.closed:
            raise SerialException("the simulated module is closed")
        return False

    def cancel_read(self) -> None:
        """Wake a blocking :meth:`read` or :meth:`wait_readable` (pyserial's API)."""
        if self.module is not None:
            self.module.cancel_read()

    def cancel_write(self) -> None:
        pass

    # ---------------------------------------------------------------- modem lines

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True
