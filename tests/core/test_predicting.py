"""core.predicting.predict_in_order: outputs in input order, cut to length, unpadded for padding-free models."""

import keras
import numpy as np
import pytest

from pipelines.core.predicting import predict_in_order

LENGTHS = [5, 1, 7, 3, 5, 2, 7, 7, 4, 1, 6]  # unsorted, repeated: several length buckets per batch size


def examples(lengths=LENGTHS, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 50, size=n).astype("int32") for n in lengths]  # no 0: 0 is padding


def echo_model():
    """Per token: the id itself; per example: (sum of ids, number of padded positions in its row)."""
    words = keras.Input(shape=(None,), dtype="int32", name="words")
    values = keras.ops.cast(words, "float32")
    per_token = keras.Model({"words": words}, values)
    summary = keras.ops.stack([keras.ops.sum(values, axis=1),
                               keras.ops.sum(keras.ops.cast(keras.ops.equal(words, 0), "float32"), axis=1)], axis=1)
    per_example = keras.Model({"words": words}, summary)
    return per_token, per_example


@pytest.mark.parametrize("batch_size", [1, 3, 4, 256])
def test_per_token_outputs_come_back_in_input_order_and_length(batch_size):
    per_token, _ = echo_model()
    words = examples()
    out = predict_in_order(per_token, {"words": words}, batch_size=batch_size, per_token=True)
    assert len(out) == len(words)
    for got, want in zip(out, words):
        np.testing.assert_array_equal(got, want.astype("float32"))


def test_per_example_outputs_come_back_in_input_order():
    _, per_example = echo_model()
    words = examples()
    out = predict_in_order(per_example, {"words": words}, batch_size=3)
    assert [float(o[0]) for o in out] == [float(w.sum()) for w in words]
    assert any(o[1] > 0 for o in out)  # a masked model gets padded (length-bucketed) batches


def test_a_padding_free_model_only_sees_unpadded_batches():
    _, per_example = echo_model()
    per_example.rnn_mask = False  # what rebuild(model, rnn_mask=False) gives a trained padding-free model
    words = examples()
    out = predict_in_order(per_example, {"words": words}, batch_size=3)
    assert [float(o[0]) for o in out] == [float(w.sum()) for w in words]
    assert all(o[1] == 0 for o in out)


def test_tagger_predictions_match_one_sentence_at_a_time():
    """A tiny SequenceTagger: batched, bucketed predictions equal predicting each sentence alone."""
    from models.tagger import SequenceTagger

    keras.utils.set_random_seed(0)
    words = examples(seed=1)
    rng = np.random.default_rng(2)
    chars = [rng.integers(1, 12, size=(len(w), 3)).astype("int32") for w in words]
    tagger = SequenceTagger(50, 12, 5, word_dim=6, char_dim=4, char_filters=5, hidden_size=7)
    out = predict_in_order(tagger, {"words": words, "chars": chars}, batch_size=4, per_token=True)
    assert [len(o) for o in out] == LENGTHS
    for got, w, c in zip(out, words, chars):
        alone = keras.ops.convert_to_numpy(tagger.predict_on_batch({"words": w[None], "chars": c[None]}))[0]
        np.testing.assert_array_equal(got, alone)
