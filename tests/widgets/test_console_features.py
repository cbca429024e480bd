"""AtConsole's sscom-like features, from the Python side, over a real simulated session:
history, Enter vs leaving the box, the body field, hex view, saving (round trips through
airlab's own readers) and redaction.  The browser side: tests/browser/test_console_in_lab.py.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from airlab.at.events import DataSent
from airlab.at.formats import read_capture
from airlab.at.formats.sscom import read_sscom
from airlab.at.transcript import Transcript
from airlab.session import ModemSession, recipes
from airlab.widgets import AtConsole, console_log
from airlab.widgets.console import HISTORY_SIZE
from airlab.widgets.console_log import KINDS, entry_of, hex_of
from tests.widgets.helpers import wait_until

pytestmark = pytest.mark.usefixtures("widget_threads")


def _submit(console: AtConsole, text: str) -> None:
    """What the browser sends on Enter (or the Send button): a ``submit`` message."""
    console._on_message(console.text, {"event": "submit", "text": text}, [])


def _connect(session: ModemSession) -> None:
    recipes.attach(session)
    recipes.direct_mqtt(
        session,
        product_key="k1hipglLdjU",
        device_name="868488076506128",
        device_secret="fef32adf6dad46c2c7cbf335d3a7b021",
    )


# ---------------------------------------------------------------------- Enter, blur, history


def test_enter_sends_and_typing_alone_does_not(session: ModemSession) -> None:
    with AtConsole(session, clock=False) as console:
        # the browser syncs nothing while you type and listens to no blur/change: only
        # Enter and Send post a submit message, so a half-typed line stays in the box
        js = (Path(console_log.__file__).parent / "console.js").read_text(encoding="utf-8")
        assert '"blur"' not in js and 'input.addEventListener("change"' not in js
        assert 'model.send({ event: "submit", text })' in js
        _submit(console, "AT+CSQ")
        assert console.wait_for("+CSQ:").startswith("<< +CSQ: ")
        _submit(console, "AT+CSQ")  # the same line twice is two commands
        console.wait_for("OK")
        assert console.wait_idle()
        assert sum(line == ">> AT+CSQ" for line in console.lines) == 2
        _submit(console, "   ")  # blank: nothing
        assert console.wait_idle()
        assert sum(line.startswith(">> ") for line in console.lines) == 2


def test_history_keeps_what_was_sent_like_a_shell(session: ModemSession) -> None:
    with AtConsole(session, clock=False) as console:
        assert console.text.history == []
        _submit(console, "AT")
        _submit(console, "AT")  # a repeat is kept once
        console.text.value = "ATI"  # a script typing + Enter
        console.quick_buttons[2].click()  # AT+CSQ
        console.send("AT+CEREG?")
        assert console.wait_idle()
        assert console.text.history == ["AT", "ATI", "AT+CSQ", "AT+CEREG?"]
        console.text.history = [f"AT+N{i}" for i in range(HISTORY_SIZE)]
        console.send("AT")
        assert len(console.text.history) == HISTORY_SIZE and console.text.history[-1] == "AT"
        assert console.wait_idle()


def test_closed_console_refuses_typing(session: ModemSession) -> None:
    console = AtConsole(session, clock=False)
    console.close()
    assert console.text.disabled and console.send_button.disabled
    _submit(console, "AT")
    assert console.lines == []


# ---------------------------------------------------------------------- colours and hex


def test_entries_have_kinds_and_marks(session: ModemSession) -> None:
    with AtConsole(session) as console:
        console.send("AT+NOSUCH")
        console.wait_for("!!")
        _connect(session)
        console.wait_for("CONNACK OK", since=0)
        assert console.wait_idle()
        kinds = {e["kind"] for e in console.entries}
        assert {"sent", "echo", "final", "error", "urc"} <= kinds <= set(KINDS)
        dirs = {(e["kind"], e["dir"]) for e in console.entries}
        assert ("sent", "tx") in dirs and ("echo", "rx") in dirs and ("error", "!!") in dirs
        first = console.entries[0]
        assert first["line"] == f"{first['time']} >> AT+NOSUCH"
        assert [e["line"] for e in console.entries] == console.lines
        urc = next(e for e in console.entries if e["kind"] == "urc")
        assert urc["tag"] == "URC" and "[URC]" not in urc["text"]


def test_hex_view(session: ModemSession) -> None:
    with AtConsole(session, clock=False) as console:
        console.send("ATI")
        console.wait_for("OK")
        assert console.wait_idle()
        assert console.output.hex_view is False
        console.hex_switch.value = True  # the browser redraws every line as hex
        assert console.output.hex_view is True
        console.output.hex_view = False  # and the other way (the link goes both ways)
        assert console.hex_switch.value is False
        assert console.tail(2, hex=True).splitlines() == [
            hex_of(b"AirM2M_780EP_V1007_LTE_AT"),
            "4F 4B",
        ]
        assert console.tail(1) == "<< OK"  # the text view is unchanged


def test_hex_of_a_long_body_is_cut() -> None:
    from airlab.at.events import Payload

    big = Payload(
        0.0, 0.0, b"x" * 5000, source="+HTTPREAD", header="+HTTPREAD: 5000", data=b"x" * 5000
    )
    entry = entry_of(big, 0)
    assert entry is not None and entry["hex"].endswith(" …")
    assert entry["hex"].count("78") == 4096


# ---------------------------------------------------------------------- the body field


def test_body_field_after_download_sends_exact_bytes(session: ModemSession) -> None:
    with AtConsole(session, clock=False, raw=True) as console:
        console.guards_switch.value = False
        console.text.value = "AT+HTTPINIT"
        console.wait_for("<< OK")
        assert console.text.body_open is False
        console.text.value = "AT+HTTPDATA=7,2000"
        console.wait_for("DOWNLOAD")
        wait_until(lambda: console.text.body_open)
        assert console.text.body_expected == 7 and console.text.body_ctrl_z is False
        assert "AT+HTTPDATA=7,2000" in console.text.body_hint
        # the browser's Send body (a crlf switch on does not add CR LF to a body)
        assert console.crlf_switch.value is True
        console._on_message(console.text, {"event": "body", "text": "a=1\nb=2"}, [])
        console.wait_for("<< OK")
        wait_until(lambda: not console.text.body_open)
        body = [e for e in session.events if isinstance(e, DataSent)]
        assert body and body[-1].raw == b"a=1\nb=2"
        console.text.value = "AT+HTTPTERM"
        console.wait_for("<< OK")
    session.guards = True


def test_body_after_a_prompt_without_length_ends_with_ctrl_z(session: ModemSession) -> None:
    _connect(session)
    with AtConsole(session, clock=False, raw=True) as console:
        console.text.value = 'AT+MPUBEX="/k1hipglLdjU/868488076506128/user/update",0,0'
        wait_until(lambda: console.text.body_open)
        assert console.text.body_expected == -1 and console.text.body_ctrl_z is True
        assert "Ctrl+Z" in console.text.body_hint
        console.text.body = '{"t":1}'  # a script filling the field
        console.wait_for("<< OK")
        wait_until(lambda: not console.text.body_open)
        assert session.transcript.sent().endswith(b'{"t":1}\x1a')  # the exact bytes


def test_no_body_field_outside_raw_mode(session: ModemSession) -> None:
    with AtConsole(session, clock=False) as console:
        session.command("AT+HTTPINIT")
        session.http_post_body("hello")  # the session's own data phase
        console.wait_for("OK", since=0)
        assert console.wait_idle()
        assert console.text.body_open is False


# ---------------------------------------------------------------------- saving


@pytest.fixture
def connected(session: ModemSession) -> ModemSession:
    _connect(session)
    return session


def test_save_jsonl_loads_with_the_transcript_reader(connected, tmp_path: Path) -> None:
    with AtConsole(connected, clock=False) as console:
        path = console.save(tmp_path / "run.jsonl")
        assert path == (tmp_path / "run.jsonl").resolve()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        loaded = Transcript.load(path)
        assert loaded.sent() == connected.transcript.sent()
        assert loaded.received() == connected.transcript.received()
        assert b"AT+MCONFIG=" in loaded.sent()


def test_save_redacted_masks_the_password_keeping_lengths(connected, tmp_path: Path) -> None:
    with AtConsole(connected, clock=False) as console:
        plain = Transcript.load(console.save(tmp_path / "plain.jsonl"))
        masked = Transcript.load(console.save(tmp_path / "masked.jsonl", redact=True))
    mconfig = next(e for e in plain.events() if e.kind == "command" and "MCONFIG" in e.text)
    secret = mconfig.text.rsplit(",", 1)[-1].strip('"').encode()
    assert len(secret) >= 32 and secret in plain.sent()
    assert secret not in masked.sent() and b"*" * len(secret) in masked.sent()
    assert len(masked.sent()) == len(plain.sent())
    assert masked.meta.get("redacted") is True


def test_save_sscom_parses_with_the_sscom_reader(connected, tmp_path: Path) -> None:
    with AtConsole(connected, clock=False) as console:
        path = console.save(tmp_path / "run.txt", redact=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    assert "发→◇AT+MCONFIG=" in text and "收←◆" in text
    read = read_sscom(path)
    assert b"AT+MCONNECT=1,120" in read.sent()
    assert b"CONNACK OK" in read.received()
    assert b"****" in read.sent()  # the password stays masked


def test_save_csv_reads_back(connected, tmp_path: Path) -> None:
    with AtConsole(connected, clock=False) as console:
        path = console.save(tmp_path / "run.data", format="csv")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    read = read_capture(path, "csv")
    assert read.sent() == connected.transcript.sent()


def test_save_button_writes_beside_the_notebook(
    session: ModemSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the kernel's folder is the notebook's
    with AtConsole(session, clock=False) as console:
        console.send("AT").result(5)
        console.save_format.value = "sscom"
        console.redact_switch.value = True
        console.save_button.click()
        saved = list(tmp_path.glob("console-*.txt"))
        assert len(saved) == 1
        assert str(saved[0]) in console.save_message.value
        assert "secrets masked" in console.save_message.value
        gone = tmp_path / "gone"
        gone.mkdir()
        monkeypatch.chdir(gone)
        gone.rmdir()  # the folder went away: one readable line, no traceback
        console.save_button.click()
        assert console.save_message.value.count("!! FileNotFoundError") == 1


def test_save_refuses_an_unknown_format(session: ModemSession, tmp_path: Path) -> None:
    from airlab.errors import UsageError

    with AtConsole(session, clock=False) as console, pytest.raises(UsageError):
        console.save(tmp_path / "x.bin", format="parquet")
