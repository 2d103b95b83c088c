import itertools

import keras
import numpy as np
import pytest

from models.classifier import TextClassifier
from models.recurrent import ProjectedGRU, ProjectedLSTM
from models.sequence_pooling import SequencePooling

VOCAB = 20
TINY = dict(embedding_dim=6, hidden_size=5, attention_units=4)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _classifier(num_classes=2, **kwargs):
    return TextClassifier(VOCAB, num_classes, **{**TINY, **kwargs})


def _words(batch=3, time=6, seed=0, low=2):
    """Right-padded ids in [low, VOCAB), lengths 1..time with one full row."""
    rng = np.random.default_rng(seed)
    words = rng.integers(low, VOCAB, size=(batch, time)).astype("int32")
    lengths = rng.integers(1, time + 1, size=batch)
    lengths[0] = time
    words[np.arange(time)[None] >= lengths[:, None]] = 0
    return words


POOLINGS = ["max", "mean", "last", "attention"]
# (num_classes, sigmoid_for_binary) -> number of logits.
HEADS = [(2, True, 1), (3, True, 3), (2, False, 2)]


@pytest.mark.parametrize(
    "pooling, rnn_type, head", list(itertools.product(POOLINGS, ["lstm", "gru"], HEADS[:2]))
    + [("max", "lstm", HEADS[2])],
)
def test_output_shapes_and_probabilities(pooling, rnn_type, head):
    num_classes, sigmoid_for_binary, num_logits = head
    model = _classifier(
        num_classes, rnn_type=rnn_type, pooling=pooling, sigmoid_for_binary=sigmoid_for_binary
    )
    words = _words(batch=3, time=6)
    logits = model({"words": words}, training=False)
    assert tuple(logits.shape) == (3, num_logits)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    probs = np.asarray(model.probabilities(logits))
    assert probs.shape == (3, num_classes)
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(-1), np.ones(3), rtol=1e-6)
    logits = np.asarray(logits, "float64")
    if num_logits == 1:
        np.testing.assert_allclose(probs[:, 1], 1 / (1 + np.exp(-logits[:, 0])), rtol=1e-5)
    else:
        e = np.exp(logits - logits.max(-1, keepdims=True))
        np.testing.assert_allclose(probs, e / e.sum(-1, keepdims=True), rtol=1e-5)
    cell = ProjectedLSTM if rnn_type == "lstm" else ProjectedGRU  # subclasses of Keras LSTM/GRU
    rnn = model.get_layer(f"bi_{rnn_type}_0")
    assert isinstance(rnn.forward_layer, cell)
    assert rnn.forward_layer.recurrent_dropout == 0  # cuDNN-eligible
    assert model.get_layer("pooling").mode == pooling


def test_predict_returns_probabilities():
    model = _classifier(3, pooling="attention", num_layers=2)
    words = _words(batch=5, time=7)
    expected = np.asarray(model.probabilities(model({"words": words}, training=False)))
    np.testing.assert_allclose(
        np.asarray(model.predict_on_batch({"words": words})), expected, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(model.predict({"words": words}, batch_size=2, verbose=0)), expected,
        rtol=1e-5, atol=1e-6,
    )


@pytest.mark.parametrize(
    "pooling, rnn_type, num_layers, num_classes",
    [("last", "lstm", 2, 2), ("max", "gru", 1, 3), ("mean", "lstm", 1, 2),
     ("attention", "gru", 2, 3)],
)
def test_padding_does_not_change_predictions(pooling, rnn_type, num_layers, num_classes):
    model = _classifier(num_classes, pooling=pooling, rnn_type=rnn_type, num_layers=num_layers)
    # A large padding embedding, so any leak of padding would show.
    table = model.get_layer("word_embedding").embeddings
    table.assign(np.concatenate([np.full((1, 6), 5.0), np.asarray(table)[1:]]).astype("float32"))
    alone = np.array([[4, 7, 9, 3]], "int32")
    batch = _words(batch=3, time=9, seed=1)
    batch[0] = 0
    batch[0, :4] = alone[0]
    probs_alone = np.asarray(model.probabilities(model({"words": alone}, training=False)))
    probs_batch = np.asarray(model.probabilities(model({"words": batch}, training=False)))
    np.testing.assert_allclose(probs_batch[0], probs_alone[0], rtol=1e-5, atol=1e-6)
    if pooling == "attention":
        np.testing.assert_allclose(
            np.asarray(model.attention({"words": batch}))[0, :4],
            np.asarray(model.attention({"words": alone}))[0], rtol=1e-5, atol=1e-6,
        )


def test_attention_weights():
    model = _classifier(3, pooling="attention", num_layers=2)
    words = _words(batch=4, time=7, seed=2)
    mask = words != 0
    weights = np.asarray(model.attention({"words": words}))
    assert weights.shape == (4, 7)
    assert (weights[~mask] == 0.0).all()
    np.testing.assert_allclose(weights.sum(-1), np.ones(4), rtol=1e-6)
    # The same weights as the pooling layer sees inside the model.
    rnn_out = keras.Model(model.input, model.get_layer("bi_lstm_1").output)({"words": words})
    expected = model.get_layer("pooling").attention_weights(rnn_out, mask)
    np.testing.assert_allclose(weights, np.asarray(expected), rtol=1e-6, atol=1e-7)
    # A raw array works too.
    np.testing.assert_allclose(np.asarray(model.attention(words)), weights, rtol=1e-6)


