"""SequenceTagger with document context: the "topic" feature (computed in the model from
`doc_words`) and the "case" feature (a `case_evidence` input the encoder or the SavedModel
computes)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.case_evidence import CaseEvidence
from models.document_topic import DocumentTopic
from models.tagger import SequenceTagger

WORD_VOCAB = 30
CHAR_VOCAB = 15
NUM_TAGS = 4
NUM_CASE = 7
TINY = dict(word_dim=6, char_dim=4, char_filters=5, char_kernel_size=3, char_hidden_size=3, hidden_size=5,
            document_topic_dim=3)
FEATURES = [("topic",), ("case",), ("topic", "case")]
IDS = ["topic", "case", "topic+case"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _tagger(features, **kwargs):
    return SequenceTagger(WORD_VOCAB, CHAR_VOCAB, NUM_TAGS, document_features=features, **{**TINY, **kwargs})


def _document(batch=3, time=5, doc_len=9, seed=0):
    """Sentence words in [2, 16) (row 1 padded after 3 tokens); the documents also hold words in
    [16, 30) that no sentence has, each sentence's own words and an OOV (1), then padding."""
    rng = np.random.default_rng(seed)
    words = rng.integers(2, 16, size=(batch, time)).astype("int32")
    words[1, 3:] = 0
    doc_words = np.zeros((batch, doc_len), "int32")
    for i in range(batch):
        own = words[i][words[i] != 0]
        doc_words[i, : len(own)] = own
        doc_words[i, len(own): doc_len - 2] = rng.integers(16, WORD_VOCAB, size=doc_len - 2 - len(own))
        doc_words[i, doc_len - 2] = 1
    doc_case = np.where(doc_words != 0, rng.integers(1, NUM_CASE, size=doc_words.shape), 0).astype("int32")
    return rng, words, doc_words, doc_case


def _batch(features, batch=3, time=5, doc_len=9, seed=0):
    rng, words, doc_words, doc_case = _document(batch, time, doc_len, seed)
    chars = rng.integers(1, CHAR_VOCAB, size=(batch, time, 3)).astype("int32") * (words != 0)[..., None]
    x = {"words": words, "chars": chars}
    if "topic" in features:
        x["doc_words"] = doc_words
    if "case" in features:
        # What the encoder (NumPy) and the SavedModel (in-graph) compute: fractional shares.
        x["case_evidence"] = np.asarray(CaseEvidence(NUM_CASE)(words, doc_words, doc_case)).astype("float32")
    return x


def _tags(x):
    return np.where(x["words"] != 0, x["words"] % NUM_TAGS, 0).astype("int32")


def _logits(model, x):
    return np.asarray(model(x, training=False))


def test_batches_have_fractional_case_evidence():
    # What the tests below rely on: evidence that integer truncation would change.
    evidence = _batch(("case",))["case_evidence"]
    assert evidence.dtype == np.float32 and evidence.shape == (3, 5, NUM_CASE)
    assert np.any((evidence > 0) & (evidence < 1))
    assert not evidence[1, 3:].any()  # padding steps: no evidence


@pytest.mark.parametrize("features", FEATURES, ids=IDS)
def test_inputs_and_layers(features):
    model = _tagger(features)
    expected = {"words", "chars"} | ({"doc_words"} if "topic" in features else set()) \
        | ({"case_evidence"} if "case" in features else set())
    assert {t.name for t in model.inputs} == expected
    inputs = {t.name: t for t in model.inputs}
    if "case" in features:
        assert inputs["case_evidence"].dtype == "float32"
        assert tuple(inputs["case_evidence"].shape) == (None, None, NUM_CASE)
    if "topic" in features:
        assert inputs["doc_words"].dtype == "int32" and tuple(inputs["doc_words"].shape) == (None, None)
    layer_types = {type(layer) for layer in model.layers}
    assert (DocumentTopic in layer_types) == ("topic" in features)
    # Case evidence is computed outside the model now: no CaseEvidence layer, no doc_case input.
    assert CaseEvidence not in layer_types
    assert model.document_features == list(features)
    x = _batch(features)
    assert _logits(model, x).shape == (3, 5, NUM_TAGS)
    # Missing document inputs are an error, not silently ignored.
    for name in set(x) - {"words", "chars"}:
        with pytest.raises(Exception):
            model({k: v for k, v in x.items() if k != name}, training=False)


def test_no_document_features_keeps_the_two_inputs():
    model = _tagger(())
    assert {t.name for t in model.inputs} == {"words", "chars"}
    assert model.document_features == []
    assert not any(isinstance(layer, (DocumentTopic, CaseEvidence)) for layer in model.layers)
    with pytest.raises(ValueError):
        model.get_layer("context_features")


def test_topic_and_case_widths():
    model = _tagger(("topic", "case"), document_topic_dim=4, num_case_classes=NUM_CASE)
    x = _batch(("topic", "case"))
    assert model.get_layer("document_topic").units == 4
    # token features (word 6 + char filters 5) then topic 4 and case evidence 7.
    assert model.get_layer("context_features").output.shape[-1] == 6 + 5 + 4 + NUM_CASE
    assert _logits(model, x).shape == (3, 5, NUM_TAGS)


def test_case_evidence_width_follows_num_case_classes():
    model = _tagger(("case",), num_case_classes=4)
    assert tuple({t.name: t for t in model.inputs}["case_evidence"].shape) == (None, None, 4)
    assert model.get_layer("context_features").output.shape[-1] == 6 + 5 + 4
    x = _batch(("case",))
    x["case_evidence"] = x["case_evidence"][..., :4]
    assert _logits(model, x).shape == (3, 5, NUM_TAGS)


