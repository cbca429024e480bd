"""Benchmark: importing a large sscom capture into a records DataFrame vs pandas.read_csv.

Run on demand (not a test)::

    .venv/bin/python benchmarks/bench_capture_import.py --mb 100

It generates an sscom log of the tutorial's traffic (queries, SAPBR, HTTPDATA /
HTTPACTION / HTTPREAD with the JSON body, MCONFIG / SSLMIPSTART / MCONNECT, MPUB QoS0
and QoS1 with PUBACK, MSUB, incoming +MSUB) in a temporary directory, then, each side in
its own subprocess (so peak RSS is per side):

* ours: :func:`airlab.at.formats.read_sscom_dataframe` (the same function users call);
* baseline: the same records written as CSV by pandas, read back with ``pandas.read_csv``.

It prints throughput (MB/s of each side's own file, records/s), the ratio ours/pandas
(records/s) and the peak memory of our import (ru_maxrss growth over the process's
state after imports, and as a multiple of the file size).  Targets: ratio ≥ 0.5,
peak ≤ 3× file size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENT = "发→◇"
RECV = "收←◆"

_PK = "k1hipglLdjU"
_DN = "868488076506128"


class _Clock:
    def __init__(self, start: float = 3 * 3600.0) -> None:
        self.t = start

    def step(self, seconds: float) -> str:
        self.t = (self.t + seconds) % 86400.0
        ms = round(self.t * 1000) % 86_400_000
        h, rest = divmod(ms, 3_600_000)
        m, rest = divmod(rest, 60_000)
        s, ms = divmod(rest, 1000)
        return f"[{h:02d}:{m:02d}:{s:02d}.{ms:03d}]"


def _exchange(
    clock: _Clock, cmd: str, answer: list[str], rng: random.Random, urc: str | None = None
) -> list[str]:
    """One command in the tutorial's layout: sent + □, echo + answer, optional URC."""
    out = [f"{clock.step(rng.uniform(2, 9))}{SENT}{cmd}\n□\n"]
    body = "".join(f"\n{line}\n" for line in answer)
    out.append(f"{clock.step(rng.uniform(0.001, 0.006))}{RECV}{cmd}\n{body}\n")
    if urc is not None:
        out.append(f"{clock.step(rng.uniform(0.2, 2.3))}{RECV}\n{urc}\n\n")
    return out


def _session(clock: _Clock, rng: random.Random) -> list[str]:
    token = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    iot_id = "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        for _ in range(26)
    )
    body = f'{{"code":200,"data":{{"iotId":"{iot_id}","iotToken":"{token}"}},"message":"success"}}'
    form = f"productKey={_PK}&sign={token}&clientId={_DN}&deviceName={_DN}"
    topic = f"/{_PK}/{_DN}/user/update"
    out: list[str] = []
    out += _exchange(clock, "AT+CGATT?", ["+CGATT: 1", "OK"], rng)
    out += _exchange(clock, "AT+CSQ", [f"+CSQ: {rng.randint(10, 31)},0", "OK"], rng)
    out += _exchange(clock, 'AT+SAPBR=3,1,"CONTYPE","GPRS"', ["OK"], rng)
    out += _exchange(clock, 'AT+SAPBR=3,1,"APN","CMIOT"', ["OK"], rng)
    out += _exchange(clock, "AT+SAPBR=1,1", ["OK"], rng)
    out += _exchange(clock, "AT+SAPBR=2,1", ['+SAPBR: 1,1,"10.159.1.145"', "OK"], rng)
    out += _exchange(clock, "AT+HTTPINIT", ["OK"], rng)
    out += _exchange(
        clock,
        'AT+HTTPPARA="URL",https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename',
        ["OK"],
        rng,
    )
    out += _exchange(clock, f"AT+HTTPDATA={len(form)},20000", ["DOWNLOAD"], rng)
    out.append(f"{clock.step(rng.uniform(3, 6))}{SENT}{form}\n□\n")
    out.append(f"{clock.step(0.005)}{RECV}\nOK\n\n")
    out += _exchange(clock, "AT+HTTPACTION=1", ["OK"], rng, f"+HTTPACTION: 1,200,{len(body)}")
    out.append(f"{clock.step(rng.uniform(5, 30))}{SENT}AT+HTTPREAD\n□\n")
    out.append(f"{clock.step(0.003)}{RECV}AT+HTTPREAD\n\n+HTTPREAD: {len(body)}\n{body}\nOK\n\n")
    out += _exchange(clock, f'AT+MCONFIG="{_DN}","{iot_id}","{token}"', ["OK"], rng)
    out += _exchange(
        clock,
        f'AT+SSLMIPSTART="{_PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883',
        ["OK"],
        rng,
        "CONNECT OK",
    )
    out += _exchange(clock, "AT+MCONNECT=1,120", ["OK"], rng, "CONNACK OK")
    out += _exchange(clock, f'AT+MSUB="/{_PK}/{_DN}/user/get",0', ["OK"], rng, "SUBACK")
    for _ in range(rng.randint(2, 6)):
        msg = f"HelloWorld{rng.randint(0, 9999)}"
        if rng.random() < 0.5:
            out += _exchange(clock, f'AT+MPUB="{topic}",0,0,"{msg}"', ["OK"], rng)
        else:
            out += _exchange(clock, f'AT+MPUB="{topic}",1,0,"{msg}"', ["OK"], rng, "PUBACK")
        if rng.random() < 0.4:
            payload = f'{{"led":{rng.randint(0, 1)},"temp":{rng.uniform(10, 40):.1f}}}'
            out.append(
                f"{clock.step(rng.uniform(1, 20))}{RECV}\n"
                f'+MSUB: "/{_PK}/{_DN}/user/get",{len(payload)} byte,{payload}\n\n'
            )
    return out


