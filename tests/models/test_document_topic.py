"""DocumentTopic: tanh(Dense(mean of the document's word vectors)), beside every token."""

import keras
import numpy as np
import pytest

from models.document_topic import DocumentTopic

KERNEL = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]], "float32")  # (dim 3, units 2)
BIAS = np.array([0.1, -0.2], "float32")


def _layer(**kwargs):
    layer = DocumentTopic(2, **kwargs)
    layer.build((None, None), (None, None, 3), (None, None))
    layer.dense.set_weights([KERNEL, BIAS])
    return layer


def _example():
    words = np.array([[4, 7, 0, 0], [0, 0, 0, 0]], "int32")  # row 1: an empty sentence
    doc_words = np.array([[4, 0, 1, 0], [0, 0, 0, 0]], "int32")  # 1 is the OOV id: still a word
    doc_vectors = np.array([
        [[0.2, 0.4, -0.6], [100.0, -50.0, 9.0], [0.4, 0.0, 0.2], [7.0, 7.0, 7.0]],  # padding: huge values
        [[5.0, 5.0, 5.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]],      # all padding
    ], "float32")
    return words, doc_vectors, doc_words


def test_hand_computed_output():
    words, doc_vectors, doc_words = _example()
    out = np.asarray(_layer()(words, doc_vectors, doc_words))
    assert out.shape == (2, 4, 2)
    # Row 0: mean of positions 0 and 2 (padding left out, OOV kept) = (0.3, 0.2, -0.2);
    # @ KERNEL = (0.3 - 0.2, 0.4 + 0.2) = (0.1, 0.6); + BIAS = (0.2, 0.4).
    topic0 = np.tanh([0.2, 0.4])
    # Row 1: no document word at all: mean 0, so tanh(BIAS), not NaN.
    topic1 = np.tanh(BIAS)
    # Repeated at every time step, padding steps included.
    np.testing.assert_allclose(out[0], np.tile(topic0, (4, 1)), rtol=1e-6)
    np.testing.assert_allclose(out[1], np.tile(topic1, (4, 1)), rtol=1e-6)


def test_output_follows_the_sentence_length_not_the_document_length():
    words, doc_vectors, doc_words = _example()
    layer = _layer()
    short = np.asarray(layer(words[:, :1], doc_vectors, doc_words))
    assert short.shape == (2, 1, 2)
    np.testing.assert_allclose(short[:, 0], np.asarray(layer(words, doc_vectors, doc_words))[:, 0], rtol=1e-6)
    # More document padding changes nothing; reordering the document neither.
    padded = np.asarray(layer(words, np.pad(doc_vectors, [[0, 0], [0, 2], [0, 0]], constant_values=3.0),
                              np.pad(doc_words, [[0, 0], [0, 2]])))
    np.testing.assert_allclose(padded, np.asarray(layer(words, doc_vectors, doc_words)), rtol=1e-6)
    perm = [2, 3, 0, 1]
    np.testing.assert_allclose(np.asarray(layer(words, doc_vectors[:, perm], doc_words[:, perm])),
                               np.asarray(layer(words, doc_vectors, doc_words)), rtol=1e-6)


def test_weights_train_in_a_model(tmp_path):
    words = keras.Input(shape=(None,), dtype="int32", name="words")
    doc_vectors = keras.Input(shape=(None, 3), name="doc_vectors")
    doc_words = keras.Input(shape=(None,), dtype="int32", name="doc_words")
    out = DocumentTopic(2, name="topic")(words, doc_vectors, doc_words)
    assert tuple(out.shape) == (None, None, 2)
    model = keras.Model({"words": words, "doc_vectors": doc_vectors, "doc_words": doc_words}, out)
    assert len(model.get_layer("topic").trainable_weights) == 2  # the dense kernel and bias
    w, v, d = _example()
    x = {"words": w, "doc_vectors": v, "doc_words": d}
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_layer("topic").get_weights()
    model.fit(x, np.ones((2, 4, 2), "float32"), epochs=1, verbose=0)
    after = model.get_layer("topic").get_weights()
    assert not np.allclose(before[0], after[0])
    path = tmp_path / "topic.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("topic"), DocumentTopic)
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(x)), np.asarray(model.predict_on_batch(x)),
                               rtol=1e-6)


def test_get_config_round_trip():
    layer = _layer(name="dt")
    config = layer.get_config()
    assert config["units"] == 2 and config["name"] == "dt"
    restored = DocumentTopic.from_config(config)
    assert restored.get_config() == config
    restored.build((None, None), (None, None, 3), (None, None))
    restored.set_weights(layer.get_weights())
    args = _example()
    np.testing.assert_allclose(np.asarray(restored(*args)), np.asarray(layer(*args)), rtol=1e-6)


@pytest.mark.parametrize("units", [0, -1])
def test_bad_units_raises(units):
    with pytest.raises(ValueError, match="units"):
        DocumentTopic(units)
