"""Notebooks stay thin and clean: no stored outputs, a parameters cell where papermill needs one."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
EXPLORE = NOTEBOOKS[0].parent / "explore.ipynb"


def test_there_are_notebooks():
    assert any(p.name == "quarterly_report.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


REPORTS = [p for p in NOTEBOOKS if p.stem.endswith("_report")]


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.name)
def test_report_notebook_starts_with_an_analysts_note_then_its_parameters(path):
    nb = nbformat.read(path, as_version=4)
    note, parameters = nb.cells[:2]
    assert note.cell_type == "markdown" and "analyst-note" in note.metadata["tags"]
    kind = path.stem.removesuffix("_report")
    assert f"ehkit report {kind} " in note.source  # how to run it
    assert "parameters" in parameters.metadata.get("tags", [])
    for name in ("db", "period", "audience"):
        assert f"{name} = " in parameters.source


def test_explore_notebook_is_thin_with_a_parameters_cell():
    nb = nbformat.read(EXPLORE, as_version=4)
    parameters = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in parameters.metadata.get("tags", [])
    assert "db = " in parameters.source and "period = " in parameters.source
    assert "explore.load(db, period)" in "".join(c.source for c in nb.cells)


@pytest.mark.slow
def test_explore_notebook_runs_and_shows_the_periods_figures(demo_both, tmp_path):
    import papermill

    # papermill's -p reads a year as a number: the notebook takes it as the year
    nb = papermill.execute_notebook(str(EXPLORE), str(tmp_path / "explore.ipynb"),
                                    parameters={"db": demo_both, "period": 2025},
                                    kernel_name="python3", progress_bar=False,
                                    cwd=str(EXPLORE.parent))
    shown = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                    for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "Year 2025" in shown and "grids: volumes, outcomes" in shown
