"""Notebooks are committed without outputs and run top to bottom on a fixture run."""


import nbformat
import pytest

from tests.conftest import ROOT, tiny_params, write_conll_splits

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs; clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory):
    """Both tasks' stages on tiny data; returns the params file the notebooks read."""
    from pipelines import evaluate, export, prepare, train

    tmp = tmp_path_factory.mktemp("notebooks")
    source = write_conll_splits(tmp / "conll", 40, 10, 10)
    params = tiny_params(tmp, source, **{"ner.train.epochs": 4, "sentiment.model.pooling": "attention"})
    for task in ("ner", "sentiment"):
        for stage in (prepare, train, evaluate, export):
            assert stage.main([task, "--params", str(params)]) == 0, (task, stage.__name__)
    return params


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, fixture_run, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("BILSTM_PARAMS", str(fixture_run))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type in ("display_data", "execute_result") for o in outputs), "the notebook shows nothing"
