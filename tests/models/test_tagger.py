import itertools

import keras
import numpy as np
import pytest

from models.char_encoder import CharEncoder
from models.crf import CRF
from models.recurrent import ProjectedGRU, ProjectedLSTM
from models.tagger import SequenceTagger

WORD_VOCAB = 30
CHAR_VOCAB = 15
NUM_TAGS = 4
TINY = dict(
    word_dim=6, char_dim=4, char_filters=5, char_kernel_size=3, char_hidden_size=3,
    hidden_size=5,
)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _tagger(**kwargs):
    kwargs = {**TINY, **kwargs}
    return SequenceTagger(WORD_VOCAB, CHAR_VOCAB, NUM_TAGS, **kwargs)


def _chars_for(words, width, rng):
    """Char ids for each word (same word -> same chars), right-padded to width."""
    spelling = {
        w: rng.integers(1, CHAR_VOCAB, size=rng.integers(1, width + 1))
        for w in range(WORD_VOCAB)
    }
    chars = np.zeros(words.shape + (width,), "int32")
    for idx in np.ndindex(words.shape):
        if words[idx]:
            s = spelling[int(words[idx])]
            chars[idx][: len(s)] = s
    return chars


def _batch(batch=3, time=6, width=4, seed=0):
    rng = np.random.default_rng(seed)
    words = rng.integers(2, WORD_VOCAB, size=(batch, time)).astype("int32")
    lengths = rng.integers(1, time + 1, size=batch)
    lengths[0] = time
    words[np.arange(time)[None] >= lengths[:, None]] = 0
    return {"words": words, "chars": _chars_for(words, width, rng)}


COMBOS = list(
    itertools.product([True, False], ["lstm", "gru"], ["cnn", "lstm", "none"], [1, 2])
)


@pytest.mark.parametrize("use_crf, rnn_type, char_encoder, num_layers", COMBOS)
def test_output_shapes(use_crf, rnn_type, char_encoder, num_layers):
    model = _tagger(
        use_crf=use_crf, rnn_type=rnn_type, char_encoder=char_encoder, num_layers=num_layers
    )
    inputs = _batch(batch=3, time=6, width=4)
    logits = model(inputs, training=False)
    assert tuple(logits.shape) == (3, 6, NUM_TAGS)
    tags = np.asarray(model.decode(logits, model.token_mask(inputs)))
    assert tags.shape == (3, 6)
    assert ((tags >= 0) & (tags < NUM_TAGS)).all()
    assert ("crf" in [layer.name for layer in model.layers]) == use_crf
    rnn_layers = [layer for layer in model.layers if layer.name.startswith("bi_")]
    assert [layer.name for layer in rnn_layers] == [
        f"bi_{rnn_type}_{i}" for i in range(num_layers)
    ]
    cell = ProjectedLSTM if rnn_type == "lstm" else ProjectedGRU  # subclasses of Keras LSTM/GRU
    assert all(isinstance(layer.forward_layer, cell) for layer in rnn_layers)
    has_char = any(isinstance(layer, CharEncoder) for layer in model.layers)
    assert has_char == (char_encoder != "none")


def _forbid_tag_zero(model):
    """Real tokens then never get tag 0, so a 0 can only come from masking."""
    bias = np.zeros(NUM_TAGS, "float32")
    bias[0] = -100.0
    model.get_layer("tag_logits").bias.assign(bias)


@pytest.mark.parametrize(
    "use_crf, rnn_type, char_encoder, num_layers",
    [(True, "lstm", "cnn", 1), (False, "gru", "lstm", 2), (True, "gru", "none", 2)],
)
def test_padding_does_not_change_real_tokens(use_crf, rnn_type, char_encoder, num_layers):
    model = _tagger(
        use_crf=use_crf, rnn_type=rnn_type, char_encoder=char_encoder, num_layers=num_layers
    )
    _forbid_tag_zero(model)
    if use_crf:
        # Non-zero transitions so the Viterbi path depends on neighbours.
        rng = np.random.default_rng(5)
        model.get_layer("crf").set_weights(
            [rng.normal(size=w.shape).astype("float32") for w in model.get_layer("crf").get_weights()]
        )
    rng = np.random.default_rng(1)
    alone = _batch(batch=1, time=4, width=5, seed=2)
    # Pad the chars to the longest word only, as a batcher would; the batch
    # below then adds padding columns after that word.
    width = int((alone["chars"] != 0).sum(-1).max())
    alone["chars"] = alone["chars"][..., :width]
    # In a batch: padded to a longer length, with longer neighbours that have
    # longer words (wider char axis).
    big = _batch(batch=3, time=8, width=6, seed=3)
    big["words"][1] = rng.integers(2, WORD_VOCAB, size=8)
    big["chars"][1] = _chars_for(big["words"][1], 6, rng)
    big["words"][0] = 0
    big["chars"][0] = 0
    big["words"][0, :4] = alone["words"][0]
    big["chars"][0, :4, :width] = alone["chars"][0]
    big["words"][2, 5:] = 0
    big["chars"][2, 5:] = 0

    tags_alone = np.asarray(model.predict_on_batch(alone))
    tags_big = np.asarray(model.predict_on_batch(big))
    np.testing.assert_array_equal(tags_big[0, :4], tags_alone[0])
    logits_alone = np.asarray(model(alone, training=False))
    logits_big = np.asarray(model(big, training=False))
    np.testing.assert_allclose(logits_big[0, :4], logits_alone[0], rtol=1e-5, atol=1e-5)

    # Decoded ids are 0 exactly at padding (tag 0 is forbidden elsewhere).
    np.testing.assert_array_equal(tags_big == 0, big["words"] == 0)
    np.testing.assert_array_equal(tags_alone == 0, alone["words"] == 0)
    # `predict` agrees with `predict_on_batch`.
    np.testing.assert_array_equal(np.asarray(model.predict(big, verbose=0)), tags_big)


