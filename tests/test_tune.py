"""The tune stage: hypermodels, a tiny search on fixtures, resuming, train using the result, distribution."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner as kt
import pytest
import yaml

from models.hypermodels import ConfiguredHyperModel, validate_space
from pipelines import prepare, train, tune
from pipelines.core import hparams
from pipelines.core.training import make_optimizer
from pipelines.tasks import load_task
from tests.conftest import ROOT, tiny_params

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
TINY_SPACE = {
    "hidden_size": {"type": "choice", "values": [8, 12, 16]},
    "dropout": {"type": "float", "min": 0.1, "max": 0.5, "step": 0.1},
    "learning_rate": {"type": "float", "min": 0.002, "max": 0.02, "sampling": "log"},
}


def search_overrides(task, **tune_settings):
    settings = {"enabled": True, "tuner": "random", "max_trials": 2, "epochs": 1, "max_seconds": None,
                "search_space": TINY_SPACE, **tune_settings}
    return {f"{task}.tune.{k}": v for k, v in settings.items()}


def prepared(tmp_path, conll_dir, task, **overrides):
    params = tiny_params(tmp_path, conll_dir, **overrides)
    assert prepare.main([task, "--params", str(params)]) == 0
    return params, tmp_path / "out" / task


TINY_VOCABS = {"ner": {"words": ["w"] * 50, "chars": ["c"] * 20, "tags": ["t"] * 9},
               "sentiment": {"words": ["w"] * 50, "labels": ["neg", "pos"]}}


def hypermodel(task, space=None):
    """The one hypermodel class, parameterised by the task's model builder and metrics."""
    cfg, spec = PARAMS[task], load_task(task)
    train_cfg = {k: cfg["train"][k] for k in hparams.TUNABLE_TRAIN_KEYS}
    space = cfg["tune"]["search_space"] if space is None else space
    return ConfiguredHyperModel(lambda c: spec.build_model(c, TINY_VOCABS[task]), cfg["model"], train_cfg, space,
                                lambda c: make_optimizer(c, 10), spec.monitor, compile_metrics=spec.compile_metrics)


@pytest.mark.parametrize("task", ["ner", "sentiment"])
def test_hypermodel_builds_the_params_model_by_default(task):
    model = hypermodel(task).build(kt.HyperParameters())
    for name, value in PARAMS[task]["model"].items():
        assert getattr(model, name) == value, name
    assert float(model.optimizer.learning_rate) == pytest.approx(PARAMS[task]["train"]["learning_rate"])
    assert float(model.optimizer.clipnorm) == PARAMS[task]["train"]["clipnorm"]


def pinned_cases(task):
    space = PARAMS[task]["tune"]["search_space"]
    for name, spec in space.items():
        if spec["type"] == "choice":
            values = spec["values"]
        elif spec["type"] == "boolean":
            values = [False, True]
        else:
            values = [spec["min"], spec["max"]]
        for value in values:
            yield task, name, value


@pytest.mark.parametrize("task, name, value", [*pinned_cases("ner"), *pinned_cases("sentiment")])
def test_hypermodel_builds_with_each_value_pinned(task, name, value):
    hp = kt.HyperParameters()
    hp.Fixed(name, value)
    model = hypermodel(task).build(hp)
    if name in PARAMS[task]["model"]:
        assert getattr(model, name) == pytest.approx(value)
    else:
        assert float(getattr(model.optimizer, name)) == pytest.approx(value)
    assert model.optimizer is not None  # compiled


def test_search_space_is_validated():
    model, train_cfg = PARAMS["ner"]["model"], {"learning_rate": 0.001}
    with pytest.raises(ValueError, match="neither a model nor a train setting"):
        validate_space({"batch_size": {"type": "int", "min": 8, "max": 64}}, model, train_cfg)
    with pytest.raises(ValueError, match="type must be one of"):
        validate_space({"hidden_size": {"type": "range", "min": 8, "max": 64}}, model, train_cfg)
    with pytest.raises(ValueError, match="log sampling needs min > 0"):
        validate_space({"dropout": {"type": "float", "min": 0, "max": 0.5, "sampling": "log"}}, model, train_cfg)
    with pytest.raises(ValueError, match="non-empty"):
        validate_space({"rnn_type": {"type": "choice", "values": []}}, model, train_cfg)


