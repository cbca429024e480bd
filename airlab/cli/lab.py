"""``airlab lab``: JupyterLab on the lessons in ``notebooks/``.

Later layers start the cloud emulator behind the same command; for now it opens the
lessons, which start whatever they need in-process.

Example:
    $ airlab lab --port 8888 --no-browser
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from airlab.errors import UsageError

__all__ = ["find_notebooks_dir", "jupyter_command", "register"]


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


def jupyter_command(notebooks: Path, *, port: int | None, no_browser: bool, ip: str) -> list[str]:
    """The command line that starts JupyterLab on ``notebooks``."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={notebooks}",
        f"--ServerApp.ip={ip}",
    ]
    if port is not None:
        cmd.append(f"--ServerApp.port={port}")
    if no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # classroom VMs and CI containers often run as root
    return cmd


def _run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("jupyterlab") is None:
        raise UsageError("lab", "JupyterLab is not installed: pip install 'airlab[lab]'")
    notebooks = find_notebooks_dir(Path(args.notebooks) if args.notebooks else None)
    cmd = jupyter_command(notebooks, port=args.port, no_browser=args.no_browser, ip=args.ip)
    print("airlab: starting JupyterLab on", notebooks, flush=True)
    os.execv(cmd[0], cmd)
    return 0  # pragma: no cover - execv does not return


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lab", help="open the lessons in JupyterLab")
    parser.add_argument("--notebooks", help="lessons folder (default: ./notebooks)")
    parser.add_argument("--port", type=int, help="HTTP port for JupyterLab")
    parser.add_argument("--ip", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.set_defaults(func=_run)
