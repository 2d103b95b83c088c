import keras
import numpy as np
import pytest

from models.sequence_pooling import POOLING_MODES, SequencePooling

BATCH, TIME, FEATURES = 4, 6, 8
# (mode, bidirectional) pairs: "last" is the only mode that reads `bidirectional`.
MODES = [
    ("last", True), ("last", False), ("max", True), ("mean", True), ("attention", True),
]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _inputs(batch=BATCH, time=TIME, features=FEATURES, seed=0):
    """Random sequences and right-padding masks with lengths 1..time (one full row)."""
    rng = np.random.default_rng(seed)
    sequence = rng.normal(size=(batch, time, features)).astype("float32")
    lengths = rng.integers(1, time + 1, size=batch)
    lengths[0] = time
    lengths[1] = 1
    mask = np.arange(time)[None, :] < lengths[:, None]
    # Padding holds large values that would dominate any unmasked pooling.
    sequence[~mask] = rng.normal(loc=50.0, scale=30.0, size=(int((~mask).sum()), features))
    return sequence, mask, lengths


def _layer(mode, bidirectional=True, **kwargs):
    layer = SequencePooling(mode, bidirectional=bidirectional, attention_units=5, **kwargs)
    layer.build((None, None, FEATURES))
    if mode == "attention":
        # Non-zero bias so every weight matters in the reference.
        rng = np.random.default_rng(7)
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    return layer


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _reference(layer, sequence, lengths):
    out = []
    for seq, length in zip(sequence.astype("float64"), lengths):
        real = seq[:length]
        if layer.mode == "max":
            out.append(real.max(0))
        elif layer.mode == "mean":
            out.append(real.mean(0))
        elif layer.mode == "last":
            if layer.bidirectional:
                half = FEATURES // 2
                out.append(np.concatenate([real[-1, :half], real[0, half:]]))
            else:
                out.append(real[-1])
        else:
            kernel, bias, vector = (w.astype("float64") for w in layer.get_weights())
            weights = _softmax(np.tanh(real @ kernel + bias) @ vector)
            out.append(weights @ real)
    return np.stack(out)


