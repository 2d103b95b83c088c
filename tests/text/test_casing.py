"""Case classes of tokens (pipelines/text/casing.py) and their TensorFlow twin (tf_case_classes)."""

import numpy as np
import pytest

from pipelines.text.casing import CASE_CLASSES, NUM_CASE_CLASSES, case_class, case_classes
from pipelines.text.tokenizer import tokenize
from tests.conftest import SHARED_DATA

PAD, UNCASED, LOWER, CAPITALISED, UPPER, INITIAL, MIXED = range(7)


def test_class_names_and_count():
    assert CASE_CLASSES == ("<pad>", "uncased", "lower", "capitalised", "upper", "initial", "mixed")
    assert NUM_CASE_CLASSES == 7
    assert [CASE_CLASSES[i] for i in (PAD, UNCASED, LOWER, CAPITALISED, UPPER, INITIAL, MIXED)] == list(CASE_CLASSES)


@pytest.mark.parametrize("token, expected", [
    ("london", LOWER), ("x2", LOWER), ("straße", LOWER), ("ß", LOWER), ("été", LOWER),
    ("Smith", CAPITALISED), ("École", CAPITALISED), ("Αθήνα", CAPITALISED), ("McDonald", CAPITALISED),
    ("NATO", UPPER), ("ÉCOLE", UPPER), ("I", UPPER), ("3M", UPPER), ("AL-AIN", UPPER), ("МОСКВА", UPPER),
    ("1996", UNCASED), (",", UNCASED), ("-", UNCASED), ("1996-12-06", UNCASED), ("北京", UNCASED),
    ("...", UNCASED), ("", UNCASED),
    ("iPhone", MIXED), ("eBay", MIXED), ("école-ÉCOLE", MIXED), ("3Com", MIXED),
])
def test_case_class_mid_sentence(token, expected):
    assert case_class(token, initial=False) == expected, CASE_CLASSES[case_class(token, initial=False)]


@pytest.mark.parametrize("token, expected", [
    ("Smith", INITIAL), ("École", INITIAL), ("The", INITIAL),
    # Case says something at a sentence start only for what is not simply capitalised.
    ("NATO", UPPER), ("ÉCOLE", UPPER), ("london", LOWER), ("iPhone", MIXED), ("1996", UNCASED),
])
def test_case_class_at_sentence_start(token, expected):
    assert case_class(token, initial=True) == expected


def test_case_classes_marks_the_first_token_and_tokens_after_sentence_ends_initial():
    tokens = ["The", "Pope", "met", "NATO", ".", "Then", "Rome", "!", "Why", "Paris", "?", "Berlin", ",",
              "Tokyo", ";", "Oslo", ":", "Bonn", "...", "Lima", "ÉCOLE", ".", "ÉCOLE", "École"]
    assert case_classes(tokens) == [
        INITIAL, CAPITALISED, LOWER, UPPER, UNCASED,
        INITIAL, CAPITALISED, UNCASED,
        INITIAL, CAPITALISED, UNCASED,
        INITIAL, UNCASED,
        CAPITALISED, UNCASED,
        CAPITALISED, UNCASED,
        CAPITALISED, UNCASED,  # "..." is not one of ".", "!", "?"
        CAPITALISED, UPPER, UNCASED,
        UPPER, CAPITALISED,  # all caps stays upper even when initial
    ]


def test_case_classes_edge_cases():
    assert case_classes([]) == []
    assert case_classes(["Paris"]) == [INITIAL]
    assert case_classes(["paris"]) == [LOWER]
    assert case_classes([".", "Paris"]) == [UNCASED, INITIAL]
    assert case_classes(["a", ".", ".", "Bo"]) == [LOWER, UNCASED, UNCASED, INITIAL]
    # Only the token right after the end counts.
    assert case_classes(["x", "!", "(", "Paris"]) == [LOWER, UNCASED, UNCASED, CAPITALISED]
    # Every class is a valid index, never padding.
    assert all(0 < c < NUM_CASE_CLASSES for c in case_classes(["Aa", "AA", "aa", "aA", "00"]))


# ------------------------------------------------------------------------------------------- TF twin

TEXTS = [
    "",
    "   ",
    "John Smith visited Paris on Monday .",
    "JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT .",
    "Is it? Yes! It is. And then iPhone, eBay and McDonald's sold 3M units in 1996-12-06.",
    "L'École normale supérieure est à PARIS. ÉCOLE, école; Straße und STRASSE!",
    "Москва - столица России. В МОСКВЕ холодно.",
    "Ἀθῆναι and ǅemal Ǆ ǆ (titlecase letters) 北京 東京 ١٢٣",
    "Headline: 'U.S. stocks fall' — Reuters reports... Then what?",
    "a",
    "A",
    ".",
    ". . . Hello",
]


def tf_rows(texts):
    import tensorflow as tf

    from pipelines.text.tf_tokenizer import tf_case_classes, tf_tokenize

    out = tf_case_classes(tf_tokenize(tf.constant(texts)))
    assert out.dtype == tf.int32
    return out.numpy()


def assert_parity(texts):
    expected = [case_classes(tokenize(t)) for t in texts]
    got = tf_rows(texts)
    width = max([len(e) for e in expected], default=0)
    assert got.shape == (len(texts), width)
    for text, row, want in zip(texts, got, expected):
        assert row[: len(want)].tolist() == want, text
        assert not row[len(want):].any(), text  # padding is 0


def test_tf_case_classes_match_python_on_varied_texts():
    assert_parity(TEXTS)
    # Each class occurs, so no branch of the TF twin goes untested.
    seen = {c for t in TEXTS for c in case_classes(tokenize(t))}
    assert seen == set(range(1, NUM_CASE_CLASSES))


def test_tf_case_classes_row_by_row_equals_batch():
    batch = tf_rows(TEXTS)
    for i, text in enumerate(TEXTS):
        alone = tf_rows([text])[0]
        assert batch[i, : len(alone)].tolist() == alone.tolist()


def test_tf_case_classes_all_empty_batch():
    got = tf_rows(["", " "])
    assert got.shape == (2, 0)


def test_tf_case_classes_match_python_on_conll():
    folder = SHARED_DATA / "conll2003"
    if not (folder / "test.txt").is_file():
        pytest.skip(f"{folder} is missing")
    from pipelines.tasks.ner.reader import read_conll

    sentences, _ = read_conll(folder / "test.txt")
    texts = [" ".join(s.tokens) for s in sentences[:500]]
    # Each sentence as a text, and all of them joined as one long text (a document).
    assert_parity(texts)
    assert_parity([" ".join(texts)])
    # The real data has headlines in capitals and sentence starts: the classes are not trivial.
    classes = np.concatenate([case_classes(tokenize(t)) for t in texts])
    assert {UPPER, INITIAL, CAPITALISED, LOWER, UNCASED} <= set(classes.tolist())
