"""plot_sequence: the host ↔ module ↔ cloud figure the method lessons draw."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from airlab.analysis import pair_capture, plot_sequence

DATA = Path(__file__).resolve().parents[2] / "data" / "captures"


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_sequence_of_the_http_auth_capture() -> None:
    table = pair_capture(DATA / "seed_http_auth_then_mqtt.log")
    ax = plot_sequence(table, title="tutorial")
    texts = _texts(ax)
    assert ax.get_title() == "tutorial"
    assert {"host", "module", "cloud"} <= set(texts)
    assert "AT+HTTPDATA=112,20000" in texts
    assert any(t.startswith("CONNACK OK") and t.endswith("252 ms") for t in texts)
    assert any(t.startswith("+HTTPACTION") and t.endswith("1.65 s") for t in texts)
    assert "HTTPS POST" in texts and "CONNECT / CONNACK" in texts


def test_sequence_redacts_the_password_and_caps_rows() -> None:
    table = pair_capture(DATA / "seed_direct_mqtt.log")
    short = table.copy()
    short.loc[0, "command"] = 'AT+MCONFIG="c","u","0f655b12adf519b9a7a2b0a990f398b6"'
    texts = _texts(plot_sequence(short, max_rows=6))
    assert any(t.startswith('AT+MCONFIG="c","u"') for t in texts)
    assert "0f655b12" not in " ".join(texts)
    assert sum(t.startswith("AT+") for t in texts) == min(6, len(short))
