"""CaseEvidence: how each word's mentions in its document are cased."""

import keras
import numpy as np
import pytest

from models.case_evidence import CaseEvidence

LOG = np.log1p


def _example():
    """Two rows; word 1 is the OOV id, 0 padding. doc_case is non-zero at some padding and OOV
    positions on purpose: only the word ids decide what matches."""
    words = np.array([[5, 6, 1, 0],
                      [7, 5, 0, 0]], "int32")
    doc_words = np.array([[5, 5, 6, 1, 1, 7, 0, 0],
                          [5, 5, 5, 0, 0, 0, 0, 0]], "int32")
    doc_case = np.array([[3, 4, 2, 5, 6, 3, 3, 4],
                         [6, 2, 2, 5, 5, 0, 0, 0]], "int32")
    return words, doc_words, doc_case


def _expected():
    out = np.zeros((2, 4, 7), "float32")
    # Row 0: word 5 is mentioned as class 3 and class 4 (shares of classes 1..6, then log1p(count)).
    out[0, 0] = [0, 0, 0.5, 0.5, 0, 0, LOG(2)]
    out[0, 1] = [0, 1, 0, 0, 0, 0, LOG(1)]  # word 6: one lower-case mention
    # OOV (1) and padding (0) never match, though the document holds both.
    out[0, 2] = 0
    out[0, 3] = 0
    # Row 1: word 7 is only in the other row's document; word 5: class 6 once, class 2 twice.
    out[1, 0] = 0
    out[1, 1] = [0, 2 / 3, 0, 0, 0, 1 / 3, LOG(3)]
    return out


def test_hand_computed_output():
    layer = CaseEvidence(num_classes=7, oov_id=1)
    out = np.asarray(layer(*_example()))
    assert out.shape == (2, 4, 7)
    np.testing.assert_allclose(out, _expected(), rtol=1e-6, atol=1e-7)


def test_oov_id_is_the_configured_one():
    words, doc_words, doc_case = _example()
    out = np.asarray(CaseEvidence(num_classes=7, oov_id=9)(words, doc_words, doc_case))
    # With 9 as the unknown word, id 1 is a word like any other: two mentions, classes 5 and 6.
    np.testing.assert_allclose(out[0, 2], [0, 0, 0, 0, 0.5, 0.5, LOG(2)], rtol=1e-6)
    np.testing.assert_allclose(out[0, 3], 0)  # padding still matches nothing
    np.testing.assert_allclose(out[0, 0], _expected()[0, 0], rtol=1e-6)


def test_fewer_classes_and_document_order_does_not_matter():
    layer = CaseEvidence(num_classes=3)
    words = np.array([[4, 2, 0]], "int32")
    doc_words = np.array([[4, 2, 4, 4, 0]], "int32")
    doc_case = np.array([[1, 2, 2, 2, 0]], "int32")
    out = np.asarray(layer(words, doc_words, doc_case))
    np.testing.assert_allclose(out[0], [[1 / 3, 2 / 3, LOG(3)], [0, 1, LOG(1)], [0, 0, 0]], rtol=1e-6)
    perm = [3, 0, 4, 2, 1]
    shuffled = np.asarray(layer(words, doc_words[:, perm], doc_case[:, perm]))
    np.testing.assert_allclose(shuffled, out, rtol=1e-6)
    # Padding the document further changes nothing.
    padded = np.asarray(layer(words, np.pad(doc_words, [[0, 0], [0, 3]]), np.pad(doc_case, [[0, 0], [0, 3]])))
    np.testing.assert_allclose(padded, out, rtol=1e-6)


def test_in_a_functional_model_with_unknown_lengths():
    words = keras.Input(shape=(None,), dtype="int32")
    doc_words = keras.Input(shape=(None,), dtype="int32")
    doc_case = keras.Input(shape=(None,), dtype="int32")
    out = CaseEvidence(num_classes=7)(words, doc_words, doc_case)
    assert tuple(out.shape) == (None, None, 7)
    model = keras.Model([words, doc_words, doc_case], out)
    np.testing.assert_allclose(np.asarray(model.predict_on_batch(list(_example()))), _expected(), rtol=1e-6,
                               atol=1e-7)


def test_get_config_round_trip():
    layer = CaseEvidence(num_classes=5, oov_id=3, name="ce")
    config = layer.get_config()
    assert config["num_classes"] == 5 and config["oov_id"] == 3 and config["name"] == "ce"
    restored = CaseEvidence.from_config(config)
    assert restored.get_config() == config
    words = np.array([[3, 4]], "int32")
    doc_words = np.array([[3, 4, 4]], "int32")
    doc_case = np.array([[1, 2, 4]], "int32")
    np.testing.assert_allclose(np.asarray(restored(words, doc_words, doc_case)),
                               np.asarray(layer(words, doc_words, doc_case)))
    np.testing.assert_allclose(np.asarray(restored(words, doc_words, doc_case))[0],
                               [[0, 0, 0, 0, 0], [0, 0.5, 0, 0.5, LOG(2)]], rtol=1e-6)


