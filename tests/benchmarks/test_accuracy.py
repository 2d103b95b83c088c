"""The accuracy benchmark (`python -m benchmarks ner|sentiment|all`) on tiny fixture data."""

import copy
import json

import pytest
import yaml

from benchmarks import accuracy
from benchmarks.__main__ import main as benchmarks_main
from tests.conftest import tiny_params, write_conll_splits


def test_medians_skip_missing_values_and_keep_the_key_order():
    runs = [{"f1": 0.5, "w2v": None, "epochs": 3}, {"f1": 0.7, "w2v": None, "epochs": 1, "auc": 0.9}]
    assert accuracy.medians(runs) == {"f1": 0.6, "w2v": None, "epochs": 2, "auc": 0.9}


@pytest.fixture
def w2v_params(tmp_path):
    """Tiny params whose NER section uses the word2vec stage's output (its default path)."""
    path = tiny_params(tmp_path, tmp_path / "unused")
    params = yaml.safe_load(path.read_text())
    params["ner"]["train"]["embeddings_file"] = str(tmp_path / "out" / "word2vec" / "vectors.txt")
    params["ner"]["prepare"]["embedding_words"] = params["ner"]["train"]["embeddings_file"]
    return params


def test_word2vec_runs_once_into_the_benchmark_folder(tmp_path, w2v_params):
    bench = accuracy.AccuracyBenchmark(tmp_path / "bench", log=lambda *a: None)
    original = copy.deepcopy(w2v_params)
    first, second = copy.deepcopy(w2v_params), copy.deepcopy(w2v_params)
    assert bench.vectors(first, "ner") >= 0.0  # seconds of the stage
    vectors = tmp_path / "bench" / "word2vec" / "vectors.txt"
    assert vectors.is_file() and first["ner"]["train"]["embeddings_file"] == str(vectors)
    assert first["ner"]["prepare"]["embedding_words"] == str(vectors)  # the vocabulary's words too
    assert not (tmp_path / "out" / "word2vec").exists()  # the pipeline's own output is left alone
    assert bench.vectors(second, "ner") == 0.0 and second["ner"]["train"]["embeddings_file"] == str(vectors)
    assert bench.vectors(copy.deepcopy(w2v_params), "sentiment") is None  # random init: no vectors
    assert w2v_params == original


def test_reuse_word2vec_keeps_vectors_of_an_earlier_run(tmp_path, w2v_params):
    vectors = tmp_path / "bench" / "word2vec" / "vectors.txt"
    vectors.parent.mkdir(parents=True)
    vectors.write_text("1 16\n")
    assert accuracy.AccuracyBenchmark(tmp_path / "bench", reuse_word2vec=True).vectors(w2v_params, "ner") == 0.0
    assert vectors.read_text() == "1 16\n"


def test_missing_data_is_one_line(tmp_path, capsys):
    path = tiny_params(tmp_path, tmp_path / "no-such-conll")
    assert benchmarks_main(["ner", "--params", str(path), "--out-root", str(tmp_path / "bench")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("benchmark: error:") and "no-such-conll" in err


def test_all_tasks_end_to_end(tmp_path, capsys):
    """`python -m benchmarks all` on tiny data, one epoch each; NER through the word2vec stage
    (no CRF nor character encoder: the runner is under test here, not the model)."""
    source = write_conll_splits(tmp_path / "conll", 40, 12, 12)
    path = tiny_params(tmp_path, source, **{
        "ner.train.epochs": 1, "sentiment.train.epochs": 1, "ner.model.use_crf": False, "ner.model.char_encoder": "none",
        "ner.train.embeddings_file": str(tmp_path / "out" / "word2vec" / "vectors.txt")})
    root = tmp_path / "bench"
    assert benchmarks_main(["all", "--params", str(path), "--out-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "== ner benchmark: 1 run(s), medians ==" in out and "== sentiment benchmark" in out

    ner = json.loads((root / "ner" / "benchmark.json").read_text())
    (run,) = ner["runs"]
    assert ner["medians"] == run
    assert {"test_f1", "test_strict_f1", "test_precision", "test_recall"} <= set(run)
    assert run["epochs_run"] == 1 and run["best_epoch"] == 1 and run["export_parity_mismatches"] == 0
    assert run["word2vec_seconds"] is not None and run["train_tokens_per_second"] >= 0
    assert (root / "word2vec" / "vectors.txt").is_file() and (root / "ner" / "saved_model").is_dir()
    assert json.loads((root / "ner" / "train_details.json").read_text())["embeddings_found"] > 0

    (run,) = json.loads((root / "sentiment" / "benchmark.json").read_text())["runs"]
    assert {"test_accuracy", "test_macro_f1", "test_roc_auc", "test_base_acc"} <= set(run)
    assert run["accuracy_minus_baseline"] == round(run["test_accuracy"] - run["test_base_acc"], 5)
    assert run["word2vec_seconds"] is None and run["export_parity_mismatches"] == 0
    assert not (tmp_path / "out").joinpath("ner", "model.keras").exists()  # params' own out_dir untouched
