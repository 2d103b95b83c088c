"""Bad data and bad params, run the way DVC runs the stages: one line on stderr, exit code 1.

Each case is a real `python -m pipelines.<stage> <task> --params ...` subprocess,
so the error classes are the ones a `__main__` module sees.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from pipelines import prepare
from tests.conftest import ROOT, tiny_params, write_conll_splits


def run_stage(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def assert_one_line_error(proc, stage, *expected):
    assert proc.returncode == 1, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"{stage}: error: ")]
    assert len(errors) == 1 and proc.stderr.rstrip().endswith(errors[0]), proc.stderr[-3000:]
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def edited(params_path, tmp_path, name, **overrides):
    """A copy of a params file with dotted keys overridden."""
    params = yaml.safe_load(params_path.read_text())
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Tiny params whose two tasks are prepared (in-process, once)."""
    tmp = tmp_path_factory.mktemp("errors")
    params = tiny_params(tmp, write_conll_splits(tmp / "conll"))
    for task in ("ner", "sentiment"):
        assert prepare.main([task, "--params", str(params)]) == 0
    return tmp, params


def bad_reviews(tmp_path, train_lines):
    folder = tmp_path / "bad_reviews"
    folder.mkdir()
    good = [json.dumps({"id": f"t{i}", "text": "a fine film", "label": i % 2}) for i in range(6)]
    (folder / "train.jsonl").write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode()
                                                   for line in good + train_lines) + b"\n")
    (folder / "test.jsonl").write_text("\n".join(good) + "\n")
    return folder


@pytest.mark.parametrize("line, expected", [
    ("{not json", "train.jsonl:7: not valid JSON"),
    (b'{"id": "x", "text": "caf\xe9", "label": 1}', "train.jsonl:7: not valid UTF-8"),
    ('{"id": "x", "text": "ok", "label": null}', "train.jsonl:7: 'label' must be an integer"),
    ('{"id": "x", "body": "ok", "label": 1}', "train.jsonl:7: no 'text' field"),
])
def test_prepare_sentiment_bad_file(prepared, tmp_path, line, expected):
    _, params = prepared
    source = bad_reviews(tmp_path, [line])
    path = edited(params, tmp_path, "p", **{"sentiment.prepare.source": str(source),
                                           "sentiment.prepare.files": {"train": "train.jsonl", "test": "test.jsonl"}})
    assert_one_line_error(run_stage("pipelines.prepare", "sentiment", "--params", str(path)), "prepare", expected)


def test_prepare_sentiment_unseen_test_label(prepared, tmp_path):
    _, params = prepared
    source = bad_reviews(tmp_path, [])
    (source / "test.jsonl").write_text(json.dumps({"id": "z", "text": "hm", "label": 1}) + "\n"
                                       + json.dumps({"id": "y", "text": "hm", "label": 7}) + "\n")
    path = edited(params, tmp_path, "p", **{"sentiment.prepare.source": str(source), "sentiment.prepare.label_names": None,
                                           "sentiment.prepare.files": {"train": "train.jsonl", "test": "test.jsonl"}})
    assert_one_line_error(run_stage("pipelines.prepare", "sentiment", "--params", str(path)), "prepare",
                          "test.jsonl:2: label 7 in the test split never occurs in train")


def test_prepare_ner_bad_conll_line(prepared, tmp_path):
    _, params = prepared
    source = write_conll_splits(tmp_path / "conll")
    lines = (source / "train.txt").read_text().splitlines()
    lines[3] = "Paris NNP B-LOC"  # three columns where the file has four
    (source / "train.txt").write_text("\n".join(lines) + "\n")
    path = edited(params, tmp_path, "p", **{"ner.prepare.source": str(source)})
    assert_one_line_error(run_stage("pipelines.prepare", "ner", "--params", str(path)), "prepare",
                          "train.txt:4: expected 4 columns, found 3")


def test_prepare_ner_unknown_test_type(prepared, tmp_path):
    _, params = prepared
    source = write_conll_splits(tmp_path / "conll")
    text = (source / "test.txt").read_text().replace(" B-PER", " B-DATE", 1)
    (source / "test.txt").write_text(text)
    path = edited(params, tmp_path, "p", **{"ner.prepare.source": str(source)})
    assert_one_line_error(run_stage("pipelines.prepare", "ner", "--params", str(path)), "prepare",
                          "test.txt:", "'B-DATE' in the test split has an entity type that never occurs in train")


@pytest.mark.parametrize("content, expected", [
    (None, "ner.prepare.embedding_words: {path} not found (run the word2vec stage first"),
    (b"2 2\nparis 0.1 0.2\nbad\xff 0 1\n", "{path}:3: not valid UTF-8"),
])
def test_prepare_ner_bad_embedding_words_file(prepared, tmp_path, content, expected):
    _, params = prepared
    vectors = tmp_path / "vectors.txt"
    if content is not None:
        vectors.write_bytes(content)
    path = edited(params, tmp_path, "p", **{"ner.prepare.embedding_words": str(vectors)})
    assert_one_line_error(run_stage("pipelines.prepare", "ner", "--params", str(path)), "prepare",
                          expected.format(path=vectors))


