"""The pretrain stage as DVC runs it: off (placeholders), on (language models, then train starts
from them), and bad input or params as one line."""

import json

import numpy as np
import pytest

from pipelines import prepare, train
from pipelines.core.io import load_weight_groups, save_weight_groups
from pipelines.core.pretraining import pretrain_config, windows
from tests.conftest import make_reviews, tiny_params, write_conll_splits
from tests.test_stage_errors import assert_one_line_error, edited, run_stage

PRETRAIN = {"sentiment.pretrain.enabled": True, "sentiment.pretrain.files": ["unsup.jsonl"],
            "sentiment.pretrain.window": 8, "sentiment.pretrain.batch_size": 4, "sentiment.pretrain.epochs": 2,
            "sentiment.pretrain.num_sampled": 8, "sentiment.pretrain.validation_tokens": 200}


def write_unlabelled(folder, n=60, lines=None):
    rows = lines if lines is not None else [json.dumps({"text": r["text"]}) for r in make_reviews(n, seed=7)]
    (folder / "unsup.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pretrain")
    params = tiny_params(tmp, write_conll_splits(tmp / "conll"), **PRETRAIN)
    write_unlabelled(tmp / "reviews")
    for task in ("ner", "sentiment"):
        assert prepare.main([task, "--params", str(params)]) == 0
    return tmp, params


@pytest.fixture(scope="module")
def pretrained(prepared):
    tmp, params = prepared
    proc = run_stage("pipelines.pretrain", "sentiment", "--params", str(params))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, params, proc


def test_enabled_writes_the_encoder_and_its_record(pretrained):
    tmp, _, proc = pretrained
    out = tmp / "out" / "sentiment"
    record = json.loads((out / "pretrain.json").read_text())
    # 60 unlabelled reviews + the 30 train reviews left after carving validation; never test.
    assert record["enabled"] and record["documents"] == 90 and record["epochs"] == 2
    assert record["tokens"] == record["windows"] * 8 and record["validation_windows"] > 0
    assert record["validation_perplexity"] > 1
    assert record["history"][-1]["loss"] < record["history"][0]["loss"]
    weights = load_weight_groups(out / "pretrained_encoder.npz")
    assert sorted(weights) == ["backward", "embedding", "forward"]
    assert weights["forward"][1].shape == (8, 32)  # recurrent kernel of an 8-unit LSTM
    assert not (out / "pretrain_state").exists() or not any((out / "pretrain_state").iterdir())
    assert "validation perplexity" in proc.stdout


def test_train_starts_from_the_pretrained_encoder(pretrained):
    tmp, params, _ = pretrained
    out = tmp / "out" / "sentiment"
    from models.classifier import TextClassifier
    from pipelines.core.trainer import pretrained_initializer

    weights = load_weight_groups(out / "pretrained_encoder.npz")
    model = TextClassifier(weights["embedding"][0].shape[0], 2, embedding_dim=16, hidden_size=8)
    pretrained_initializer(out)(model)
    for got, expected in zip(model.rnn_layers[0].backward_layer.get_weights(), weights["backward"]):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(model.word_embedding.get_weights()[0], weights["embedding"][0])
    assert train.main(["sentiment", "--params", str(params)]) == 0
    details = json.loads((out / "train_details.json").read_text())
    assert details["pretrained_encoder"] == str(out / "pretrained_encoder.npz")


def test_disabled_writes_empty_outputs_and_train_starts_from_random(prepared, tmp_path):
    tmp, params = prepared
    off = edited(params, tmp_path, "off", **{"sentiment.pretrain.enabled": False,
                                           "sentiment.out_dir": str(tmp_path / "sentiment")})
    import shutil

    shutil.copytree(tmp / "out" / "sentiment" / "data", tmp_path / "sentiment" / "data")
    shutil.copy(tmp / "out" / "sentiment" / "vocab.json", tmp_path / "sentiment" / "vocab.json")
    proc = run_stage("pipelines.pretrain", "sentiment", "--params", str(off))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "enabled is false" in proc.stdout
    assert json.loads((tmp_path / "sentiment" / "pretrain.json").read_text()) == {"enabled": False}
    assert load_weight_groups(tmp_path / "sentiment" / "pretrained_encoder.npz") is None
    from pipelines.core.trainer import pretrained_initializer

    assert pretrained_initializer(tmp_path / "sentiment") is None


def test_the_tagger_has_no_pretraining_and_says_so(prepared, tmp_path):
    _, params = prepared
    off = run_stage("pipelines.pretrain", "ner", "--params", str(params))
    assert off.returncode == 0, off.stderr[-3000:]
    on = edited(params, tmp_path, "ner_on", **{"ner.pretrain.enabled": True})
    assert_one_line_error(run_stage("pipelines.pretrain", "ner", "--params", str(on)), "pretrain",
                          "ner.pretrain.enabled", "not available for ner")


