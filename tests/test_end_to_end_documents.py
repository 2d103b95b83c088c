"""The NER stages with document context ("topic" and "case") on the fixture, then serving.

One training run for the module: prepare, train, evaluate and export as DVC runs them.
"""

import json

import numpy as np
import pytest

from pipelines import evaluate, export, prepare, train
from pipelines.tasks.ner.labels import get_spans
from pipelines.tasks.ner.serving import SCORE_TOLERANCE
from pipelines.text.tokenizer import tokenize
from tests.conftest import tiny_params, write_conll_splits
from tests.test_end_to_end import serving_function

EPOCHS = 8
MAX_DOCUMENT_TOKENS = 40  # each split is one document of ~100 tokens: the window cut is used


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e_docs")
    source = write_conll_splits(tmp / "conll", 40, 12, 12)
    params = tiny_params(tmp, source, **{
        "ner.prepare.document_features": ["topic", "case"],
        "ner.prepare.max_document_tokens": MAX_DOCUMENT_TOKENS,
        "ner.model.document_topic_dim": 8,
        "ner.train.epochs": EPOCHS, "ner.train.patience": EPOCHS, "ner.train.learning_rate": 0.03,
    })
    for stage in (prepare, train, evaluate, export):
        assert stage.main(["ner", "--params", str(params)]) == 0, stage.__name__
    return tmp, params, tmp / "out" / "ner"


@pytest.fixture(scope="module")
def trained(run_dir):
    from pipelines.tasks.ner import TASK

    _, _, out = run_dir
    return TASK.load_model(out / "model.keras"), TASK.encoder(out), TASK.load_split(out, "test")


@pytest.fixture(scope="module")
def served(run_dir):
    return serving_function(run_dir[2])


def in_memory(model, encoder, token_lists, docs=None):
    """(IOB2 tags, entity scores) per sentence, as evaluate predicts them (with the model's
    document vote; without `docs` each sentence is its own document)."""
    from pipelines.tasks.ner.encoding import decode_names, to_iob2
    from pipelines.tasks.ner.model import entity_types, predict_tags_and_scores, vote_documents

    vocab = encoder.vocab
    ids, scores = predict_tags_and_scores(model, encoder.encode(token_lists, docs=docs), vocab["tags"], 8)
    tags = to_iob2(decode_names(ids, vocab["tags"]), vocab["tag_scheme"])
    if model.document_vote:
        tags, scores = vote_documents(docs or list(range(len(token_lists))), [list(t) for t in token_lists], tags,
                                      scores, entity_types(vocab["tags"]), model.document_vote)
    return tags, scores


def served_reference(model, encoder, token_lists):
    """(IOB2 tags, entity scores) the SavedModel must give, as the export parity check computes
    them: tag-wise IOBES -> IOB2 names, so a stray E-X is I-X as served (evaluate's sequence-wise
    conversion writes B-X there; both read as the same spans)."""
    from pipelines.tasks.ner.serving import in_memory_tags

    return in_memory_tags(model, encoder, encoder.vocab, token_lists, 8)


def logits(model, features, i):
    return np.asarray(model({k: v[i][None] for k, v in features.items()}, training=False))


def test_the_run_has_document_context(run_dir, trained):
    _, _, out = run_dir
    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab["document_features"] == ["topic", "case"] and vocab["max_document_tokens"] == MAX_DOCUMENT_TOKENS
    model, encoder, _ = trained
    assert model.document_features == ["topic", "case"]
    assert {t.name for t in model.inputs} == {"words", "chars", "doc_words", "case_evidence"}
    assert model.get_layer("document_topic").units == 8
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["f1"] > 0.5, metrics  # learnt something: the serving checks below are not all "O"


def test_export_parity(run_dir):
    _, _, out = run_dir
    report = json.loads((out / "export.json").read_text())
    assert report["mismatches"] == 0
    assert report["checked"] == 12 and report["unit"] == "sentences"


def test_evaluate_used_the_documents(run_dir, trained):
    _, _, out = run_dir
    model, encoder, split = trained
    assert split.context["docs"] == [0] * 12
    with_docs, alone = split.features(encoder), encoder.encode(split.tokens)
    for i, tokens in enumerate(split.tokens):
        assert len(with_docs["doc_words"][i]) == MAX_DOCUMENT_TOKENS
        assert len(alone["doc_words"][i]) == len(tokens)
        assert with_docs["doc_words"][i].tolist() != alone["doc_words"][i].tolist()
        assert with_docs["case_evidence"][i].shape == alone["case_evidence"][i].shape == (len(tokens), 7)
    # In its document a word has more mentions than alone: the case evidence differs too.
    assert any(not np.array_equal(a, b) for a, b in zip(with_docs["case_evidence"], alone["case_evidence"]))
    differences = [np.abs(logits(model, with_docs, i) - logits(model, alone, i)).max() for i in range(12)]
    assert max(differences) > 1e-3, differences

    # evaluate's outputs are those of the sentences in their documents.
    tags, scores = in_memory(model, encoder, split.tokens, docs=split.context["docs"])
    blocks = (out / "predictions.conll").read_text().strip("\n").split("\n\n")
    assert [[line.split(" ")[2] for line in block.split("\n")] for block in blocks] == tags
    starts = [s[np.array([t.startswith("B-") for t in row], bool)] for s, row in zip(scores, tags)]
    mean = float(np.mean(np.concatenate(starts)))
    _, alone_scores = in_memory(model, encoder, split.tokens)
    alone_mean = float(np.mean(np.concatenate([s[s > 0] for s in alone_scores])))
    confidence = json.loads((out / "evaluation.json").read_text())["confidence"]
    assert confidence["mean_score"] == pytest.approx(mean, abs=2e-5)
    assert abs(alone_mean - mean) > 1e-4, (alone_mean, mean)


