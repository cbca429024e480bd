"""Raw mode (``guards=False``, :meth:`ModemSession.send_text`): the tutorial's pitfalls
reach the module as typed, and the module's own failure bytes come back; with the
guards on, the same mistakes are stopped before anything is sent.

The cloud emulator's CONNECT window is shortened to 1 s here (5 s on the platform and
in lessons) so that waiting it out keeps the suite fast; everything else is real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import airlab  # noqa: F401  (registers airsim://)
from airlab.aliyun import direct_mqtt_credentials
from airlab.at.commands import mconfig, mconnect, mipstart
from airlab.at.events import FinalResult, Prompt, Urc
from airlab.errors import UsageError
from airlab.session import ModemSession, recipes

PK, DN, DS = "k1hipglLdjU", "868488076506128", "fef32adf6dad46c2c7cbf335d3a7b021"
TOPIC = f"/{PK}/{DN}/user/update"


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[ModemSession]:
    from airlab.cloud import CloudEmulator

    with CloudEmulator(fixture="tutorial", connect_timeout=1.0) as cloud:
        ep = cloud.write_endpoints(tmp_path / "ep.json")
        with ModemSession(f"airsim://raw?profile=instant&cloud={ep}", guards=False) as s:
            recipes.attach(s)
            yield s


def final_after(s: ModemSession, mark: int, timeout: float = 5.0) -> FinalResult:
    ev = s.wait_for_event(lambda e: isinstance(e, FinalResult), timeout, since=mark)
    assert isinstance(ev, FinalResult)
    return ev


def login(s: ModemSession) -> None:
    recipes.direct_mqtt(s, product_key=PK, device_name=DN, device_secret=DS)


def test_httpdata_longer_body_keeps_the_announced_bytes(raw: ModemSession) -> None:
    assert final_after(raw, raw.send_text("AT+HTTPINIT")).ok
    mark = raw.send_text("AT+HTTPDATA=10,1000")
    assert raw.wait_for_event(lambda e: isinstance(e, Prompt), 5, since=mark).text == "DOWNLOAD"
    mark = raw.send_text("hello world!")  # 12 bytes and CR LF, as sscom sends them
    assert final_after(raw, mark).ok
    kinds = [(e.kind, e.text) for e in raw.events_since(mark)]
    assert ("data", "hello worl") in kinds  # the module keeps the announced 10 bytes
    # the surplus "d!" went to the command interpreter: a line that is not a command
    assert any(text == "d!" for _, text in kinds[1:])
    guarded = raw
    guarded.guards = True
    before = guarded.mark()
    with pytest.raises(UsageError, match="bytes"):
        guarded.send_data("AT+HTTPDATA=10,1000", "hello world!")
    assert guarded.mark() == before  # nothing was sent


def test_second_qos1_before_puback_gets_error(raw: ModemSession) -> None:
    login(raw)
    line = f'AT+MPUB="{TOPIC}",1,0,"one"'
    # typed back to back (one write, as a pasted block): the second is there before the
    # first one's PUBACK can be
    first = raw.send_text(line + "\r\n" + f'AT+MPUB="{TOPIC}",1,0,"two"')
    raw.wait_for_urc("PUBACK", 5, since=first)
    finals = [e.text for e in raw.events_since(first) if isinstance(e, FinalResult)]
    assert finals == ["OK", "ERROR"]
    raw.guards = True
    raw.send_text(line)  # in flight again
    with pytest.raises(UsageError, match="PUBACK"):
        raw.command(f'AT+MPUB="{TOPIC}",1,0,"three"')


def test_late_mconnect_meets_closed(raw: ModemSession) -> None:
    creds = direct_mqtt_credentials(PK, DN, DS)
    assert final_after(raw, raw.send_text(mconfig(creds.client_id, creds.username,
                                                  creds.password))).ok  # fmt: skip
    mark = raw.send_text(mipstart(creds.host, creds.port, tls=True))
    raw.wait_for_urc("CONNECT OK", 10, since=mark)
    closed = raw.wait_for_urc("CLOSED", 10, since=mark)  # the server's window, waited out
    assert isinstance(closed, Urc)
    mark = raw.send_text(mconnect(1, 120))
    # no link left to log in on (the module's code with AT+CMEE=1, as attach() sets it)
    assert final_after(raw, mark).text == "+CME ERROR: 767"
    # guarded, the session reopens the link and logs in within the window
    raw.guards = True
    login(raw)
    assert raw.command("AT+MQTTSTATU").lines == ("+MQTTSTATU :1",)


def test_mpub_line_the_firmware_refuses(raw: ModemSession) -> None:
    login(raw)
    bad = f"AT+MPUB={TOPIC},0,0,hello"  # neither topic nor message quoted
    assert final_after(raw, raw.send_text(bad)).ok is False
    raw.guards = True
    with pytest.raises(UsageError):
        raw.command(bad)


@pytest.mark.parametrize(("text", "end"), [(1, None), ("AT", 5), ("", "")])
def test_send_text_checks_its_arguments(raw: ModemSession, text, end) -> None:
    with pytest.raises(UsageError):
        raw.send_text(text, end=end)