@pytest.mark.parametrize("overrides, expected", [
    ({"sentiment.pretrain.window": 0}, "sentiment.pretrain.window must be a positive integer, got 0"),
    ({"sentiment.pretrain.dropout": 1.5}, "sentiment.pretrain.dropout must be a number [0.0, 1.0), got 1.5"),
    ({"sentiment.pretrain.windows": 3}, "sentiment.pretrain: unknown key(s) windows"),
    ({"sentiment.pretrain.files": ["missing.jsonl"]}, "missing.jsonl"),
    ({"sentiment.pretrain.files": [], "sentiment.pretrain.include_train": False}, "no text to pretrain on"),
    ({"sentiment.pretrain.window": 100000}, "fewer than one window"),
])
def test_bad_params_stop_in_one_line(prepared, tmp_path, overrides, expected):
    _, params = prepared
    bad = edited(params, tmp_path, "bad", **overrides)
    assert_one_line_error(run_stage("pipelines.pretrain", "sentiment", "--params", str(bad)), "pretrain", expected)


def test_bad_unlabelled_file_names_file_and_line(prepared, tmp_path):
    tmp, params = prepared
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    write_unlabelled(folder, lines=['{"text": "fine"}', '{"text": "broken'])
    bad = edited(params, tmp_path, "badfile", **{"sentiment.pretrain.files": [str(folder / "unsup.jsonl")]})
    assert_one_line_error(run_stage("pipelines.pretrain", "sentiment", "--params", str(bad)), "pretrain",
                          f"{folder / 'unsup.jsonl'}:2: not valid JSON")
    (folder / "unsup.jsonl").write_bytes(b'{"text": "caf\xe9"}\n')
    assert_one_line_error(run_stage("pipelines.pretrain", "sentiment", "--params", str(bad)), "pretrain",
                          f"{folder / 'unsup.jsonl'}:1")


def test_encoder_of_another_size_stops_train_in_one_line(pretrained, tmp_path):
    tmp, params, _ = pretrained
    bigger = edited(params, tmp_path, "bigger", **{"sentiment.model.hidden_size": 12})
    assert_one_line_error(run_stage("pipelines.train", "sentiment", "--params", str(bigger)), "train",
                          "pretrained_encoder.npz", "pretrained forward weights have shapes",
                          "rerun the pretrain stage")


def test_windows_overlap_by_one_and_respect_the_cap():
    docs = [np.arange(2, 12), np.arange(20, 25)]
    w = windows(docs, 4, seed=0)
    assert w.shape == (3, 5)
    assert all(w[i, -1] == w[i + 1, 0] for i in range(len(w) - 1))
    assert windows(docs, 4, max_tokens=8, seed=0).shape == (2, 5)
    assert windows(docs, 40, seed=0).shape == (0, 41)


def test_weight_groups_round_trip(tmp_path):
    path = tmp_path / "w.npz"
    save_weight_groups(path, {"forward": [np.ones((2, 3)), np.zeros(3)], "embedding": [np.eye(2)]})
    got = load_weight_groups(path)
    assert sorted(got) == ["embedding", "forward"] and got["forward"][0].shape == (2, 3)
    save_weight_groups(path, {})
    assert load_weight_groups(path) is None
    path.write_text("not an npz")
    with pytest.raises(ValueError, match="not a weights file"):
        load_weight_groups(path)


def test_defaults_are_filled_in():
    cfg = pretrain_config({"sentiment": {"pretrain": {"enabled": True}}}, "sentiment")
    assert cfg["window"] == 100 and cfg["files"] == [] and cfg["include_train"]


@pytest.mark.parametrize("kill_at", ["epoch_end:1", "batch:2"])
def test_killed_pretraining_resumes_into_the_uninterrupted_run(pretrained, tmp_path, kill_at):
    import os
    import shutil
    import signal

    from pipelines.core.faults import ENV
    from tests.test_stage_errors import ROOT

    tmp, params, _ = pretrained
    reference = tmp / "out" / "sentiment"
    out = tmp_path / "sentiment"
    out.mkdir()
    shutil.copytree(reference / "data", out / "data")
    shutil.copy(reference / "vocab.json", out / "vocab.json")
    copy = edited(params, tmp_path, "copy", **{"sentiment.out_dir": str(out)})
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", ENV: kill_at}
    killed = subprocess.run([sys.executable, "-m", "pipelines.pretrain", "sentiment", "--params", str(copy)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out / "pretrain.json").exists()
    resumed = run_stage("pipelines.pretrain", "sentiment", "--params", str(copy))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = (load_weight_groups(d / "pretrained_encoder.npz") for d in (reference, out))
    for key in expected:
        for a, b in zip(expected[key], got[key]):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    history = [json.loads((d / "pretrain.json").read_text())["history"] for d in (reference, out)]
    assert [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in history[0]] == \
        [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in history[1]]
