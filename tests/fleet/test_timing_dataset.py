"""``scripts/make_timing_dataset.py --clock simulated`` writes the same commands, results
and URCs as the real-time run of the same seed, as fast as the work goes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "make_timing_dataset.py"


def generate(out: Path, clock: str) -> float:
    began = time.monotonic()
    subprocess.run(
        [sys.executable, str(SCRIPT), "--seed", "3", "--connections", "2", "--publishes", "8",
         "--profiles", "tutorial", "--clock", clock, "--out", str(out)],
        check=True, capture_output=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    return time.monotonic() - began


def test_simulated_and_real_time_datasets_agree(tmp_path: Path) -> None:
    real_s = generate(tmp_path / "real", "real")
    simulated_s = generate(tmp_path / "simulated", "simulated")
    cols = ["name", "qos", "final", "urc", "outcome"]
    for name in ("connections_tutorial", "publishes_tutorial"):
        real = pd.read_csv(tmp_path / "real" / f"{name}.csv")
        simulated = pd.read_csv(tmp_path / "simulated" / f"{name}.csv")
        assert simulated[cols].astype(str).values.tolist() == real[cols].astype(str).values.tolist()
        # the profile's delays are there, on simulated time too (PUBACK 0.28..0.32 s)
        pub = simulated[simulated.kind == "publish_qos1"].sent_to_urc_s
        assert pub.empty or pub.between(0.28, 0.33).all()
    assert simulated_s < real_s
