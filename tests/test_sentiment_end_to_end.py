"""Sentiment stages on tiny review fixtures (binary and 3-class), then serving."""

import json
import sys

import numpy as np
import pytest
import yaml

from pipelines import evaluate, export, predict, prepare, train
from tests.conftest import tiny_params, write_reviews

EPOCHS = 8


def run_stages(tmp, labels, **overrides):
    params = tiny_params(tmp, tmp / "unused-conll", **{
        "sentiment.train.epochs": EPOCHS, "sentiment.train.patience": EPOCHS,
        "sentiment.train.learning_rate": 0.01, **overrides})
    if len(labels) != 2:
        cfg = yaml.safe_load(params.read_text())
        cfg["sentiment"]["prepare"]["source"] = str(write_reviews(tmp / "reviews3", train=60, test=18, labels=labels))
        cfg["sentiment"]["prepare"]["label_names"] = ["neg", "pos", "mixed"]
        params.write_text(yaml.safe_dump(cfg))
    for stage in (prepare, train, evaluate, export):
        assert stage.main(["sentiment", "--params", str(params)]) == 0, stage.__name__
    return params, tmp / "out" / "sentiment"


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    return run_stages(tmp_path_factory.mktemp("sent2"), (0, 1))


def test_binary_run_outputs_and_metrics(binary_run):
    _, out = binary_run
    for name in ("data", "vocab.json", "stats.json", "model.keras", "train.json", "history.json", "history.png",
                 "metrics.json", "predictions.csv", "plots/confusion.csv", "plots/roc.csv",
                 "plots/precision_recall.csv", "plots/roc.png", "saved_model/saved_model.pb", "export.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.9, metrics  # the fixture's words give the label away
    assert metrics["roc_auc"] >= 0.9
    assert set(metrics) == {"accuracy", "macro_f1", "roc_auc", "base_acc", "base_f1"}
    evaluation = json.loads((out / "evaluation.json").read_text())
    # The model's n-gram side is the baseline's own fit: alone it scores what the baseline does.
    assert evaluation["parts_accuracy"]["ngram"] == metrics["base_acc"]
    finish = json.loads((out / "train_details.json").read_text())["finish"]
    assert finish["ngram_features"] == evaluation["baseline"]["ngram_features"] > 0
    assert all(w >= 0 for w in finish["mix"])
    assert set(json.loads((out / "evaluation.json").read_text())["per_class"]) == {"neg", "pos"}
    history = json.loads((out / "history.json").read_text())
    assert len(history) == EPOCHS and history[-1]["loss"] < history[0]["loss"]
    summary = json.loads((out / "train.json").read_text())
    assert summary["best_val"] == max(h["val_accuracy"] for h in history)
    report = json.loads((out / "export.json").read_text())
    assert report["mismatches"] == 0 and report["checked"] == 16 and report["unit"] == "documents"


def test_predictions_file(binary_run):
    _, out = binary_run
    lines = (out / "predictions.csv").read_text().splitlines()
    assert lines[0] == "id,gold,predicted,p_neg,p_pos"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == 16
    for row in rows:
        probs = [float(x) for x in row[3:]]
        assert abs(sum(probs) - 1) < 1e-3
        assert row[2] == ["neg", "pos"][int(np.argmax(probs))]


def run_predict(capsys, args):
    rc = predict.main(args)
    captured = capsys.readouterr()
    return rc, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_predict_cli_answers_empty_and_huge_reviews(binary_run, capsys):
    _, out = binary_run
    huge = "a wonderful film . " * 6000  # over 100,000 characters
    assert len(huge) > 100_000
    rc, rows, err = run_predict(capsys, ["sentiment", "--model", str(out / "saved_model"),
                                         "I loved every minute . superb direction", "", huge])
    assert rc == 0, err
    assert [r["label"] for r in rows] == ["pos", None, "pos"]  # no tokens: no label
    assert [r["empty"] for r in rows] == [False, True, False]
    for r in rows:
        assert set(r["probabilities"]) == {"neg", "pos"}
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-4
    for r in rows[::2]:
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)


def test_predict_jsonl(binary_run, capsys, monkeypatch):
    import io

    _, out = binary_run
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"text": "a dull mess . awful direction"}\n"great acting"\n'))
    rc, rows, err = run_predict(capsys, ["sentiment", "--model", str(out / "saved_model"), "--jsonl", "-"])
    assert rc == 0, err
    assert [r["label"] for r in rows] == ["neg", "pos"]


def test_saved_model_matches_in_memory_model_on_raw_text(binary_run):
    """Markup, truncation and unknown words go through the graph as through Python."""
    import tensorflow as tf

    from pipelines.tasks.sentiment import TASK
    from pipelines.tasks.sentiment.model import predict_probabilities

    _, out = binary_run
    texts = ["Zürich<br />was <BR/>GREAT . " * 9, "", "   ", "unknownword " * 50, "a dull mess !"]
    encoder = TASK.encoder(out)
    model = TASK.load_model(out / "model.keras")
    want = predict_probabilities(model, encoder.encode([encoder.tokens(t) for t in texts]))
    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    got = serve(text=tf.constant(texts))
    np.testing.assert_allclose(got["probabilities"].numpy(), want, atol=1e-5)
    assert got["num_tokens"].numpy().tolist() == [len(encoder.tokens(t)) for t in texts]
    assert max(got["num_tokens"].numpy()) == 12  # max_tokens of the fixture params


def test_without_ngram_features_the_model_has_no_wide_side_and_no_baseline(tmp_path):
    _, out = run_stages(tmp_path, (0, 1), **{"sentiment.prepare.ngram_max_n": 0, "sentiment.train.epochs": 2})
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"accuracy", "macro_f1", "roc_auc"}
    assert "finish" not in json.loads((out / "train_details.json").read_text())
    assert json.loads((out / "export.json").read_text())["mismatches"] == 0


def test_three_class_run(tmp_path, capsys):
    _, out = run_stages(tmp_path, (0, 1, 2), **{"sentiment.model.pooling": "attention"})
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(json.loads((out / "evaluation.json").read_text())["per_class"]) == {"neg", "pos", "mixed"}
    assert "roc_auc" not in metrics
    assert metrics["accuracy"] >= 0.8, metrics
    # One-vs-rest baseline and wide side: three scores per document.
    assert metrics["base_acc"] >= 0.8, metrics
    model_cfg = json.loads((out / "train_details.json").read_text())
    assert len(model_cfg["finish"]["mix"]) == 2
    capsys.readouterr()  # drop the stages' own output
    rc, rows, err = run_predict(capsys, ["sentiment", "--model", str(out / "saved_model"), "it was fine"])
    assert rc == 0, err
    assert set(rows[0]["probabilities"]) == {"neg", "pos", "mixed"}

    from pipelines.tasks.sentiment import TASK
    from pipelines.tasks.sentiment.model import attention_for_text

    model = TASK.load_model(out / "model.keras")
    pairs = attention_for_text(model, TASK.encoder(out), "It was <br /> fine .")
    assert [t for t, _ in pairs] == ["It", "was", "fine", "."]
    assert abs(sum(w for _, w in pairs) - 1) < 1e-5
