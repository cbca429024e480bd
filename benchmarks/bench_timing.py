"""Benchmark: pairing a 1-million-line capture into its table vs pandas reading that table.

Run on demand (not a test)::

    .venv/bin/python benchmarks/bench_timing.py --lines 1000000

It generates an sscom log of the tutorial's traffic mix (the generator of
``bench_capture_import.py``) with at least ``--lines`` lines, then in one process:

* ours: :func:`airlab.analysis.fast.pair_file`'s two steps, timed apart (best of
  ``--repeat``, and the first call of the process, which a user pays once): read the log
  (``read_sscom_dataframe``), then pair it (``lex_records`` + ``match_and_assemble``: one
  row per command);
* the issue's target, "pandas reads the same rows from CSV", ratio pandas/ours >= 0.25:
  the pairing table itself (one row per command) read back with ``pandas.read_csv``;
* the other reading of "the same rows", for completeness: the capture's own rows - one
  CSV row per line of the log, with its record's time and direction.

Each baseline is compared with pairing from the records frame and with file to table.
It also checks on a slice of the log that the vectorised path gives the same table as
the event path.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_capture_import import generate_sscom


def _generate(path: Path, lines: int) -> int:
    """Write an sscom log of at least ``lines`` lines; returns the line count."""
    mb = lines / 42_000  # the tutorial mix has about 42k lines per MB
    while True:
        generate_sscom(path, mb)
        with open(path, "rb") as fh:
            n = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) + 1
        if n >= lines:
            return n
        mb *= lines / n * 1.01


def _check_slice(log: Path, tmp: Path, n_lines: int = 20_000) -> bool:
    import pandas as pd

    from airlab.analysis.fast import lex_records
    from airlab.analysis.pairing import match_and_assemble, pair_capture

    part = tmp / "slice.log"
    with open(log, encoding="utf-8") as src, open(part, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= n_lines and line.startswith("["):
                break
            dst.write(line)
    from airlab.at.formats import read_sscom_dataframe

    fast = match_and_assemble(lex_records(read_sscom_dataframe(part, date="2024-07-22")))
    slow = pair_capture(part, date="2024-07-22", fast=False)
    pd.testing.assert_frame_equal(fast, slow)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines in the generated log")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs for each side")
    args = ap.parse_args(argv)

    import pandas as pd

    from airlab.analysis.fast import lex_records
    from airlab.analysis.pairing import match_and_assemble
    from airlab.at.formats import read_sscom_dataframe

    with tempfile.TemporaryDirectory(prefix="airlab-bench-timing-") as d:
        tmp = Path(d)
        log, csv = tmp / "capture.log", tmp / "table.csv"
        t0 = time.perf_counter()
        n_lines = _generate(log, args.lines)
        size = log.stat().st_size
        print(
            f"generated {n_lines:,} lines ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s"
        )
        print("same table as the event path on a 20k-line slice:", _check_slice(log, tmp))

        best_read = best_lex = best_match = float("inf")
        first: tuple[float, float, float] | None = None
        table = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            df = read_sscom_dataframe(log, date="2024-07-22")
            t1 = time.perf_counter()
            lx = lex_records(df)
            t2 = time.perf_counter()
            table = match_and_assemble(lx)
            t3 = time.perf_counter()
            first = first or (t1 - t0, t2 - t1, t3 - t2)
            best_read = min(best_read, t1 - t0)
            best_lex = min(best_lex, t2 - t1)
            best_match = min(best_match, t3 - t2)
            del df, lx
        assert table is not None and first is not None
        table.to_csv(csv, index=False)
        best_csv = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            back = pd.read_csv(csv)
            best_csv = min(best_csv, time.perf_counter() - t0)
        assert len(back) == len(table)
        lines_csv = tmp / "lines.csv"
        records = read_sscom_dataframe(log, date="2024-07-22")
        lines = records.assign(line=records.text.str.removesuffix("\r\n").str.split("\r\n"))
        lines = lines[["time", "direction", "line"]].explode("line", ignore_index=True)
        lines.to_csv(lines_csv, index=False)
        n_rows = len(lines)
        del records, lines
        best_lines = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            back = pd.read_csv(lines_csv)
            best_lines = min(best_lines, time.perf_counter() - t0)
        assert len(back) == n_rows
        del back
        pair = best_lex + best_match
        total = best_read + pair
        rows = len(table)
        ok = "met" if best_csv / pair >= 0.25 else "NOT met"
        print(f"commands (rows): {rows:,}; outcomes: {table.outcome.value_counts().to_dict()}")
        print(
            f"ours (best of {args.repeat}): read {best_read:.3f} s + lex {best_lex:.3f} s + "
            f"match/table {best_match:.3f} s = {total:.3f} s ({n_lines / total:,.0f} lines/s)"
        )
        print(
            f"ours (first call): read {first[0]:.3f} s + lex {first[1]:.3f} s + "
            f"match/table {first[2]:.3f} s = {sum(first):.3f} s"
        )
        print(
            f"ISSUE TARGET - pandas.read_csv of the same {rows:,} rows (the pairing table): "
            f"{best_csv:.3f} s"
        )
        print(
            f"  ratio pandas/ours, pairing (lex + match): {best_csv / pair:.2f}"
            f"  (target >= 0.25: {ok})"
        )
        print(f"  ratio pandas/ours, file to table (read + lex + match): {best_csv / total:.2f}")
        print(
            f"other reading - pandas.read_csv of the capture's own {n_rows:,} rows "
            f"(one per line of the log, with time and direction): {best_lines:.3f} s"
        )
        print(f"  ratio pandas/ours, pairing (lex + match): {best_lines / pair:.2f}")
        print(f"  ratio pandas/ours, file to table (read + lex + match): {best_lines / total:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
