"""What a fleet run measured: the pairing table of every modem's commands, the emulator's
logs of the run, and a summary.

The table is :func:`airlab.analysis.pair_commands` of each modem's parsed events (the
table the timing lessons read), with ``modem`` and ``method`` (how it logged in) columns
first; ``AT+MCONFIG``'s password is masked in it (``***``, same length), as it may be
saved and shared; data phases and HTTP bodies (forms, tokens, secrets) are not in it.
The summary's latencies come from it: PUBACK = ``AT+MPUB`` (QoS 1) sent → ``PUBACK``,
CONNACK = ``AT+MCONNECT`` sent → ``CONNACK OK``, in milliseconds; throttled, refused and
kicked counts come from the emulator's logs of the run (what the platform's log service
would show).

Example:
    >>> percentiles_ms([0.001, 0.002, 0.003, 0.004])["p50"]
    2.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from airlab.analysis import pair_commands
from airlab.at.redact import redact_bytes
from airlab.fleet.scenario import Scenario

__all__ = ["SUMMARY_KEYS", "FleetResult", "build_result", "percentiles_ms"]


#: the summary's keys, in the order ``airlab fleet run --json`` prints them
SUMMARY_KEYS = (
    "modems",
    "rate",
    "duration_s",
    "qos",
    "profile",
    "clock",
    "methods",
    "planned",
    "published",
    "acked",
    "failed",
    "skipped",
    "puback_p50_ms",
    "puback_p90_ms",
    "puback_p99_ms",
    "connack_p50_ms",
    "connack_p90_ms",
    "connack_p99_ms",
    "logins",
    "login_failures",
    "throttled",
    "refused",
    "kicks",
    "link_down",
    "logged_uplinks",
    "wall_s",
)


@dataclass
class FleetResult:
    """``table``: one row per command per modem; ``connections`` / ``messages``: the
    emulator's connection and message logs of the run; ``summary``: see
    :data:`SUMMARY_KEYS`."""

    scenario: Scenario
    table: pd.DataFrame
    connections: pd.DataFrame
    messages: pd.DataFrame
    summary: dict[str, Any]

    def puback_ms(self) -> pd.Series:
        """PUBACK latency (ms) of every acknowledged QoS 1 publish, by send time."""
        rows = self.table[_is_puback(self.table)]
        return pd.Series(rows["sent_to_urc_s"].to_numpy() * 1000, index=rows["time"])

    def throttled_per_second(self) -> pd.Series:
        """Uplinks the emulator dropped by its rate limit, per second of the run."""
        frame = self.messages
        if frame.empty:
            return pd.Series(dtype="int64")
        dropped = frame[_throttled(frame)]
        if dropped.empty:
            return pd.Series(dtype="int64")
        times = pd.to_datetime(dropped["time"], unit="s") if _numeric(dropped["time"]) else (
            pd.to_datetime(dropped["time"])
        )  # fmt: skip
        return times.dt.floor("s").value_counts().sort_index()


def percentiles_ms(seconds: Any) -> dict[str, float | None]:
    """p50/p90/p99 of latencies given in seconds, in ms rounded to 0.1 (None when empty)."""
    values = pd.Series(seconds, dtype="float64").dropna()
    if values.empty:
        return {"p50": None, "p90": None, "p99": None}
    q = values.quantile([0.5, 0.9, 0.99])
    return {k: round(float(v) * 1000, 1) for k, v in zip(("p50", "p90", "p99"), q, strict=True)}


def build_result(
    scenario: Scenario,
    modems: list[Any],
    cloud: Any,
    product_key: str,
    counters: Any,
    began: float,
    ended: float,
    method_of: dict[str, str] | None = None,
) -> FleetResult:
    """Assemble the result of a finished run (called by :func:`~airlab.fleet.run_fleet`);
    ``method_of``: each modem's login method, by name (default ``direct``)."""
    method_of = method_of or {}
    frames = []
    for m in modems:
        table = pair_commands(m.events)
        if not table.empty:
            table.insert(0, "modem", m.name)
            table.insert(1, "method", method_of.get(m.name, "direct"))
            frames.append(table)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(table):  # the table is for sharing: AT+MCONFIG's password (a signature) masked
        table["command"] = [
            redact_bytes(c.encode()).decode() if name == "+MCONFIG" else c
            for c, name in zip(table["command"], table["name"], strict=True)
        ]
    connections = pd.DataFrame(cloud.product_log_rows("connection", product_key))
    messages = pd.DataFrame(cloud.product_log_rows("message", product_key))
    if "payload" in messages:
        messages = messages.drop(columns=["payload"])  # the table says what was sent
    puback = percentiles_ms(table[_is_puback(table)]["sent_to_urc_s"]) if len(table) else {}
    connack = percentiles_ms(table[_is_connack(table)]["sent_to_urc_s"]) if len(table) else {}
    summary = {
        "modems": scenario.modems,
        "rate": scenario.rate,
        "duration_s": scenario.duration,
        "qos": scenario.qos,
        "profile": scenario.profile,
        "clock": scenario.clock,
        "methods": scenario.methods,
        "planned": counters.planned,
        "published": counters.published,
        "acked": counters.acked,
        "failed": counters.failed,
        "skipped": counters.skipped,
        "puback_p50_ms": puback.get("p50"),
        "puback_p90_ms": puback.get("p90"),
        "puback_p99_ms": puback.get("p99"),
        "connack_p50_ms": connack.get("p50"),
        "connack_p90_ms": connack.get("p90"),
        "connack_p99_ms": connack.get("p99"),
        "logins": counters.logins,
        "login_failures": counters.login_failures,
        "throttled": int(_throttled(messages).sum()) if len(messages) else 0,
        "refused": int((connections["event"] == "refused").sum()) if len(connections) else 0,
        "kicks": int((connections["event"] == "kicked").sum()) if len(connections) else 0,
        "link_down": counters.link_down,
        "logged_uplinks": int(
            ((messages["direction"] == "up") & messages["accepted"].astype(bool)).sum()
        )
        if len(messages)
        else 0,
        "wall_s": round(ended - began, 3),
    }
    return FleetResult(scenario, table, connections, messages, summary)


def _is_puback(table: pd.DataFrame) -> pd.Series:
    if table.empty:
        return pd.Series(dtype=bool)
    publish = table["name"].isin(("+MPUB", "+MPUBEX"))
    return publish & (table["qos"] == 1) & (table["urc"] == "PUBACK")


def _is_connack(table: pd.DataFrame) -> pd.Series:
    if table.empty:
        return pd.Series(dtype=bool)
    return (table["name"] == "+MCONNECT") & (table["urc"] == "CONNACK OK")


def _throttled(messages: pd.DataFrame) -> pd.Series:
    reason = messages["reason"].fillna("")
    return (~messages["accepted"].astype(bool)) & reason.str.startswith("Rate limit")


def _numeric(series: pd.Series) -> bool:
    return (
        bool(len(series))
        and isinstance(series.iloc[0], (int, float))
        and not math.isnan(float(series.iloc[0]))
    )