@pytest.mark.parametrize("features, use_crf", [(f, True) for f in FEATURES] + [(("topic", "case"), False)],
                         ids=[f"{i}-crf" for i in IDS] + ["topic+case-softmax"])
def test_fit_step_then_keras_save_load_round_trip(features, use_crf, tmp_path):
    model = _tagger(features, use_crf=use_crf)
    model.compile(optimizer=keras.optimizers.Adam(0.05), run_eagerly=True)
    x = _batch(features, batch=8, seed=1)
    before = [np.copy(w) for w in model.trainable_weights]
    history = model.fit(x, _tags(x), epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    changed = {w.path for a, w in zip(before, model.trainable_weights) if not np.allclose(a, np.asarray(w))}
    assert any("word_embedding" in p for p in changed), changed
    if "topic" in features:
        assert any("document_topic" in p for p in changed), changed

    path = tmp_path / "tagger.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SequenceTagger)
    assert loaded.get_config() == model.get_config()
    assert loaded.document_features == list(features)
    assert {t.name for t in loaded.inputs} == {t.name for t in model.inputs}
    other = _batch(features, seed=3)
    np.testing.assert_array_equal(np.asarray(loaded.predict_on_batch(other)),
                                  np.asarray(model.predict_on_batch(other)))
    np.testing.assert_allclose(_logits(loaded, other), _logits(model, other), rtol=1e-6, atol=1e-6)


def test_get_config_round_trip():
    model = _tagger(("case", "topic"), document_topic_dim=5, num_case_classes=NUM_CASE, name="tg")
    config = model.get_config()
    assert config["document_features"] == ["case", "topic"]
    assert config["document_topic_dim"] == 5 and config["num_case_classes"] == NUM_CASE
    restored = SequenceTagger.from_config(config)
    assert restored.get_config() == config
    restored.set_weights(model.get_weights())
    x = _batch(("topic", "case"))
    np.testing.assert_allclose(_logits(restored, x), _logits(model, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("features", FEATURES, ids=IDS)
def test_outputs_depend_on_the_document(features):
    model = _tagger(features)
    x = _batch(features)
    base = _logits(model, x)
    real = x["words"] != 0

    def differs(other, rows=slice(None)):
        return np.abs(_logits(model, other) - base)[rows][real[rows]].max() > 1e-4

    if "topic" in features:
        # Another document for the same sentences: other words.
        other = dict(x, doc_words=np.where(x["doc_words"] != 0, (x["doc_words"] + 7) % (WORD_VOCAB - 2) + 2, 0))
        assert differs(other)
        # The document is a bag of words: reordering it, or padding it further, changes nothing.
        perm = np.random.default_rng(0).permutation(x["doc_words"].shape[1])
        np.testing.assert_allclose(_logits(model, dict(x, doc_words=x["doc_words"][:, perm])), base,
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_logits(model, dict(x, doc_words=np.pad(x["doc_words"], [[0, 0], [0, 4]]))),
                                   base, rtol=1e-5, atol=1e-6)
        # A sentence's document affects its own row only.
        one = dict(x, doc_words=x["doc_words"].copy())
        one["doc_words"][0] = other["doc_words"][0]
        np.testing.assert_allclose(_logits(model, one)[1:], base[1:], rtol=1e-5, atol=1e-6)
        assert differs(one, 0)
    if "case" in features:
        evidence = x["case_evidence"]
        # Other evidence (the shares of another casing) changes the tags' scores.
        rolled = np.where(real[..., None], np.roll(evidence, 1, axis=-1), 0).astype("float32")
        assert differs(dict(x, case_evidence=rolled))
        # The evidence is read as floats: the fractional shares matter (int32 would floor them).
        assert differs(dict(x, case_evidence=np.floor(evidence)))
        # A row's evidence affects its own row only.
        one = dict(x, case_evidence=evidence.copy())
        one["case_evidence"][0] = rolled[0]
        np.testing.assert_allclose(_logits(model, one)[1:], base[1:], rtol=1e-5, atol=1e-6)
        # Evidence at padding steps is masked out of the real steps.
        noisy = evidence.copy()
        noisy[~real] = 5.0
        np.testing.assert_allclose(_logits(model, dict(x, case_evidence=noisy))[real], base[real],
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("features", [("topic",), ("topic", "case")], ids=["topic", "topic+case"])
@pytest.mark.parametrize("loss", ["compute_loss", "sum"])
def test_word_embedding_gets_no_gradient_through_the_document(features, loss):
    model = _tagger(features, dropout=0.0, word_dropout=0.0)
    x = _batch(features, batch=4, seed=5)
    only_in_docs = sorted(set(np.unique(x["doc_words"])) - set(np.unique(x["words"])) - {0, 1})
    in_words = sorted(set(np.unique(x["words"])) - {0})
    assert only_in_docs and in_words
    table = model.get_layer("word_embedding").embeddings
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        value = model.compute_loss(x, _tags(x), y_pred) if loss == "compute_loss" else tf.reduce_sum(y_pred)
    grad = tf.convert_to_tensor(tape.gradient(value, table)).numpy()
    assert grad.shape == (WORD_VOCAB, TINY["word_dim"])
    np.testing.assert_array_equal(grad[only_in_docs], 0.0)
    assert all(np.abs(grad[i]).max() > 0 for i in in_words)
    # The topic layer itself does learn from the document.
    dense = model.get_layer("document_topic").dense.kernel
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(model(x, training=True))
    assert np.abs(tape.gradient(value, dense).numpy()).max() > 0


@pytest.mark.parametrize("features", [["topics"], ["topic", "topic"], ["case", "Case"], "topic", ["TOPIC"]])
def test_bad_document_features_raise(features):
    with pytest.raises(ValueError, match="document_features"):
        _tagger(features)
