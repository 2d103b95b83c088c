"""core.training and core.train_state: optimizers, model selection with patience and resumable state, throughput."""

import json

import keras
import numpy as np
import pytest

from pipelines.core.batching import BucketBatcher
from pipelines.core.errors import ParamsError, StageError
from pipelines.core.train_state import TrainState
from pipelines.core.training import OPTIMIZERS, Schedule, make_optimizer, median_throughput


def test_make_optimizer_settings():
    opt = make_optimizer({"optimizer": "SGD", "learning_rate": "0.1", "clipnorm": 5})
    assert type(opt) is keras.optimizers.SGD
    assert float(opt.learning_rate) == pytest.approx(0.1) and opt.clipnorm == 5.0
    assert make_optimizer({"optimizer": "adam", "learning_rate": 0.01, "clipnorm": 0}).clipnorm is None
    decayed = make_optimizer({"optimizer": "adam", "learning_rate": 0.01, "lr_decay": 0.5}, steps_per_epoch=10)
    schedule = decayed._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.InverseTimeDecay)
    assert float(schedule(20)) == pytest.approx(0.01 / (1 + 0.5 * 2))  # lr / (1 + d * epoch) after 2 epochs


def test_schedule_leaves_a_large_dataset_alone():
    # CoNLL-2003 at batch 32: 439 batches x 40 epochs is above min_steps.
    schedule = Schedule({"epochs": 40, "patience": 8, "min_steps": 16000}, 439)
    assert (schedule.scale, schedule.epochs, schedule.patience, schedule.unit_steps) == (1.0, 40, 8, 439)
    assert Schedule({"epochs": 40, "patience": 8, "min_steps": None}, 5).epochs == 40


def test_schedule_stretches_a_small_dataset_to_min_steps():
    schedule = Schedule({"epochs": 40, "patience": 8, "min_steps": 16000}, 94)  # 3,000 sentences
    assert schedule.scale == pytest.approx(16000 / (40 * 94))
    assert schedule.epochs * 94 >= 16000 and (schedule.epochs - 1) * 94 < 16000
    assert schedule.patience == 35  # ceil(8 x 4.26): about the updates of 8 large epochs
    # The decay counts updates: lr / (1 + d * updates / 400), as on the large dataset.
    decayed = make_optimizer({"optimizer": "adam", "learning_rate": 0.01, "lr_decay": 0.5}, schedule.unit_steps)
    assert float(decayed._learning_rate(800)) == pytest.approx(0.01 / (1 + 0.5 * 2))
    assert "up to 171 epochs, patience 35, learning-rate decay per 400 updates" in schedule.describe()
    with pytest.raises(ParamsError, match="ner.train.min_steps must be >= 0"):
        Schedule({"epochs": 40, "patience": 8, "min_steps": -1}, 94, "ner.train")


def test_shipped_sentiment_schedule_keeps_imdb_at_four_epochs_and_stretches_a_small_split():
    import yaml

    from tests.conftest import ROOT

    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())["sentiment"]["train"]
    imdb = Schedule(cfg, 352)  # 22,500 training reviews at batch 64
    assert (imdb.scale, imdb.epochs, imdb.patience) == (1.0, 4, 2)
    small = Schedule(cfg, 47)  # 3,000 reviews
    assert (small.epochs, small.patience) == (30, 15) and small.epochs * 47 >= cfg["min_steps"]


def test_unknown_optimizer_is_a_params_error():
    with pytest.raises(ParamsError, match="unknown optimizer 'adagrad'; choose from " + ", ".join(OPTIMIZERS)):
        make_optimizer({"optimizer": "adagrad", "learning_rate": 0.1})


def tiny_model():
    inputs = keras.Input(shape=(2,))
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


def run_epochs(state, values, start=0):
    for epoch, value in enumerate(values, start=start):
        state.on_epoch_end(epoch, {"val_f1": value})
        if state.model.stop_training:
            return epoch
    return None


def new_state(directory, monitor="val_f1", patience=2, mode="max", model=None):
    state = TrainState(directory, monitor, patience, mode=mode, settings={"lr": 0.1}, log=lambda line: None)
    model = model or tiny_model()
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)  # as after a first training step
    state.restore(model)
    model.stop_training = False
    return state


def test_train_state_keeps_the_best_and_stops_after_patience(tmp_path):
    state = new_state(tmp_path / "state")
    stopped = run_epochs(state, [0.2, 0.5, 0.4, 0.5, 0.9])
    assert stopped == 3  # 0.4 and 0.5 (not better than 0.5): two epochs without improvement
    assert state.selection == {"best": 0.5, "best_epoch": 2, "wait": 2} and state.stopped
    assert state.checked_best_file().parent.name == "slot-0"  # epoch 4's slot, a link to epoch 2's best
    assert json.loads((tmp_path / "state" / "slot-0" / "state.json").read_text())["epoch"] == 4


