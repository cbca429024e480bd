"""`airlab lab`: the README's main command starts a working JupyterLab on notebooks/."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from airlab.cli.lab import find_notebooks_dir, jupyter_command
from airlab.cloud.discovery import load_endpoints

ROOT = Path(__file__).resolve().parents[2]


def test_finds_the_lessons_folder() -> None:
    assert find_notebooks_dir() == ROOT / "notebooks"
    assert any((ROOT / "notebooks").glob("00_*.ipynb"))


def test_command_line_points_jupyterlab_at_the_lessons() -> None:
    cmd = jupyter_command(ROOT / "notebooks", port=8899, no_browser=True, ip="127.0.0.1")
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--notebook-dir={ROOT / 'notebooks'}" in cmd
    assert "--ServerApp.port=8899" in cmd and "--no-browser" in cmd
    assert "--LabApp.news_url=" in cmd  # no news pop-up over the lessons
    assert "--LabApp.default_url=/lab/tree/00_welcome.ipynb" in cmd


def test_the_news_question_is_off_by_an_override(tmp_path: Path) -> None:
    import json

    from airlab.cli.lab import lab_settings_dir

    folder = lab_settings_dir(tmp_path)
    overrides = json.loads((folder / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    cmd = jupyter_command(ROOT / "notebooks", port=None, no_browser=True, ip="127.0.0.1",
                          app_settings_dir=folder)  # fmt: skip
    assert f"--LabApp.app_settings_dir={folder}" in cmd
    assert (ROOT / "notebooks" / "00_welcome.ipynb").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_airlab_lab_serves_the_lessons_and_runs_the_cloud(tmp_path: Path) -> None:
    port = _free_port()
    ep_file = tmp_path / "cloud-endpoints.json"
    env = dict(
        os.environ,
        JUPYTER_TOKEN="airlab-test",
        JUPYTER_RUNTIME_DIR=str(tmp_path),
        AIRLAB_CLOUD_ENDPOINTS=str(ep_file),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "airlab", "lab", "--no-browser", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/api/contents?token=airlab-test"
    cloud_pid = None
    try:
        deadline = time.monotonic() + 60
        listing = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    listing = json.load(reply)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)  # polling a server that is starting: no event to wait on
        assert listing is not None, proc.stderr.read().decode() if proc.poll() is not None else ""
        names = {item["name"] for item in listing["content"]}
        assert any(name.startswith("00_") for name in names)
        # the cloud emulator runs beside JupyterLab and answers
        endpoints = load_endpoints(ep_file)
        cloud_pid = endpoints["pid"]
        assert cloud_pid not in (proc.pid, os.getpid())
        assert endpoints["db"] == str((tmp_path / "data" / "airlab" / "lab.db").resolve())
        body = (
            b"productKey=k1hipglLdjU&sign=0f655b12adf519b9a7a2b0a990f398b6"
            b"&clientId=868488076506128&deviceName=868488076506128"
        )
        with urllib.request.urlopen(endpoints["http"] + "/auth/devicename", body, 10) as reply:
            assert reply.status == 200 and len(reply.read()) == 124
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read().decode()
    assert cloud_pid is not None
    banner = proc.stdout.read().decode() if proc.stdout else ""
    # every address a teacher needs, and where the registry is kept
    for part in ("http http://", "/admin)", "https https://", "mqtt ", "mqtts ", "registry "):
        assert part in banner, banner
    assert str((tmp_path / "data" / "airlab" / "lab.db").resolve()) in banner
    assert not ep_file.exists()  # removed by the emulator's clean stop
    with pytest.raises(ProcessLookupError):
        os.kill(cloud_pid, 0)


def test_the_lab_cloud_can_serve_a_room(tmp_path: Path) -> None:
    from airlab.cli.lab import start_cloud_service
    from airlab.cloud.discovery import load_endpoints

    service = start_cloud_service(
        tmp_path / "ep.json", tmp_path / "lab.db", host="0.0.0.0", advertise="127.0.0.1"
    )
    try:
        ep = load_endpoints(tmp_path / "ep.json")
        assert ep["mqtt"].startswith("127.0.0.1:") and service.process is not None
        assert service.process.args[-4:] == ["--host", "0.0.0.0", "--advertise", "127.0.0.1"]
    finally:
        service.stop()
