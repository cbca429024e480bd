"""The instructor's view: progress read incrementally from the logs, and the dashboard
widget that shows it and publishes to students."""

from __future__ import annotations

import threading

import pytest

from airlab.classroom import ClassProgress, create_class, numbered_seats
from airlab.cloud.service import CloudEmulator
from airlab.errors import UsageError
from airlab.lesson import Identity
from airlab.session import CloudRejected, ModemSession, recipes
from airlab.widgets import ClassDashboard


@pytest.fixture
def room():  # type: ignore[no-untyped-def]
    cloud = CloudEmulator().start()
    info = create_class(cloud.registry, numbered_seats(3), name="demo")
    try:
        yield cloud, info
    finally:
        cloud.stop()


def student(cloud: CloudEmulator, card, tmp_path) -> ModemSession:  # type: ignore[no-untyped-def]
    ep = cloud.write_endpoints(tmp_path / f"ep-{card.seat}.json")
    session = ModemSession(f"airsim://?profile=instant&imei={card.device_name}&cloud={ep}")
    recipes.attach(session, apn="CMIOT")
    ident = Identity(card.product_key, card.device_name, card.device_secret)
    recipes.direct_mqtt(session, **ident.device())
    return session


def test_each_step_refusals_and_online(room, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cloud, info = room
    a, b, _ = info.cards
    progress = ClassProgress(cloud.registry, "demo", online=cloud.online_devices)
    assert [r.reached for r in progress.refresh()] == [None, None, None]

    sa = student(cloud, a, tmp_path)
    recipes.subscribe(sa, f"/{a.product_key}/{a.device_name}/user/get", 1)
    sa.publish(f"/{a.product_key}/{a.device_name}/user/update", "hi", 1)
    mark = sa.mark()
    assert cloud.publish(f"/{a.product_key}/{a.device_name}/user/get", "to a") == 1
    sa.wait_for_urc("+MSUB", since=mark)
    # seat 02 signs with a wrong secret: refused before the broker knows the device
    sb = ModemSession(
        f"airsim://?profile=instant&cloud={cloud.write_endpoints(tmp_path / 'b.json')}"
    )
    recipes.attach(sb, apn="CMIOT")
    with pytest.raises(CloudRejected):
        recipes.direct_mqtt(
            sb, product_key=b.product_key, device_name=b.device_name, device_secret="0" * 32
        )
    cloud.flush()
    rows = {r.seat: r for r in progress.refresh()}
    assert rows["01"].reached == "received" and rows["01"].online
    assert set(rows["01"].steps) == {"attached", "logged in", "subscribed", "published", "received"}
    assert rows["01"].published == 1 and rows["01"].received == 1
    assert rows["02"].reached == "attached" and not rows["02"].online
    assert "code 4" in (rows["02"].refusal or "") and rows["02"].explanation
    assert rows["03"].reached is None
    assert progress.counts() == {
        "attached": 2, "logged in": 1, "subscribed": 1, "published": 1, "received": 1,
        "online": 1, "kicked": 0, "seats": 3,
    }  # fmt: skip
    assert [m.seat for m in progress.messages] == ["01", "01"]

    # incremental: a refresh with nothing new reads nothing
    read = progress.rows_read
    progress.refresh()
    assert progress.rows_read == read
    sa.close()
    sb.close()
    cloud.flush()
    progress.refresh()
    assert progress.rows_read > read
    assert not progress.rows[a.device_name].online

    # without the service, online comes from the logs (connect minus closes)
    from_logs = ClassProgress(cloud.registry, "demo")
    assert not any(r.online for r in from_logs.refresh())


def test_the_dashboard_shows_and_publishes(room, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cloud, info = room
    a = info.cards[0]
    board = ClassDashboard(cloud, "demo", interval=0.05)
    try:
        assert "class demo" in board.table.value and "0</b> online" in board.table.value
        sa = student(cloud, a, tmp_path)
        recipes.subscribe(sa, f"/{a.product_key}/{a.device_name}/user/get", 0)
        changed = threading.Event()
        board.table.observe(lambda _c: changed.set(), names="value")
        sa.publish(f"/{a.product_key}/{a.device_name}/user/update", "hello teacher", 1)
        assert changed.wait(10), "the dashboard did not refresh by itself"
        for _ in range(200):  # each refresh is a trait change: wait for the publish to show
            if "hello teacher" in board.messages.value:
                break
            changed.clear()
            changed.wait(1)
        assert "hello teacher" in board.messages.value and "seat 01" in board.messages.value
        mark = sa.mark()
        board.target.value = "01"
        board.payload.value = '{"led":1}'
        board.send_button.click()
        assert "reached 1 client" in board.result.value
        urc = sa.wait_for_urc("+MSUB", since=mark)
        assert "led" in urc.line
        board.topic.value = "user/#"
        board.send_button.click()
        assert "not a topic suffix" in board.result.value
        with pytest.raises(UsageError, match="no seat"):
            board.send("x", seat="99")
        sa.close()
    finally:
        board.close()
    assert board._thread is not None and not board._thread.is_alive()