def forbid_test_split(monkeypatch):
    """The tuner must never read the test split."""
    from pipelines.tasks.ner import encoding as ner_encoding
    from pipelines.tasks.sentiment import encoding as sentiment_encoding

    def guard(real):
        def load(out, split):
            assert split != "test", "the tuner read the test split"
            return real(out, split)
        return load

    for module in (ner_encoding, sentiment_encoding):
        monkeypatch.setattr(module, "load_split", guard(module.load_split))


def test_ner_search_writes_best_values_and_train_uses_them(tmp_path, conll_dir, monkeypatch):
    from pipelines.tasks.ner.model import EntityF1Callback

    params, out = prepared(tmp_path, conll_dir, "ner", **search_overrides("ner"))
    forbid_test_split(monkeypatch)
    seen = []  # (validation sentences, F1) of every epoch of every trial
    real = EntityF1Callback.on_epoch_end

    def spy(self, epoch, logs=None):
        real(self, epoch, logs)
        seen.append((len(self.gold), logs["val_f1"]))

    monkeypatch.setattr(EntityF1Callback, "on_epoch_end", spy)
    assert tune.main(["ner", "--params", str(params)]) == 0

    best = json.loads((out / "best_hyperparameters.json").read_text())
    rows = json.loads((out / "tune_trials.json").read_text())
    assert best["enabled"] and best["objective"] == "val_f1" and set(best["values"]) == set(TINY_SPACE)
    assert len(rows) == 2 and all(r["status"] == "COMPLETED" for r in rows)
    assert all(r["epochs"] == 1 and r["seconds"] > 0 for r in rows)
    # The objective is entity F1 on the 12 validation sentences, as the callback computed it.
    assert [n for n, _ in seen] == [12, 12]
    assert sorted(r["score"] for r in rows) == pytest.approx(sorted(f for _, f in seen), abs=1e-6)
    assert best["best_score"] == max(r["score"] for r in rows)
    assert best["values"] in [{k: r["hyperparameters"][k] for k in TINY_SPACE} for r in rows]
    csv_lines = (out / "tune_trials.csv").read_text().strip().splitlines()
    assert csv_lines[0].startswith("trial,trial_id,status,score,epochs,seconds") and len(csv_lines) == 3
    summary = json.loads((out / "tune.json").read_text())
    assert summary["trials"] == summary["completed"] == 2 and summary["best_score"] == best["best_score"]

    monkeypatch.undo()
    assert train.main(["ner", "--params", str(params)]) == 0
    trained = json.loads((out / "train_details.json").read_text())
    assert trained["hyperparameters_source"] == "tune"
    for name, value in best["values"].items():
        assert trained["hyperparameters"][name] == value, name


def test_sentiment_search_uses_validation_accuracy(tmp_path, conll_dir, monkeypatch):
    params, out = prepared(tmp_path, conll_dir, "sentiment", **search_overrides("sentiment"))
    forbid_test_split(monkeypatch)
    assert tune.main(["sentiment", "--params", str(params)]) == 0
    best = json.loads((out / "best_hyperparameters.json").read_text())
    rows = json.loads((out / "tune_trials.json").read_text())
    assert best["objective"] == "val_accuracy" and len(rows) == 2
    # 10 validation reviews: every accuracy is a multiple of 1/10.
    for r in rows:
        assert 0 <= r["score"] <= 1 and abs(r["score"] * 10 - round(r["score"] * 10)) < 1e-5
    monkeypatch.undo()
    assert train.main(["sentiment", "--params", str(params)]) == 0
    trained = json.loads((out / "train_details.json").read_text())
    assert trained["hyperparameters_source"] == "tune"
    assert trained["hyperparameters"]["hidden_size"] == best["values"]["hidden_size"]


