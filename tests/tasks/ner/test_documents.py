"""Document context in the NER data: TokenEncoder's doc_words ("topic") and case_evidence ("case"),
the window cut, the prepare params that switch it on, and one document per sentence without
-DOCSTART-."""

import json
import os
import subprocess
import sys

import datasets
import numpy as np
import pytest

from pipelines.core.batching import BucketBatcher
from pipelines.core.io import save_json
from pipelines.prepare import main as prepare_main
from pipelines.tasks.ner.encoding import TokenEncoder, case_evidence, encoder as load_encoder, load_split
from pipelines.text.casing import NUM_CASE_CLASSES, case_classes
from pipelines.text.vocab import Vocabulary
from tests.conftest import ROOT, make_sentences, tiny_params, write_conll, write_conll_splits

WORDS = Vocabulary(["the", "eu", "said", ".", "paris", "is", "nice", "rome", "wins", "loses"])  # ids 2..11
CHARS = Vocabulary(list("abcdefghijklmnopqrstuvwxyzEPRT."))
S0 = ["The", "EU", "said", "."]
S1 = ["Paris", "is", "nice", "."]
S2 = ["Rome", "wins", "Tokyo"]  # Tokyo is unknown: id 1
LOG2 = np.log(2.0)


def ids(tokens):
    return [WORDS.stoi.get(t.lower(), 1) for t in tokens]


def one_hot_share(case, count=1):
    """The evidence row of a word all of whose `count` mentions have case class `case`."""
    row = np.zeros(NUM_CASE_CLASSES, "float32")
    row[case - 1] = 1.0
    row[-1] = np.log1p(count)
    return row


def expected_evidence(enc, words, doc_words, doc_case):
    return case_evidence(np.asarray(words, "int32"), np.asarray(doc_words, "int32"),
                         np.asarray(doc_case, "int32"), enc.words.oov_id)


def test_without_document_features_nothing_is_added():
    out = TokenEncoder(WORDS, CHARS).encode([S0, S1], docs=[0, 0])
    assert set(out) == {"words", "chars"}


def test_topic_sentences_of_a_document_share_its_word_ids():
    enc = TokenEncoder(WORDS, CHARS, document_features=("topic",))
    out = enc.encode([S0, S1, S2], docs=[0, 0, 1])
    assert set(out) == {"words", "chars", "doc_words"}  # no case evidence without "case"
    assert [a.tolist() for a in out["words"]] == [ids(S0), ids(S1), ids(S2)]
    assert out["doc_words"][0].tolist() == out["doc_words"][1].tolist() == ids(S0) + ids(S1)
    assert out["doc_words"][2].tolist() == [9, 10, 1]  # rome, wins, unknown Tokyo
    assert all(a.dtype == np.int32 for a in out["doc_words"])


def test_document_is_in_reading_order_even_when_interleaved():
    enc = TokenEncoder(WORDS, CHARS, document_features=("topic",))
    out = enc.encode([S0, S2, S1], docs=[5, 3, 5])
    assert out["doc_words"][0].tolist() == out["doc_words"][2].tolist() == ids(S0) + ids(S1)
    assert out["doc_words"][1].tolist() == ids(S2)


def test_case_alone_adds_case_evidence_and_no_document_words():
    enc = TokenEncoder(WORDS, CHARS, document_features=("case",))
    out = enc.encode([S0, S1, S2], docs=[0, 0, 1])
    assert set(out) == {"words", "chars", "case_evidence"}
    for evidence, words in zip(out["case_evidence"], out["words"]):
        assert evidence.dtype == np.float32 and evidence.shape == (len(words), NUM_CASE_CLASSES)


