"""Every lesson survives Kernel → "Run All" twice in a row (one kernel, as in JupyterLab).

nbval checks one run's outputs; this checks what a student does next: run everything
again.  A cell tagged ``raises-exception`` may raise (it shows an error on purpose);
any other error fails, naming the lesson, the run and the cell.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_run_all_twice(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    twice = nbformat.v4.new_notebook(metadata=nb.metadata)
    for run in (1, 2):
        for i, cell in enumerate(code):
            copied = copy.deepcopy(cell)
            copied.outputs = []
            copied.metadata["airlab_where"] = f"run {run}, code cell {i + 1}"
            twice.cells.append(copied)
    client = NotebookClient(
        twice,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        allow_error_names=[],
    )
    env_before = dict(os.environ)
    try:
        client.execute()
    except CellExecutionError as exc:
        where = next(
            (
                c.metadata.get("airlab_where")
                for c in twice.cells
                if any(o.get("output_type") == "error" for o in c.get("outputs", []))
                and "raises-exception" not in c.metadata.get("tags", [])
            ),
            "?",
        )
        pytest.fail(f"{path.name}: {where} failed:\n{str(exc)[-1500:]}")
    finally:
        os.environ.clear()
        os.environ.update(env_before)
