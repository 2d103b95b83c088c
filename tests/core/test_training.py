"""core.training: optimizers from params, model selection with patience and resumable state, throughput."""

import json

import keras
import pytest

from pipelines.core.errors import ParamsError
from pipelines.core.training import OPTIMIZERS, ModelSelector, make_optimizer, median_throughput


def test_make_optimizer_settings():
    opt = make_optimizer({"optimizer": "SGD", "learning_rate": "0.1", "clipnorm": 5})
    assert type(opt) is keras.optimizers.SGD
    assert float(opt.learning_rate) == pytest.approx(0.1) and opt.clipnorm == 5.0
    assert make_optimizer({"optimizer": "adam", "learning_rate": 0.01, "clipnorm": 0}).clipnorm is None
    decayed = make_optimizer({"optimizer": "adam", "learning_rate": 0.01, "lr_decay": 0.5}, steps_per_epoch=10)
    schedule = decayed._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.InverseTimeDecay)
    assert float(schedule(20)) == pytest.approx(0.01 / (1 + 0.5 * 2))  # lr / (1 + d * epoch) after 2 epochs


def test_unknown_optimizer_is_a_params_error():
    with pytest.raises(ParamsError, match="unknown optimizer 'adagrad'; choose from " + ", ".join(OPTIMIZERS)):
        make_optimizer({"optimizer": "adagrad", "learning_rate": 0.1})


def tiny_model():
    inputs = keras.Input(shape=(2,))
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


def run_epochs(selector, values, start=0):
    for epoch, value in enumerate(values, start=start):
        selector.on_epoch_end(epoch, {"val_f1": value})
        if selector.model.stop_training:
            return epoch
    return None


def test_model_selector_keeps_the_best_and_stops_after_patience(tmp_path):
    selector = ModelSelector("val_f1", tmp_path / "state", patience=2)
    selector.set_model(tiny_model())
    selector.model.stop_training = False
    selector.on_train_begin()
    stopped = run_epochs(selector, [0.2, 0.5, 0.4, 0.5, 0.9])
    assert stopped == 3  # 0.4 and 0.5 (not better than 0.5): two epochs without improvement
    assert selector.state == {"best": 0.5, "best_epoch": 2, "wait": 2}
    assert selector.checkpoint.is_file()
    assert json.loads(selector.state_path.read_text()) == selector.state


def test_model_selector_min_mode_and_resume(tmp_path):
    first = ModelSelector("val_loss", tmp_path, patience=3, mode="min")
    first.set_model(tiny_model())
    first.model.stop_training = False
    first.on_train_begin()
    for epoch, loss in enumerate([1.0, 0.7, 0.8]):
        first.on_epoch_end(epoch, {"val_loss": loss})
    assert first.state == {"best": 0.7, "best_epoch": 2, "wait": 1}
    resumed = ModelSelector("val_loss", tmp_path, patience=3, mode="min")
    resumed.on_train_begin()  # a resumed run continues from the saved state
    assert resumed.state == first.state


def test_model_selector_names_a_missing_metric(tmp_path):
    selector = ModelSelector("val_f1", tmp_path, patience=1)
    with pytest.raises(ParamsError, match="'val_f1' is not in the epoch logs: \\['loss'\\]"):
        selector.on_epoch_end(0, {"loss": 1.0})


def test_median_throughput_skips_the_first_epoch():
    assert median_throughput(1000, [10.0, 1.0, 2.0, 4.0]) == 500.0
    assert median_throughput(1000, [10.0, 1.0, 2.0, 4.0], skip_first=False) == pytest.approx(1000 / 3.0)
    assert median_throughput(1000, [4.0]) == 250.0
    assert median_throughput(1000, []) == 0.0
