"""ProjectedLSTM/ProjectedGRU compute what Keras' LSTM/GRU compute, with the same weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from models.recurrent import ProjectedGRU, ProjectedLSTM

PAIRS = [(layers.LSTM, ProjectedLSTM), (layers.GRU, ProjectedGRU)]
LENGTHS = [6, 3, 1, 6, 4]


def inputs(seed=0, dim=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(LENGTHS), max(LENGTHS), dim)).astype("float32")
    mask = np.arange(max(LENGTHS))[None] < np.array(LENGTHS)[:, None]
    return x, mask


def twins(keras_cls, projected_cls, **kwargs):
    x, _ = inputs()
    reference = keras_cls(4, **kwargs)
    projected = projected_cls(4, **kwargs)
    reference(x)
    projected(x)
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=w.shape).astype("float32") for w in reference.get_weights()]
    reference.set_weights(weights)
    projected.set_weights(weights)
    return reference, projected


@pytest.mark.parametrize("keras_cls,projected_cls", PAIRS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_same_outputs_and_gradients(keras_cls, projected_cls, go_backwards, with_mask, return_sequences):
    reference, projected = twins(keras_cls, projected_cls, go_backwards=go_backwards,
                                 return_sequences=return_sequences)
    x, mask = inputs()
    mask = mask if with_mask else None
    results = []
    for layer in (reference, projected):
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = layer(xt, mask=mask, training=True)
            loss = tf.reduce_sum(tf.sin(out * 3.0))
        grads = tape.gradient(loss, [xt] + layer.trainable_weights)
        results.append((out.numpy(), [g.numpy() for g in grads]))
    (ref_out, ref_grads), (out, grads) = results
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    assert len(grads) == len(ref_grads) == 4
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)
    if with_mask and return_sequences and not go_backwards:
        # The mask is honoured: padded steps repeat the last real output.
        for row, n in enumerate(LENGTHS):
            np.testing.assert_array_equal(out[row, n:], np.repeat(out[row, n - 1 : n], max(LENGTHS) - n, axis=0))


@pytest.mark.parametrize("keras_cls,projected_cls", PAIRS)
def test_initial_state_is_used(keras_cls, projected_cls):
    reference, projected = twins(keras_cls, projected_cls, return_sequences=True)
    x, mask = inputs()
    n = 2 if keras_cls is layers.LSTM else 1
    state = [np.full((len(LENGTHS), 4), 0.3 * (i + 1), dtype="float32") for i in range(n)]
    np.testing.assert_allclose(projected(x, initial_state=state, mask=mask),
                               reference(x, initial_state=state, mask=mask), rtol=1e-5, atol=1e-5)
    assert not np.allclose(projected(x, initial_state=state), projected(x))


@pytest.mark.parametrize("keras_cls,projected_cls", PAIRS)
def test_input_dropout_falls_back_to_keras_loop(keras_cls, projected_cls):
    # With input dropout in training the projection cannot leave the loop; inference is unaffected.
    reference, projected = twins(keras_cls, projected_cls, dropout=0.5, return_sequences=True)
    x, _ = inputs()
    np.testing.assert_allclose(projected(x, training=False), reference(x, training=False), rtol=1e-5, atol=1e-5)
    keras.utils.set_random_seed(0)
    trained = projected(x, training=True)
    assert trained.shape == (len(LENGTHS), max(LENGTHS), 4)
    assert not np.allclose(trained, projected(x, training=False))


@pytest.mark.parametrize("projected_cls", [ProjectedLSTM, ProjectedGRU])
def test_bidirectional_saves_and_loads(tmp_path, projected_cls):
    x, mask = inputs()
    words = keras.Input((None, 5))
    out = layers.Bidirectional(projected_cls(4, return_sequences=True))(words)
    model = keras.Model(words, out)
    assert type(model.layers[1].backward_layer) is projected_cls
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[1].forward_layer) is projected_cls
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)


def test_bidirectional_builds_the_projected_layers_and_rejects_unknown_types():
    from models.recurrent import bidirectional

    assert type(bidirectional("lstm", 3, "a").forward_layer) is ProjectedLSTM
    assert type(bidirectional("gru", 3, "b", return_sequences=False).forward_layer) is ProjectedGRU
    with pytest.raises(ValueError, match="rnn_type must be one of"):
        bidirectional("rnn", 3, "c")


def _bidirectional_with_weights(rnn_type="lstm", units=4):
    from models.recurrent import bidirectional

    layer = bidirectional(rnn_type, units, "bi")
    x, mask = inputs()
    layer(x, mask=mask)
    rng = np.random.default_rng(2)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") * 0.7 for w in layer.get_weights()])
    return layer


def _two_loops(layer, x, mask, training=False):
    return layers.Bidirectional.call(layer, tf.constant(x), mask=None if mask is None else tf.constant(mask),
                                     training=training).numpy()


@pytest.mark.parametrize("with_mask", [False, True])
def test_one_row_runs_both_directions_in_one_loop_with_the_same_outputs(monkeypatch, with_mask):
    layer = _bidirectional_with_weights()
    x, mask = inputs()
    calls = []
    one_loop = type(layer)._one_loop
    monkeypatch.setattr(type(layer), "_one_loop", lambda self, *a: calls.append(1) or one_loop(self, *a))
    for row, n in enumerate(LENGTHS):
        xi, mi = x[row : row + 1], (mask[row : row + 1] if with_mask else None)
        out = layer(xi, mask=mi, training=False).numpy()
        np.testing.assert_allclose(out, _two_loops(layer, xi, mi), rtol=1e-6, atol=1e-6)
        if with_mask:  # zero at padding, as Keras' Bidirectional
            assert not out[0, n:].any() and out[0, :n].all()
    assert len(calls) == len(LENGTHS)
    # Several rows, and training, keep Keras' two loops.
    np.testing.assert_array_equal(layer(x, mask=mask, training=False).numpy(), _two_loops(layer, x, mask))
    layer(x[:1], mask=mask[:1], training=True)
    assert len(calls) == len(LENGTHS)


def test_one_loop_is_chosen_at_run_time_in_a_graph():
    layer = _bidirectional_with_weights()
    x, mask = inputs()
    serve = tf.function(lambda x, m: layer(x, mask=m, training=False),
                        input_signature=[tf.TensorSpec([None, None, 5]), tf.TensorSpec([None, None], tf.bool)])
    for rows in (slice(1, 2), slice(0, 5), slice(4, 5)):
        np.testing.assert_allclose(serve(x[rows], mask[rows]).numpy(), _two_loops(layer, x[rows], mask[rows]),
                                   rtol=1e-6, atol=1e-6)


def test_gru_keeps_two_loops(monkeypatch):
    layer = _bidirectional_with_weights("gru")
    monkeypatch.setattr(type(layer), "_one_loop", lambda *a: pytest.fail("GRU ran the LSTM loop"))
    x, mask = inputs()
    np.testing.assert_array_equal(layer(x[:1], mask=mask[:1]).numpy(), _two_loops(layer, x[:1], mask[:1]))


def test_models_saved_with_keras_bidirectional_load(tmp_path, monkeypatch):
    # Models saved before this layer existed hold Keras' Bidirectional; they load into it.
    import models.recurrent
    from models.tagger import SequenceTagger

    x, mask = inputs()
    words = np.where(mask, np.arange(1, 6)[:, None] + np.arange(6)[None], 0).astype("int32")
    chars = np.where(words[..., None] > 0, words[..., None] % 7 + 1, 0).repeat(3, axis=-1).astype("int32")
    with monkeypatch.context() as patch:
        patch.setattr(models.recurrent, "Bidirectional", layers.Bidirectional)
        old = SequenceTagger(20, 10, 4, word_dim=4, char_dim=3, char_filters=3, hidden_size=3)
        assert type(old.get_layer("bi_lstm_0")) is layers.Bidirectional
    old.save(tmp_path / "old.keras")
    loaded = keras.saving.load_model(tmp_path / "old.keras")
    assert type(loaded.get_layer("bi_lstm_0")) is models.recurrent.Bidirectional
    for rows in (slice(0, 5), slice(2, 3)):
        inputs_ = {"words": words[rows], "chars": chars[rows]}
        np.testing.assert_allclose(loaded(inputs_, training=False), old(inputs_, training=False),
                                   rtol=1e-5, atol=1e-6)