@pytest.mark.parametrize("num_classes", [1, 0, -3])
def test_bad_num_classes_raises(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        CaseEvidence(num_classes=num_classes)


# ------------------------------------------------------------------- the encoder's NumPy twin


def _twin(words, doc_words, doc_case, oov_id=1):
    from pipelines.tasks.ner.encoding import case_evidence

    out = case_evidence(np.asarray(words, "int32"), np.asarray(doc_words, "int32"), np.asarray(doc_case, "int32"),
                        oov_id)
    assert out.dtype == np.float32 and out.shape == (len(words), 7)
    return out


def _layer_row(words, doc_words, doc_case, oov_id=1):
    """CaseEvidence on one unpadded row."""
    layer = CaseEvidence(num_classes=7, oov_id=oov_id)
    row = [np.asarray(a, "int32").reshape(1, -1) for a in (words, doc_words, doc_case)]
    return np.asarray(layer(*row))[0]


def test_numpy_twin_hand_computed():
    words, doc_words, doc_case = _example()
    for row in range(2):
        np.testing.assert_allclose(_twin(words[row], doc_words[row], doc_case[row]), _expected()[row],
                                   rtol=1e-6, atol=1e-7)
    # The configured OOV id, as the layer reads it.
    np.testing.assert_allclose(_twin(words[0], doc_words[0], doc_case[0], oov_id=9)[2],
                               [0, 0, 0, 0, 0.5, 0.5, LOG(2)], rtol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_numpy_twin_equals_the_layer_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    batch, time, length = 12, 9, 30
    words = rng.integers(0, 12, size=(batch, time)).astype("int32")  # ids 0 (padding) and 1 (OOV) included
    doc_words = rng.integers(0, 12, size=(batch, length)).astype("int32")
    doc_case = rng.integers(1, 7, size=(batch, length)).astype("int32")
    # Padding of the document: case 0 (as the batcher pads it), often non-zero garbage in the sentence.
    lengths = rng.integers(0, length + 1, size=batch)
    lengths[0], lengths[1] = 0, length  # an empty document and a full one
    for i, n in enumerate(lengths):
        doc_words[i, n:] = 0
        doc_case[i, n:] = 0
    words[2] = 7
    doc_words[2, :5] = 7  # a word repeated in the sentence and in the document
    words[3] = rng.integers(20, 25, size=time)  # no word of the sentence in its document
    words[4, :] = 1
    doc_words[4, :] = 1  # only unknown words: nothing matches
    expected = np.asarray(CaseEvidence(num_classes=7, oov_id=1)(words, doc_words, doc_case))
    assert np.abs(expected).max() > 0 and np.any((expected > 0) & (expected < 1))
    assert not expected[0].any() and not expected[3].any() and not expected[4].any()
    np.testing.assert_allclose(expected[2, :, -1], LOG(5 + np.sum(doc_words[2, 5:] == 7)), rtol=1e-6)
    for i, n in enumerate(lengths):
        # The encoder's input: the document unpadded, and also padded (padding matches nothing).
        np.testing.assert_allclose(_twin(words[i], doc_words[i, :n], doc_case[i, :n]), expected[i], atol=1e-6,
                                   rtol=0, err_msg=f"row {i}")
        np.testing.assert_allclose(_twin(words[i], doc_words[i], doc_case[i]), expected[i], atol=1e-6, rtol=0,
                                   err_msg=f"row {i}")


def test_numpy_twin_empty_document_and_empty_sentence():
    np.testing.assert_array_equal(_twin([3, 1, 0], [], []), np.zeros((3, 7)))
    np.testing.assert_allclose(_twin([3, 1, 0], [], []), _layer_row([3, 1, 0], [], []), atol=1e-6)
    assert _twin([], [3, 4], [2, 3]).shape == (0, 7)
    assert _twin([], [], []).shape == (0, 7)


def test_numpy_twin_large_ids_and_other_oov():
    words = [1000, 5, 999, 2]
    doc_words = [1000, 1000, 2, 999, 999, 999, 5]
    doc_case = [4, 3, 2, 6, 6, 1, 5]
    for oov_id in (1, 999):
        np.testing.assert_allclose(_twin(words, doc_words, doc_case, oov_id),
                                   _layer_row(words, doc_words, doc_case, oov_id), atol=1e-6, rtol=0)
    np.testing.assert_allclose(_twin(words, doc_words, doc_case, 999)[2], 0)
