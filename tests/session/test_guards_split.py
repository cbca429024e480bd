"""``split_raw_args`` splits a piece at a time; it must agree with the character walk it
replaced (commas outside quotes split, quotes kept, arguments stripped)."""

from __future__ import annotations

import random

from airlab.session.guards import split_raw_args


def _by_character(line: str) -> list[str]:
    eq = line.find("=")
    if eq < 0:
        return []
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in line[eq + 1 :]:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def test_same_split_as_a_character_walk() -> None:
    rng = random.Random(12)
    for _ in range(20_000):
        line = "".join(rng.choice('ab ,"=\t,"') for _ in range(rng.randint(0, 16)))
        assert split_raw_args(line) == _by_character(line), line


def test_publish_lines() -> None:
    line = 'AT+MPUB="/pk/dn/user/update",1,0,"{\\22a\\22:1, \\22b\\22:\\22x,y\\22}"'
    assert split_raw_args(line) == _by_character(line)
    assert split_raw_args(line)[:3] == ['"/pk/dn/user/update"', "1", "0"]
    assert split_raw_args("AT+CGATT?") == []


def test_a_limited_split_keeps_the_leading_arguments_whole() -> None:
    from airlab.session.guards import _split_args, mpub_qos

    rng = random.Random(13)
    for _ in range(5_000):
        line = "".join(rng.choice('ab ,"=\t,"') for _ in range(rng.randint(0, 16)))
        full = split_raw_args(line)
        for limit in (1, 2, 3):
            assert _split_args(line, limit)[:limit] == full[:limit], (line, limit)
    assert mpub_qos('AT+MPUB="a,b",1,0,"x,y"') == 1
    assert mpub_qos("AT+MPUBEX=t,2,0,5") == 2
    assert mpub_qos('AT+MPUB="t"') is None
