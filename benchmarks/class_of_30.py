"""A class of N students, each running the whole lesson 02 notebook in a Jupyter kernel of
their own, at once, against one room emulator (``airlab cloud serve --host 0.0.0.0``):
no kick, and the instructor's view shows every seat at "published".

The test suite runs lesson 02's cells for 30 students as 30 sessions of one process
(``tests/classroom/test_class_of_30.py``); this runs the real thing — N kernels, the
figure cells included — on demand, and reports the wall time, failures, and the view.

Run: ``.venv/bin/python benchmarks/class_of_30.py [--students 30] [--parallel 30]``
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "02_direct_mqtt.ipynb"
AIRLAB = [sys.executable, "-m", "airlab"]


def run_student(seat: str, env: dict[str, str], out: Path) -> tuple[str, float, int, str]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=300", "--output", str(out / f"seat-{seat}.ipynb"),
         str(LESSON)],
        env={**env, "AIRLAB_SEAT": seat}, cwd=LESSON.parent, capture_output=True, text=True,
    )  # fmt: skip
    return seat, time.monotonic() - started, done.returncode, done.stderr[-800:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--parallel", type=int, default=30, help="kernels at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        db, ep = base / "class.db", base / "ep.json"
        serve = subprocess.Popen(
            [*AIRLAB, "cloud", "serve", "--db", str(db), "--endpoints-file", str(ep),
             "--host", "0.0.0.0", "--advertise", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not ep.exists():
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise SystemExit("the emulator did not start")
                time.sleep(0.05)  # another process's file
            subprocess.run([*AIRLAB, "class", "create", "--db", str(db), "--students",
                            str(args.students), "--out", str(base / "handouts")], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            env = dict(os.environ, AIRLAB_CLOUD=str(ep), MPLBACKEND="Agg")
            seats = [f"{n:02d}" for n in range(1, args.students + 1)]
            t0 = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
                results = list(pool.map(lambda s: run_student(s, env, base), seats))
            wall = time.monotonic() - t0
            watch = [*AIRLAB, "class", "watch", "--db", str(db), "--endpoints-file", str(ep),
                     "--once", "--json"]  # fmt: skip
            view = json.loads(
                subprocess.run(watch, check=True, capture_output=True, text=True).stdout
            )
        finally:
            serve.send_signal(signal.SIGINT)
            serve.wait(30)
    failed = [(s, err) for s, _, code, err in results if code != 0]
    times = sorted(t for _, t, _, _ in results)
    counts = view["counts"]
    print(f"{args.students} students, lesson 02 in a kernel each, {args.parallel} at once, "
          f"on {os.cpu_count()} cores")  # fmt: skip
    print(f"  wall time {wall:.1f} s; per student p50 {times[len(times) // 2]:.1f} s, "
          f"max {times[-1]:.1f} s; failed {len(failed)}")  # fmt: skip
    print(f"  instructor's view: logged in {counts['logged in']}, published {counts['published']}"
          f", kicked {counts['kicked']}, refused seats "
          f"{sum(1 for s in view['seats'] if s['refusal'])}")  # fmt: skip
    for seat, err in failed[:3]:
        print(f"  seat {seat}: {err}")
    if failed or counts["published"] != args.students or counts["kicked"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
