"""Padding-free (rnn_mask=False) models give the masked model's predictions.

The unmasked path is what lets Keras use cuDNN under JAX and torch; it is
only valid on batches without padding, which BucketBatcher(exact_lengths=True)
makes. These tests run on the CPU with shared weights.
"""

import json

import keras
import numpy as np
import pytest

from models.classifier import TextClassifier
from models.runtime import rebuild
from models.tagger import SequenceTagger

WORD_VOCAB, CHAR_VOCAB, NUM_TAGS = 30, 15, 5


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(3)


def _sentences(lengths, seed=0):
    rng = np.random.default_rng(seed)
    words = [rng.integers(2, WORD_VOCAB, size=n).astype("int32") for n in lengths]
    chars = [rng.integers(1, CHAR_VOCAB, size=(n, 4)).astype("int32") for n in lengths]
    return words, chars


def _padded(arrays):
    from pipelines.core.batching import pad_batch

    return pad_batch(arrays)


@pytest.mark.parametrize("use_crf", [True, False])
@pytest.mark.parametrize("rnn_type,num_layers", [("lstm", 1), ("gru", 2)])
def test_tagger_unmasked_matches_masked(use_crf, rnn_type, num_layers):
    masked = SequenceTagger(WORD_VOCAB, CHAR_VOCAB, NUM_TAGS, word_dim=6, char_dim=4, char_filters=5,
                            hidden_size=7, rnn_type=rnn_type, num_layers=num_layers, use_crf=use_crf)
    unmasked = rebuild(masked, rnn_mask=False)
    assert masked.rnn_mask and not unmasked.rnn_mask

    # The same equal-length batch: identical scores and tags.
    words, chars = _sentences([6, 6, 6])
    x = {"words": _padded(words), "chars": _padded(chars)}
    np.testing.assert_allclose(keras.ops.convert_to_numpy(masked(x)), keras.ops.convert_to_numpy(unmasked(x)),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(masked.predict_on_batch(x), unmasked.predict_on_batch(x))

    # A padded batch through the masked model = each sentence alone, unpadded, through the other.
    words, chars = _sentences([2, 7, 4], seed=1)
    batch = {"words": _padded(words), "chars": _padded(chars)}
    tags = masked.predict_on_batch(batch)
    for i, (w, c) in enumerate(zip(words, chars)):
        alone = unmasked.predict_on_batch({"words": w[None], "chars": c[None]})
        np.testing.assert_array_equal(tags[i, : len(w)], alone[0])
    # ... and padding does change the unmasked model's scores, so the mask is doing the work.
    masked_scores = keras.ops.convert_to_numpy(masked(batch))
    unmasked_scores = keras.ops.convert_to_numpy(unmasked(batch))
    assert not np.allclose(masked_scores[0, :2], unmasked_scores[0, :2], atol=1e-6)


@pytest.mark.parametrize("pooling", ["max", "mean", "last", "attention"])
def test_classifier_unmasked_matches_masked(pooling):
    masked = TextClassifier(WORD_VOCAB, 2, embedding_dim=6, hidden_size=5, attention_units=4, pooling=pooling)
    unmasked = rebuild(masked, rnn_mask=False)
    words, _ = _sentences([5, 5, 5, 5], seed=2)
    x = {"words": _padded(words)}
    np.testing.assert_allclose(masked.predict_on_batch(x), unmasked.predict_on_batch(x), rtol=1e-5, atol=1e-6)

    words, _ = _sentences([3, 8], seed=4)
    probs = masked.predict_on_batch({"words": _padded(words)})
    for i, w in enumerate(words):
        alone = unmasked.predict_on_batch({"words": w[None]})
        np.testing.assert_allclose(probs[i], alone[0], rtol=1e-5, atol=1e-6)
    if pooling == "attention":
        np.testing.assert_allclose(keras.ops.convert_to_numpy(masked.attention(x)),
                                   keras.ops.convert_to_numpy(unmasked.attention(x)), rtol=1e-5, atol=1e-6)


def test_rnn_mask_survives_saving(tmp_path):
    model = rebuild(SequenceTagger(WORD_VOCAB, CHAR_VOCAB, NUM_TAGS, word_dim=6, hidden_size=5), rnn_mask=False)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.rnn_mask is False
    assert json.dumps(loaded.get_config())  # plain JSON config


def test_pipeline_prediction_uses_unpadded_batches_for_unmasked_models():
    """predict_tag_ids / predict_probabilities give the masked model's output for an unmasked twin."""
    from pipelines.tasks.ner.model import predict_tag_ids
    from pipelines.tasks.sentiment.model import predict_probabilities

    words, chars = _sentences([3, 9, 3, 5, 9, 1, 4], seed=5)
    tagger = SequenceTagger(WORD_VOCAB, CHAR_VOCAB, NUM_TAGS, word_dim=6, char_dim=4, char_filters=5, hidden_size=7)
    twin = rebuild(tagger, rnn_mask=False)
    features = {"words": words, "chars": chars}
    for a, b in zip(predict_tag_ids(tagger, features, batch_size=4), predict_tag_ids(twin, features, batch_size=4)):
        np.testing.assert_array_equal(a, b)

    classifier = TextClassifier(WORD_VOCAB, 2, embedding_dim=6, hidden_size=5)
    twin = rebuild(classifier, rnn_mask=False)
    np.testing.assert_allclose(predict_probabilities(classifier, {"words": words}, batch_size=4),
                               predict_probabilities(twin, {"words": words}, batch_size=4), rtol=1e-5, atol=1e-6)
