"""The classifier's wide side: pass-through at first, padding ignored, saved with the model."""

import keras
import numpy as np

from models.classifier import TextClassifier
from models.ngram_linear import NgramLinear


def test_a_new_layer_passes_the_deep_logits_through_and_trains_nothing():
    layer = NgramLinear(5, 2)
    deep = np.array([[1.0, -2.0]], dtype=np.float32)
    out = keras.ops.convert_to_numpy(layer(deep, np.array([[1, 2, 0]])))
    np.testing.assert_array_equal(out, deep)
    assert not layer.trainable_weights


def test_wide_logits_sum_the_rows_of_the_ids_and_skip_padding():
    layer = NgramLinear(3, 1)
    layer(np.zeros((1, 1), dtype=np.float32), np.array([[1]]))
    layer.table.assign(np.array([[100.0], [1.0], [2.0], [4.0]], dtype=np.float32))  # row 0 must never count
    layer.bias.assign([0.5])
    layer.mix.assign([2.0, 3.0])
    out = keras.ops.convert_to_numpy(layer(np.array([[1.0], [1.0]], dtype=np.float32), np.array([[1, 3, 0], [0, 0, 0]])))
    np.testing.assert_allclose(out, [[2.0 + 3.0 * 5.5], [2.0 + 3.0 * 0.5]])


def test_the_fitted_wide_side_is_saved_and_logit_parts_agree(tmp_path):
    model = TextClassifier(vocab_size=30, num_classes=3, ngram_features=10, hidden_size=4, embedding_dim=4)
    x = {"words": np.array([[2, 3, 4], [5, 6, 0]]), "ngrams": np.array([[1, 4, 9], [2, 0, 0]])}
    model.wide.table.assign(np.random.default_rng(0).normal(size=(11, 3)).astype("float32"))
    model.wide.mix.assign([0.7, 1.3])
    parts = keras.ops.convert_to_numpy(model.logit_parts().predict_on_batch(x))
    logits, deep, wide = parts[:, :3], parts[:, 3:6], parts[:, 6:]
    np.testing.assert_allclose(logits, 0.7 * deep + 1.3 * wide, rtol=1e-5, atol=1e-6)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.ngram_features == 10 and loaded.trainable_weights and not loaded.wide.trainable_weights
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-6)