def test_case_evidence_counts_the_mentions_in_the_document():
    enc = TokenEncoder(WORDS, CHARS, document_features=("topic", "case"))
    a, b = ["Rome", "wins"], ["Paris", "loses", "to", "ROME"]  # "to" is unknown
    out = enc.encode([a, b, S0], docs=[0, 0, 1])
    assert set(out) == {"words", "chars", "doc_words", "case_evidence"}
    # Rome: "Rome" starts its sentence (initial, 5) and "ROME" is upper (4): half each, 2 mentions.
    rome = np.array([0, 0, 0, 0.5, 0.5, 0, np.log1p(2)], "float32")
    np.testing.assert_allclose(out["case_evidence"][0], [rome, one_hot_share(2)], rtol=1e-6)
    # "Paris" starts its sentence although "wins" has no full stop: classes are per sentence.
    np.testing.assert_allclose(out["case_evidence"][1], [one_hot_share(5), one_hot_share(2), np.zeros(7), rome],
                               rtol=1e-6)
    # Another document: The (initial), EU (upper), said (lower), "." (uncased), one mention each.
    np.testing.assert_allclose(out["case_evidence"][2], [one_hot_share(c) for c in (5, 4, 2, 1)], rtol=1e-6)
    # The NumPy function on the document's ids and classes is what encode gives.
    doc_case = case_classes(a) + case_classes(b)
    for i in (0, 1):
        np.testing.assert_array_equal(
            out["case_evidence"][i], expected_evidence(enc, out["words"][i], out["doc_words"][i], doc_case))
    # Alone, Rome's sentence has only the initial "Rome": other evidence.
    alone = enc.encode([a])["case_evidence"][0]
    np.testing.assert_allclose(alone[0], one_hot_share(5), rtol=1e-6)


def test_no_docs_means_each_sentence_is_its_own_whole_document():
    # A sentence longer than max_document_tokens is not cut: a served text is its whole self.
    enc = TokenEncoder(WORDS, CHARS, document_features=("topic", "case"), max_document_tokens=2)
    long = ["Paris", "is", "nice", ".", "PARIS", "is", "PARIS", "Tokyo"]
    sentences = [S0, long, S2, []]
    out = enc.encode(sentences)
    for i, s in enumerate(sentences):
        assert out["doc_words"][i].tolist() == ids(s) == out["words"][i].tolist()
        np.testing.assert_array_equal(out["case_evidence"][i],
                                      expected_evidence(enc, ids(s), ids(s), case_classes(s)))
    # Paris: every mention counted (initial, upper twice), though the limit is 2 tokens.
    np.testing.assert_allclose(out["case_evidence"][1][0], [0, 0, 0, 2 / 3, 1 / 3, 0, np.log1p(3)], rtol=1e-6)
    # Same as giving every sentence a document of its own under no limit.
    big = TokenEncoder(WORDS, CHARS, document_features=("topic", "case"))
    explicit = big.encode(sentences, docs=[0, 1, 2, 3])
    for name in ("doc_words", "case_evidence"):
        assert len(explicit[name]) == len(out[name])
        for got, want in zip(out[name], explicit[name]):
            np.testing.assert_array_equal(got, want)
    # With docs, the same long sentence is cut to the limit.
    cut = enc.encode(sentences, docs=[0, 1, 2, 3])
    assert len(cut["doc_words"][1]) == 2


def test_documents_without_docs_returns_the_sentences():
    enc = TokenEncoder(WORDS, CHARS, document_features=("case",), max_document_tokens=1)
    words = [np.array(ids(s), "int32") for s in (S0, S1)]
    cases = [np.array(case_classes(s), "int32") for s in (S0, S1)]
    doc_words, doc_case = enc.documents(words, cases, None)
    assert [d.tolist() for d in doc_words] == [w.tolist() for w in words]
    assert [d.tolist() for d in doc_case] == [c.tolist() for c in cases]


def test_empty_sentences():
    enc = TokenEncoder(WORDS, CHARS, document_features=("topic", "case"))
    out = enc.encode([[], S1, []], docs=[0, 0, 1])
    assert out["doc_words"][0].tolist() == out["doc_words"][1].tolist() == ids(S1)
    assert out["case_evidence"][0].shape == (0, NUM_CASE_CLASSES) and out["case_evidence"][0].dtype == np.float32
    np.testing.assert_allclose(out["case_evidence"][1], [one_hot_share(c) for c in (5, 2, 2, 1)], rtol=1e-6)
    # A document of empty sentences only: no words at all.
    assert not out["doc_words"][2].any() and out["case_evidence"][2].shape == (0, NUM_CASE_CLASSES)
    alone = enc.encode([[]])
    assert alone["doc_words"][0].shape == (0,) and alone["case_evidence"][0].shape == (0, NUM_CASE_CLASSES)


