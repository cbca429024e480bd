"""The fleet: simulated modems on one loop, driven through their AT commands, against a
real cloud emulator (real TCP/TLS, the real broker, the real registry)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from airlab.analysis import COLUMNS
from airlab.cloud.service import CloudEmulator
from airlab.errors import UsageError
from airlab.fleet import SUMMARY_KEYS, FleetModem, Scenario, run_fleet
from airlab.mqtt.loopthread import LoopThread
from airlab.sim.device import SimulatedModule

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[CloudEmulator]:
    with CloudEmulator(tmp_path / "fleet.db", fixture=None) as emulator:
        yield emulator


def test_every_publish_is_acknowledged_and_logged(cloud: CloudEmulator) -> None:
    result = run_fleet(Scenario(modems=5, rate=4, duration=1, ramp=0.2), cloud=cloud)
    s = result.summary
    assert list(s) == list(SUMMARY_KEYS)
    assert (s["modems"], s["planned"], s["published"], s["acked"]) == (5, 20, 20, 20)
    assert s["logins"] == 5 and s["login_failures"] == 0 and s["skipped"] == 0
    assert s["logged_uplinks"] == 20  # the emulator's own log agrees
    assert 0 < s["puback_p50_ms"] <= s["puback_p90_ms"] <= s["puback_p99_ms"]
    assert s["connack_p50_ms"] is not None
    table = result.table
    assert list(table.columns) == ["modem", "method", *COLUMNS]  # the analysis's table
    assert table["modem"].nunique() == 5
    mpub = table[table["name"] == "+MPUB"]
    assert len(mpub) == 20 and set(mpub["urc"]) == {"PUBACK"} and set(mpub["outcome"]) == {"ok"}
    assert len(result.puback_ms()) == 20


def test_the_platform_throttle_drops_what_is_over_10_per_second(cloud: CloudEmulator) -> None:
    result = run_fleet(Scenario(modems=2, rate=40, duration=1, ramp=0), cloud=cloud)
    s = result.summary
    assert s["published"] == s["acked"] == 80  # throttled uplinks are still PUBACKed
    # 40 in a second, which may straddle two of the platform's one-second windows
    assert s["throttled"] >= 2 * (40 - 2 * 10)
    assert s["logged_uplinks"] == 80 - s["throttled"]
    assert result.throttled_per_second().sum() == s["throttled"]


def test_an_outage_drops_every_link_and_the_fleet_logs_in_again(cloud: CloudEmulator) -> None:
    scenario = Scenario(
        modems=4, rate=5, duration=2, ramp=0, outage_at=0.6, outage_for=0.4,
        reconnect="immediate",
    )  # fmt: skip
    result = run_fleet(scenario, cloud=cloud)
    s = result.summary
    assert s["link_down"] >= 4  # CLOSED on every modem, CONNECT FAIL while it lasts
    assert s["logins"] >= 8  # everyone came back
    assert s["skipped"] + s["failed"] > 0  # publishes due while offline are not sent late
    assert s["published"] + s["failed"] + s["skipped"] == s["planned"]
    closed = result.table[result.table["urc"] == "CLOSED"]
    assert set(closed["modem"]) <= set(result.table["modem"])


def test_two_modems_with_one_device_kick_each_other(cloud: CloudEmulator) -> None:
    scenario = Scenario(modems=3, shared=1, rate=4, duration=1.5, ramp=0,
                        reconnect="immediate", reconnect_delay=0.2)  # fmt: skip
    result = run_fleet(scenario, cloud=cloud)
    s = result.summary
    assert s["kicks"] >= 1 and s["link_down"] >= 1
    kicked = result.connections[result.connections["event"] == "kicked"]
    assert all(r.startswith("Kicked by the same device") for r in kicked["reason"])
    twins = sorted(set(result.table["modem"]))
    assert len(twins) == 3 and twins[1] == twins[0] + "#2"  # the twin is labelled


def test_a_fleet_modem_prints_what_airsim_prints() -> None:
    lines = ["AT", "AT+CGSN", "AT+CGATT?", 'AT+MCONFIG="c","u","p"', "AT+MCONNECT=1,60", "ATX"]
    runner = LoopThread("test-fleet").start()
    try:

        async def fleet_bytes() -> bytes:
            modem = FleetModem("m", runner, imei="869500000000074")
            for line in lines:
                await modem.command(line, timeout=5)
            modem.close()
            return modem.transcript.received()

        got = runner.run(fleet_bytes())
    finally:
        runner.stop()
    from airlab.sim.config import FirmwareConfig

    with SimulatedModule(config=FirmwareConfig(imei="869500000000074")) as module:
        expected = b""
        for line in lines:
            module.write(line.encode() + b"\r\n")
            expected += module.read_available()
    assert got == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [("modems", 0), ("rate", -1), ("qos", 2), ("payload_size", 4101), ("reconnect", "later"),
     ("profile", "nope"), ("keepalive", 10), ("duration", 0), ("shared", 10),
     ("clock", "fast")],
)  # fmt: skip
def test_a_bad_setting_names_itself(field: str, value: object) -> None:
    with pytest.raises(UsageError) as info:
        Scenario(**{field: value})  # type: ignore[arg-type]
    assert info.value.option == "--" + field.replace("_", "-")


def test_airlab_fleet_run_json_as_a_user_types_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "airlab", "fleet", "run", "--modems", "6", "--rate", "2",
         "--duration", "1", "--profile", "instant", "--json", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    for key in ("modems", "published", "acked", "puback_p50_ms", "puback_p99_ms"):
        assert key in summary
    assert (summary["modems"], summary["published"], summary["acked"]) == (6, 12, 12)
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "commands.csv").read_text().startswith("modem,method,seq,")
    commands = pd.read_csv(out / "commands.csv")
    mconfig = commands[commands["name"] == "+MCONFIG"]["command"]
    assert len(mconfig) == 6 and all(c.endswith('","' + "*" * 32 + '"') for c in mconfig)
    assert "Secret" not in (out / "connections.csv").read_text()


def test_two_fleets_share_one_running_service_and_each_reads_its_own_log(
    tmp_path: Path,
) -> None:
    """``--endpoints-file``: two fleets at once against one ``airlab cloud serve`` (as
    from two machines: the second one's endpoints name no registry file, so it reads
    everything through the admin API); each makes its own product and counts only its
    own uplinks and logins."""
    from airlab.cloud.child import start_cloud_service

    endpoints = tmp_path / "endpoints.json"
    service = start_cloud_service(endpoints, tmp_path / "shared.db", fixture="none")
    try:
        remote = json.loads(endpoints.read_text())
        assert remote.pop("db")
        elsewhere = tmp_path / "elsewhere.json"
        elsewhere.write_text(json.dumps(remote))
        runs = []
        for n, file in ((3, endpoints), (2, elsewhere)):
            command = [sys.executable, "-m", "airlab", "fleet", "run", "--modems", str(n),
                       "--rate", "4", "--duration", "1", "--ramp", "0", "--json",
                       "--endpoints-file", str(file)]  # fmt: skip
            runs.append(
                subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
                )
            )
        summaries = []
        for proc in runs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            summaries.append(json.loads(out))
    finally:
        service.stop()
    for n, s in zip((3, 2), summaries, strict=True):
        assert (s["modems"], s["published"], s["acked"], s["logins"]) == (n, 4 * n, 4 * n, n)
        assert s["logged_uplinks"] == 4 * n  # its own product's log, not the other's
    proc = subprocess.run(
        [sys.executable, "-m", "airlab", "fleet", "run", "--no-throttle",
         "--endpoints-file", str(endpoints)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode != 0 and "drop --no-throttle" in proc.stderr
