"""pyserial URL handler package for the simulated module: ``airsim://``.

:func:`register_url_handler` adds this package to ``serial.protocol_handler_packages``
(idempotent), after which ``serial.serial_for_url("airsim://?profile=tutorial")`` returns
a port backed by a :class:`~airlab.sim.device.SimulatedModule`
(:mod:`airlab.sim.urlhandler.protocol_airsim` documents the options).  Only
``serial_for_url`` dispatches URLs; ``serial.Serial("airsim://...")`` does not.

Example:
    >>> import serial
    >>> register_url_handler()
    >>> register_url_handler()  # idempotent
    >>> serial.protocol_handler_packages.count("airlab.sim.urlhandler")
    1
"""

from __future__ import annotations

__all__ = ["PACKAGE", "register_url_handler"]

PACKAGE = "airlab.sim.urlhandler"


def register_url_handler() -> None:
    """Make ``airsim://`` known to ``serial.serial_for_url`` (safe to call repeatedly)."""
    import serial

    if PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(PACKAGE)