def test_train_state_min_mode_and_resume(tmp_path):
    first = new_state(tmp_path, monitor="val_loss", patience=3, mode="min")
    for epoch, loss in enumerate([1.0, 0.7, 0.8]):
        first.on_epoch_end(epoch, {"val_loss": loss})
    assert first.selection == {"best": 0.7, "best_epoch": 2, "wait": 1}
    resumed = TrainState(tmp_path, "val_loss", 3, mode="min", settings={"lr": 0.1}, log=lambda line: None)
    model = tiny_model()
    model.compile(optimizer="adam", loss="mse")
    assert resumed.restore(model) == 3  # a resumed run continues from the saved state
    assert resumed.selection == first.selection and len(resumed.history) == 3
    assert not resumed.finished(4) and resumed.finished(3)


def test_train_state_names_a_missing_metric(tmp_path):
    state = new_state(tmp_path, patience=1)
    with pytest.raises(ParamsError, match="'val_f1' is not in the epoch logs: \\['loss'\\]"):
        state.on_epoch_end(0, {"loss": 1.0})


def test_a_damaged_best_checkpoint_is_refused(tmp_path):
    state = new_state(tmp_path)
    run_epochs(state, [0.3])
    state.best_file.write_bytes(state.best_file.read_bytes()[:100])
    with pytest.raises(StageError, match="best.keras is damaged"):
        state.checked_best_file()


def test_median_throughput_skips_the_first_epoch():
    assert median_throughput(1000, [10.0, 1.0, 2.0, 4.0]) == 500.0
    assert median_throughput(1000, [10.0, 1.0, 2.0, 4.0], skip_first=False) == pytest.approx(1000 / 3.0)
    assert median_throughput(1000, [4.0]) == 250.0
    assert median_throughput(1000, []) == 0.0


def test_periodic_progress_writes_while_a_long_step_runs(capsys):
    """DVC's log must not go quiet when one batch takes long (a trace, a slow step)."""
    import time

    import numpy as np

    from pipelines.core.training import PeriodicProgress

    class SlowFirstBatch(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                time.sleep(0.8)

    model = tiny_model()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((16, 2)), np.zeros((16, 1)), batch_size=8, epochs=1, verbose=0,
              callbacks=[PeriodicProgress(2, every=0.3), SlowFirstBatch()])
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("epoch 1: 0/2 batches (0%)") for line in lines), lines


class RecordingBatcher(BucketBatcher):
    """Records the example indices of every batch served."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.served = []

    def __getitem__(self, index):
        self.served.append(sorted(self.batch_indices[index].tolist()))
        return super().__getitem__(index)


class ServedPerEpoch(keras.callbacks.Callback):
    def __init__(self, batcher):
        super().__init__()
        self.batcher, self.epochs = batcher, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.batcher.served.clear()  # drops the batch Keras peeks at to build the model

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[epoch] = sorted(self.batcher.served)


@pytest.mark.parametrize("keras_iterates", [True, False], ids=["pydataset", "tf_data"])
def test_epoch_e_trains_on_the_batches_of_seed_and_e_fresh_and_resumed(tmp_path, monkeypatch, keras_iterates):
    """Under JAX and torch Keras iterates the batcher itself and calls its on_epoch_end once before
    the first epoch; every epoch trained on the next epoch's batches until fit_resumable corrected it."""
    from pipelines.core import training

    if keras_iterates:  # what fit_data gives under JAX and torch
        monkeypatch.setattr(training, "fit_data", lambda data: data)
    rng = np.random.default_rng(0)
    words = [rng.integers(1, 20, size=n).astype("int32") for n in rng.integers(1, 12, size=40)]
    labels = rng.integers(0, 2, size=40).astype("int32")
    kwargs = dict(batch_size=8, shuffle=True, seed=5)
    reference = BucketBatcher({"words": words}, labels, **kwargs)
    expected = {}
    for epoch in range(3):
        expected[epoch] = sorted(sorted(b.tolist()) for b in reference.batch_indices)
        reference.on_epoch_end()
    assert expected[0] != expected[1]

    def fit(epochs):
        inputs = keras.Input(shape=(None,), dtype="int32", name="words")
        hidden = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(20, 4, mask_zero=True)(inputs))
        model = keras.Model({"words": inputs}, keras.layers.Dense(2)(hidden))
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        batcher = RecordingBatcher({"words": words}, labels, **kwargs)
        recorder = ServedPerEpoch(batcher)
        training.fit_resumable(model, batcher, epochs, tmp_path / "state", "loss", patience=10, mode="min",
                               callbacks=[recorder], settings={"seed": 5})
        return recorder.epochs

    assert fit(2) == {0: expected[0], 1: expected[1]}
    assert fit(3) == {2: expected[2]}  # resumed after epoch 1