def test_attention_needs_attention_pooling():
    with pytest.raises(ValueError):
        _classifier(pooling="max").attention({"words": _words()})


@pytest.mark.parametrize("num_classes", [2, 3])
def test_compute_loss_matches_numpy(num_classes):
    model = _classifier(num_classes)
    words = _words(batch=5, seed=3)
    labels = np.array([0, 1, 1, 0, 1][:5], "int32") % num_classes
    labels[-1] = num_classes - 1
    y_pred = model({"words": words}, training=False)
    logits = np.asarray(y_pred, "float64")
    if num_classes == 2:
        p = 1 / (1 + np.exp(-logits[:, 0]))
        nll = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    else:
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        nll = -log_probs[np.arange(5), labels]
    loss = float(model.compute_loss({"words": words}, labels, y_pred))
    assert loss == pytest.approx(nll.mean(), rel=1e-5)
    weights = np.array([1.0, 0.0, 2.0, 1.0, 0.5], "float32")
    loss = float(model.compute_loss({"words": words}, labels, y_pred, sample_weight=weights))
    assert loss == pytest.approx((nll * weights).mean(), rel=1e-5)


def _task(num_classes, n=96, time=8, seed=0):
    """Binary: does token 5 occur? 3 classes: which marker (3, 4 or 5) occurs."""
    rng = np.random.default_rng(seed)
    words = _words(batch=n, time=time, seed=seed, low=6)
    lengths = (words != 0).sum(-1)
    labels = rng.integers(0, num_classes, size=n).astype("int32")
    positions = rng.integers(0, lengths)
    for i in range(n):
        if num_classes == 2:
            if labels[i]:
                words[i, positions[i]] = 5
        else:
            words[i, positions[i]] = 3 + labels[i]
    return {"words": words}, labels


@pytest.mark.parametrize(
    "num_classes, pooling", [(2, "max"), (2, "attention"), (3, "max"), (3, "attention")]
)
def test_fit_learns_marker_tokens(num_classes, pooling):
    model = _classifier(
        num_classes, pooling=pooling, embedding_dim=8, hidden_size=8, dropout=0.0
    )
    metric = model.accuracy_metric()
    expected_metric = (
        keras.metrics.BinaryAccuracy if num_classes == 2
        else keras.metrics.SparseCategoricalAccuracy
    )
    assert isinstance(metric, expected_metric) and metric.name == "accuracy"
    model.compile(optimizer=keras.optimizers.Adam(0.03), metrics=[metric])
    inputs, labels = _task(num_classes)
    history = model.fit(inputs, labels, epochs=10, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses
    probs = np.asarray(model.predict(inputs, verbose=0))
    assert probs.shape == (len(labels), num_classes)
    accuracy = (probs.argmax(-1) == labels).mean()
    assert accuracy >= 0.9, accuracy
    # The compiled metric agrees with the probabilities (threshold 0 on logits
    # is threshold 0.5 on probabilities).
    evaluated = model.evaluate(inputs, labels, verbose=0, return_dict=True)["accuracy"]
    assert evaluated == pytest.approx(accuracy, abs=1e-6)


@pytest.mark.parametrize("pooling", ["attention", "last"])
def test_keras_save_load_round_trip(pooling, tmp_path):
    model = _classifier(3 if pooling == "attention" else 2, pooling=pooling, num_layers=2,
                        rnn_type="gru", word_dropout=0.1)
    words = {"words": _words(batch=4, seed=5)}
    path = tmp_path / "classifier.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, TextClassifier)
    assert isinstance(loaded.get_layer("pooling"), SequencePooling)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(
        np.asarray(loaded.predict_on_batch(words)), np.asarray(model.predict_on_batch(words))
    )
    if pooling == "attention":
        np.testing.assert_array_equal(
            np.asarray(loaded.attention(words)), np.asarray(model.attention(words))
        )


def test_get_config_round_trip():
    kwargs = dict(
        embedding_dim=7, rnn_type="gru", hidden_size=3, num_layers=2, pooling="attention",
        attention_units=2, dropout=0.2, word_dropout=0.1, sigmoid_for_binary=False, oov_id=3,
    )
    model = TextClassifier(VOCAB, 2, name="clf", **kwargs)
    config = model.get_config()
    expected = dict(kwargs, vocab_size=VOCAB, num_classes=2, name="clf")
    for key, value in expected.items():
        assert config[key] == value, key
    restored = TextClassifier.from_config(config)
    assert restored.get_config() == config
    assert restored.get_layer("word_dropout").oov_id == 3
    assert restored.get_layer("logits").units == 2
    restored.set_weights(model.get_weights())
    words = {"words": _words()}
    np.testing.assert_allclose(
        np.asarray(restored(words, training=False)), np.asarray(model(words, training=False)),
        rtol=1e-6, atol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs",
    [dict(rnn_type="rnn"), dict(pooling="sum"), dict(num_classes=1), dict(num_layers=0)],
    ids=["rnn_type", "pooling", "num_classes", "num_layers"],
)
def test_invalid_arguments_raise(kwargs):
    num_classes = kwargs.pop("num_classes", 2)
    with pytest.raises(ValueError):
        _classifier(num_classes, **kwargs)