@pytest.mark.parametrize("task", ["ner", "sentiment"])
def test_missing_source_and_missing_task_section(prepared, tmp_path, task):
    _, params = prepared
    path = edited(params, tmp_path, "p", **{f"{task}.prepare.source": str(tmp_path / "nowhere")})
    assert_one_line_error(run_stage("pipelines.prepare", task, "--params", str(path)), "prepare", "nowhere")
    cfg = yaml.safe_load(params.read_text())
    del cfg[task]
    (tmp_path / "no_task.yaml").write_text(yaml.safe_dump(cfg))
    assert_one_line_error(run_stage("pipelines.train", task, "--params", str(tmp_path / "no_task.yaml")), "train",
                          f"task {task!r} has no section in params.yaml")


@pytest.mark.parametrize("task, overrides, expected", [
    ("ner", {"ner.train.optimizer": "adamw2"}, "unknown optimizer 'adamw2'"),
    ("sentiment", {"sentiment.train.embeddings_file": "nowhere/vectors.txt"}, "embeddings file not found"),
    ("sentiment", {"sentiment.train.mixed_precision": "float8"}, "train.mixed_precision must be null or one of"),
    ("ner", {"ner.train.min_steps": -5}, "ner.train.min_steps must be >= 0 or null, got -5"),
    ("ner", {"ner.model.members": 0}, "ner.model.members must be an int >= 1, got 0"),
    ("ner", {"ner.train.document_vote": 1.5},
     "ner.train.document_vote must be auto, null or a number in [0.5, 1), got 1.5"),
    ("sentiment", {"sentiment.train.ema_momentum": 1.5},
     "sentiment.train.ema_momentum must be null or a number in (0, 1), got 1.5"),
])
def test_train_bad_params(prepared, tmp_path, task, overrides, expected):
    _, params = prepared
    path = edited(params, tmp_path, "p", **overrides)
    assert_one_line_error(run_stage("pipelines.train", task, "--params", str(path)), "train", expected)


def test_train_malformed_vectors_file(prepared, tmp_path):
    _, params = prepared
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("film 0.1 0.2\ngood 0.3\n")
    path = edited(params, tmp_path, "p", **{"ner.train.embeddings_file": str(vectors), "ner.model.word_dim": 2})
    assert_one_line_error(run_stage("pipelines.train", "ner", "--params", str(path)), "train",
                          f"{vectors}:2: vector for 'good' has 1 values, expected 2")


@pytest.mark.parametrize("task", ["ner", "sentiment"])
def test_tune_bad_search_space(prepared, tmp_path, task):
    _, params = prepared
    path = edited(params, tmp_path, "p", **{f"{task}.tune.enabled": True, f"{task}.tune.max_trials": 1,
                                           f"{task}.tune.search_space": {"batch_size": {"type": "int", "min": 8,
                                                                                        "max": 64}}})
    assert_one_line_error(run_stage("pipelines.tune", task, "--params", str(path)), "tune",
                          "search space entry 'batch_size' is neither a model nor a train setting")


@pytest.mark.parametrize("stage", ["evaluate", "export"])
@pytest.mark.parametrize("task", ["ner", "sentiment"])
def test_stages_before_train_name_the_missing_model(prepared, stage, task):
    _, params = prepared
    assert_one_line_error(run_stage(f"pipelines.{stage}", task, "--params", str(params)), stage,
                          "model.keras not found; run the train stage first")


def test_train_before_prepare(tmp_path):
    params = tiny_params(tmp_path, tmp_path / "conll")
    assert_one_line_error(run_stage("pipelines.train", "ner", "--params", str(params)), "train",
                          "vocab.json not found; run the prepare stage first")


def test_predict_bad_jsonl_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('"fine"\n{"txt": 1}\n')
    proc = run_stage("pipelines.predict", "sentiment", "--model", str(tmp_path), "--jsonl", str(path))
    assert_one_line_error(proc, "predict", "in.jsonl:2: expected a JSON string or an object")


def test_word2vec_missing_corpus(prepared, tmp_path):
    _, params = prepared
    path = edited(params, tmp_path, "p", **{"word2vec.corpus_dir": str(tmp_path / "no_corpus")})
    assert_one_line_error(run_stage("pipelines.word2vec", "--params", str(path)), "word2vec", "corpus folder not found")


def test_word2vec_bad_params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\n")
    assert_one_line_error(run_stage("pipelines.word2vec", "--params", str(path)), "word2vec", "no word2vec section")
    path.write_text("word2vec: [unclosed\n")
    assert_one_line_error(run_stage("pipelines.word2vec", "--params", str(path)), "word2vec",
                          f"{path}:2: not valid YAML")
