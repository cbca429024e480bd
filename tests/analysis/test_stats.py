"""Statistics: per kind, per step, percentiles, comparisons, export."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from airlab.analysis import pair_capture
from airlab.analysis.stats import (
    compare_runs,
    concat_runs,
    connection_attempts,
    export_table,
    latency_summary,
    percentiles,
    step_table,
)
from airlab.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
T01 = (
    ROOT / "data" / "captures" / "luat_docs" / "T01_air780ep_v1007_http_post_mqtt_aliyun_sscom.txt"
)


@pytest.fixture(scope="module")
def t01() -> pd.DataFrame:
    return pair_capture(T01, date="2024-07-22")


def test_percentiles() -> None:
    p = percentiles(pd.Series(range(101), dtype=float))
    assert p == {"p50_s": 50.0, "p90_s": 90.0, "p99_s": 99.0}
    assert pd.isna(percentiles(pd.Series([], dtype=float))["p50_s"])


def test_latency_summary_per_kind(t01: pd.DataFrame) -> None:
    s = latency_summary(t01, column="echo_to_urc_s")
    assert s.loc["publish_qos1", "count"] == 1 and s.loc["publish_qos1", "ok"] == 1
    assert round(s.loc["publish_qos1", "p50_s"] * 1000) == 297
    assert round(s.loc["http_request", "min_s"] * 1000) == 1644
    assert s.loc["query", "n"] == 0  # no URC latency for queries
    assert {"p50_s", "p90_s", "p99_s", "mean_s", "max_s", "error", "timeout"} <= set(s.columns)


def test_summary_counts_errors_but_uses_ok_latencies() -> None:
    t = pd.DataFrame(
        {
            "kind": ["publish_qos1"] * 3,
            "outcome": ["ok", "ok", "timeout"],
            "sent_to_done_s": [0.3, 0.5, float("nan")],
        }
    )
    s = latency_summary(t).loc["publish_qos1"]
    assert (s["count"], s["ok"], s["timeout"], s["n"]) == (3, 2, 1, 2)
    assert s["p50_s"] == pytest.approx(0.4)


def test_connection_attempts_and_steps(t01: pd.DataFrame) -> None:
    att = connection_attempts(t01)
    assert att.dropna().unique().tolist() == [0, 1]
    steps = step_table(t01)
    assert list(steps.index[:2]) == ["bearer", "http_setup"]
    assert steps.index[-1] == "mqtt_connect"
    assert steps.loc["mqtt_open", "attempts"] == 2
    assert steps["share"].sum() == pytest.approx(1.0)
    # the TLS connect dominates the module's part of the direct attempt
    assert steps.loc["mqtt_open", "max_s"] == pytest.approx(2.290, abs=1e-6)


def test_compare_runs(t01: pd.DataFrame) -> None:
    slower = t01.assign(echo_to_urc_s=t01.echo_to_urc_s * 2)
    c = compare_runs({"tutorial": t01, "slow": slower}, column="echo_to_urc_s")
    assert c.loc[("publish_qos1", "slow"), "p50_ratio"] == pytest.approx(2.0)
    assert c.loc[("publish_qos1", "tutorial"), "p50_ratio"] == pytest.approx(1.0)
    both = concat_runs({"a": t01, "b": t01})
    assert both.run.value_counts().to_dict() == {"a": len(t01), "b": len(t01)}


def test_export_csv_and_parquet(t01: pd.DataFrame, tmp_path: Path) -> None:
    assert export_table(t01, tmp_path / "t.csv") == "csv"
    back = pd.read_csv(tmp_path / "t.csv")
    assert len(back) == len(t01) and list(back.columns) == list(t01.columns)
    assert export_table(t01, tmp_path / "t.parquet") == "parquet"
    pq = pd.read_parquet(tmp_path / "t.parquet")
    pd.testing.assert_series_equal(pq["echo_to_urc_s"], t01["echo_to_urc_s"])
    assert export_table(latency_summary(t01), tmp_path / "s.csv") == "csv"
    assert "kind" in pd.read_csv(tmp_path / "s.csv").columns
    with pytest.raises(UsageError):
        export_table(t01, tmp_path / "t.xlsx")


SIMULATED = ROOT / "data" / "simulated"


def test_simulated_dataset_matches_its_tables() -> None:
    from airlab.analysis import pair_records
    from airlab.at import Transcript

    for path in sorted(SIMULATED.glob("*.jsonl")):
        t = Transcript.load(path)
        table = pair_records(t.to_dataframe("records"))
        csv = pd.read_csv(path.with_suffix(".csv"))
        assert len(table) == len(csv)
        assert table.outcome.astype(str).tolist() == csv.outcome.tolist()
    pubs = pd.read_csv(SIMULATED / "publishes_tutorial.csv")
    q1 = pubs[pubs.kind == "publish_qos1"]
    assert len(q1) >= 100
    med = latency_summary(q1, column="echo_to_urc_s").loc["publish_qos1", "p50_s"]
    assert 0.25 < med < 0.35  # the tutorial profile's PUBACK delay
