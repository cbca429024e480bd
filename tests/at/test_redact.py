"""Redaction keeps transcripts parseable while masking secrets, signatures and tokens."""

from __future__ import annotations

from pathlib import Path

from airlab.at import Payload, Urc, read_capture
from airlab.at.redact import redact_bytes, redact_transcript
from airlab.cli import main

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"


def test_tutorial_secrets_are_masked_and_lengths_kept() -> None:
    t = read_capture(CAPTURES / "seed_http_auth_then_mqtt.log", date="2024-07-22")
    r = redact_transcript(t)
    assert [len(a.data) for a in t.records] == [len(b.data) for b in r.records]
    sent, received = r.sent(), r.received()
    assert b"0f655b12adf519b9a7a2b0a990f398b6" not in sent  # sign= in the HTTPDATA body
    assert b"137eb0759ca248b79383a60c0b0e0f80" not in sent + received  # iotToken
    assert b"2BGmgWFvoXlbi1Er9sk4k1hip0" in received  # the iotId is not a secret
    events = r.events()
    body = next(e for e in events if isinstance(e, Payload) and e.source == "+HTTPREAD")
    assert len(body.data) == 124 and b'"iotToken":"********************************"' in body.data
    assert any(isinstance(e, Urc) and e.name == "CONNACK OK" for e in events)
    assert r.meta["redacted"] is True


def test_registration_reply_and_given_values() -> None:
    t = read_capture(CAPTURES / "seed_dynamic_register.log", date="2024-07-22")
    r = redact_transcript(t, ["8LQwOYSZMwp3DFBd"])
    assert b"fef32adf6dad46c2c7cbf335d3a7b021" not in r.received()  # deviceSecret
    assert b"20558baadb2a0b04847767980f0ee67b" not in r.sent()
    direct = read_capture(CAPTURES / "seed_direct_mqtt.log", date="2024-07-22")
    assert b"0f655b12adf519b9a7a2b0a990f398b6" not in redact_transcript(direct).sent()


def test_bare_mconfig_arguments_and_untouched_text() -> None:
    line = b"AT+MCONFIG=868488076771714,root,luat123456\r\n"
    assert redact_bytes(line) == b"AT+MCONFIG=868488076771714,root," + b"*" * 10 + b"\r\n"
    plain = b"AT+CGATT?\r\n\r\n+CGATT: 1\r\n\r\nOK\r\n"
    assert redact_bytes(plain) == plain


def test_cli_redact(tmp_path: Path) -> None:
    out = tmp_path / "shared.jsonl"
    src = CAPTURES / "seed_http_auth_then_mqtt.log"
    assert main(["capture", "convert", str(src), str(out), "--redact", "--date", "2024-07-22"]) == 0
    text = out.read_text()
    assert "137eb0759ca248b79383a60c0b0e0f80" not in text and "HTTPREAD: 124" in text
