"""Training killed for real (SIGKILL) at every kind of point, then resumed through the stage command.

One chain of runs on a fixture, each killed somewhere else, must end in the
weights and history of an uninterrupted run; damaged state is recovered from
the other slot or refused in one line.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import yaml

from pipelines import prepare
from pipelines.core.faults import ENV
from tests.conftest import ROOT, tiny_params, write_conll_splits

EPOCHS = 3


def run_train(params, kill_at=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop(ENV, None)
    if kill_at:
        env[ENV] = kill_at
    return subprocess.run([sys.executable, "-m", "pipelines.train", "ner", "--params", str(params)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def slot_states(out):
    states = {}
    for slot in sorted((out / "train_state").glob("slot-*")):
        path = slot / "state.json"
        states[slot.name] = json.loads(path.read_text())["epoch"] if path.is_file() else None
    return states


def weights(path):
    import models.tagger  # noqa: F401  registers the model class

    return [keras.ops.convert_to_numpy(w) for w in keras.saving.load_model(path, compile=False).weights]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A prepared fixture and a function that copies it into a fresh run folder with its own params."""
    tmp = tmp_path_factory.mktemp("resume")
    source = write_conll_splits(tmp / "conll", 40, 12, 12)
    base = tiny_params(tmp, source, **{"ner.train.epochs": EPOCHS, "ner.train.patience": EPOCHS})
    assert prepare.main(["ner", "--params", str(base)]) == 0
    prepared_out = tmp / "out" / "ner"

    def new_run(name, **train):
        cfg = yaml.safe_load(base.read_text())
        out = tmp / name / "ner"
        shutil.copytree(prepared_out, out)
        cfg["ner"]["out_dir"] = str(out)
        cfg["ner"]["train"].update(train)
        params = tmp / f"{name}.yaml"
        params.write_text(yaml.safe_dump(cfg))
        return params, out

    return new_run


@pytest.fixture(scope="module")
def reference(prepared):
    params, out = prepared("reference")
    result = run_train(params)
    assert result.returncode == 0, result.stderr
    return out


def test_killed_anywhere_resumes_into_the_uninterrupted_run(prepared, reference):
    params, out = prepared("killed")

    # (b) Mid-epoch: killed in epoch 2, after epoch 1 was committed.
    result = run_train(params, "batch:2")
    assert result.returncode == -signal.SIGKILL
    assert slot_states(out) == {"slot-1": 1}  # epoch 2 had not reached its slot

    # (c) Mid-write: killed half-way through writing epoch 3's weights (its slot stays uncommitted).
    result = run_train(params, "write:weights.weights.h5:3")
    assert result.returncode == -signal.SIGKILL
    assert "resuming the interrupted run after epoch 1" in result.stdout
    assert slot_states(out) == {"slot-0": 2, "slot-1": None}
    assert list((out / "train_state" / "slot-1").glob(".*.tmp*"))  # the torn file a kill leaves

    # (a) Between epochs: killed right after epoch 3 was committed.
    result = run_train(params, "epoch_end:3")
    assert result.returncode == -signal.SIGKILL
    assert slot_states(out) == {"slot-0": 2, "slot-1": 3}

    # A torn commit record of the newest slot (what a kill in the middle of its write would leave).
    state = out / "train_state" / "slot-1" / "state.json"
    state.write_text(state.read_text()[:100])
    result = run_train(params)
    assert result.returncode == 0, result.stderr
    assert "slot-1/state.json is damaged" in result.stdout
    assert "resuming the interrupted run after epoch 2" in result.stdout

    for a, b in zip(weights(reference / "model.keras"), weights(out / "model.keras")):
        assert np.array_equal(a, b)
    history = json.loads((out / "history.json").read_text())
    expected = json.loads((reference / "history.json").read_text())
    columns = [k for k in expected[0] if k != "epoch_seconds"]
    assert [[h[k] for k in columns] for h in history] == [[h[k] for k in columns] for h in expected]
    summary = json.loads((out / "train.json").read_text())
    reference_summary = json.loads((reference / "train.json").read_text())
    assert {k: summary[k] for k in ("best_val", "best_epoch", "epochs")} == \
        {k: reference_summary[k] for k in ("best_val", "best_epoch", "epochs")}
    # The seconds add up the epochs kept from every killed run, not only the last run's.
    assert summary["seconds"] >= sum(h["epoch_seconds"] for h in history)
    assert not list((out / "train_state").glob("slot-*"))  # a finished run leaves no state to resume


def test_damaged_state_in_both_slots_is_refused_in_one_line(prepared):
    params, out = prepared("damaged")
    result = run_train(params, "epoch_end:2")
    assert result.returncode == -signal.SIGKILL
    for slot in ("slot-0", "slot-1"):
        weights_file = out / "train_state" / slot / "weights.weights.h5"
        weights_file.write_bytes(weights_file.read_bytes()[:1515])
    result = run_train(params)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("train: error: cannot resume: ")
    assert "weights.weights.h5 is damaged" in lines[0] and f"delete {out / 'train_state'}" in lines[0]
    assert not (out / "model.keras").exists()


def test_a_state_from_other_params_is_not_resumed(prepared):
    params, out = prepared("changed")
    assert run_train(params, "epoch_end:1").returncode == -signal.SIGKILL
    cfg = yaml.safe_load(params.read_text())
    cfg["ner"]["train"]["learning_rate"] = 0.002
    params.write_text(yaml.safe_dump(cfg))
    result = run_train(params)
    assert result.returncode == 0, result.stderr
    assert "from a run with other settings or data; training from scratch" in result.stdout
    assert len(json.loads((out / "history.json").read_text())) == EPOCHS


def test_weight_averaging_killed_between_epochs_resumes_into_the_uninterrupted_run(prepared, reference):
    # The saved state holds the average in the model and the training weights in the optimizer;
    # a resumed run that did not swap them back would train on from the average.
    params, out = prepared("averaged", ema_momentum=0.5)
    result = run_train(params)
    assert result.returncode == 0, result.stderr
    averaged = weights(out / "model.keras")
    assert not all(np.array_equal(a, b) for a, b in zip(weights(reference / "model.keras"), averaged))

    params, out = prepared("averaged_killed", ema_momentum=0.5)
    result = run_train(params, "epoch_end:2")
    assert result.returncode == -signal.SIGKILL
    result = run_train(params)
    assert result.returncode == 0, result.stderr
    assert "resuming the interrupted run after epoch 2" in result.stdout
    for a, b in zip(averaged, weights(out / "model.keras")):
        assert np.array_equal(a, b)
