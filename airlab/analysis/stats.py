"""Statistics of pairing tables: per kind, per connection step, percentiles, run comparisons.

All functions take the table of :func:`~airlab.analysis.pairing.pair_commands` (or
several, for comparisons) and return DataFrames; latencies stay in seconds (``_s``
columns), percentiles are named ``p50_s``, ``p90_s``, ``p99_s``.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"kind": ["publish_qos1"] * 4, "outcome": ["ok"] * 4,
    ...                   "echo_to_urc_s": [0.29, 0.30, 0.31, 0.50]})
    >>> latency_summary(t, column="echo_to_urc_s").loc["publish_qos1", "p50_s"].round(3)
    np.float64(0.305)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from airlab.analysis.kinds import LOGIN_KINDS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CONNECTION_KINDS",
    "compare_runs",
    "concat_runs",
    "connection_attempts",
    "export_table",
    "latency_summary",
    "percentiles",
    "step_table",
]

DEFAULT_PERCENTILES = (0.5, 0.9, 0.99)

#: Kinds that make up a connection (bearer → HTTP auth → MQTT CONNECT), in order.
CONNECTION_KINDS = ("network", *LOGIN_KINDS)


def _pname(q: float) -> str:
    return f"p{q * 100:g}_s".replace(".", "_")


def percentiles(values: pd.Series, qs: Sequence[float] = DEFAULT_PERCENTILES) -> dict[str, float]:
    """``{"p50_s": …, "p90_s": …, "p99_s": …}`` of a latency series (NaN ignored).

    >>> import pandas as pd
    >>> percentiles(pd.Series([1.0, 2.0, 3.0]), qs=(0.5,))
    {'p50_s': 2.0}
    """
    v = values.dropna()
    return {_pname(q): (float(v.quantile(q)) if len(v) else float("nan")) for q in qs}


def latency_summary(
    table: pd.DataFrame,
    by: str | Sequence[str] = "kind",
    column: str = "sent_to_done_s",
    qs: Sequence[float] = DEFAULT_PERCENTILES,
    *,
    ok_only: bool = True,
) -> pd.DataFrame:
    """Count, outcomes and latency statistics of ``column`` per group (default: per kind).

    Columns: ``count`` (commands), ``ok``, ``error``, ``timeout``, ``closed``,
    ``incomplete`` (counts per outcome), ``n`` (latencies used), ``mean_s``, ``min_s``,
    the percentiles, ``max_s``.  ``ok_only`` uses only ``ok`` rows for the latencies.
    Groups with no rows are left out.
    """
    import pandas as pd

    from airlab.analysis.pairing import OUTCOMES

    keys = [by] if isinstance(by, str) else list(by)
    outcomes = pd.crosstab([table[k] for k in keys], table["outcome"].astype(str)).reindex(
        columns=OUTCOMES, fill_value=0
    )
    lat = table[table["outcome"] == "ok"] if ok_only else table
    grouped = lat.groupby(keys, observed=True, sort=True)[column]
    stats = grouped.agg(n="count", mean_s="mean", min_s="min")
    for q in qs:
        stats[_pname(q)] = grouped.quantile(q)
    stats["max_s"] = grouped.max()
    count = table.groupby(keys, observed=True, sort=True).size().rename("count")
    out = pd.concat([count, outcomes, stats], axis=1)
    out = out[out["count"] > 0]
    out[["n", *OUTCOMES]] = out[["n", *OUTCOMES]].fillna(0).astype("int64")
    return out


def connection_attempts(table: pd.DataFrame) -> pd.Series:
    """Attempt number of each row taking part in a connection (``<NA>`` for the others).

    An attempt is the run of connection-kind commands (:data:`CONNECTION_KINDS`) that
    ends with an ``AT+MCONNECT``; commands after the last MCONNECT belong to none.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"kind": ["bearer", "mqtt_open", "mqtt_connect", "publish_qos1",
    ...                            "mqtt_open", "mqtt_connect"]})
    >>> connection_attempts(t).tolist()
    [0, 0, 0, <NA>, 1, 1]
    """
    import numpy as np
    import pandas as pd

    kind = table["kind"].astype(str).to_numpy()
    is_conn = np.isin(kind, CONNECTION_KINDS)
    is_connect = kind == "mqtt_connect"
    # attempt k = commands after the (k-1)-th MCONNECT up to and including the k-th
    before = np.cumsum(is_connect) - is_connect
    total = int(is_connect.sum())
    attempt = np.where(is_conn & (before < total), before, -1)
    return pd.Series(
        pd.arrays.IntegerArray(attempt.astype(np.int64), attempt < 0),
        index=table.index,
        name="attempt",
    )


def step_table(table: pd.DataFrame, column: str = "sent_to_done_s") -> pd.DataFrame:
    """Which step of a connection costs the time: one row per step (command kind).

    For every connection attempt, the module's time per step is the sum of ``column``
    over its commands of that kind; the table gives, per step in connection order,
    ``attempts`` (how many attempts had it), ``mean_s``, the percentiles, ``max_s``
    and ``share`` (the step's part of the total module time of all attempts).
    ``wall_mean_s`` adds the time between attempts' first sent and last done (think
    time of a person typing included).
    """

    t = table.assign(attempt=connection_attempts(table)).dropna(subset=["attempt"])
    t = t[t["kind"].astype(str).isin(CONNECTION_KINDS)]
    per = (
        t.groupby(["attempt", t["kind"].astype(str).rename("step")])[column]
        .sum(min_count=1)
        .rename("seconds")
        .reset_index()
    )
    g = per.groupby("step")["seconds"]
    out = g.agg(attempts="count", mean_s="mean")
    for q in DEFAULT_PERCENTILES:
        out[_pname(q)] = g.quantile(q)
    out["max_s"] = g.max()
    out["share"] = g.sum() / per["seconds"].sum() if per["seconds"].sum() else float("nan")
    order = [k for k in CONNECTION_KINDS if k in out.index]
    out = out.loc[order]
    span = t.groupby("attempt").agg(first=("sent_s", "min"), last=("done_s", "max"))
    out.attrs["wall_mean_s"] = float((span["last"] - span["first"]).mean()) if len(span) else 0.0
    return out


def concat_runs(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Tables of several runs (sessions, profiles, modules) in one, with a ``run`` column.

    >>> import pandas as pd
    >>> concat_runs({"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"x": [2]})}).run.tolist()
    ['a', 'b']
    """
    import pandas as pd

    parts = [t.assign(run=name) for name, t in tables.items()]
    out = pd.concat(parts, ignore_index=True)
    out["run"] = pd.Categorical(out["run"], categories=list(tables))
    return out


