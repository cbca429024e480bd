"""Plots: one call each, labelled axes with units, no exceptions (Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from airlab.analysis import pair_capture
from airlab.analysis.plots import (
    plot_compare,
    plot_ecdf,
    plot_latency_hist,
    plot_latency_over_time,
    plot_timeline,
)

ROOT = Path(__file__).resolve().parents[2]
T01 = (
    ROOT / "data" / "captures" / "luat_docs" / "T01_air780ep_v1007_http_post_mqtt_aliyun_sscom.txt"
)


@pytest.fixture(scope="module")
def t01() -> pd.DataFrame:
    return pair_capture(T01, date="2024-07-22")


@pytest.fixture(autouse=True)
def _close() -> None:
    yield
    plt.close("all")


def test_timeline(t01: pd.DataFrame) -> None:
    ax = plot_timeline(t01, attempt=0)
    assert ax.get_xlabel() == "time since the first command (s)"
    assert ax.get_ylabel() == "command"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert any("MCONNECT" in s and "(252 ms)" in s for s in labels)
    ax2 = plot_timeline(t01, gaps=False)
    assert "(s)" in ax2.get_xlabel()


def test_hist_and_ecdf(t01: pd.DataFrame) -> None:
    ax = plot_latency_hist(t01)
    assert ax.get_xlabel() == "echo_to_urc latency (ms)"
    assert ax.get_ylabel() == "commands (count)"
    ax = plot_ecdf(t01, kind="mqtt_connect")
    assert "(ms)" in ax.get_xlabel() and "ECDF" in ax.get_ylabel()
    assert "n=2" in ax.get_title()


def test_over_time_and_compare(t01: pd.DataFrame) -> None:
    ax = plot_latency_over_time(t01, kind=None, column="sent_to_done_s")
    assert ax.get_xlabel() == "time since the first command (s)"
    assert ax.get_ylabel() == "sent_to_done latency (ms)"
    _fig, ax0 = plt.subplots()
    ax = plot_compare({"run 1": t01, "run 2": t01}, kind="mqtt_open", ax=ax0)
    assert ax is ax0 and "(ms)" in ax.get_xlabel()
    assert len(ax.get_legend().get_texts()) == 2


def test_empty_table_does_not_raise(t01: pd.DataFrame) -> None:
    empty = t01.iloc[:0]
    plot_latency_hist(empty)
    plot_ecdf(empty)
    plot_timeline(empty)