def generate_sscom(path: str | os.PathLike[str], mb: float, seed: int = 1) -> int:
    """Write an sscom log of at least ``mb`` megabytes (10**6 bytes); returns its size."""
    rng = random.Random(seed)
    clock = _Clock()
    target = int(mb * 1_000_000)
    size = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("# generated by benchmarks/bench_capture_import.py\n")
        while size < target:
            text = "".join(_session(clock, rng))
            fh.write(text)
            size += len(text.encode("utf-8"))
    # the last record runs to the end of the file: drop the final separator newline
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        fh.truncate()
    return os.path.getsize(path)


# --------------------------------------------------------------------------- subprocess sides

_CHILD = r"""
import json, resource, sys, time
import pandas as pd
import pyarrow
from airlab.at.formats import read_sscom_dataframe
side, path = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if side == "ours":
    df = read_sscom_dataframe(path, date="2024-07-22")
else:
    df = pd.read_csv(path)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "rows": len(df), "base_kb": base, "peak_kb": peak}))
"""


def _run_side(side: str, path: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, side, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _write_csv(log: Path, csv: Path) -> None:
    code = (
        "import sys; from airlab.at.formats import read_sscom_dataframe as r;"
        "r(sys.argv[1], date='2024-07-22').to_csv(sys.argv[2], index=False)"
    )
    subprocess.run([sys.executable, "-c", code, str(log), str(csv)], check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=100.0, help="size of the generated log (MB)")
    ap.add_argument("--keep", help="directory to keep the generated files in")
    args = ap.parse_args(argv)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="airlab-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    log, csv = tmp / "capture.log", tmp / "capture.csv"
    t0 = time.perf_counter()
    size = generate_sscom(log, args.mb)
    print(f"generated {size / 1e6:.1f} MB sscom log in {time.perf_counter() - t0:.1f} s: {log}")
    _write_csv(log, csv)
    csv_size = csv.stat().st_size
    ours = _run_side("ours", log)
    base = _run_side("pandas", csv)
    assert ours["rows"] == base["rows"], (ours, base)
    rows = ours["rows"]
    for name, res, nbytes in (("ours  ", ours, size), ("pandas", base, csv_size)):
        print(
            f"{name}: {res['seconds']:.2f} s, {nbytes / 1e6 / res['seconds']:.1f} MB/s "
            f"({nbytes / 1e6:.0f} MB file), {rows / res['seconds']:,.0f} records/s, "
            f"peak RSS +{(res['peak_kb'] - res['base_kb']) / 1024:.0f} MB "
            f"(process peak {res['peak_kb'] / 1024:.0f} MB)"
        )
    ratio = base["seconds"] / ours["seconds"]
    growth = (ours["peak_kb"] - ours["base_kb"]) * 1024 / size
    print(f"records: {rows:,}")
    print(f"ratio ours/pandas (records/s): {ratio:.2f}  (target >= 0.5)")
    print(f"our peak memory growth: {growth:.2f} x file size  (target <= 3)")
    if not args.keep:
        log.unlink()
        csv.unlink()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