def test_disabled_tuning_writes_placeholders_and_train_uses_params(tmp_path, conll_dir):
    params, out = prepared(tmp_path, conll_dir, "ner")
    code = ("import sys; from pipelines import tune; rc = tune.main(['ner', '--params', sys.argv[1]]); "
            "print('keras_tuner' in sys.modules, 'keras' in sys.modules); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(params)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("False False")  # no KerasTuner (nor Keras) when disabled
    assert json.loads((out / "best_hyperparameters.json").read_text()) == {"enabled": False, "values": {}}
    assert json.loads((out / "tune_trials.json").read_text()) == []
    assert (out / "tuner").is_dir() and (out / "tune_trials.csv").is_file()
    assert train.main(["ner", "--params", str(params)]) == 0
    trained = json.loads((out / "train_details.json").read_text())
    assert trained["hyperparameters_source"] == "params" and trained["hyperparameters"]["hidden_size"] == 16


def ran_trials(text):
    return [line.split(" ran trial ")[1].split(" ")[0] for line in text.splitlines() if " ran trial " in line]


def test_search_resumes_and_a_new_space_starts_a_new_search(tmp_path, conll_dir, monkeypatch, capsys):
    params, out = prepared(tmp_path, conll_dir, "ner", **search_overrides("ner"))
    real_fit = ConfiguredHyperModel.fit
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during the second trial
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(ConfiguredHyperModel, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tune.main(["ner", "--params", str(params)])
    assert ran_trials(capsys.readouterr().out) == ["0"]

    # Resumed: trial 0 is kept, only the interrupted trial runs.
    assert tune.main(["ner", "--params", str(params)]) == 0
    assert ran_trials(capsys.readouterr().out) == ["1"]
    first = json.loads((out / "tune_trials.json").read_text())
    assert [r["trial_id"] for r in first] == ["0", "1"]

    # A larger budget continues the same search.
    bigger = tiny_params(tmp_path, conll_dir, **search_overrides("ner", max_trials=3))
    assert tune.main(["ner", "--params", str(bigger)]) == 0
    assert ran_trials(capsys.readouterr().out) == ["2"]
    rows = json.loads((out / "tune_trials.json").read_text())
    assert rows[:2] == first and len(rows) == 3
    searches = [p.name for p in (out / "tuner").iterdir() if p.is_dir()]
    assert len(searches) == 1

    # A changed space is a new search, with its own folder; train refuses the stale result until it runs.
    space = {**TINY_SPACE, "rnn_type": {"type": "choice", "values": ["lstm", "gru"]}}
    changed = tiny_params(tmp_path, conll_dir, **search_overrides("ner", search_space=space))
    assert train.main(["ner", "--params", str(changed)]) == 1
    assert "run the tune stage first" in capsys.readouterr().err
    assert tune.main(["ner", "--params", str(changed)]) == 0
    assert ran_trials(capsys.readouterr().out) == ["0", "1"]
    assert len([p for p in (out / "tuner").iterdir() if p.is_dir()]) == 2
    best = json.loads((out / "best_hyperparameters.json").read_text())
    assert "rnn_type" in best["values"] and best["search"] not in searches


def run_tune(params):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "pipelines.tune", "ner", "--params", str(params)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_search_killed_in_a_trial_reruns_that_trial_identically(tmp_path, conll_dir):
    """SIGKILL during the second trial; the resumed search gives the uninterrupted search's trials."""
    overrides = search_overrides("ner", epochs=3)
    runs = {}
    for name in ("reference", "killed"):
        (tmp_path / name).mkdir()
        runs[name] = prepared(tmp_path / name, conll_dir, "ner", **overrides)
    params, out = runs["reference"]
    assert run_tune(params).wait(timeout=600) == 0

    params, out = runs["killed"]
    proc = run_tune(params)
    log = out / "tuner"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.read_text().strip() for p in log.glob("*/tuners/*.jsonl")):
            break  # the first trial has ended
        time.sleep(0.05)
    time.sleep(1.0)  # into the second trial's epochs
    proc.kill()
    stdout, _ = proc.communicate()
    assert proc.returncode == -9 and ran_trials(stdout) == ["0"], stdout
    resumed = run_tune(params)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    assert ran_trials(stdout) == ["1"]
    rows = {name: json.loads((p[1] / "tune_trials.json").read_text()) for name, p in runs.items()}
    strip = lambda rs: [{k: r[k] for k in ("trial_id", "status", "score", "epochs", "hyperparameters")}  # noqa: E731
                        for r in rs]
    assert strip(rows["killed"]) == strip(rows["reference"])


def test_a_damaged_search_state_is_refused_in_one_line(tmp_path, conll_dir):
    params, out = prepared(tmp_path, conll_dir, "ner", **search_overrides("ner", max_trials=1))
    assert tune.main(["ner", "--params", str(params)]) == 0
    (oracle,) = (out / "tuner").glob("*/oracle.json")
    oracle.write_text(oracle.read_text()[:50])
    proc = run_tune(params)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1 and "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"tune: error: {oracle} is damaged (JSONDecodeError: ")
    assert line.endswith(f"; delete {oracle.parent} to redo the search from its first trial")


def test_max_seconds_stops_starting_trials(tmp_path, conll_dir):
    params, out = prepared(tmp_path, conll_dir, "ner", **search_overrides("ner", max_trials=5, max_seconds=0.001))
    assert tune.main(["ner", "--params", str(params)]) == 1  # no trial could start
    params = tiny_params(tmp_path, conll_dir, **search_overrides("ner", max_trials=5, max_seconds=1))
    assert tune.main(["ner", "--params", str(params)]) == 0
    rows = json.loads((out / "tune_trials.json").read_text())
    assert 1 <= len(rows) < 5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path, text, procs, deadline):
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if any(p.poll() not in (None, 0) for p in procs):
            return
        time.sleep(0.5)


def test_distributed_search_shares_trials_between_workers(tmp_path, conll_dir):
    """A chief and two workers on loopback: every trial runs on exactly one worker, both work."""
    params, out = prepared(tmp_path, conll_dir, "ner", **search_overrides("ner", max_trials=4),
                           **{"ner.model.char_encoder": "none", "ner.model.use_crf": False})
    port = free_port()
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port),
            "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "pipelines.tune", "ner", "--params", str(params)]
    logs, procs = {}, {}
    deadline = time.monotonic() + 150
    try:
        # Workers first: they wait for the chief, so both are ready when trials are handed out.
        for tuner_id in ("tuner0", "tuner1"):
            logs[tuner_id] = tmp_path / f"{tuner_id}.log"
            procs[tuner_id] = subprocess.Popen(cmd, cwd=ROOT, env={**base, "KERASTUNER_TUNER_ID": tuner_id},
                                               stdout=open(logs[tuner_id], "w"), stderr=subprocess.STDOUT)
        for tuner_id in ("tuner0", "tuner1"):
            wait_for(logs[tuner_id], "tune: search", list(procs.values()), deadline)
        logs["chief"] = tmp_path / "chief.log"
        procs["chief"] = subprocess.Popen(cmd, cwd=ROOT, env={**base, "KERASTUNER_TUNER_ID": "chief"},
                                          stdout=open(logs["chief"], "w"), stderr=subprocess.STDOUT)
        for name, proc in procs.items():
            proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = {name: Path(path).read_text() for name, path in logs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name} failed:\n{text[name][-3000:]}"
    by_worker = {name: ran_trials(text[name]) for name in ("tuner0", "tuner1")}
    assert all(by_worker.values()), by_worker  # both workers ran trials
    assert not set(by_worker["tuner0"]) & set(by_worker["tuner1"])
    rows = json.loads((out / "tune_trials.json").read_text())  # written by the chief
    assert sorted(r["trial_id"] for r in rows) == sorted(by_worker["tuner0"] + by_worker["tuner1"])
    assert len(rows) == 4 and all(r["status"] == "COMPLETED" for r in rows)
    assert json.loads((out / "best_hyperparameters.json").read_text())["enabled"] is True


