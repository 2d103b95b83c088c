"""`dvc repro` of the real dvc.yaml on a fixture: stages run, and only what changed re-runs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, make_sentences, tiny_params, write_conll

DVC = Path(sys.executable).parent / "dvc"


def run(cmd, cwd):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git + DVC copy of the project whose params point at fixture data."""
    if not DVC.exists():
        pytest.skip("dvc is not installed in this environment")
    tmp = tmp_path_factory.mktemp("dvc")
    repo = tmp / "repo"
    repo.mkdir()
    for name in ("pipelines", "models"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    source = tmp / "conll"
    source.mkdir()
    write_conll(source / "train.txt", make_sentences(30, seed=1))
    write_conll(source / "valid.txt", make_sentences(8, seed=2))
    write_conll(source / "test.txt", make_sentences(8, seed=3))
    params = yaml.safe_load(tiny_params(tmp, source).read_text())
    with open(tmp / "corpus" / "corpus.jsonl", "a") as corpus:  # words the NER train split lacks
        corpus.write('{"text": "Zanzibar and Timbuktu are far away"}\n' * 3)
    params["ner"]["out_dir"] = "outputs/ner"  # inside the repo, as in the real params
    params["sentiment"]["out_dir"] = "outputs/sentiment"
    params["word2vec"]["out_dir"] = "outputs/word2vec"
    params["ner"]["train"]["embeddings_file"] = "outputs/word2vec/vectors.txt"
    params["ner"]["prepare"]["embedding_words"] = "outputs/word2vec/vectors.txt"  # as in the real params
    params["sentiment"]["train"]["embeddings_file"] = "outputs/word2vec/vectors.txt"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    run(["git", "init", "-q"], repo)
    run([str(DVC), "init", "-q"], repo)
    run([str(DVC), "config", "core.analytics", "false"], repo)
    first = run([str(DVC), "repro"], repo)
    return repo, first


def test_repro_runs_every_stage(project):
    repo, first = project
    for stage in ("word2vec", "prepare@ner", "tune@ner", "tune@sentiment", "train@ner", "evaluate@ner", "export@ner",
                  "prepare@sentiment", "train@sentiment", "evaluate@sentiment", "export@sentiment"):
        assert f"Running stage '{stage}'" in first
    details = json.loads((repo / "outputs" / "ner" / "train_details.json").read_text())
    assert details["embeddings_found"] > 10  # the word2vec output initialised the tagger
    vocab = json.loads((repo / "outputs" / "ner" / "stats.json").read_text())["vocab"]
    assert vocab["words"] > vocab["train_words"]  # and lent its other words to the vocabulary
    assert details["hyperparameters_source"] == "params"  # tuning is off by default
    assert json.loads((repo / "outputs" / "ner" / "best_hyperparameters.json").read_text())["enabled"] is False
    metrics = json.loads(run([str(DVC), "metrics", "show", "--json"], repo))
    flat = json.dumps(metrics)
    assert '"f1"' in flat and '"best_val"' in flat
    assert '"accuracy"' in flat and '"roc_auc"' in flat and '"tokens_per_s"' in flat


def test_second_repro_is_a_no_op(project):
    repo, _ = project
    out = run([str(DVC), "repro"], repo)
    assert "Running stage" not in out


def test_changing_evaluate_params_reruns_only_evaluate(project):
    repo, _ = project
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ner"]["evaluate"]["batch_size"] = 7
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = run([str(DVC), "repro"], repo)
    assert "Running stage 'evaluate@ner'" in out
    for stage in ("word2vec", "prepare@ner", "tune@ner", "tune@sentiment", "train@ner", "export@ner", "evaluate@sentiment"):
        assert f"Running stage '{stage}'" not in out


def test_dvc_exp_run_with_a_param_override(project):
    """`dvc exp run -S` (how users try settings) runs from a commit and records metrics."""
    repo, _ = project
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"], repo)
    out = run([str(DVC), "exp", "run", "-S", "sentiment.evaluate.batch_size=3", "-n", "small-eval"], repo)
    assert "Running stage 'evaluate@sentiment'" in out
    assert "Running stage 'train@sentiment'" not in out
    shown = json.loads(run([str(DVC), "exp", "show", "--json"], repo))
    assert "small-eval" in json.dumps(shown)


def changed_stages(repo):
    status = json.loads(run([str(DVC), "status", "--json"], repo))
    return {name.split(":")[-1] for name in status}


@pytest.mark.parametrize("edited, stages", [
    ("pipelines/tasks/ner/serving.py", {"export@ner"}),
    ("pipelines/tasks/sentiment/evaluation.py", {"evaluate@sentiment"}),
    ("pipelines/core/exporting.py", {"export@ner", "export@sentiment"}),
    ("pipelines/tasks/ner/model.py", {"tune@ner", "train@ner", "evaluate@ner", "export@ner"}),
])
def test_editing_code_invalidates_exactly_the_stages_that_import_it(project, edited, stages):
    """The code deps follow the imports: serving code is not a train dependency, one task's code not the other's."""
    repo, _ = project
    path = repo / edited
    original = path.read_text()
    path.write_text(original + "\n# edited\n")
    try:
        assert changed_stages(repo) == stages
    finally:
        path.write_text(original)
    assert changed_stages(repo) == set()


def test_metrics_show_fits_a_terminal(project):
    repo, _ = project
    table = run([str(DVC), "metrics", "show"], repo)
    assert max(len(line) for line in table.splitlines()) <= 200, table
