"""The NER stages with an ensemble of two taggers (ner.model.members: 2) on the fixture, then
serving: the members train side by side and every consumer (validation F1, calibration, the
document vote, evaluate, the SavedModel) sees their combined scores."""

import json
import subprocess
import sys

import numpy as np
import pytest

from pipelines import evaluate, export, prepare, train
from tests.conftest import ROOT, tiny_params, write_conll_splits
from tests.test_end_to_end import serving_function
from tests.test_end_to_end_documents import served_reference

EPOCHS = 8


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e_members")
    source = write_conll_splits(tmp / "conll", 40, 12, 12)
    params = tiny_params(tmp, source, **{
        "ner.model.members": 2, "ner.prepare.document_features": ["topic", "case"],
        "ner.model.document_topic_dim": 8,
        "ner.train.epochs": EPOCHS, "ner.train.patience": EPOCHS, "ner.train.learning_rate": 0.03,
    })
    for stage in (prepare, train):
        assert stage.main(["ner", "--params", str(params)]) == 0, stage.__name__
    # evaluate and export as DVC runs them.
    for stage in ("evaluate", "export"):
        proc = subprocess.run([sys.executable, "-m", f"pipelines.{stage}", "ner", "--params", str(params)],
                              cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return tmp, params, tmp / "out" / "ner"


@pytest.fixture(scope="module")
def trained(run_dir):
    from pipelines.tasks.ner import TASK

    _, _, out = run_dir
    return TASK.load_model(out / "model.keras"), TASK.encoder(out), TASK.load_split(out, "test")


def test_the_members_trained_apart_and_the_ensemble_learnt(run_dir, trained):
    _, _, out = run_dir
    model, _, _ = trained
    assert model.members == 2
    assert model.get_layer("crf").get_weights()[0].shape[0] == 2
    first, second = (model.get_layer(name).get_weights()[0] for name in ("bi_lstm_0", "bi_lstm_0_m1"))
    assert not np.allclose(first, second)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["f1"] > 0.5, metrics
    details = json.loads((out / "train_details.json").read_text())
    assert "calibration" in details["finish"] and "document_vote" in details["finish"]


def test_export_parity_and_raw_text(run_dir, trained):
    _, _, out = run_dir
    report = json.loads((out / "export.json").read_text())
    assert report["mismatches"] == 0 and report["checked"] == 12
    model, encoder, split = trained
    token_lists = [list(t) for t in split.tokens[:6]]
    result = serving_function(out)([" ".join(t) for t in token_lists])
    expected_tags, expected_scores = served_reference(model, encoder, token_lists)
    n = result["num_tokens"].numpy()
    served = [[t.decode() for t in row[:k]] for row, k in zip(result["tags"].numpy(), n)]
    assert served == [list(t) for t in expected_tags]
    for row, k, want in zip(result["entity_scores"].numpy(), n, expected_scores):
        np.testing.assert_allclose(row[:k], want, atol=1e-5)
