"""Tokenizer behaviour and Python/TensorFlow parity."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from pipelines.text.tf_tokenizer import tf_clean_markup, tf_normalize_words, tf_tokenize
from pipelines.text.tokenizer import (
    TOKENIZER_VERSION,
    clean_markup,
    normalize_word,
    tokenize,
    tokenize_with_offsets,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
CONLL_TEST = DATA_DIR / "conll2003" / "test.txt"
IMDB_TEST = DATA_DIR / "imdb" / "test.jsonl.gz"

CASES = [
    ("1,000.50", ["1,000.50"]),
    ("well-known", ["well-known"]),
    ("O'Neil", ["O'Neil"]),
    ("O’Neil", ["O’Neil"]),
    ("AT&T", ["AT&T"]),
    ("km/h", ["km/h"]),
    ("1996-08-22", ["1996-08-22"]),
    ("a-b-c-d", ["a-b-c-d"]),
    ("The U.S. economy", ["The", "U.S.", "economy"]),
    ("e.g. this", ["e.g.", "this"]),
    ("in the U.S.", ["in", "the", "U.S."]),
    ("(U.S.)", ["(", "U.S.", ")"]),
    ("U.S", ["U.S"]),
    ("U.S.-based", ["U.S.-based"]),  # CoNLL: U.S.-led, U.S.-brokered
    ("I don't know.", ["I", "do", "n't", "know", "."]),
    ("can’t", ["ca", "n’t"]),
    ("DON'T", ["DO", "N'T"]),
    ("do n't", ["do", "n't"]),
    ("It ends here.", ["It", "ends", "here", "."]),
    ("Really?!", ["Really", "?", "!"]),
    ("etc.", ["etc", "."]),
    ('He said "yes".', ["He", "said", '"', "yes", '"', "."]),
    ("'quoted'", ["'", "quoted", "'"]),
    ("f(x) [y] {z}", ["f", "(", "x", ")", "[", "y", "]", "{", "z", "}"]),
    ("“Zürich” ‘x’", ["“", "Zürich", "”", "‘", "x", "’"]),
    # '–' is punctuation but not a connector, so 1–2 splits (unlike 1-2).
    ("«Paris» — 1–2 wait…", ["«", "Paris", "»", "—", "1", "–", "2", "wait", "…"]),
    ("São Paulo, Москва, 東京", ["São", "Paulo", ",", "Москва", ",", "東京"]),
    ("great 😀!", ["great", "😀", "!"]),
    ("a\tb\nc\r\nd\xa0e\u2003f\u200bg\ufeffh\u3000i", list("abcdefghi")),
    ("...", ["..."]),
    ("--", ["--"]),
    ("-5", ["-", "5"]),
    ("", []),
    ("   ", []),
    (" \t\n\xa0 ", []),
    ("x\ue000y", ["x\ue000y"]),  # private-use chars are word chars (no placeholders)
    # CoNLL-2003 / PTB clitics, also upper case and with a typographic apostrophe.
    ("Apple's CEO", ["Apple", "'s", "CEO"]),
    ("it's they're we'll I'd I'm we've", ["it", "'s", "they", "'re", "we", "'ll", "I", "'d", "I", "'m", "we", "'ve"]),
    ("APPLE'S", ["APPLE", "'S"]),
    ("Apple’s", ["Apple", "’s"]),
    ("Apple 's", ["Apple", "'s"]),
    ("students' union", ["students", "'", "union"]),
    # Abbreviations keep their period except at the end of the text (CoNLL: "Corp .").
    ("Mr. Smith of Acme Corp. said", ["Mr.", "Smith", "of", "Acme", "Corp.", "said"]),
    ("Acme Corp.", ["Acme", "Corp", "."]),
    ("M. Jordan", ["M.", "Jordan"]),
    ("1. Jordan", ["1.", "Jordan"]),
    ("+1.5 .500 1:54.342 US$ 5", ["+1.5", ".500", "1:54.342", "US$", "5"]),
    ("See https://example.com/a?b=1. Or", ["See", "https://example.com/a?b=1", ".", "Or"]),
    ("mail bob.smith@example.co.uk.", ["mail", "bob.smith@example.co.uk", "."]),
    ("Washington-based 10-year-old", ["Washington-based", "10-year-old"]),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_tokenize_expected(text, expected):
    assert tokenize(text) == expected


def test_version():
    assert TOKENIZER_VERSION == 2


def test_pure_python_module_does_not_import_tensorflow():
    code = "import sys, pipelines.text.tokenizer; sys.exit('tensorflow' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


ADVERSARIAL = [
    "\ue000\ue001\ue002\ue003\ue004\ue005\ue006\ue00f",
    "a\ue000b-c \ue003.\ue003 x\ue001y",
    "a-b-c-d",
    "a--b a-.b a.-b -a- .a. ,a, /a/ &a& 'a' ’a’",
    "...",
    "--",
    "'quoted'",
    "'''",
    "rock'n'roll don't won't isn't n't 'nt can’t N'T",
    "U.S. U.S.A. e.g., i.e.: A. B. a.b.c.d. x.U.S. U.S.-based 1.2. Mr. J.R.R. Tolkien",
    "don't.can't!isn't'",
    "Москва-Сити, 東京/大阪, São&Paulo, Zürich’s ｆｕｌｌ（ｗｉｄｔｈ）？",
    "emoji 👍🏽👨‍👩‍👧 flags 🇩🇪 ok😀.",
    "tabs\t\tnew\nlines\r\n\x85nel\u2028ls\u2029ps\u1680og\u202f\u205f",
    "\x00nul\x01ctl\x7fdel",
    "<br />x<br/>",
    "\U0010FFFF\U000E0001 max",
    "",
    " ",
    "a",
]


def _rand_string(rng: random.Random, n: int) -> str:
    alphabet = (
        list("aAnNtTUSe0159 .-',&/’\"()!?:;")
        + ["\ue000", "\ue003", "\xa0", "\t", "\n", "“", "”", "—", "…", "ü", "東", "😀"]
    )
    return "".join(rng.choice(alphabet) for _ in range(n))


_RNG = random.Random(1234)
ADVERSARIAL += [_rand_string(_RNG, 10_000)]
ADVERSARIAL += [_rand_string(_RNG, _RNG.randint(0, 40)) for _ in range(500)]


@pytest.fixture(scope="module")
def tf_tok():
    # Same signature as the exported SavedModel serving function.
    return tf.function(tf_tokenize, input_signature=[tf.TensorSpec([None], tf.string)])


def _tf_tokens(fn, texts):
    out = fn(tf.constant(texts, dtype=tf.string)).to_list()
    return [[t.decode("utf-8") for t in row] for row in out]


def _assert_parity(fn, texts):
    got = _tf_tokens(fn, texts)
    for text, tf_toks in zip(texts, got):
        assert tf_toks == tokenize(text), repr(text[:200])


def test_tf_matches_expected_cases(tf_tok):
    texts = [t for t, _ in CASES]
    assert _tf_tokens(tf_tok, texts) == [e for _, e in CASES]


def test_parity_adversarial(tf_tok):
    _assert_parity(tf_tok, ADVERSARIAL)


def test_eager_batch_with_empty_string():
    out = tf_tokenize(tf.constant(["a b", ""]))
    assert isinstance(out, tf.RaggedTensor)
    assert out.to_list() == [[b"a", b"b"], []]


@pytest.mark.parametrize("text", [t for t, _ in CASES] + ADVERSARIAL[:20])
def test_offsets(text):
    toks = tokenize_with_offsets(text)
    assert [t for t, _, _ in toks] == tokenize(text)
    prev_end = 0
    for tok, s, e in toks:
        assert text[s:e] == tok
        assert prev_end <= s < e
        prev_end = e


def test_offsets_values():
    assert tokenize_with_offsets(" U.S.  (don't)") == [
        ("U.S.", 1, 5),
        ("(", 7, 8),
        ("do", 8, 10),
        ("n't", 10, 13),
        (")", 13, 14),
    ]


def _conll_sentences(limit: int) -> list[str]:
    sents, cur = [], []
    with open(CONLL_TEST, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                if cur:
                    sents.append(" ".join(cur))
                    cur = []
                    if len(sents) >= limit:
                        break
                continue
            word = line.split(" ")[0]
            if word != "-DOCSTART-":
                cur.append(word)
    if cur and len(sents) < limit:
        sents.append(" ".join(cur))
    return sents


def _imdb_reviews(limit: int) -> list[str]:
    out = []
    with gzip.open(IMDB_TEST, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if len(out) >= limit:
                break
    return out


@pytest.mark.skipif(not CONLL_TEST.exists(), reason=f"CoNLL-2003 data not found at {CONLL_TEST}")
def test_parity_conll(tf_tok):
    sents = _conll_sentences(300)
    assert len(sents) == 300
    _assert_parity(tf_tok, sents)


@pytest.mark.skipif(not IMDB_TEST.exists(), reason=f"IMDB data not found at {IMDB_TEST}")
def test_parity_imdb(tf_tok):
    reviews = _imdb_reviews(200)
    assert len(reviews) == 200
    cleaned = [clean_markup(r) for r in reviews]
    tf_cleaned = [t.decode("utf-8") for t in tf_clean_markup(tf.constant(reviews)).numpy()]
    assert tf_cleaned == cleaned
    assert any("<br" in r.lower() for r in reviews)  # markup path is actually exercised
    assert not any("<br" in c.lower() for c in cleaned)
    _assert_parity(tf_tok, cleaned)


MARKUP = ["a<br />b", "a<br/>b", "a<BR>b", "a<Br  / >b", "a<br\n/>b", "<b>bold</b>", "a < br >b", ""]


def test_clean_markup():
    assert [clean_markup(t) for t in MARKUP] == [
        "a b", "a b", "a b", "a b", "a b", "<b>bold</b>", "a < br >b", ""
    ]
    tf_out = [t.decode("utf-8") for t in tf_clean_markup(tf.constant(MARKUP)).numpy()]
    assert tf_out == [clean_markup(t) for t in MARKUP]


WORDS = ["Zürich", "ÄÖÜ", "U.S.", "1996-08-22", "ＡＢＣ１２", "İstanbul", "MiXeD42", "٣٤", ""]


@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("digits_to_zero", [False, True])
def test_normalize_parity(lowercase, digits_to_zero):
    expected = [normalize_word(w, lowercase, digits_to_zero) for w in WORDS]
    dense = tf_normalize_words(tf.constant(WORDS), lowercase, digits_to_zero)
    assert [t.decode("utf-8") for t in dense.numpy()] == expected
    ragged = tf_normalize_words(tf.ragged.constant([WORDS[:4], [], WORDS[4:]]), lowercase, digits_to_zero)
    flat = [t.decode("utf-8") for row in ragged.to_list() for t in row]
    assert flat == expected


def test_normalize_word_values():
    assert normalize_word("Zürich-1996", True, True) == "zürich-0000"
    assert normalize_word("ÄB9", True, False) == "Äb9"  # ASCII-only lowercasing
    assert normalize_word("ÄB9", False, True) == "ÄB0"
    assert normalize_word("ÄB9", False, False) == "ÄB9"


@pytest.mark.skipif(not IMDB_TEST.exists(), reason=f"IMDB data not found at {IMDB_TEST}")
def test_split_based_tokenize_equals_the_rules_applied_with_sub():
    from pipelines.text.tokenizer import tokenize_by_rules

    texts = [clean_markup(r) for r in _imdb_reviews(300)] + _conll_sentences(300) + [
        "", " ", "a", "U.S.-led talks", "don't", "1. Jordan", "Corp.", "rock'n'roll 1,000.50", "a--b...c",
        "http://x.org/a?b=1.", "mail me@x.co.uk now", "5 ' s", "I'm here ' ll", "\u00a0x\u2009y",
    ]
    assert [tokenize(t) for t in texts] == [tokenize_by_rules(t) for t in texts]
