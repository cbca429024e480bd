"""Plots of a fleet run: PUBACK latency over the run, its ECDF, and the uplinks the
platform's rate limit dropped per second (matplotlib, imported when called).

The first two are the timing lessons' own plots (:mod:`airlab.analysis.plots`) on the
fleet's pairing table, whose ``sent_s`` every modem counts from the same start.

Example:
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from airlab.fleet import Scenario, run_fleet
    >>> fig = plot_fleet(run_fleet(Scenario(modems=2, rate=4, duration=0.5, ramp=0)))
    >>> [ax.get_title() for ax in fig.axes][2]
    'uplinks dropped by the rate limit'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airlab.analysis.plots import plot_ecdf, plot_latency_over_time

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from airlab.fleet.results import FleetResult

__all__ = ["plot_fleet", "plot_throttled"]

_LATENCY = "sent_to_urc_s"  # AT+MPUB written -> PUBACK read


def plot_fleet(result: FleetResult) -> Figure:
    """Three panels: PUBACK latency over time, its ECDF, throttled uplinks per second."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    table = result.table
    if len(table) and (table["kind"] == "publish_qos1").any():
        plot_latency_over_time(table, "publish_qos1", _LATENCY, ax=axes[0])
        plot_ecdf(table, "publish_qos1", _LATENCY, ax=axes[1])
    else:
        for ax in axes[:2]:
            ax.set_title("no QoS 1 publish in this run")
    plot_throttled(result, ax=axes[2])
    s = result.summary
    fig.suptitle(
        f"{s['modems']} modems, {s['rate']}/s each, QoS {s['qos']}, profile {s['profile']}: "
        f"{s['acked']} of {s['published']} acknowledged"
    )
    fig.tight_layout()
    return fig


def plot_throttled(result: FleetResult, *, ax: Axes | None = None) -> Axes:
    """Uplinks dropped by the platform's rate limit, per second of the run (bars)."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    per_second = result.throttled_per_second()
    if len(per_second):
        start = per_second.index.min()
        seconds = [(t - start).total_seconds() for t in per_second.index]
        ax.bar(seconds, per_second.to_numpy(), width=0.8, color="tab:red")
        ax.set_xlabel("second of the run (from the first dropped uplink)")
    else:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("second of the run")
    ax.set_ylabel("uplinks dropped")
    ax.set_title("uplinks dropped by the rate limit")
    return ax
