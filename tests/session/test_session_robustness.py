"""Audit issue 8: refused data phases, bounded event memory, private transcripts.

Every test talks to the simulator through a real ``airsim://`` pyserial port
(profile ``instant``); no cloud is needed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import airlab  # noqa: F401  (registers airsim://)
from airlab.at import Transcript
from airlab.at.events import CommandSent, DataSent, Event, FinalResult
from airlab.errors import UsageError
from airlab.session import CommandError, ModemSession

SIM = "airsim://robust?profile=instant"

# (line, data): the simulator refuses each one instead of printing its prompt
REFUSED = [
    ("AT+HTTPDATA=5,1000", b"abcde"),  # DOWNLOAD phase, no AT+HTTPINIT: ERROR
    ("AT+HTTPDATA=3400,1000", b"x" * 3400),  # DOWNLOAD phase, size out of range: ERROR
    ('AT+MPUBEX="t",0,0,50', b"y" * 50),  # '>' phase, MQTT down: +CME ERROR: 767
    ("AT+CIPSEND=50", b"z" * 50),  # '>' phase, no TCP link: ERROR
]


@pytest.mark.parametrize(
    ("line", "data"), REFUSED, ids=lambda v: v.split("=")[0] if isinstance(v, str) else ""
)
@pytest.mark.parametrize("echo", ["ATE1", "ATE0"])
def test_refused_data_command_with_cr_cr_lf_leaves_the_next_command_alone(
    line: str, data: bytes, echo: str
) -> None:
    with ModemSession(SIM, line_ending="\r\r\n", default_timeout=3.0) as s:
        s.command(echo)
        with pytest.raises(CommandError) as info:
            s.send_data(line, data)
        assert info.value.response is not None and not info.value.response.ok
        r = s.command("AT", timeout=2.0)  # timed out before the fix (ATE0)
        assert r.ok and isinstance(r.events[0], CommandSent) and r.events[0].line == "AT"
        assert r.echo == ("AT" if echo == "ATE1" else None)
        r = s.command("AT+CSQ", timeout=2.0)
        assert r.args("+CSQ")
        events = s.events
    assert not [e for e in events if isinstance(e, DataSent)]  # nothing was sent as data
    sent = [e.line for e in events if isinstance(e, CommandSent)]
    assert sent == [echo, line, "AT", "AT+CSQ"]
    assert sum(isinstance(e, FinalResult) for e in events) == 4


def test_short_data_phase_ended_by_the_module_timer_frees_the_next_command() -> None:
    # fewer bytes than announced: the module answers OK when its 1000 ms timer expires
    # and reads commands again; so must the host parser
    with ModemSession(SIM, default_timeout=3.0) as s:
        s.command("ATE0")
        s.command("AT+HTTPINIT")
        r = s.send_data("AT+HTTPDATA=10,1000", b"abc", allow_length_mismatch=True)
        assert r.ok and [e.raw for e in r.events if isinstance(e, DataSent)] == [b"abc"]
        r = s.command("AT", timeout=2.0)
        assert r.ok and isinstance(r.events[0], CommandSent)


# ---------------------------------------------------------------- bounded event memory


def test_event_window_is_bounded_and_the_transcript_file_keeps_everything(
    tmp_path: Path,
) -> None:
    path = tmp_path / "long.jsonl"
    n = 1000
    with ModemSession(SIM, transcript=path, max_events=100) as s:
        for _ in range(n):
            assert s.command("AT").ok
            assert len(s.events) <= 100 and len(s.transcript) <= 100
        total = s.mark()
        live = s.events
        records = list(s.transcript)
        assert total == 3 * n  # command, echo, OK
        assert s.first_index == total - 100 and len(live) == 100
        assert s.events_since(0) == live  # older ones left the window
        assert s.events_since(total - 3) == live[-3:]
        # waits and responses use absolute indices, the window moves under them
        r = s.command("AT+CSQ")
        assert isinstance(r.events[0], CommandSent) and r.args("+CSQ")
        assert s.wait_for_event(lambda e: True, 1.0, since=0) is s.events[0]
    loaded = Transcript.load(path)
    assert len(loaded.data_records()) == 2 * n + 2  # every chunk both ways
    assert [(r.data, r.mono) for r in loaded.data_records()[-102:-2]] == [
        (r.data, r.mono) for r in records
    ]
    everything = loaded.events()
    assert len(everything) == total + 4
    assert _key(everything[total - 100 : total]) == _key(live)


def _key(events: list[Event]) -> list[tuple[str, bytes, float]]:
    return [(e.kind, e.raw, e.mono) for e in events]


def test_in_memory_transcripts_are_not_trimmed() -> None:
    # without a file the in-memory transcript is the only copy: kept whole
    t = Transcript()
    with ModemSession(SIM, transcript=t, max_events=100) as s:
        for _ in range(60):
            s.command("AT")
        assert len(s.events) == 100 and s.mark() == 180
    assert len(t) == 120 and len(t.events()) == 180


def test_max_events_none_keeps_every_event() -> None:
    with ModemSession(SIM, max_events=None) as s:
        for _ in range(50):
            s.command("AT")
        assert len(s.events) == s.mark() == 150 and s.first_index == 0


@pytest.mark.parametrize("bad", [0, 99, True, 1.5, "100"])
def test_max_events_is_checked(bad: object) -> None:
    with pytest.raises(UsageError, match="max_events"):
        ModemSession(SIM, max_events=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- private transcripts


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_session_transcript_file_is_private(tmp_path: Path, existing: bool) -> None:
    path = tmp_path / "session.jsonl"
    if existing:
        path.touch()
        path.chmod(0o644)
    old = os.umask(0o022)
    try:
        with ModemSession(SIM, transcript=path) as s:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            s.command('AT+MCONFIG="c","u","not-for-others"')
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"not-for-others" in Transcript.load(path).sent()
