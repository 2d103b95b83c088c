"""Sentiment encoding: truncation policies, the document encoder and the prepared splits."""

import numpy as np
import pytest
import yaml

from pipelines.core.io import load_json
from pipelines.tasks.base import Split
from pipelines.tasks.sentiment.encoding import (
    DocumentEncoder,
    cut_tokens,
    load_split,
    restore_tokens,
    tokenize_document,
    truncate_tokens,
)
from pipelines.tasks.sentiment.prepare import prepare
from tests.tasks.sentiment.conftest import make_reviews, make_source, sentiment_params


def test_truncate_tokens_policies():
    toks = list("abcdefghij")
    assert truncate_tokens(toks, 4, "head") == list("abcd")
    assert truncate_tokens(toks, 4, "tail") == list("ghij")
    assert truncate_tokens(toks, 4, "head_tail") == list("abij")
    assert truncate_tokens(toks, 5, "head_tail") == list("abhij")  # h = 5 // 2 = 2
    assert truncate_tokens(toks, 1, "head_tail") == ["j"]  # h = 0
    assert truncate_tokens(toks, 9, "head_tail") == list("abcdfghij")
    for policy in ("head", "tail", "head_tail"):
        assert truncate_tokens(toks, 10, policy) == toks  # not longer than max: unchanged
        assert truncate_tokens(toks, 50, policy) == toks
        assert truncate_tokens([], 3, policy) == []
        assert truncate_tokens(tuple("ab"), 2, policy) == ["a", "b"]
        assert len(truncate_tokens(toks, 7, policy)) == 7
    result = truncate_tokens(toks, 10, "head")
    assert result is not toks
    with pytest.raises(ValueError, match="truncate policy"):
        truncate_tokens(toks, 4, "middle")
    for bad in (0, -1, 2.0, True, None):
        with pytest.raises(ValueError, match="max_tokens"):
            truncate_tokens(toks, bad, "head")


VOCAB = {"words": ["<pad>", "<unk>", "film", "great", "0000"], "lowercase": True, "digits_to_zero": True,
         "max_tokens": 4, "truncate": "head_tail", "labels": ["neg", "pos"]}


def test_cut_tokens_are_what_truncation_leaves_out_and_restore_the_document():
    toks = list("abcdefghij")
    assert cut_tokens(toks, 4, "head") == list("efghij")
    assert cut_tokens(toks, 4, "tail") == list("abcdef")
    assert cut_tokens(toks, 4, "head_tail") == list("cdefgh")
    assert cut_tokens(toks, 5, "head_tail") == list("cdefg")
    for policy in ("head", "tail", "head_tail"):
        assert cut_tokens(toks, 10, policy) == [] and cut_tokens([], 3, policy) == []
        for max_tokens in (1, 2, 3, 4, 7, 9, 10, 12):
            kept = truncate_tokens(toks, max_tokens, policy)
            cut = cut_tokens(toks, max_tokens, policy)
            assert len(kept) + len(cut) == len(toks)
            assert restore_tokens(kept, cut, max_tokens, policy) == toks


def test_ngrams_of_the_whole_document_or_of_the_kept_tokens():
    vocab = {**VOCAB, "ngram_max_n": 2, "ngrams": ["film", "great", "boring", "film boring"]}
    text = "Great film , boring plot , great film"  # 8 tokens; head_tail keeps 2 + 2
    full = DocumentEncoder({**vocab, "ngram_text": "full"})
    kept, cut = full.parts(text)
    assert kept == ["Great", "film", "great", "film"] and cut == [",", "boring", "plot", ","]
    out = full.encode([kept], cut_tokens=[cut])
    assert out["ngrams"][0].tolist() == [1, 2, 3]  # "boring" is in the cut middle
    assert full.ngram_ids(kept, cut).tolist() == [1, 2, 3]
    assert full.encode([kept])["ngrams"][0].tolist() == [1, 2]  # without the cut tokens: the kept ones
    old = DocumentEncoder(vocab)  # a vocabulary from before ngram_text: n-grams of the kept tokens
    assert old.ngram_text == "kept" and old.encode([kept], cut_tokens=[cut])["ngrams"][0].tolist() == [1, 2]
    assert [a.tolist() for a in out["words"]] == [a.tolist() for a in old.encode([kept])["words"]]


def test_tokenize_document_removes_markup_first():
    assert tokenize_document("Great film.<br /><br />Loved it") == ["Great", "film", ".", "Loved", "it"]
    assert tokenize_document("<br />") == []


def test_document_encoder_cleans_truncates_and_maps_words():
    enc = DocumentEncoder(VOCAB)
    assert enc.vocab is VOCAB and enc.labels == ["neg", "pos"]
    tokens = enc.tokens("GREAT film<br />in 1999 , a great film")
    assert tokens == ["GREAT", "film", "great", "film"]  # head_tail: 2 + 2 of 8 tokens
    assert enc.normalize("Film-1999") == "film-0000"
    ids = enc.word_ids(["Great", "1999", "movie"])
    assert ids.dtype == np.int32 and ids.tolist() == [3, 4, 1]
    # An empty document is one unknown word, never a row of padding only.
    assert enc.word_ids([]).tolist() == [1]
    out = enc.encode([["film"], []])
    assert set(out) == {"words"} and [a.tolist() for a in out["words"]] == [[2], [1]]


def test_load_split_gives_label_ids_ids_and_raw_texts(tmp_path):
    train, test = make_reviews(20, 1), make_reviews(6, 2)
    folder, files = make_source(tmp_path, train, test)
    params = yaml.safe_load(sentiment_params(tmp_path, folder, files=files).read_text(encoding="utf-8"))
    out = tmp_path / "prepared"
    prepare(params["sentiment"]["prepare"], out, seed=0)
    enc = DocumentEncoder.from_vocab_file(out / "vocab.json")
    assert enc.vocab == load_json(out / "vocab.json")
    split = load_split(out, "test")
    assert isinstance(split, Split)
    assert isinstance(split.y, np.ndarray) and split.y.dtype == np.int32 and split.y.shape == (6,)
    assert split.y.tolist() == [r["label"] for r in test]
    assert split.extra["ids"] == [r["id"] for r in test]
    assert split.extra["texts"] == [r["text"] for r in test]
    assert split.tokens == [enc.tokens(r["text"]) for r in test]
    assert split.context["cut_tokens"] == [enc.parts(r["text"])[1] for r in test]
    assert split.num_tokens == sum(len(t) for t in split.tokens)
