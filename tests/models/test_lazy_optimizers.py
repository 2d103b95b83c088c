"""LazyAdam/LazyNadam: Keras' update on dense weights, row-wise updates of embedding gradients."""

import keras
import numpy as np
import pytest

from models.lazy_optimizers import LazyAdam, LazyNadam

PAIRS = [(keras.optimizers.Adam, LazyAdam), (keras.optimizers.Nadam, LazyNadam)]


def model_and_weights(optimizer):
    keras.utils.set_random_seed(0)
    ids = keras.Input((3,), dtype="int32")
    x = keras.layers.Embedding(8, 4, name="embedding")(ids)
    x = keras.layers.GlobalAveragePooling1D()(x)
    out = keras.layers.Dense(1, name="dense")(x)
    model = keras.Model(ids, out)
    model.compile(optimizer=optimizer, loss="mse")
    return model


BATCH_1 = (np.array([[1, 2, 3], [3, 3, 1]], "int32"), np.array([[1.0], [-2.0]], "float32"))
BATCH_2 = (np.array([[3, 4, 4], [4, 3, 3]], "int32"), np.array([[0.5], [3.0]], "float32"))


def dense_step(model, batch):
    """One step of Keras' optimizer on dense gradients: textbook Adam/Nadam for every row."""
    import tensorflow as tf

    ids, y = batch
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=ids, y=y, y_pred=model(ids, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    model.optimizer.apply([tf.convert_to_tensor(g) for g in grads], model.trainable_weights)


def table(model):
    return np.array(model.get_layer("embedding").embeddings)


@pytest.mark.parametrize("keras_cls,lazy_cls", PAIRS)
@pytest.mark.parametrize("clipnorm", [None, 0.05])
def test_first_step_equals_keras_and_later_steps_leave_unused_rows_alone(keras_cls, lazy_cls, clipnorm):
    kwargs = {"learning_rate": 0.1, **({"clipnorm": clipnorm} if clipnorm else {})}
    # The reference gets dense gradients: on a sparse one with a row used twice, Keras' own
    # update squares the pieces separately, which is not Adam.
    dense = model_and_weights(keras_cls(**kwargs))
    lazy = model_and_weights(lazy_cls(**kwargs))
    start = table(lazy)
    np.testing.assert_array_equal(start, table(dense))

    # Step 1: zero moments, so untouched rows do not move under either optimizer.
    dense_step(dense, BATCH_1)
    lazy.train_on_batch(*BATCH_1)
    after_1 = table(lazy)
    np.testing.assert_allclose(after_1, table(dense), rtol=1e-5, atol=1e-6)
    assert not np.allclose(after_1[[1, 2, 3]], start[[1, 2, 3]])
    np.testing.assert_array_equal(after_1[[0, 4, 5, 6, 7]], start[[0, 4, 5, 6, 7]])

    # Step 2 uses rows 3 and 4: Keras' momentum still moves rows 1 and 2, the lazy update does not.
    dense_step(dense, BATCH_2)
    lazy.train_on_batch(*BATCH_2)
    after_2 = table(lazy)
    np.testing.assert_array_equal(after_2[[1, 2]], after_1[[1, 2]])
    assert not np.allclose(table(dense)[[1, 2]], after_1[[1, 2]])
    np.testing.assert_allclose(after_2[[3, 4]], table(dense)[[3, 4]], rtol=1e-5, atol=1e-6)
    for got, want in zip(lazy.get_layer("dense").get_weights(), dense.get_layer("dense").get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lazy_cls", [LazyAdam, LazyNadam])
def test_clipping_uses_the_norm_of_the_summed_rows(lazy_cls):
    # Row 3 appears three times in BATCH_1: its gradient pieces must be summed before the norm.
    optimizer = lazy_cls(learning_rate=0.1, clipnorm=0.05)
    model = model_and_weights(optimizer)
    import tensorflow as tf

    ids, y = BATCH_1
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(ids) - y) ** 2)
    (grad,) = tape.gradient(loss, [model.get_layer("embedding").embeddings.value])
    assert isinstance(grad, tf.IndexedSlices)
    clipped = optimizer._clip_by_norm(grad)
    assert isinstance(clipped, tf.IndexedSlices)
    dense = tf.convert_to_tensor(grad).numpy()
    expected = dense * min(1.0, 0.05 / np.linalg.norm(dense))
    np.testing.assert_allclose(tf.convert_to_tensor(clipped).numpy(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("lazy_cls", [LazyAdam, LazyNadam])
def test_config_round_trip(lazy_cls):
    optimizer = lazy_cls(learning_rate=0.002, clipnorm=5.0)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is lazy_cls
    assert restored.clipnorm == 5.0 and float(restored.learning_rate) == pytest.approx(0.002)


def test_make_optimizer_names():
    from pipelines.core.training import make_optimizer

    base = {"learning_rate": 0.01, "clipnorm": 5.0}
    assert type(make_optimizer({**base, "optimizer": "lazy_nadam"})) is LazyNadam
    assert type(make_optimizer({**base, "optimizer": "Lazy_Adam"})) is LazyAdam
    assert type(make_optimizer({**base, "optimizer": "adam"})) is keras.optimizers.Adam
    with pytest.raises(ValueError, match="unknown optimizer 'lazy_sgd'"):
        make_optimizer({**base, "optimizer": "lazy_sgd"})


@pytest.mark.parametrize("cls", [LazyAdam, LazyNadam])
def test_lazy_moving_average_equals_keras_dense_average(cls):
    # Rows 10..49 are first used after step 6, others never: their averages catch up in closed form.
    keras.utils.set_random_seed(0)
    ids = keras.Input((None,), dtype="int32")
    out = keras.layers.Dense(1)(keras.ops.mean(keras.layers.Embedding(60, 4)(ids), axis=1))
    model = keras.Model(ids, out)
    optimizer = cls(learning_rate=0.05, clipnorm=1.0, use_ema=True, ema_momentum=0.8)
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(0)
    dense = None
    for step in range(12):
        model.train_on_batch(rng.integers(0, 10 if step < 6 else 50, (4, 3)), rng.normal(size=(4, 1)))
        values = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
        dense = values if dense is None else [0.8 * a + 0.2 * v for a, v in zip(dense, values)]
    optimizer.bring_averages_up_to_date()
    averages = [keras.ops.convert_to_numpy(a) for a in optimizer._model_variables_moving_average]
    assert optimizer._lazily_averaged == {0}  # the embedding; the dense kernel is averaged as Keras does
    for got, want in zip(averages, dense):
        np.testing.assert_allclose(got, want, atol=1e-6)
