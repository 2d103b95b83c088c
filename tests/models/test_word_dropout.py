import keras
import numpy as np
import pytest

from models.word_dropout import WordDropout

OOV = 1


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _ids(shape=(4, 6), seed=0, vocab=50):
    """Right-padded word ids: real ids in [2, vocab), 0 for padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, vocab, size=shape).astype("int32")
    lengths = rng.integers(0, shape[1] + 1, size=shape[0])
    ids[np.arange(shape[1])[None, :] >= lengths[:, None]] = 0
    return ids


def _model(rate=0.5, seed=3):
    words = keras.Input(shape=(None,), dtype="int32")
    x = WordDropout(rate, oov_id=OOV, seed=seed, name="word_dropout")(words)
    x = keras.layers.Embedding(50, 4)(x)
    outputs = keras.layers.Dense(1)(x)
    return keras.Model(words, outputs)


def test_identity_when_not_training():
    ids = _ids()
    layer = WordDropout(0.9, oov_id=OOV, seed=1)
    np.testing.assert_array_equal(np.asarray(layer(ids)), ids)
    np.testing.assert_array_equal(np.asarray(layer(ids, training=False)), ids)
    # Rate 0 is the identity even while training.
    layer0 = WordDropout(0.0, oov_id=OOV, seed=1)
    np.testing.assert_array_equal(np.asarray(layer0(ids, training=True)), ids)


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_training_replaces_about_rate_by_oov_and_never_padding(rate):
    ids = _ids(shape=(200, 500), seed=1)
    padding = ids == 0
    assert 0.1 < padding.mean() < 0.9
    out = np.asarray(WordDropout(rate, oov_id=OOV, seed=7)(ids, training=True))
    assert out.shape == ids.shape and out.dtype == ids.dtype
    changed = out != ids
    # Padding is never replaced.
    np.testing.assert_array_equal(out[padding], 0)
    assert not changed[padding].any()
    # Replaced ids become the OOV id (real ids are >= 2, so all differ from it).
    np.testing.assert_array_equal(out[changed], OOV)
    # Replaced fraction of the real tokens is near the rate (n ~ 5e4: sd ~ 0.002).
    fraction = changed[~padding].mean()
    assert abs(fraction - rate) < 0.01, fraction


def test_rare_ids_are_replaced_at_their_own_rate():
    ids = _ids(shape=(200, 500), seed=3, vocab=50)
    layer = WordDropout(0.05, oov_id=OOV, seed=7, rare_ids=(40, 50), rare_rate=0.5)
    out = np.asarray(layer(ids, training=True))
    changed = out != ids
    rare, common = (ids >= 40), (ids >= 2) & (ids < 40)
    assert abs(changed[rare].mean() - 0.5) < 0.02 and abs(changed[common].mean() - 0.05) < 0.01
    np.testing.assert_array_equal(out[changed], OOV)
    assert not changed[ids == 0].any()
    np.testing.assert_array_equal(np.asarray(layer(ids, training=False)), ids)
    # Rate 0 with rare ids: only the rare ones change.
    only_rare = np.asarray(WordDropout(0.0, oov_id=OOV, seed=7, rare_ids=(40, 50), rare_rate=0.5)(ids, training=True))
    assert (only_rare != ids)[common].sum() == 0 and (only_rare != ids)[rare].mean() > 0.4
    with pytest.raises(ValueError, match="rare_rate"):
        WordDropout(0.1, rare_ids=(2, 3), rare_rate=1.0)
    with pytest.raises(ValueError, match="rare_ids"):
        WordDropout(0.1, rare_ids=(5, 3), rare_rate=0.5)


def test_custom_padding_id_is_never_replaced():
    ids = np.full((50, 100), 7, dtype="int32")
    ids[:, 50:] = 3
    out = np.asarray(WordDropout(0.5, oov_id=9, padding_id=3, seed=1)(ids, training=True))
    np.testing.assert_array_equal(out[:, 50:], 3)
    assert set(np.unique(out[:, :50])) == {7, 9}


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_invalid_rate_raises(rate):
    with pytest.raises(ValueError):
        WordDropout(rate)


def test_get_config_round_trip():
    layer = WordDropout(0.25, oov_id=5, padding_id=2, seed=11, rare_ids=(20, 40), rare_rate=0.5, name="wd")
    config = layer.get_config()
    for key, value in dict(rate=0.25, oov_id=5, padding_id=2, seed=11, rare_ids=[20, 40], rare_rate=0.5,
                           name="wd").items():
        assert config[key] == value
    restored = WordDropout.from_config(config)
    assert restored.get_config() == config
    # Same config and seed: same replacements.
    ids = _ids(shape=(20, 30), seed=2)
    np.testing.assert_array_equal(
        np.asarray(layer(ids, training=True)), np.asarray(restored(ids, training=True))
    )


def test_keras_save_load_round_trip(tmp_path):
    model = _model()
    ids = _ids()
    expected = np.asarray(model.predict_on_batch(ids))
    path = tmp_path / "word_dropout.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("word_dropout"), WordDropout)
    assert loaded.get_layer("word_dropout").get_config() == model.get_layer(
        "word_dropout"
    ).get_config()
    np.testing.assert_array_equal(np.asarray(loaded.predict_on_batch(ids)), expected)


def test_fit_step():
    model = _model()
    model.compile(optimizer="sgd", loss="mse")
    ids = _ids(shape=(8, 6))
    before = [np.copy(w) for w in model.trainable_weights]
    history = model.fit(ids, np.ones((8, 6, 1), "float32"), epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(
        not np.allclose(a, np.asarray(b)) for a, b in zip(before, model.trainable_weights)
    )