TEXT_A = "Reuters said John Smith would leave Paris ."
TEXT_B = "Anna Weber visited Tokyo on Monday ."


def test_served_texts_each_one_document(trained, served):
    model, encoder, _ = trained
    texts = [TEXT_A, TEXT_B, f"{TEXT_A} {TEXT_B}", "", "   "]
    out = served(texts)
    n = out["num_tokens"].numpy()
    assert n.tolist() == [len(tokenize(t)) for t in texts] and n[3] == n[4] == 0
    tags, scores = out["tags"].numpy(), out["entity_scores"].numpy()
    assert all(t == b"" for t in tags[3]) and not scores[3].any()
    for i, text in enumerate(texts[:3]):
        tokens = tokenize(text)
        got = [t.decode() for t in tags[i, : n[i]]]
        assert all(t == b"" for t in tags[i, n[i]:])
        # Alone, as the in-memory model tags the text as one document.
        alone = served([text])
        expected_tags, expected_scores = served_reference(model, encoder, [tokens])
        assert [t.decode() for t in alone["tags"].numpy()[0]] == expected_tags[0], text
        np.testing.assert_allclose(alone["entity_scores"].numpy()[0], expected_scores[0], atol=SCORE_TOLERANCE,
                                   rtol=0)
        # Texts of one request do not see each other: in the request, a text is tagged as alone (the
        # scores up to the last bits that padding to another length changes).
        assert got == expected_tags[0], text
        np.testing.assert_allclose(scores[i, : n[i]], expected_scores[0], atol=1e-4, rtol=0)
    assert any(t.startswith(b"B-") for t in tags[2])
    # The two-sentence text is one document: its first sentence is scored with the second as context.
    a = len(tokenize(TEXT_A))
    both = encoder.encode([tokenize(texts[2])])
    first = encoder.encode([tokenize(TEXT_A)])
    assert np.abs(logits(model, both, 0)[:, :a] - logits(model, first, 0)).max() > 1e-4
    assert not np.allclose(scores[2, :a], scores[0, :a], atol=SCORE_TOLERANCE, rtol=0)


def test_served_case_evidence_is_the_encoders(trained):
    """What the SavedModel feeds the tagger, CaseEvidence of (words, words, tf_case_classes of the
    text), is the encoder's NumPy case_evidence of the text as one document: after "." a capital
    is "initial" in both."""
    import tensorflow as tf

    from models.case_evidence import CaseEvidence
    from pipelines.text.casing import case_classes
    from pipelines.text.tf_tokenizer import tf_case_classes, tf_tokenize

    model, encoder, split = trained
    long_text = " ".join(" ".join(t) for t in split.tokens[:8])
    texts = [f"{TEXT_A} {TEXT_B}", TEXT_A, long_text, "Reuters REUTERS reuters . Reuters Paris PARIS Qwxz"]
    layer = CaseEvidence(model.num_case_classes, oov_id=model.oov_id)
    for text in texts:
        tokens = tokenize(text)
        words = encoder.encode([tokens])["words"][0]
        served_case = tf_case_classes(tf_tokenize(tf.constant([text])))
        served = np.asarray(layer(words[None], words[None], served_case))[0]
        expected = encoder.encode([tokens])["case_evidence"][0]
        assert expected.dtype == np.float32 and expected.shape == (len(tokens), 7)
        np.testing.assert_allclose(served, expected, atol=1e-6, rtol=0, err_msg=text)
    tokens = tokenize(texts[0])
    assert case_classes(tokens)[len(tokenize(TEXT_A))] == 5  # "Anna" after "."
    # Mixed casings of one word give fractional shares.
    assert np.any((expected > 0) & (expected < 1))


def test_served_text_longer_than_max_document_tokens_matches_in_memory(trained, served):
    model, encoder, split = trained
    text = " ".join(" ".join(t) for t in split.tokens[:8])
    tokens = tokenize(text)
    assert len(tokens) > MAX_DOCUMENT_TOKENS
    # Without docs the encoder does not cut a text to max_document_tokens, as the SavedModel does not.
    assert len(encoder.encode([tokens])["doc_words"][0]) == len(tokens)
    out = served([text])
    n = int(out["num_tokens"].numpy()[0])
    expected_tags, expected_scores = served_reference(model, encoder, [tokens])
    assert [t.decode() for t in out["tags"].numpy()[0, :n]] == expected_tags[0]
    assert any(t.startswith("B-") for t in expected_tags[0])  # not all "O"
    np.testing.assert_allclose(out["entity_scores"].numpy()[0, :n], expected_scores[0], atol=SCORE_TOLERANCE,
                               rtol=0)
