"""``airlab lab``: the cloud emulator as a background service, and JupyterLab on the
lessons in ``notebooks/``.

1. The emulator starts as a child process (``airlab cloud serve --fixture tutorial --db
   <data dir>/lab.db --endpoints-file <default endpoints path>``), unless one already
   serves with that endpoints file (it is then reused and left running) or
   ``--no-cloud`` is given. ``airlab lab`` waits until the endpoints file is written.
2. JupyterLab runs as a second child with ``AIRLAB_CLOUD_ENDPOINTS`` set, so
   :func:`airlab.cloud.cloud_for_lesson` finds the emulator.
3. When JupyterLab exits, or on Ctrl-C / SIGTERM / SIGHUP, JupyterLab is stopped, then
   the emulator (which removes its endpoints file). If ``airlab lab`` is killed
   outright, both children get SIGTERM (Linux) and the emulator also notices that its
   parent is gone.

The data dir is ``$XDG_DATA_HOME/airlab`` (``~/.local/share/airlab``); the emulator's
output goes to ``cloud.log`` there.

Example:
    $ airlab lab --port 8888 --no-browser
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from airlab.cloud.child import CloudService, child_options, start_cloud_service
from airlab.errors import UsageError

__all__ = [
    "CloudService",
    "find_notebooks_dir",
    "jupyter_command",
    "register",
    "start_cloud_service",
    "user_data_dir",
]

_STOP_TIMEOUT = 15.0


def find_notebooks_dir(start: Path | None = None) -> Path:
    """The lessons folder: ``./notebooks`` or the one beside the installed package.

    >>> find_notebooks_dir().name
    'notebooks'
    """
    candidates = []
    if start is not None:
        candidates.append(start)
    candidates += [Path.cwd() / "notebooks", Path(__file__).resolve().parents[2] / "notebooks"]
    for path in candidates:
        if path.is_dir():
            return path
    raise UsageError("notebooks", "no notebooks/ folder here or beside the airlab package")


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/airlab`` or ``~/.local/share/airlab`` (not created here)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "airlab"


#: The lesson JupyterLab opens first.
FIRST_LESSON = "00_welcome.ipynb"


#: Settings JupyterLab takes as its own defaults under ``airlab lab``: no "Jupyter news?"
#: question over the first lesson (``--LabApp.news_url=`` alone leaves the question).
LAB_OVERRIDES: dict[str, dict[str, object]] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false"},
}


def lab_settings_dir(base: Path | None = None) -> Path:
    """A JupyterLab app-settings folder holding :data:`LAB_OVERRIDES` merged over the
    installation's own (``<sys.prefix>/share/jupyter/lab/settings``, copied when present);
    under :func:`user_data_dir` unless ``base`` is given.  A student's own settings (the
    user settings folder) still win over these defaults."""
    import shutil

    target = (base or user_data_dir()) / "jupyterlab-app-settings"
    target.mkdir(parents=True, exist_ok=True)
    installed = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    overrides: dict[str, dict[str, object]] = {}
    if installed.is_dir():
        for item in installed.iterdir():
            if item.name == "overrides.json":
                with contextlib.suppress(OSError, ValueError):
                    overrides = dict(json.loads(item.read_text(encoding="utf-8")))
            elif item.is_file():
                shutil.copy2(item, target / item.name)
            elif item.is_dir():
                shutil.copytree(item, target / item.name, dirs_exist_ok=True)
    for plugin, values in LAB_OVERRIDES.items():
        overrides[plugin] = {**dict(overrides.get(plugin) or {}), **values}
    (target / "overrides.json").write_text(json.dumps(overrides, indent=2), encoding="utf-8")
    return target


def jupyter_command(
    notebooks: Path,
    *,
    port: int | None,
    no_browser: bool,
    ip: str,
    app_settings_dir: Path | None = None,
) -> list[str]:
    """The command line that starts JupyterLab on ``notebooks``."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={notebooks}",
        f"--ServerApp.ip={ip}",
        "--LabApp.news_url=",  # no "Jupyter news?" pop-up over the first lesson
        f"--LabApp.default_url=/lab/tree/{FIRST_LESSON}",  # the browser opens lesson 00
    ]
    if app_settings_dir is not None:
        cmd.append(f"--LabApp.app_settings_dir={app_settings_dir}")
    if port is not None:
        cmd.append(f"--ServerApp.port={port}")
    if no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # classroom VMs and CI containers often run as root
    return cmd


