"""The vectorised helpers against their plain forms (classification on distinct lines)."""

from __future__ import annotations

import random

import numpy as np

from airlab.analysis.kinds import classify_arrays, classify_commands

_LINES = [
    'AT+MPUB="t",1,0,"x"',
    'AT+MPUB="a,b",2,0,"y"',
    "at+mpubex=t,0,0,5",
    "AT+CGATT?",
    "AT+SAPBR=1,1",
    "ATE0",
    " at ",
    "hello",
    "",
    "AT+HTTPACTION=0",
    "AT+CSQ",
    "AT+MPUB=?",
]


def test_classify_arrays_on_repeats_equals_line_by_line() -> None:
    rng = random.Random(3)
    lines = [rng.choice(_LINES) for _ in range(500)]
    name, kind, qos = classify_arrays(lines)
    assert len(name) == len(kind) == len(qos) == 500
    one = [classify_arrays([ln]) for ln in lines]
    assert name.to_pylist() == [n.to_pylist()[0] for n, _, _ in one]
    assert kind.tolist() == [k.tolist()[0] for _, k, _ in one]
    np.testing.assert_array_equal(qos, np.concatenate([q for _, _, q in one]))
    assert classify_commands(lines)[1][:3] == [classify_commands([x])[1][0] for x in lines[:3]]