def numbered_encoder(limit, n_words=200, features=("topic", "case")):
    """Every token a word of its own, so a window's position in the document can be read off its ids."""
    words = Vocabulary([f"w{i}" for i in range(n_words)])
    return TokenEncoder(words, CHARS, digits_to_zero=False, document_features=features,
                        max_document_tokens=limit)


@pytest.mark.parametrize("limit", [1, 4, 5, 6, 7, 10, 13, 29, 30, 1000])
def test_window_cut_keeps_the_sentence_inside_and_centred(limit):
    lengths = [3, 1, 5, 4, 2, 6, 3, 5, 1]  # one document of 30 tokens
    sentences, first = [], 0
    for n in lengths:
        sentences.append([f"W{i}" for i in range(first, first + n)])
        first += n
    enc = numbered_encoder(limit)
    out = enc.encode(sentences, docs=[0] * len(lengths))
    whole = np.concatenate(out["words"])
    cases = np.concatenate([case_classes(s) for s in sentences])
    _, doc_case = enc.documents(out["words"], [np.array(case_classes(s), "int32") for s in sentences],
                                [0] * len(lengths))
    offset = 0
    for i, n in enumerate(lengths):
        doc = out["doc_words"][i]
        assert len(doc) == min(limit, 30), (i, doc)
        start = int(np.flatnonzero(whole == doc[0])[0])
        # A contiguous slice of the document, its case classes cut alike.
        assert doc.tolist() == whole[start : start + len(doc)].tolist()
        assert doc_case[i].tolist() == cases[start : start + len(doc)].tolist()
        # The case evidence is that of the window.
        np.testing.assert_array_equal(out["case_evidence"][i],
                                      expected_evidence(enc, out["words"][i], doc, doc_case[i]))
        if n <= limit:
            assert start <= offset and offset + n <= start + len(doc), (i, start)
            # Centred, unless the document ends first.
            left, right = offset - start, start + len(doc) - (offset + n)
            if start > 0 and start + len(doc) < 30:
                assert abs(left - right) <= 1, (i, left, right)
            elif start == 0 and limit < 30:
                assert left <= right + 1, (i, left, right)
            elif limit < 30:
                assert right <= left + 1, (i, left, right)
        offset += n


@pytest.mark.parametrize("limit, mentions", [(4, 1), (6, 2), (1000, 2)])
def test_case_evidence_sees_only_the_window(limit, mentions):
    # "W5" (upper: it has no lower-case letter) at the start and "w5" at the end of a 6-token
    # document: a 4-token window around the first sentence leaves the lower-case mention out.
    enc = numbered_encoder(limit, features=("case",))
    sentences = [["W5", "w1"], ["w2", "w3"], ["w4", "w5"]]
    out = enc.encode(sentences, docs=[0, 0, 0])
    evidence = out["case_evidence"][0][0]
    assert evidence[-1] == pytest.approx(np.log1p(mentions))
    expected = one_hot_share(4) if mentions == 1 else np.array([0, 0.5, 0, 0.5, 0, 0, np.log1p(2)], "float32")
    np.testing.assert_allclose(evidence, expected, rtol=1e-6)


def test_window_of_another_document_is_not_cut():
    enc = numbered_encoder(4)
    sentences = [["W1", "W2", "W3"], ["W4", "W5"], ["W6", "W7"]]
    out = enc.encode(sentences, docs=[0, 0, 1])
    assert [len(d) for d in out["doc_words"]] == [4, 4, 2]
    assert out["doc_words"][2].tolist() == out["words"][2].tolist()


def test_bad_max_document_tokens():
    with pytest.raises(ValueError, match="max_document_tokens"):
        TokenEncoder(WORDS, CHARS, max_document_tokens=0)


