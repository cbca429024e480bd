"""Plots of pairing tables (matplotlib, imported when a function is called).

One call each; every function takes an optional ``ax`` and returns the Axes it drew
on; axes are labelled with units (latencies in milliseconds, times in seconds).

Example:
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from airlab.analysis import pair_capture
    >>> t = pair_capture("data/captures/seed_http_auth_then_mqtt.log")  # doctest: +SKIP
    >>> plot_timeline(t).get_xlabel()  # doctest: +SKIP
    'time since the first command (s)'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "plot_compare",
    "plot_ecdf",
    "plot_latency_hist",
    "plot_latency_over_time",
    "plot_sequence",
    "plot_timeline",
]

_OUTCOME_COLORS = {
    "ok": "tab:green",
    "error": "tab:red",
    "timeout": "tab:orange",
    "closed": "tab:purple",
    "incomplete": "tab:gray",
}


def _axes(ax: Axes | None, figsize: tuple[float, float] = (8, 4.5)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _latencies_ms(table: pd.DataFrame, kind: str | None, column: str) -> pd.Series:
    t = table[table["outcome"] == "ok"]
    if kind is not None:
        t = t[t["kind"] == kind]
    return t[column].dropna() * 1000.0


def _what(kind: str | None, column: str) -> str:
    label = column.removesuffix("_s").replace("_to_", " → ").replace("_", " ")
    return f"{kind or 'all commands'}: {label}"


def _latency_label(column: str) -> str:
    return f"{column.removesuffix('_s')} latency (ms)"


def _label_latency_axes(ax: Axes, kind: str | None, column: str, ylabel: str, n: int) -> None:
    """Labels of a plot of ``n`` latencies along x (a histogram, an ECDF)."""
    ax.set_xlabel(_latency_label(column))
    ax.set_ylabel(ylabel)
    ax.set_title(f"{_what(kind, column)} (n={n})")


def plot_timeline(
    table: pd.DataFrame,
    attempt: int | None = None,
    *,
    gaps: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """The connection as a waterfall: one bar per command, from sent to done.

    The first part of a bar (darker) is sent → final result, the second final → URC;
    the colour says the outcome.  ``attempt`` picks one connection attempt
    (:func:`~airlab.analysis.stats.connection_attempts`); ``None`` shows every row.
    ``gaps=False`` draws the commands back to back, leaving out the time between them
    (a person typing), so the module's own time shows.
    """
    import numpy as np

    from airlab.analysis.stats import connection_attempts

    t = table
    if attempt is not None:
        t = t[connection_attempts(t) == attempt]
    ax = _axes(ax, (9, max(2.5, 0.35 * len(t) + 1.2)))
    start = t["sent_s"].fillna(t["echo_s"]).to_numpy(float)
    final = t["final_s"].to_numpy(float)
    done = t["done_s"].fillna(t["final_s"]).to_numpy(float)
    end = np.where(np.isnan(done), start, done)
    if not gaps and len(t):
        busy = np.nan_to_num(end - start)
        offset = np.concatenate([[0.0], np.cumsum(busy)[:-1]])
        shift = offset - start
    else:
        shift = np.full(len(t), -np.nanmin(start) if len(t) and np.isfinite(start).any() else 0.0)
    y = np.arange(len(t))
    colors = [_OUTCOME_COLORS.get(str(o), "tab:gray") for o in t["outcome"]]
    first = np.where(np.isnan(final), end, final) - start
    ax.barh(y, np.nan_to_num(first), left=start + shift, color=colors, alpha=0.95, height=0.6)
    second = np.nan_to_num(end - np.where(np.isnan(final), end, final))
    ax.barh(
        y, second, left=start + shift + np.nan_to_num(first), color=colors, alpha=0.45, height=0.6
    )
    labels = [
        f"{c[:38]}{'…' if len(c) > 38 else ''}  ({(e - s) * 1000:.0f} ms)"
        if np.isfinite(e - s)
        else c[:38]
        for c, s, e in zip(t["command"].astype(str), start, end, strict=True)
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(
        "time since the first command (s)" if gaps else "module busy time, back to back (s)"
    )
    ax.set_ylabel("command")
    ax.set_title("connection timeline (dark: sent → result, light: result → URC)")
    return ax


def plot_latency_hist(
    table: pd.DataFrame,
    kind: str | None = "publish_qos1",
    column: str = "echo_to_urc_s",
    *,
    bins: int | str = "auto",
    ax: Axes | None = None,
) -> Axes:
    """Histogram of a latency in milliseconds (default: PUBACK latency of QoS1 publishes)."""
    ax = _axes(ax)
    v = _latencies_ms(table, kind, column)
    ax.hist(v, bins=bins if len(v) else 1, color="tab:blue", edgecolor="white")
    _label_latency_axes(ax, kind, column, "commands (count)", len(v))
    return ax


def plot_ecdf(
    table: pd.DataFrame,
    kind: str | None = "publish_qos1",
    column: str = "echo_to_urc_s",
    *,
    ax: Axes | None = None,
    label: str | None = None,
) -> Axes:
    """Empirical CDF of a latency in milliseconds, with the p50/p90/p99 marked."""
    import numpy as np

    ax = _axes(ax)
    v = np.sort(_latencies_ms(table, kind, column).to_numpy())
    if len(v):
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=label)
        for q in (0.5, 0.9, 0.99):
            ax.axvline(np.quantile(v, q), color="gray", lw=0.6, ls=":")
    ax.set_ylim(0, 1.02)
    _label_latency_axes(ax, kind, column, "fraction of commands (ECDF)", len(v))
    return ax


def plot_latency_over_time(
    table: pd.DataFrame,
    kind: str | None = "publish_qos1",
    column: str = "echo_to_urc_s",
    *,
    ax: Axes | None = None,
) -> Axes:
    """A latency (ms) against the time the command was sent (s since the first one)."""
    ax = _axes(ax)
    t = table if kind is None else table[table["kind"] == kind]
    ok = t["outcome"] == "ok"
    x = t["sent_s"].fillna(t["echo_s"])
    x0 = x.min()
    ax.plot((x[ok] - x0), t.loc[ok, column] * 1000, ".", ms=3, label="ok")
    bad = t[~ok]
    if len(bad):
        ax.plot(
            x[~ok] - x0,
            [0.0] * len(bad),
            "x",
            color="tab:red",
            label="not ok (" + ", ".join(sorted(bad["outcome"].astype(str).unique())) + ")",
        )
    ax.set_xlabel("time since the first command (s)")
    ax.set_ylabel(_latency_label(column))
    ax.set_title(_what(kind, column))
    ax.legend(loc="upper right", fontsize=8)
    return ax


def plot_compare(
    tables: Mapping[str, pd.DataFrame],
    kind: str | None = "publish_qos1",
    column: str = "echo_to_urc_s",
    *,
    ax: Axes | None = None,
) -> Axes:
    """Two (or more) runs compared: their latency ECDFs on one plot, medians in the legend."""
    ax = _axes(ax)
    for name, table in tables.items():
        v = _latencies_ms(table, kind, column)
        med = f"{v.median():.0f} ms" if len(v) else "–"
        plot_ecdf(table, kind, column, ax=ax, label=f"{name} (n={len(v)}, median {med})")
    ax.set_title(f"{_what(kind, column)}: " + " vs ".join(tables))
    ax.legend(loc="lower right", fontsize=8)
    return ax


#: Command kinds whose completion comes from the network (drawn to the cloud lane).
_NETWORK_KINDS = {
    "http_request": "HTTPS POST",
    "mqtt_open": "TCP/TLS handshake",
    "mqtt_connect": "CONNECT / CONNACK",
    "subscribe": "SUBSCRIBE / SUBACK",
    "unsubscribe": "UNSUBSCRIBE / UNSUBACK",
    "publish_qos1": "PUBLISH / PUBACK",
    "publish_qos2": "PUBLISH … PUBCOMP",
    "publish_qos0": "PUBLISH",
    "mqtt_disconnect": "DISCONNECT",
}


def _short(text: str, width: int = 46) -> str:
    from airlab.at.redact import redact_bytes

    text = redact_bytes(text.encode("utf-8", "replace")).decode("utf-8", "replace")
    return text if len(text) <= width else text[: width - 1] + "…"


def _ms(seconds: object) -> str:
    try:
        value = float(seconds)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    if value != value:  # NaN
        return ""
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def plot_sequence(
    table: pd.DataFrame,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    max_rows: int = 24,
) -> Axes:
    """A sequence diagram of a pairing table: host ↔ module ↔ cloud, one row per command.

    Each command is an arrow host → module (its text, secrets redacted) and the module's
    final result an arrow back, labelled with its latency; a command the network
    completes (``+HTTPACTION``, ``CONNECT OK``, ``CONNACK OK``, ``SUBACK``, ``PUBACK``)
    also goes module → cloud and back, and its URC reaches the host with the time it
    took.  Rows are in order, not to scale (a 5 s paste and a 1 ms ``OK`` both fit).

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from airlab.analysis import pair_capture
        >>> t = pair_capture("data/captures/seed_direct_mqtt.log")  # doctest: +SKIP
        >>> plot_sequence(t).get_title()  # doctest: +SKIP
        'host ↔ module ↔ cloud'
    """
    rows = table.head(max_rows)
    n = max(len(rows), 1)
    ax = _axes(ax, figsize=(11, 0.42 * n + 1.2))
    lanes = {"host": 0.0, "module": 1.0, "cloud": 2.0}
    for name, x in lanes.items():
        ax.plot([x, x], [-0.6, n - 0.3], color="0.6", linewidth=1, zorder=0)
        ax.text(x, -0.8, name, ha="center", va="bottom", fontweight="bold")
    arrow = {"arrowstyle": "-|>", "linewidth": 1.0}
    for y, row in enumerate(rows.to_dict("records")):
        outcome = str(row.get("outcome") or "incomplete")
        color = _OUTCOME_COLORS.get(outcome, "tab:gray")
        ax.annotate("", xy=(1, y), xytext=(0, y), arrowprops={**arrow, "color": "tab:blue"})
        ax.text(-0.04, y, _short(str(row.get("command") or "")), ha="right", va="center",
                fontsize=8, family="monospace")  # fmt: skip
        final = str(row.get("final") or "")
        if final and final != "nan":
            ax.annotate("", xy=(0.02, y + 0.22), xytext=(1, y + 0.22),
                        arrowprops={**arrow, "color": color, "linestyle": "--"})  # fmt: skip
            ax.text(0.5, y + 0.2, f"{_short(final, 18)}  {_ms(row.get('sent_to_final_s'))}",
                    ha="center", va="bottom", fontsize=7, color=color)  # fmt: skip
        kind = str(row.get("kind") or "")
        if kind in _NETWORK_KINDS:
            ax.annotate("", xy=(2, y), xytext=(1, y), arrowprops={**arrow, "color": "0.4"})
            ax.text(1.5, y - 0.05, _NETWORK_KINDS[kind], ha="center", va="bottom", fontsize=7)
            urc = row.get("urc")
            if isinstance(urc, str) and urc:
                ax.annotate("", xy=(1, y + 0.3), xytext=(2, y + 0.3),
                            arrowprops={**arrow, "color": color})  # fmt: skip
                ax.text(2.04, y + 0.3, f"{_short(urc, 20)}  {_ms(row.get('sent_to_urc_s'))}",
                        ha="left", va="center", fontsize=8, color=color)  # fmt: skip
    ax.set_xlim(-1.9, 3.0)
    ax.set_ylim(n - 0.2, -1.0)
    ax.axis("off")
    ax.set_title(title or "host ↔ module ↔ cloud")
    return ax
