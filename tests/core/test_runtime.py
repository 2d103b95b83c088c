"""Hardware settings of the train stage: padding-free batches, mixed precision, XLA, data parallelism."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from pipelines import prepare, train
from pipelines.core.errors import ParamsError
from pipelines.core.runtime import compiled, training_runtime
from pipelines.tasks import load_task
from tests.conftest import ROOT, tiny_params, write_conll_splits


def test_defaults_on_tensorflow():
    with training_runtime({}) as runtime:
        assert runtime.backend == "tensorflow"
        assert runtime.padding_free is False  # TF's cuDNN kernel takes right-padded masks
        assert runtime.precision == "float32" and runtime.jit_compile == "auto"
        assert runtime.replicas == 1 and runtime.strategy is None


def test_compiled_runs_the_python_body_once_for_new_shapes_and_new_values():
    """Under TensorFlow the body is traced, not rerun: the NER calibration scores every
    validation batch 13 times, which eagerly stepped the CRF through time op by op."""
    runs = []

    def double(x, t):
        runs.append(1)
        return x * t

    fast = compiled(double)
    for length in (3, 5, 7, 9, 11):
        for t in (0.5, 2.0):
            out = fast(keras.ops.ones((2, length)), keras.ops.convert_to_tensor(t, "float32"))
            np.testing.assert_allclose(keras.ops.convert_to_numpy(out), np.full((2, length), t))
    assert len(runs) <= 3  # a trace per shape until reduce_retracing generalises them


@pytest.mark.parametrize("cfg,message", [
    ({"mixed_precision": "float16"}, "mixed_precision"),
    ({"padding_free": "yes"}, "padding_free"),
    ({"jit_compile": "xla"}, "jit_compile"),
    ({"distribution": "model_parallel"}, "distribution"),
])
def test_bad_settings_are_refused(cfg, message):
    with pytest.raises(ParamsError, match=message):  # a ValueError, reported by stages as one line
        with training_runtime(cfg):
            pass


def test_policy_is_restored_even_on_error():
    with pytest.raises(RuntimeError):
        with training_runtime({"mixed_precision": "mixed_float16"}):
            assert keras.config.dtype_policy().name == "mixed_float16"
            raise RuntimeError("boom")
    assert keras.config.dtype_policy().name == "float32"


@pytest.fixture(scope="module")
def padding_free_ner(tmp_path_factory):
    """A tiny NER training with padding-free batches under mixed_float16."""
    tmp = tmp_path_factory.mktemp("pf")
    source = write_conll_splits(tmp / "conll", 40, 12, 12)
    params = tiny_params(tmp, source, **{"ner.train.padding_free": True, "ner.train.mixed_precision": "mixed_float16",
                                         "ner.train.epochs": 3, "ner.train.learning_rate": 0.01})
    for stage in (prepare, train):
        assert stage.main(["ner", "--params", str(params)]) == 0
    return tmp / "out" / "ner"


def test_padding_free_training_records_its_runtime(padding_free_ner):
    runtime = json.loads((padding_free_ner / "train_details.json").read_text())["runtime"]
    assert runtime["padding_free"] is True
    assert runtime["precision"] == "mixed_float16"
    assert np.isfinite(json.loads((padding_free_ner / "history.json").read_text())[-1]["loss"])
    assert keras.config.dtype_policy().name == "float32"  # restored after training


def test_saved_model_is_masked_float32_and_scores_as_in_training(padding_free_ner):
    """model.keras is the masked float32 twin; on padded validation batches it reproduces the best val F1."""
    from seqeval.metrics import f1_score

    from pipelines.tasks.ner.encoding import decode_names, to_iob2
    from pipelines.tasks.ner.model import predict_tag_ids

    task = load_task("ner")
    model = keras.saving.load_model(padding_free_ner / "model.keras")
    assert model.rnn_mask is True
    assert {v.dtype for v in model.weights} == {"float32"}
    assert model.get_layer("tag_logits").compute_dtype == "float32"
    assert model.get_layer("bi_lstm_0").compute_dtype == "float32"

    vocab = json.loads((padding_free_ner / "vocab.json").read_text())
    encoder = task.encoder(padding_free_ner)
    split = task.load_split(padding_free_ner, "validation")
    ids = predict_tag_ids(model, encoder.encode(split.tokens), batch_size=5)  # padded buckets, masked model
    f1 = f1_score(to_iob2(split.extra["tags"], vocab["tag_scheme"]),
                  to_iob2(decode_names(ids, vocab["tags"]), vocab["tag_scheme"]))
    summary = json.loads((padding_free_ner / "train.json").read_text())
    # The training run scored float16 activations; the float32 model may differ in the last digits.
    assert f1 == pytest.approx(summary["best_val"], abs=0.02)


def test_padding_free_sentiment_reproduces_its_validation_accuracy(tmp_path):
    from pipelines.tasks.sentiment.encoding import DocumentEncoder, load_split
    from pipelines.tasks.sentiment.model import classes_of, logit_parts, predict_probabilities

    params = tiny_params(tmp_path, tmp_path / "unused", **{
        "sentiment.train.padding_free": True, "sentiment.train.jit_compile": True, "sentiment.train.epochs": 2})
    for stage in (prepare, train):
        assert stage.main(["sentiment", "--params", str(params)]) == 0
    out = tmp_path / "out" / "sentiment"
    summary = json.loads((out / "train.json").read_text())
    runtime = json.loads((out / "train_details.json").read_text())["runtime"]
    assert runtime["padding_free"] is True and runtime["jit_compile"] is True
    model = keras.saving.load_model(out / "model.keras")
    assert model.rnn_mask is True
    encoder = DocumentEncoder.from_vocab_file(out / "vocab.json")
    split = load_split(out, "validation")
    probs = predict_probabilities(model, encoder.encode(split.tokens), batch_size=3)
    # best_val is the recurrent side's; the saved model also mixes in the n-gram side fitted after training.
    _, recurrent, _ = logit_parts(model, encoder, split, batch_size=3)
    assert float(np.mean(classes_of(recurrent) == split.y)) == pytest.approx(summary["best_val"], abs=1e-6)
    finish = json.loads((out / "train_details.json").read_text())["finish"]
    accuracy = float(np.mean(probs.argmax(axis=1) == split.y))
    assert accuracy == pytest.approx(finish["val_accuracy"]["mixed"], abs=1e-5)


def test_xla_with_the_crf_under_tensorflow_is_refused(tmp_path, conll_dir):
    from pipelines.core.trainer import train as train_task

    params = tiny_params(tmp_path, conll_dir, **{"ner.train.jit_compile": True})
    assert prepare.main(["ner", "--params", str(params)]) == 0
    import yaml

    with pytest.raises(ParamsError, match="jit_compile: true does not work with TensorFlow and the CRF"):
        train_task(load_task("ner"), yaml.safe_load(params.read_text()), tmp_path / "out" / "ner")
    assert keras.config.dtype_policy().name == "float32"


def test_data_parallel_ner_training_runs(tmp_path, conll_dir):
    params = tiny_params(tmp_path, conll_dir, **{"ner.train.distribution": "data_parallel", "ner.train.epochs": 2,
                                                 "ner.train.learning_rate": 0.01})
    for stage in (prepare, train):
        assert stage.main(["ner", "--params", str(params)]) == 0
    out = tmp_path / "out" / "ner"
    runtime = json.loads((out / "train_details.json").read_text())["runtime"]
    # MirroredStrategy uses every GPU, or the one CPU when there is none.
    assert runtime["distribution"] == "data_parallel" and runtime["replicas"] == max(1, len(runtime["devices"]))
    losses = [h["loss"] for h in json.loads((out / "history.json").read_text())]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


DATA_PARALLEL_STEP = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from models.classifier import TextClassifier
    from models.tagger import SequenceTagger

    def one_step(make, x, y, strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = make()
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        model.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0)
        return [w.numpy() for w in model.weights]

    rng = np.random.default_rng(0)
    words = rng.integers(2, 30, size=(8, 6)).astype("int32")
    words[4:, 4:] = 0
    chars = rng.integers(1, 15, size=(8, 6, 4)).astype("int32") * (words[..., None] > 0)
    tags = rng.integers(0, 5, size=(8, 6)).astype("int32")
    cases = {
        "tagger": (lambda: SequenceTagger(30, 15, 5, word_dim=6, char_dim=4, char_filters=5, hidden_size=7,
                                          dropout=0.0, word_dropout=0.0),
                   {"words": words, "chars": chars}, tags),
        "classifier": (lambda: TextClassifier(30, 2, embedding_dim=6, hidden_size=5, dropout=0.0),
                       {"words": words}, rng.integers(0, 2, size=8).astype("int32")),
    }
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = {"replicas": two.num_replicas_in_sync}
    for name, (make, x, y) in cases.items():
        single = one_step(make, x, y, tf.distribute.get_strategy())
        split = one_step(make, x, y, two)
        result[name] = max(float(np.max(np.abs(a - b))) for a, b in zip(single, split))
    print(json.dumps(result))
""")


def test_two_replicas_take_the_same_step_as_one():
    """Loss scaling per replica: the step on a batch split over 2 devices equals the step on one."""
    done = subprocess.run([sys.executable, "-c", DATA_PARALLEL_STEP], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["tagger"] < 1e-5, result
    assert result["classifier"] < 1e-5, result
