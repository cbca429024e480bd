"""A fleet of simulated Air780EP modems in one process, against the cloud emulator.

* :class:`FleetModem`: one simulated module on a shared event loop (no thread of its own);
* :class:`Scenario`: what a run does (modems, rate, QoS, ramp, reconnects, an outage);
* :func:`run_fleet`: runs it and returns a :class:`FleetResult` (the pairing table of
  every command of every modem, the emulator's logs of the run, a summary);
* :class:`ServedCloud`: the emulator in a process of its own for the run.

The command line is ``airlab fleet run`` (:mod:`airlab.cli.fleet`).
"""

from airlab.fleet.modem import Exchange, FleetModem
from airlab.fleet.results import SUMMARY_KEYS, FleetResult
from airlab.fleet.runner import FleetProgress, fleet_device_name, run_fleet
from airlab.fleet.scenario import Scenario
from airlab.fleet.served import ServedCloud

__all__ = [
    "SUMMARY_KEYS",
    "Exchange",
    "FleetModem",
    "FleetProgress",
    "FleetResult",
    "Scenario",
    "ServedCloud",
    "fleet_device_name",
    "run_fleet",
]
