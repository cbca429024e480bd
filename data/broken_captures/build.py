"""Rebuild the broken captures from the tutorial's real captures (``../captures/seed_*.log``).

Each broken capture is one of the tutorial's sscom logs with the edit a student makes
(see README.md), redacted with :func:`airlab.at.redact.redact_transcript` (the tutorial's
DeviceSecret, ProductSecret and iotToken, plus every MCONFIG password, ``sign=`` and
JSON token it finds) and written as sscom (``.log``) or LLCOM (``.txt``).

Run from the repository root: ``.venv/bin/python data/broken_captures/build.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from airlab.at.formats import write_capture
from airlab.at.formats.sscom import parse_sscom
from airlab.at.redact import redact_transcript
from airlab.cloud.fixtures import TUTORIAL_DEVICE_SECRET, TUTORIAL_PRODUCT_SECRET

HERE = Path(__file__).resolve().parent
SEEDS = HERE.parent / "captures"
DATE = "2024-07-22"
TOKEN = "137eb0759ca248b79383a60c0b0e0f80"  # the tutorial's iotToken
SECRETS = [TUTORIAL_DEVICE_SECRET, TUTORIAL_PRODUCT_SECRET, TOKEN]

HTTP_AUTH = "seed_http_auth_then_mqtt.log"
DIRECT = "seed_direct_mqtt.log"
REGISTER = "seed_dynamic_register.log"
PUBLISH = "seed_publish_subscribe.log"
TOPIC = "/k1hipglLdjU/868488076506128/user/update"


def seed(name: str) -> str:
    return (SEEDS / name).read_text(encoding="utf-8")


def edit(text: str, *pairs: tuple[str, str]) -> str:
    """Replace each ``old`` (which must occur) by ``new`` everywhere."""
    for old, new in pairs:
        if old not in text:
            raise SystemExit(f"build.py: {old!r} not found")
        text = text.replace(old, new)
    return text


def cut_after(text: str, marker: str) -> str:
    """The text up to the end of the record holding ``marker``."""
    i = text.index(marker)
    j = text.find("\n[", i)
    return text if j < 0 else text[: j + 1]


def broken() -> dict[str, str]:
    out: dict[str, str] = {}
    # 1. the body has 112 bytes, 110 announced
    out["log_a.log"] = edit(seed(HTTP_AUTH), ("AT+HTTPDATA=112,20000", "AT+HTTPDATA=110,20000"))
    # 2. no space after "Content-type:"
    out["log_c.log"] = edit(
        seed(HTTP_AUTH),
        ('"Content-type: application', '"Content-type:application'),
    )
    # 3. MCONNECT 6.4 s after CONNECT OK (45.836 -> 52.204)
    out["log_d.log"] = edit(
        seed(DIRECT),
        ("[03:51:48.961]", "[03:51:52.204]"),
        ("[03:51:48.964]", "[03:51:52.207]"),
        ("[03:51:49.179]", "[03:51:52.422]"),
    )
    # 4. two QoS1 publishes pasted at once: the second before the first one's PUBACK
    two = (
        f'[04:58:43.408]发→◇AT+MPUB="{TOPIC}",1,0,"HelloWorld"\n'
        f'AT+MPUB="{TOPIC}",1,0,"HelloAgain"\n\n'
        f'[04:58:43.412]收←◆AT+MPUB="{TOPIC}",1,0,"HelloWorld"\n\nOK\n'
        f'AT+MPUB="{TOPIC}",1,0,"HelloAgain"\n\nOK\n\n'
        "[04:58:43.709]收←◆\nPUBACK\n\n"
        "[04:58:43.731]收←◆\nPUBACK\n\n"
    )
    text = seed(PUBLISH)
    start = text.index("[04:58:43.408]")
    end = text.index("[05:01:58.568]")
    out["log_e.txt"] = text[:start] + two + text[end:]
    # 5. +CGATT: 0 (not attached) and the student goes on: SAPBR fails, HTTPS gives 601
    text = edit(
        seed(REGISTER),
        ("+CGATT: 1", "+CGATT: 0"),
        ("[04:07:38.661]收←◆AT+SAPBR=1,1\n\nOK", "[04:07:38.661]收←◆AT+SAPBR=1,1\n\n+CME ERROR: 3"),
        ("+HTTPACTION: 1,200,149", "+HTTPACTION: 1,601,0"),
    )
    out["log_f.log"] = cut_after(text, "+HTTPACTION: 1,601,0")
    # 6. iotToken as the user name, iotId as the password
    iot_id = "2BGmgWFvoXlbi1Er9sk4k1hip0"
    out["log_g.log"] = edit(seed(HTTP_AUTH), (f'"{iot_id}","{TOKEN}"', f'"{TOKEN}","{iot_id}"'))
    # 7. the MQTT host of another product (a1qsHBbKtmc) with k1hipglLdjU's credentials
    out["log_h.log"] = edit(
        seed(DIRECT),
        ('"k1hipglLdjU.iot-as-mqtt', '"a1qsHBbKtmc.iot-as-mqtt'),
    )
    # 8. dynamic registration of a device that is already activated: code 460
    body = '{"code":460,"message":"device is already activated"}'
    out["log_i.log"] = edit(
        seed(REGISTER),
        ("+HTTPACTION: 1,200,149", f"+HTTPACTION: 1,200,{len(body)}"),
        ("+HTTPREAD: 149", f"+HTTPREAD: {len(body)}"),
        (
            '{"code":200,"data":{"deviceName":"868488076506128","deviceSecret":'
            '"fef32adf6dad46c2c7cbf335d3a7b021","productKey":"k1hipglLdjU"},"message":"success"}',
            body,
        ),
    )
    # 9. typed with a Chinese input method: a full-width comma before the port
    out["log_b.log"] = edit(seed(DIRECT), ('aliyuncs.com",1883', 'aliyuncs.com"\uff0c1883'))
    return out


def main() -> None:
    for name, text in broken().items():
        transcript = parse_sscom(text, date=DATE, source=name)
        clean = redact_transcript(transcript, SECRETS)
        path = HERE / name
        write_capture(clean, path, "llcom" if name.endswith(".txt") else "sscom")
        os.chmod(path, 0o644)  # redacted: safe to share (write_capture makes it 0600)
        print(f"wrote {path.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()