@pytest.mark.parametrize("kind, epochs", [("bayesian", 1), ("hyperband", 2)])
def test_other_tuners_complete_their_trials(tmp_path, conll_dir, kind, epochs):
    params, out = prepared(tmp_path, conll_dir, "ner", **search_overrides("ner", tuner=kind, epochs=epochs))
    assert tune.main(["ner", "--params", str(params)]) == 0
    rows = json.loads((out / "tune_trials.json").read_text())
    assert rows and all(r["status"] == "COMPLETED" and r["epochs"] >= 1 for r in rows)
    assert json.loads((out / "best_hyperparameters.json").read_text())["tuner"] == kind


def test_padding_free_search_trains_unmasked_models_and_keeps_its_name(tmp_path, conll_dir, monkeypatch):
    """Trials follow train.padding_free; hardware settings do not start a new search."""
    built = []
    original = ConfiguredHyperModel.build

    def spy(self, hp):
        model = original(self, hp)
        built.append(model.rnn_mask)
        return model

    monkeypatch.setattr(ConfiguredHyperModel, "build", spy)
    params, out = prepared(tmp_path, conll_dir, "ner", **search_overrides("ner", max_trials=1),
                           **{"ner.train.padding_free": True})
    assert tune.main(["ner", "--params", str(params)]) == 0
    assert built and not any(built)
    best = json.loads((out / "best_hyperparameters.json").read_text())
    as_params = yaml.safe_load(params.read_text())
    as_params["ner"]["train"].update(padding_free=False, mixed_precision="mixed_bfloat16", jit_compile=False)
    assert hparams.search_name(as_params, "ner") == best["search"]