def test_from_vocab_file_reads_the_document_settings(tmp_path):
    vocab = {"lowercase": True, "digits_to_zero": True, "max_word_chars": 5, "tags": ["O"],
             "words": WORDS.to_list(), "chars": CHARS.to_list()}
    save_json(vocab, tmp_path / "old.json")
    old = TokenEncoder.from_vocab_file(tmp_path / "old.json")  # a vocabulary from before the feature
    assert old.document_features == () and old.max_document_tokens == 1000
    assert set(old.encode([S0], docs=[0])) == {"words", "chars"}
    save_json({**vocab, "document_features": ["case"], "max_document_tokens": 3}, tmp_path / "new.json")
    new = TokenEncoder.from_vocab_file(tmp_path / "new.json")
    assert new.document_features == ("case",) and new.max_document_tokens == 3
    out = new.encode([S0, S1], docs=[0, 0])
    assert set(out) == {"words", "chars", "case_evidence"}
    words = out["words"]
    doc_words, doc_case = new.documents(words, [np.array(case_classes(s), "int32") for s in (S0, S1)], [0, 0])
    assert [len(d) for d in doc_words] == [3, 3]
    for i in (0, 1):
        np.testing.assert_array_equal(out["case_evidence"][i],
                                      expected_evidence(new, words[i], doc_words[i], doc_case[i]))


def test_encoded_documents_batch_into_the_tagger_as_floats():
    """encode -> BucketBatcher -> SequenceTagger: the batch keeps the fractional evidence, and a
    sentence is tagged in its padded batch as it is alone."""
    import keras

    from models.tagger import SequenceTagger

    enc = TokenEncoder(WORDS, CHARS, document_features=("topic", "case"))
    sentences = [["Rome", "wins"], ["Paris", "loses", "to", "ROME"], S0, ["ROME", "is", "nice"], S1, S2]
    features = enc.encode(sentences, docs=[0, 0, 0, 0, 1, 1])
    assert any(np.any((e > 0) & (e < 1)) for e in features["case_evidence"])
    batcher = BucketBatcher(features, None, batch_size=4, shuffle=False)
    keras.utils.set_random_seed(0)
    model = SequenceTagger(len(WORDS), len(CHARS), 3, word_dim=4, char_dim=3, char_filters=3, char_kernel_size=3,
                           char_hidden_size=2, hidden_size=4, document_topic_dim=2,
                           document_features=("topic", "case"))
    seen = []
    for k in range(len(batcher)):
        (x,) = batcher[k]
        assert x["case_evidence"].dtype == np.float32 and x["words"].dtype == x["doc_words"].dtype == np.int32
        logits = np.asarray(model(x, training=False))
        for row, i in enumerate(batcher.batch_indices[k]):
            n = len(sentences[i])
            np.testing.assert_array_equal(x["case_evidence"][row, :n], features["case_evidence"][i])
            assert not x["case_evidence"][row, n:].any()
            alone = np.asarray(model({name: v[i][None] for name, v in features.items()}, training=False))[0]
            np.testing.assert_allclose(logits[row, :n], alone, rtol=1e-5, atol=1e-5)
            seen.append(i)
    assert sorted(seen) == list(range(len(sentences)))


# ------------------------------------------------------------------------------------ prepare


def run_prepare(tmp_path, source, **overrides):
    params = tiny_params(tmp_path, source, **overrides)
    assert prepare_main(["ner", "--params", str(params)]) == 0
    out = tmp_path / "out" / "ner"
    return out, json.loads((out / "vocab.json").read_text(encoding="utf-8"))


def test_prepare_writes_the_document_settings(tmp_path, conll_dir):
    out, vocab = run_prepare(tmp_path, conll_dir, **{"ner.prepare.document_features": ["case", "topic"],
                                                     "ner.prepare.max_document_tokens": 25})
    assert vocab["document_features"] == ["case", "topic"] and vocab["max_document_tokens"] == 25
    enc = load_encoder(out)
    assert enc.document_features == ("case", "topic") and enc.max_document_tokens == 25
    split = load_split(out, "test")
    assert split.context["docs"] == [0] * 12  # one -DOCSTART- at the top of the file
    features = split.features(enc)
    whole = np.concatenate(features["words"])
    assert len(whole) > 25
    assert all(len(d) == 25 for d in features["doc_words"])
    assert all(d.tolist() in [whole[s : s + 25].tolist() for s in range(len(whole) - 24)]
               for d in features["doc_words"])
    assert [e.shape for e in features["case_evidence"]] == [(len(w), NUM_CASE_CLASSES) for w in features["words"]]
    # In its document a word has more mentions than in its sentence alone.
    alone = enc.encode(split.tokens)["case_evidence"]
    assert sum(e[:, -1].sum() for e in features["case_evidence"]) > sum(e[:, -1].sum() for e in alone)


