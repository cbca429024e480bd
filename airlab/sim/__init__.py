"""The simulated Air780EP: the module's AT firmware with a real network stack behind it.

Reach it like a real module, through pyserial (the ``airsim://`` handler is registered
on ``import airlab``), a pty (:class:`PtyBridge`) or a TCP port (:class:`TcpBridge`).
Its host names resolve through a :class:`HostTable`, usually the cloud emulator's
endpoints file; it never imports :mod:`airlab.cloud`.

Example:
    >>> import airlab, serial
    >>> port = serial.serial_for_url("airsim://?profile=instant", timeout=1)
    >>> _ = port.write(b"AT+CGMI\\r\\n")
    >>> port.read_until(b"OK\\r\\n")
    b'AT+CGMI\\r\\n\\r\\n+CGMI: "AirM2M"\\r\\n\\r\\nOK\\r\\n'
    >>> port.close()
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy exports: ``import airlab`` registers the airsim:// handler (which lives in this
# package) without paying for asyncio and the firmware until they are used.
_EXPORTS = {
    "PtyBridge": "airlab.sim.bridges",
    "TcpBridge": "airlab.sim.bridges",
    "FirmwareConfig": "airlab.sim.config",
    "SimulatedModule": "airlab.sim.device",
    "Firmware": "airlab.sim.firmware",
    "HostNotFound": "airlab.sim.hosts",
    "HostTable": "airlab.sim.hosts",
    "NetStack": "airlab.sim.netstack",
    "PROFILES": "airlab.sim.profiles",
    "Delay": "airlab.sim.profiles",
    "Faults": "airlab.sim.profiles",
    "Profile": "airlab.sim.profiles",
    "get_profile": "airlab.sim.profiles",
    "register_url_handler": "airlab.sim.urlhandler",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'airlab.sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "PROFILES",
    "Delay",
    "Faults",
    "Firmware",
    "FirmwareConfig",
    "HostNotFound",
    "HostTable",
    "NetStack",
    "Profile",
    "PtyBridge",
    "SimulatedModule",
    "TcpBridge",
    "get_profile",
    "register_url_handler",
]
