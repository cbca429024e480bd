"""The vectorised pairing (lexer and matcher) gives exactly the event path's table on
generated logs: the benchmark's tutorial mix, and a random mix with errors, overlapping
waits, late URCs, CLOSED, timeouts and records cut anywhere."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pandas as pd
import pytest

from airlab.analysis import pair_capture, pair_commands
from airlab.analysis.fast import lex_records, pair_file
from airlab.analysis.pairing import match_and_assemble
from airlab.at import Transcript
from airlab.at.formats import read_sscom_dataframe

ROOT = Path(__file__).resolve().parents[2]


def _exchange(rng: random.Random, k: int) -> list[tuple[str, bytes, float]]:
    """One step of a session: (direction, bytes, delay before it) chunks."""
    pick = rng.random()
    fast = lambda: rng.uniform(0.001, 0.01)  # noqa: E731
    late = lambda: rng.choice([0.2, 0.5, 2.0, 35.0, 80.0, 130.0])  # noqa: E731

    def cmd(line: bytes, answer: bytes, urc: bytes | None = None) -> list:
        out = [("sent", line + b"\r\n", rng.uniform(0.5, 5.0))]
        out.append(("received", line + b"\r\n" + answer, fast()))
        if urc is not None:
            out.append(("received", urc, late()))
        return out

    final = rng.choice(
        [b"\r\nOK\r\n"] * 6
        + [b"\r\nERROR\r\n", b"\r\n+CME ERROR: 767\r\n", b"\r\n+CME ERROR: SIM busy\r\n", b""]
    )
    if pick < 0.12:
        return cmd(b"AT+CSQ", b"\r\n+CSQ: %d,0\r\n" % rng.randint(5, 31) + final)
    if pick < 0.30:  # a burst of publishes, acks late or interleaved
        out: list = []
        for q in range(rng.randint(1, 3)):
            qos = rng.choice([0, 1, 1, 2])
            line = b'AT+MPUB="/a/b/user/up",%d,0,"m%d"' % (qos, k * 10 + q)
            out += cmd(line, b"\r\nOK\r\n")
            if qos == 2 and rng.random() < 0.8:
                out.append(("received", b"\r\nPUBREC\r\n", fast()))
                out.append(("received", b"\r\nPUBCOMP\r\n", fast()))
        for _ in range(rng.randint(0, 3)):
            out.append(("received", b"\r\nPUBACK\r\n", rng.choice([0.05, 0.3, 31.0])))
        return out
    if pick < 0.40:
        urc = rng.choice([b"\r\nCONNACK OK\r\n"] * 3 + [b"\r\nERROR\r\n", b"\r\nCLOSED\r\n", None])
        return cmd(b"AT+MCONNECT=1,120", b"\r\nOK\r\n", urc)
    if pick < 0.48:
        urc = rng.choice(
            [
                b"\r\nCONNECT OK\r\n",
                b"\r\nALREADY CONNECT\r\n",
                b"\r\nCONNECT FAIL\r\n",
                b"\r\nSTATE: IP STATUS\r\n\r\nCONNECT FAIL\r\n",
                b"\r\nCLOSED\r\n",
                None,
            ]
        )
        return cmd(b'AT+SSLMIPSTART="a.iot.example.com",1883', final, urc)
    if pick < 0.56:
        status = rng.choice([200, 200, 403, 603])
        urc = b"\r\n+HTTPACTION: 1,%d,%d\r\n" % (status, rng.randint(0, 300))
        if rng.random() < 0.2:
            return cmd(b"AT+HTTPACTION=1", urc + b"\r\nOK\r\n")
        return cmd(b"AT+HTTPACTION=1", final, urc if rng.random() < 0.9 else None)
    if pick < 0.62:
        body = b'{"code":200,"data":{"a":"OK\\r\\nPUBACK"},"n":%d}' % k
        if rng.random() < 0.5:
            body = body.replace(b"\\r\\n", b"\r\n")
        return cmd(b"AT+HTTPREAD", b"\r\n+HTTPREAD: %d\r\n" % len(body) + body + b"\r\nOK\r\n")
    if pick < 0.68:
        data = b"productKey=pk&deviceName=dn&sign=%032x" % rng.getrandbits(128)
        out = cmd(b"AT+HTTPDATA=%d,20000" % len(data), b"\r\nDOWNLOAD\r\n")
        return [*out, ("sent", data, fast()), ("received", b"\r\nOK\r\n", fast())]
    if pick < 0.74:
        urc = rng.choice([b"\r\nSUBACK\r\n", b"\r\nSUBACK\r\n", b"\r\nCLOSED\r\n", None])
        return cmd(b'AT+MSUB="/a/b/user/get",1', b"\r\nOK\r\n", urc)
    if pick < 0.80:  # an incoming message or other URCs, also right after an echo
        payload = rng.choice([b"hello", b"OK", b"a,b\r\nPUBACK", b'{"x":1}'])
        msub = b'\r\n+MSUB: "/a/b/user/get",%d byte,%s\r\n' % (len(payload), payload)
        return [("received", msub, fast()), ("received", b"\r\n+CGEV: ME PDN ACT 1\r\n", fast())]
    if pick < 0.84:
        return cmd(b"AT+RESET", b"\r\nOK\r\n", rng.choice([b"\r\nRDY\r\n", None]))
    if pick < 0.88:  # a final result when nothing is pending
        return [("received", rng.choice([b"\r\nERROR\r\n", b"\r\n+CME ERROR: 3\r\n"]), fast())]
    if pick < 0.92:
        return cmd(b"AT+MDISCONNECT", final)
    return cmd(b"AT+CGATT?", b"\r\n+CGATT: 1\r\n" + final)


def mixed_transcript(seed: int, steps: int) -> Transcript:
    """A random session; received bytes are re-cut into records at random places."""
    rng = random.Random(seed)
    t = Transcript()
    mono = 0.0
    pending = b""
    for k in range(steps):
        for direction, data, delay in _exchange(rng, k):
            mono += delay
            if direction == "sent":
                if pending:
                    t.add("received", pending, 1.7e9 + mono - 1e-4, mono - 1e-4)
                    pending = b""
                t.add("sent", data, 1.7e9 + mono, mono)
                continue
            pending += data
            while pending and rng.random() < 0.7:
                cut = rng.randint(1, len(pending))
                t.add("received", pending[:cut], 1.7e9 + mono, mono)
                pending = pending[cut:]
    if pending:
        t.add("received", pending, 1.7e9 + mono, mono)
    return t


@pytest.mark.parametrize("seed", range(6))
def test_fast_equals_events_on_a_random_mix(seed: int) -> None:
    t = mixed_transcript(seed, 400)
    slow = pair_commands(t)
    fast = match_and_assemble(lex_records(t.to_dataframe("records")))
    pd.testing.assert_frame_equal(fast, slow)
    assert set(slow.outcome.astype(str)) >= {"ok", "error", "timeout"}


def test_fast_equals_events_on_the_benchmark_mix(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_capture_import import generate_sscom
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    log = tmp_path / "mix.log"
    generate_sscom(log, 2.0, seed=7)
    slow = pair_capture(log, date="2024-07-22", fast=False)
    df = read_sscom_dataframe(log, date="2024-07-22")
    pd.testing.assert_frame_equal(match_and_assemble(lex_records(df)), slow)
    pd.testing.assert_frame_equal(pair_file(log, date="2024-07-22"), slow)
    assert len(slow) > 10_000
