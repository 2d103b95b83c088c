import keras
import numpy as np
import pytest

from models.char_encoder import CharEncoder

VOCAB = 20
ENCODERS = ["cnn", "lstm"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _encoder(encoder, **kwargs):
    kwargs = dict(embedding_dim=4, filters=5, kernel_size=3, hidden_size=3, **kwargs)
    return CharEncoder(VOCAB, encoder=encoder, **kwargs)


def _chars(shape=(2, 3, 5), seed=0):
    """Right-padded char ids (1..VOCAB-1), with words of different lengths and
    the last token of the last row a padding token (all zeros)."""
    rng = np.random.default_rng(seed)
    chars = rng.integers(1, VOCAB, size=shape).astype("int32")
    lengths = rng.integers(1, shape[2] + 1, size=shape[:2])
    lengths[0, 0] = shape[2]  # one word fills the whole width
    lengths[0, 1] = 1  # and one has a single character
    chars[np.arange(shape[2]) >= lengths[..., None]] = 0
    chars[-1, -1] = 0
    return chars


def _model(encoder):
    chars = keras.Input(shape=(None, None), dtype="int32")
    x = _encoder(encoder, name="char_encoder")(chars)
    return keras.Model(chars, keras.layers.Dense(2)(x))


@pytest.mark.parametrize("encoder, dim", [("cnn", 5), ("lstm", 6)])
def test_output_shape(encoder, dim):
    layer = _encoder(encoder)
    out = layer(_chars(shape=(2, 3, 5)))
    assert tuple(out.shape) == (2, 3, dim)
    assert layer.output_dim == dim
    assert layer.compute_output_shape((2, 3, 5)) == (2, 3, dim)
    # Dynamic time and char lengths.
    assert tuple(layer(_chars(shape=(1, 7, 4))).shape) == (1, 7, dim)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_padding_characters_do_not_change_token_vectors(encoder):
    layer = _encoder(encoder)
    chars = _chars()
    padded = np.concatenate([chars, np.zeros((2, 3, 4), "int32")], axis=-1)
    np.testing.assert_allclose(
        np.asarray(layer(padded)), np.asarray(layer(chars)), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("encoder", ENCODERS)
def test_padding_tokens_give_finite_output(encoder):
    layer = _encoder(encoder)
    out = np.asarray(layer(_chars()))
    assert np.isfinite(out).all()
    if encoder == "cnn":
        np.testing.assert_array_equal(out[-1, -1], 0.0)
        # Real tokens are not zeroed.
        assert np.abs(out[0]).max() > 0


def test_invalid_arguments_raise():
    with pytest.raises(ValueError):
        CharEncoder(VOCAB, encoder="gru")
    with pytest.raises(ValueError):
        CharEncoder(VOCAB, encoder="none")
    with pytest.raises(ValueError):
        CharEncoder(1)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_get_config_round_trip(encoder):
    layer = _encoder(encoder, dropout=0.1, name="enc")
    chars = _chars()
    expected = np.asarray(layer(chars))
    config = layer.get_config()
    for key, value in dict(
        vocab_size=VOCAB, embedding_dim=4, encoder=encoder, filters=5, kernel_size=3,
        hidden_size=3, dropout=0.1, name="enc",
    ).items():
        assert config[key] == value
    restored = CharEncoder.from_config(config)
    assert restored.get_config() == config
    restored.build(chars.shape)
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(restored(chars)), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_keras_save_load_round_trip(encoder, tmp_path):
    model = _model(encoder)
    chars = _chars()
    expected = np.asarray(model.predict_on_batch(chars))
    path = tmp_path / f"char_{encoder}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("char_encoder"), CharEncoder)
    np.testing.assert_allclose(
        np.asarray(loaded.predict_on_batch(chars)), expected, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("encoder", ENCODERS)
def test_fit_step(encoder):
    model = _model(encoder)
    model.compile(optimizer="sgd", loss="mse")
    layer = model.get_layer("char_encoder")
    before = [np.copy(w) for w in layer.trainable_weights]
    assert before, "CharEncoder has no trainable weights"
    chars = _chars()
    history = model.fit(chars, np.ones((2, 3, 2), "float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # Gradients reach the encoder's own weights.
    assert any(
        not np.allclose(a, np.asarray(b)) for a, b in zip(before, layer.trainable_weights)
    )