def compare_runs(
    tables: Mapping[str, pd.DataFrame],
    by: str = "kind",
    column: str = "sent_to_done_s",
    qs: Sequence[float] = DEFAULT_PERCENTILES,
) -> pd.DataFrame:
    """Latency summaries of several runs side by side: index (``by``, ``run``).

    Also adds ``p50_ratio``: each run's median over the first run's median.
    """
    both = concat_runs(tables)
    out = latency_summary(both, by=[by, "run"], column=column, qs=qs)
    base = out.xs(next(iter(tables)), level="run")["p50_s"]
    out["p50_ratio"] = out["p50_s"] / base.reindex(out.index.get_level_values(0)).to_numpy()
    return out


def export_table(table: pd.DataFrame, path: str | os.PathLike[str]) -> str:
    """Write a table as CSV (``.csv``) or Parquet (``.parquet``/``.pq``); returns the format.

    CSV times are ISO 8601 with ``+00:00``; seconds stay floats.
    """
    from airlab.errors import UsageError

    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    if suffix == "csv":
        table.to_csv(path, index=table.index.name is not None or table.index.nlevels > 1)
        return "csv"
    if suffix in ("parquet", "pq"):
        table.to_parquet(path)
        return "parquet"
    raise UsageError("path", f"expected a .csv or .parquet file name, got {os.fspath(path)!r}")