def test_prepare_defaults_to_case_evidence(tmp_path, conll_dir):
    out, vocab = run_prepare(tmp_path, conll_dir)
    assert vocab["document_features"] == ["case"] and vocab["max_document_tokens"] == 1000
    split = load_split(out, "train")
    assert set(split.features(load_encoder(out))) == {"words", "chars", "case_evidence"}


def write_documents(path, docs):
    """A CoNLL-2003 file of several -DOCSTART- documents."""
    lines = []
    for sentences in docs:
        lines += ["-DOCSTART- -X- -X- O", ""]
        for tokens, tags in sentences:
            lines += [f"{t} NN I-NP {g}" for t, g in zip(tokens, tags)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_prepare_keeps_documents_and_numbers_them_without_docstart(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    sentences = make_sentences(7, seed=4)
    write_documents(source / "train.txt", [sentences[:3], sentences[3:4], sentences[4:]])
    write_conll(source / "valid.txt", sentences, docstart=False)  # 4 columns, no -DOCSTART-
    write_conll(source / "test.txt", sentences[:5])  # one -DOCSTART- on top
    out, _ = run_prepare(tmp_path, source, **{"ner.prepare.document_features": ["topic"]})
    ds = datasets.load_from_disk(str(out / "data"))
    assert ds["train"]["doc"] == [0, 0, 0, 1, 2, 2, 2]
    assert ds["validation"]["doc"] == list(range(7))
    assert ds["test"]["doc"] == [0] * 5
    enc = load_encoder(out)
    train = load_split(out, "train").features(enc)
    words = [w.tolist() for w in train["words"]]
    assert train["doc_words"][1].tolist() == sum(words[:3], [])
    assert train["doc_words"][3].tolist() == words[3]
    assert train["doc_words"][6].tolist() == sum(words[4:], [])
    valid = load_split(out, "validation").features(enc)
    assert [d.tolist() for d in valid["doc_words"]] == [w.tolist() for w in valid["words"]]


@pytest.mark.parametrize("train_marked, features, warned", [
    (False, ["case"], True), (True, ["case"], False), (False, [], False),
])
def test_prepare_warns_when_only_the_evaluation_splits_mark_documents(tmp_path, capsys, train_marked, features,
                                                                      warned):
    source = tmp_path / "src"
    source.mkdir()
    sentences = make_sentences(6, seed=4)
    write_conll(source / "train.txt", sentences, docstart=train_marked)
    write_documents(source / "valid.txt", [sentences[:3], sentences[3:]])
    write_conll(source / "test.txt", sentences, docstart=False)
    run_prepare(tmp_path, source, **{"ner.prepare.document_features": features})
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    if warned:
        assert warnings == [
            "warning: validation marks documents (-DOCSTART-) but train does not, so ner.prepare.document_features "
            "['case'] are learnt from single sentences and applied to whole documents; with such data [] is "
            "usually better (README: NER ablations)"]
    else:
        assert warnings == []


def test_prepare_two_column_source_gets_one_document_per_sentence(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name, seed in (("train.txt", 1), ("valid.txt", 2), ("test.txt", 3)):
        write_conll(source / name, make_sentences(6, seed=seed), columns=2)
    out, _ = run_prepare(tmp_path, source, **{"ner.prepare.document_features": ["topic", "case"]})
    ds = datasets.load_from_disk(str(out / "data"))
    for split in ("train", "validation", "test"):
        assert ds[split]["doc"] == list(range(6)), split
    enc = load_encoder(out)
    features = load_split(out, "test").features(enc)
    assert [d.tolist() for d in features["doc_words"]] == [w.tolist() for w in features["words"]]
    for (tokens, _), words, evidence in zip(make_sentences(6, seed=3), features["words"], features["case_evidence"]):
        np.testing.assert_array_equal(evidence, expected_evidence(enc, words, words, case_classes(tokens)))


def test_prepare_hub_source_gets_one_document_per_sentence(tmp_path, fake_hub):
    out, _ = run_prepare(tmp_path, "someone/conll-like", **{"ner.prepare.document_features": ["topic"]})
    ds = datasets.load_from_disk(str(out / "data"))
    assert ds["train"]["doc"] == [0, 1]  # the hub fixture's two non-empty sentences


# ------------------------------------------------------------------------ params errors


def run_stage(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_conll_splits(tmp_path_factory.mktemp("docs") / "conll")


@pytest.mark.parametrize("key, value", [("document_features", ["topics"]), ("max_document_tokens", 0)])
def test_prepare_subprocess_bad_document_params(tmp_path, source, key, value):
    params = tiny_params(tmp_path, source, **{f"ner.prepare.{key}": value})
    proc = run_stage("pipelines.prepare", "ner", "--params", str(params))
    assert proc.returncode == 1, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("prepare: error: ")]
    assert len(errors) == 1 and proc.stderr.rstrip().endswith(errors[0]), proc.stderr[-3000:]
    assert f"ner.prepare.{key}" in errors[0] and repr(value) in errors[0], errors[0]
    assert not (tmp_path / "out" / "ner" / "vocab.json").exists()


@pytest.mark.parametrize("key, value", [
    ("document_features", "topic"), ("document_features", ["topic", "topic"]), ("document_features", ["Topic"]),
    ("document_features", [None]), ("max_document_tokens", -5), ("max_document_tokens", True),
    ("max_document_tokens", 2.5), ("max_document_tokens", "100"), ("max_document_tokens", None),
])
def test_prepare_bad_document_params_in_process(tmp_path, source, capsys, key, value):
    params = tiny_params(tmp_path, source, **{f"ner.prepare.{key}": value})
    assert prepare_main(["ner", "--params", str(params)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("prepare: error: params: ") and err.count("\n") == 1, err
    assert f"ner.prepare.{key}" in err and repr(value) in err, err


@pytest.mark.parametrize("value", [[], None, ["case"], ["topic", "case"]])
def test_prepare_accepts_good_document_features(tmp_path, source, value):
    _, vocab = run_prepare(tmp_path, source, **{"ner.prepare.document_features": value})
    assert vocab["document_features"] == (value or [])


@pytest.mark.parametrize("tokens, pieces", [
    ([], []),
    (["Hello"], [["Hello"]]),
    (["Hi", ".", "Bye", "!"], [["Hi", "."], ["Bye", "!"]]),
    (["Why", "?", "?", "Ok"], [["Why", "?"], ["?"], ["Ok"]]),
    (["Mr.", "Smith", "left", "."], [["Mr.", "Smith", "left", "."]]),  # an abbreviation is one token
])
def test_split_sentences_cuts_after_sentence_ends(tokens, pieces):
    from pipelines.tasks.ner.serving import split_sentences

    assert split_sentences(tokens) == pieces


def test_log_mentions_table_is_numpy_log1p_with_the_same_clamp():
    from models import case_evidence as layer_module
    from pipelines.tasks.ner import encoding

    assert encoding.MAX_MENTIONS == layer_module.MAX_MENTIONS
    counts = np.arange(layer_module.MAX_MENTIONS + 1, dtype=np.float32)
    np.testing.assert_array_equal(layer_module.LOG_MENTIONS, np.log1p(counts))
    # A word mentioned more often than the table holds gets the last entry on both sides.
    doc = np.full(layer_module.MAX_MENTIONS + 10, 5, dtype=np.int32)
    out = encoding.case_evidence(np.array([5], np.int32), doc, np.full_like(doc, 2), oov_id=1)
    assert out[0, -1] == layer_module.LOG_MENTIONS[-1]


def test_prepare_accepts_exactly_the_document_features_the_tagger_builds():
    # prepare checks params without importing Keras, so it keeps its own copy of the names.
    from models.tagger import DOCUMENT_FEATURES as built
    from pipelines.tasks.ner.prepare import DOCUMENT_FEATURES as accepted

    assert set(accepted) == set(built)