@pytest.mark.parametrize("mode, bidirectional", MODES)
def test_matches_numpy_reference(mode, bidirectional):
    layer = _layer(mode, bidirectional)
    sequence, mask, lengths = _inputs()
    out = np.asarray(layer(sequence, mask=mask))
    assert out.shape == (BATCH, FEATURES)
    np.testing.assert_allclose(out, _reference(layer, sequence, lengths), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode, bidirectional", MODES)
def test_padding_invariance(mode, bidirectional):
    layer = _layer(mode, bidirectional)
    sequence, mask, _ = _inputs()
    expected = np.asarray(layer(sequence, mask=mask))
    rng = np.random.default_rng(3)
    # Longer padding with different, arbitrary (large, either sign) values.
    extra = 5
    longer = rng.normal(scale=1e3, size=(BATCH, TIME + extra, FEATURES)).astype("float32")
    longer_mask = np.zeros((BATCH, TIME + extra), bool)
    longer_mask[:, :TIME] = mask
    longer[longer_mask] = sequence[mask]
    out = np.asarray(layer(longer, mask=longer_mask))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode, bidirectional", MODES)
def test_no_mask_means_all_real_and_empty_rows_give_zeros(mode, bidirectional):
    layer = _layer(mode, bidirectional)
    sequence, _, _ = _inputs()
    full = np.ones((BATCH, TIME), bool)
    np.testing.assert_allclose(
        np.asarray(layer(sequence)), np.asarray(layer(sequence, mask=full)), rtol=1e-6
    )
    empty = np.zeros((BATCH, TIME), bool)
    out = np.asarray(layer(sequence, mask=empty))
    np.testing.assert_array_equal(out, np.zeros((BATCH, FEATURES), "float32"))


def test_attention_weights_sum_to_one_and_are_zero_at_padding():
    layer = _layer("attention")
    sequence, mask, lengths = _inputs()
    weights = np.asarray(layer.attention_weights(sequence, mask))
    assert weights.shape == (BATCH, TIME)
    assert (weights[~mask] == 0.0).all()
    assert (weights[mask] > 0.0).all()
    np.testing.assert_allclose(weights.sum(-1), np.ones(BATCH), rtol=1e-6)
    assert weights[1, 0] == pytest.approx(1.0)  # a single real token gets all of it
    # The pooled vector is the weighted sum of the real steps.
    pooled = np.asarray(layer(sequence, mask=mask))
    np.testing.assert_allclose(
        pooled, np.einsum("bt,btd->bd", weights, np.where(mask[..., None], sequence, 0)),
        rtol=1e-5, atol=1e-5,
    )
    # Without a mask every step is real.
    assert np.asarray(layer.attention_weights(sequence)).sum(-1) == pytest.approx(np.ones(BATCH))


def test_attention_weights_builds_an_unbuilt_layer():
    layer = SequencePooling("attention", attention_units=3)
    sequence, mask, _ = _inputs()
    weights = np.asarray(layer.attention_weights(sequence, mask))
    assert layer.built and weights.shape == (BATCH, TIME)
    assert [tuple(w.shape) for w in layer.weights] == [(FEATURES, 3), (3,), (3,)]


@pytest.mark.parametrize("mode", ["last", "max", "mean"])
def test_attention_weights_needs_attention_mode(mode):
    sequence, mask, _ = _inputs()
    with pytest.raises(ValueError):
        _layer(mode).attention_weights(sequence, mask)


def test_only_attention_has_weights():
    for mode in POOLING_MODES:
        assert bool(_layer(mode).weights) == (mode == "attention"), mode


@pytest.mark.parametrize(
    "kwargs", [dict(mode="sum"), dict(mode="attention", attention_units=0)],
    ids=["mode", "attention_units"],
)
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        SequencePooling(**kwargs)


def test_last_bidirectional_needs_even_features():
    with pytest.raises(ValueError):
        SequencePooling("last", bidirectional=True)(np.zeros((2, 3, 5), "float32"))
    # Unidirectional is fine with an odd size.
    out = SequencePooling("last", bidirectional=False)(np.zeros((2, 3, 5), "float32"))
    assert tuple(out.shape) == (2, 5)


@pytest.mark.parametrize("mode, bidirectional", MODES)
def test_get_config_round_trip(mode, bidirectional):
    layer = _layer(mode, bidirectional, name="pool")
    config = layer.get_config()
    assert config["mode"] == mode
    assert config["bidirectional"] == bidirectional
    assert config["attention_units"] == 5
    restored = SequencePooling.from_config(config)
    assert restored.get_config() == config
    restored.build((None, None, FEATURES))
    restored.set_weights(layer.get_weights())
    sequence, mask, _ = _inputs()
    np.testing.assert_allclose(
        np.asarray(restored(sequence, mask=mask)), np.asarray(layer(sequence, mask=mask)),
        rtol=1e-6,
    )


@pytest.mark.parametrize("mode", ["attention", "last"])
def test_keras_save_load_round_trip(mode, tmp_path):
    sequence_in = keras.Input(shape=(None, FEATURES), name="sequence")
    mask_in = keras.Input(shape=(None,), dtype="bool", name="mask")
    pooled = SequencePooling(mode, attention_units=5, name="pool")(sequence_in, mask=mask_in)
    model = keras.Model([sequence_in, mask_in], pooled)
    path = tmp_path / "pool.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.get_layer("pool")
    assert isinstance(layer, SequencePooling)
    assert layer.get_config() == model.get_layer("pool").get_config()
    sequence, mask, _ = _inputs()
    np.testing.assert_array_equal(
        np.asarray(loaded([sequence, mask])), np.asarray(model([sequence, mask]))
    )
