"""Audit issue 8: refused data phases, bounded event memory, private transcripts.

Every test talks to the simulator through a real ``airsim://`` pyserial port
(profile ``instant``); no cloud is needed.
"""

from __future__ import annotations

import pytest

import airlab  # noqa: F401  (registers airsim://)
from airlab.at.events import CommandSent, DataSent, FinalResult
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