class _Stopped(Exception):
    """SIGTERM/SIGHUP received."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = _STOP_TIMEOUT) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()  # JupyterLab shuts down cleanly on SIGTERM (no y/n prompt)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def _run(args: argparse.Namespace) -> int:
    from airlab.cloud.discovery import ENDPOINTS_ENV, default_endpoints_path

    if importlib.util.find_spec("jupyterlab") is None:
        raise UsageError("lab", "JupyterLab is not installed: pip install 'airlab[lab]'")
    notebooks = find_notebooks_dir(Path(args.notebooks) if args.notebooks else None)
    cmd = jupyter_command(
        notebooks,
        port=args.port,
        no_browser=args.no_browser,
        ip=args.ip,
        app_settings_dir=lab_settings_dir(),
    )
    env = dict(os.environ)
    previous = {
        signum: signal.signal(signum, _raise_stopped)
        for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None))
        if signum is not None
    }
    cloud: CloudService | None = None
    jupyter: subprocess.Popen[bytes] | None = None
    try:
        if not args.no_cloud:
            endpoints_file = (
                Path(args.endpoints_file).expanduser()
                if args.endpoints_file
                else default_endpoints_path()
            )
            db = Path(args.cloud_db).expanduser() if args.cloud_db else user_data_dir() / "lab.db"
            cloud = start_cloud_service(
                endpoints_file.resolve(), db.resolve(), host=args.cloud_host,
                advertise=args.cloud_advertise,
            )  # fmt: skip
            ep = cloud.endpoints
            how = "reusing the running" if cloud.process is None else "started the"
            print(
                f"airlab: {how} cloud emulator: http {ep['http']} (admin {ep['http']}/admin), "
                f"https {ep['https']}, mqtt {ep['mqtt']} (TLS or plain), mqtts {ep['mqtts']}; "
                f"registry {ep.get('db') or 'in memory'}, endpoints {cloud.endpoints_file}",
                flush=True,
            )
            env[ENDPOINTS_ENV] = str(cloud.endpoints_file)
        print("airlab: starting JupyterLab on", notebooks, flush=True)
        jupyter = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, **child_options())
        try:
            code = jupyter.wait()
        except (KeyboardInterrupt, _Stopped):
            print("airlab: stopping JupyterLab and the cloud emulator", file=sys.stderr, flush=True)
            code = 0
        return code
    except _Stopped:
        return 0
    finally:
        # Further SIGTERMs must not interrupt the clean-up.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        try:
            if jupyter is not None:
                _stop_process(jupyter)
            if cloud is not None:
                cloud.stop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lab", help="open the lessons in JupyterLab, with the cloud emulator running"
    )
    parser.add_argument("--notebooks", help="lessons folder (default: ./notebooks)")
    parser.add_argument("--port", type=int, help="HTTP port for JupyterLab")
    parser.add_argument("--ip", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument(
        "--no-cloud", action="store_true", help="do not start the cloud emulator service"
    )
    parser.add_argument(
        "--cloud-db", help="registry of the cloud emulator (default: <data dir>/lab.db)"
    )
    parser.add_argument(
        "--cloud-host",
        help="address the cloud emulator binds (default 127.0.0.1; 0.0.0.0 serves a class "
        "room: students' laptops reach it)",
    )
    parser.add_argument(
        "--cloud-advertise", help="with --cloud-host 0.0.0.0: the address its endpoints name"
    )
    parser.add_argument(
        "--endpoints-file",
        help="the emulator's endpoints JSON (default: $AIRLAB_CLOUD_ENDPOINTS or "
        "~/.cache/airlab/cloud-endpoints.json)",
    )
    parser.set_defaults(func=_run)
