"""Timing analysis of AT captures: one row per command, statistics and plots.

:func:`pair_commands` (events or a transcript: a live session, a saved or imported
capture) and :func:`pair_capture` (a file) give the pairing table; :mod:`.stats`
summarises it (per kind, per connection step, percentiles, run comparisons, export);
:mod:`.plots` draws it (matplotlib, imported on first use).

Example:
    >>> from airlab.analysis import pair_capture, latency_summary
    >>> t = pair_capture("data/captures/seed_publish_subscribe.log")  # doctest: +SKIP
    >>> t.loc[t.kind == "publish_qos1", "echo_to_urc_s"].round(3).tolist()  # doctest: +SKIP
    [0.297]
"""

from airlab.analysis.fast import pair_file, pair_records
from airlab.analysis.kinds import COMPLETIONS, KINDS, PUBLISH_COMPLETIONS, Completion
from airlab.analysis.pairing import COLUMNS, OUTCOMES, pair_capture, pair_commands
from airlab.analysis.plots import (
    plot_compare,
    plot_ecdf,
    plot_latency_hist,
    plot_latency_over_time,
    plot_sequence,
    plot_timeline,
)
from airlab.analysis.stats import (
    compare_runs,
    concat_runs,
    connection_attempts,
    export_table,
    latency_summary,
    percentiles,
    step_table,
)

__all__ = [
    "COLUMNS",
    "COMPLETIONS",
    "KINDS",
    "OUTCOMES",
    "PUBLISH_COMPLETIONS",
    "Completion",
    "compare_runs",
    "concat_runs",
    "connection_attempts",
    "export_table",
    "latency_summary",
    "pair_capture",
    "pair_commands",
    "pair_file",
    "pair_records",
    "percentiles",
    "plot_compare",
    "plot_ecdf",
    "plot_latency_hist",
    "plot_latency_over_time",
    "plot_sequence",
    "plot_timeline",
    "step_table",
]