@pytest.mark.parametrize("use_crf", [True, False])
def test_decode_matches_argmax_or_viterbi(use_crf):
    model = _tagger(use_crf=use_crf, char_encoder="none")
    inputs = _batch()
    logits = model(inputs, training=False)
    mask = inputs["words"] != 0
    tags = np.asarray(model.predict_on_batch(inputs))
    if use_crf:
        expected = np.asarray(model.get_layer("crf").decode(logits, mask))
    else:
        expected = np.where(mask, np.argmax(np.asarray(logits), axis=-1), 0)
    np.testing.assert_array_equal(tags, expected)


def _fit_data(n=64, time=6, seed=0):
    inputs = _batch(batch=n, time=time, width=4, seed=seed)
    tags = np.where(inputs["words"] != 0, inputs["words"] % NUM_TAGS, 0).astype("int32")
    return inputs, tags


def _accuracy(model, inputs, tags):
    predicted = np.asarray(model.predict(inputs, verbose=0))
    mask = inputs["words"] != 0
    return (predicted[mask] == tags[mask]).mean()


@pytest.mark.parametrize("use_crf", [True, False])
def test_fit_learns_word_to_tag(use_crf):
    model = _tagger(use_crf=use_crf, char_encoder="cnn", dropout=0.0, word_dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(0.03))
    inputs, tags = _fit_data()
    history = model.fit(inputs, tags, epochs=12, batch_size=16, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses
    assert _accuracy(model, inputs, tags) >= 0.95
    if use_crf:
        assert np.abs(model.get_layer("crf").get_weights()[0]).max() > 0


def test_softmax_loss_is_mean_over_real_tokens():
    model = _tagger(use_crf=False, char_encoder="none")
    # Non-uniform logits everywhere, padding included.
    model.get_layer("tag_logits").bias.assign(np.arange(NUM_TAGS, dtype="float32"))
    inputs = _batch()
    mask = inputs["words"] != 0
    assert not mask.all()
    y_pred = model(inputs, training=False)
    tags = np.where(mask, inputs["words"] % NUM_TAGS, 0).astype("int32")
    logits = np.asarray(y_pred, dtype="float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, tags[..., None], axis=-1)[..., 0]
    expected = nll[mask].mean()
    assert float(model.compute_loss(inputs, tags, y_pred)) == pytest.approx(expected, rel=1e-5)
    # Labels at padding positions do not matter.
    other = np.where(mask, tags, 3).astype("int32")
    assert float(model.compute_loss(inputs, other, y_pred)) == pytest.approx(expected, rel=1e-5)


def _trained(use_crf):
    model = _tagger(use_crf=use_crf, char_encoder="cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    inputs, tags = _fit_data(n=16)
    model.fit(inputs, tags, epochs=1, batch_size=16, verbose=0)
    return model


@pytest.mark.parametrize("use_crf", [True, False])
def test_keras_save_load_round_trip(use_crf, tmp_path):
    model = _trained(use_crf)
    inputs = _batch(seed=4)
    path = tmp_path / "tagger.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SequenceTagger)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(
        np.asarray(loaded.predict_on_batch(inputs)), np.asarray(model.predict_on_batch(inputs))
    )
    np.testing.assert_allclose(
        np.asarray(loaded(inputs, training=False)),
        np.asarray(model(inputs, training=False)),
        rtol=1e-6, atol=1e-6,
    )
    if use_crf:
        assert isinstance(loaded.get_layer("crf"), CRF)
        np.testing.assert_array_equal(
            loaded.get_layer("crf").get_weights()[0], model.get_layer("crf").get_weights()[0]
        )


def test_get_config_round_trip():
    kwargs = dict(
        TINY, char_encoder="lstm", rnn_type="gru", num_layers=2, dropout=0.2,
        word_dropout=0.1, singleton_dropout=0.5, singleton_ids=[5, 9], use_crf=False, oov_id=3,
    )
    model = SequenceTagger(WORD_VOCAB, CHAR_VOCAB, NUM_TAGS, name="tg", **kwargs)
    config = model.get_config()
    expected = dict(
        kwargs, word_vocab_size=WORD_VOCAB, char_vocab_size=CHAR_VOCAB, num_tags=NUM_TAGS,
        name="tg",
    )
    for key, value in expected.items():
        assert config[key] == value, key
    restored = SequenceTagger.from_config(config)
    assert restored.get_config() == config
    assert restored.get_layer("word_dropout").oov_id == 3
    assert (restored.get_layer("word_dropout").rare_ids, restored.get_layer("word_dropout").rare_rate) == ((5, 9), 0.5)
    restored.set_weights(model.get_weights())
    inputs = _batch()
    np.testing.assert_allclose(
        np.asarray(restored(inputs, training=False)),
        np.asarray(model(inputs, training=False)),
        rtol=1e-6, atol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs",
    [dict(rnn_type="rnn"), dict(char_encoder="gru"), dict(num_layers=0)],
    ids=["rnn_type", "char_encoder", "num_layers"],
)
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        _tagger(**kwargs)


@pytest.mark.parametrize("use_crf", [True, False])
def test_members_are_independent_taggers_averaged(use_crf, tmp_path):
    model = _tagger(members=2, use_crf=use_crf, dropout=0.0, word_dropout=0.0)
    singles = [_tagger(use_crf=use_crf, dropout=0.0, word_dropout=0.0) for _ in range(2)]
    inputs = _batch()
    mask = inputs["words"] != 0
    logits = model(inputs, training=False)
    assert tuple(logits.shape) == (3, 6, 2, NUM_TAGS)
    # Member m's layers (suffix _m1 for the second) are a whole single tagger.
    for m, single in enumerate(singles):
        suffix = "" if m == 0 else f"_m{m}"
        for layer in single.layers:
            if layer.weights and layer.name != "crf":
                layer.set_weights(model.get_layer(layer.name + suffix).get_weights())
        if use_crf:
            single.get_layer("crf").set_weights([w[m] for w in model.get_layer("crf").get_weights()])
        np.testing.assert_allclose(np.asarray(logits[:, :, m]), np.asarray(single(inputs, training=False)),
                                   rtol=1e-5, atol=1e-5)
    combined = np.mean([np.asarray(s(inputs, training=False)) for s in singles], axis=0)
    np.testing.assert_allclose(np.asarray(model.combined_logits(logits)), combined, rtol=1e-5, atol=1e-5)
    # The loss is the members' losses added: each learns as if alone.
    tags = np.random.default_rng(5).integers(0, NUM_TAGS, size=mask.shape).astype("int32")
    loss = float(model.compute_loss(inputs, tags, logits))
    expected = sum(float(s.compute_loss(inputs, tags, s(inputs, training=False))) for s in singles)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    ids = np.asarray(model.decode(logits, mask))
    if not use_crf:
        np.testing.assert_array_equal(ids, np.where(mask, combined.argmax(-1), 0))
    path = tmp_path / "members.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.members == 2
    np.testing.assert_array_equal(np.asarray(restored.decode(restored(inputs, training=False), mask)), ids)


def test_members_learn_and_start_from_the_same_vectors():
    from pipelines.text.embeddings import EmbeddingInitializer

    model = _tagger(members=2, dropout=0.0, word_dropout=0.0)
    matrix = np.random.default_rng(1).normal(size=(WORD_VOCAB, TINY["word_dim"])).astype("float32")

    class Cached(EmbeddingInitializer):
        def __init__(self):
            super().__init__(None, None, 0, log=lambda *_: None)
            self._cache = {TINY["word_dim"]: (matrix, 7)}

    assert Cached()(model) == 7
    for name in ("word_embedding", "word_embedding_m1"):
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[0], matrix)
    inputs = _batch(batch=8, seed=2)
    tags = (inputs["words"] % NUM_TAGS).astype("int32")
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    first = float(model.train_on_batch(inputs, tags))
    for _ in range(30):
        last = float(model.train_on_batch(inputs, tags))
    assert last < 0.5 * first
    # Different initial weights: the members disagree before training ends.
    assert not np.allclose(model.get_layer("tag_logits").get_weights()[0],
                           model.get_layer("tag_logits_m1").get_weights()[0])


def test_members_must_be_a_positive_int():
    for members in (0, 1.5, True):
        with pytest.raises(ValueError, match="members"):
            _tagger(members=members)
