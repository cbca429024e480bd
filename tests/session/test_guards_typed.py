"""Guards for two of the tutorial's warnings that had none: copy, don't type (look-alike
characters) and the MQTT host that must carry your productKey.  Raw, the simulator and
the cloud fail; guarded, nothing leaves the host and the error says what to retype."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import airlab
from airlab.at import mconfig
from airlab.at.events import FinalResult
from airlab.errors import UsageError
from airlab.lesson import Lesson, open_lesson
from airlab.session import recipes


@pytest.fixture
def lab() -> Iterator[Lesson]:
    with open_lesson() as lesson:
        recipes.attach(lesson.session)
        yield lesson


def _final(lab: Lesson, mark: int) -> str:
    ev = lab.session.wait_for_event(lambda e: isinstance(e, FinalResult), 5, since=mark)
    return ev.text


def test_a_curly_quote_reaches_the_module_raw_and_is_stopped_guarded(lab: Lesson) -> None:
    creds = airlab.direct_mqtt_credentials(**lab.identity.device())
    line = mconfig(creds.client_id, creds.username, creds.password)
    typed = line.replace('","', "”,“", 1)  # what a word processor makes of the quotes
    s = lab.session
    s.guards = False
    assert _final(lab, s.send_text(typed)) == "ERROR"  # the module cannot parse it
    s.guards = True
    before = s.mark()
    with pytest.raises(UsageError, match="curly quote") as info:
        s.command(typed)
    assert "copy, don't type" in info.value.message
    assert s.mark() == before  # nothing was sent
    assert s.command(line).ok  # the ASCII line goes through


def test_a_full_width_ampersand_in_a_form_body_is_stopped(lab: Lesson) -> None:
    body = airlab.http_auth_request(**lab.identity.device()).body.replace("&", "＆", 1)
    s = lab.session
    s.command("AT+HTTPINIT")
    try:
        with pytest.raises(UsageError, match=r"full-width ＆ \(ASCII &\)"):
            s.http_post_body(body)
    finally:
        s.command("AT+HTTPTERM", check=False)


def test_mpub_message_may_hold_any_text(lab: Lesson) -> None:
    recipes.direct_mqtt(lab.session, **lab.identity.device())
    r = recipes.publish(lab.session, lab.identity.topic("user/update"), "温度“正常”，ok", qos=1)
    assert r.response.urc is not None and r.response.urc.line == "PUBACK"


def test_a_host_of_another_product_is_stopped_before_the_link(lab: Lesson) -> None:
    s = lab.session
    creds = airlab.direct_mqtt_credentials(**lab.identity.device())
    s.command(mconfig(creds.client_id, creds.username, creds.password))
    foreign = 'AT+SSLMIPSTART="a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883'
    before = s.mark()
    with pytest.raises(UsageError, match="a1qsHBbKtmc's, but AT\\+MCONFIG logs in as product"):
        s.command_and_wait(foreign, urc="CONNECT OK")
    assert s.mark() == before
    s.guards = False  # raw, the tutorial's own capture shows it connects (no host check)
    r = s.command_and_wait(foreign, urc="CONNECT OK")
    assert r.urc is not None and r.urc.line == "CONNECT OK"
    s.command("AT+MIPCLOSE", check=False)


def test_the_host_guard_reads_an_iot_id_user_name(lab: Lesson) -> None:
    s = lab.session
    login = recipes.http_auth_then_mqtt(s, **lab.identity.device())  # guarded: own host
    assert login.step("MCONNECT").urc == "CONNACK OK"
    recipes.disconnect(s)
    s.command(mconfig(login.client_id, login.username, "x" * 32))
    with pytest.raises(UsageError, match="key starts k1hip"):
        s.command('AT+SSLMIPSTART="a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883')


def test_the_host_guard_leaves_a_token_typed_as_user_name_alone() -> None:
    from airlab.session.guards import check_mqtt_host

    host = 'AT+SSLMIPSTART="k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com",1883'
    token = "137eb0759ca248b79383a60c0b0e0f80"  # 32 hex, ends with 0 like an iotId
    check_mqtt_host(host, token)  # not an iotId: another warning (section 6), not the host's
    with pytest.raises(UsageError):
        check_mqtt_host(host, "2BGmgWFvoXlbi1Er9sk4a1qsH0")  # an iotId of product a1qsH…
