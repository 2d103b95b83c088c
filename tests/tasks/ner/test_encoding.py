"""NER encoding: TokenEncoder (word ids with normalisation, character ids, shapes), tag-name helpers, splits."""

import numpy as np
import pytest
import yaml

from pipelines.core.io import load_json, save_json
from pipelines.tasks.base import Split
from pipelines.tasks.ner.encoding import TokenEncoder, decode_names, iob2_names, load_split, to_iob2
from pipelines.text.vocab import Vocabulary
from tests.conftest import make_sentences, tiny_params

WORDS = Vocabulary(["paris", "the", "0000", "0.0", "new"])  # ids 2..6
CHARS = Vocabulary(list("Paristhe0N"))  # ids 2..11, case kept


def char_id(c):
    return CHARS.stoi.get(c, 1)


def test_word_ids_normalise_and_map_oov_to_1():
    enc = TokenEncoder(WORDS, CHARS)
    ids = enc.word_ids(["Paris", "THE", "1999", "3.5", "Tokyo", "NEW", "<pad>"])
    assert ids.dtype == np.int32
    assert ids.shape == (7,)
    assert ids.tolist() == [2, 3, 4, 5, 1, 6, 0]


def test_normalisation_switches():
    assert TokenEncoder(WORDS, CHARS).normalize("Paris-1999") == "paris-0000"
    assert TokenEncoder(WORDS, CHARS, lowercase=False).normalize("Paris-1999") == "Paris-0000"
    assert TokenEncoder(WORDS, CHARS, digits_to_zero=False).normalize("Paris-1999") == "paris-1999"
    enc = TokenEncoder(WORDS, CHARS, lowercase=False, digits_to_zero=False)
    assert enc.word_ids(["Paris", "paris", "1999", "0000"]).tolist() == [1, 2, 1, 4]


def test_char_ids_shape_padding_and_case():
    enc = TokenEncoder(WORDS, CHARS, max_word_chars=25)
    tokens = ["Paris", "is", "PARIS", "x"]
    ids = enc.char_ids(tokens)
    assert ids.dtype == np.int32
    assert ids.shape == (4, 5)
    assert ids[0].tolist() == [char_id(c) for c in "Paris"]
    assert ids[1].tolist() == [char_id("i"), char_id("s"), 0, 0, 0]
    assert ids[2].tolist() == [char_id("P"), 1, 1, 1, 1]  # capitals other than P are unknown
    assert ids[3].tolist() == [1, 0, 0, 0, 0]


def test_char_ids_truncated_at_max_word_chars():
    enc = TokenEncoder(WORDS, CHARS, max_word_chars=3)
    ids = enc.char_ids(["Paris", "th", "Parisparisparis"])
    assert ids.shape == (3, 3)
    assert ids.tolist() == [
        [char_id("P"), char_id("a"), char_id("r")],
        [char_id("t"), char_id("h"), 0],
        [char_id("P"), char_id("a"), char_id("r")],
    ]
    # Shorter tokens than the limit: the width is the longest token.
    assert TokenEncoder(WORDS, CHARS, max_word_chars=10).char_ids(["ab", "abc"]).shape == (2, 3)


def test_encode_shapes():
    enc = TokenEncoder(WORDS, CHARS, max_word_chars=4)
    sentences = [["Paris", "is", "nice"], ["The", "end", "of", "the", "day"]]
    out = enc.encode(sentences)
    assert set(out) == {"words", "chars"}
    assert [a.shape for a in out["words"]] == [(3,), (5,)]
    assert [a.shape for a in out["chars"]] == [(3, 4), (5, 3)]
    assert out["words"][1].tolist() == [3, 1, 1, 3, 1]


def test_empty_sentence():
    enc = TokenEncoder(WORDS, CHARS)
    assert enc.word_ids([]).shape == (0,)
    assert enc.char_ids([]).shape == (0, 1)


def test_invalid_max_word_chars():
    with pytest.raises(ValueError, match="max_word_chars"):
        TokenEncoder(WORDS, CHARS, max_word_chars=0)


def test_from_vocab_file(tmp_path):
    path = tmp_path / "vocab.json"
    save_json(
        {
            "lowercase": True,
            "digits_to_zero": False,
            "max_word_chars": 2,
            "tags": ["O"],
            "words": WORDS.to_list(),
            "chars": CHARS.to_list(),
        },
        path,
    )
    enc = TokenEncoder.from_vocab_file(path)
    assert enc.vocab == load_json(path)  # the whole file, tags and scheme included
    assert enc.lowercase and not enc.digits_to_zero and enc.max_word_chars == 2
    assert enc.word_ids(["PARIS", "1999", "0000"]).tolist() == [2, 1, 4]
    assert enc.char_ids(["Paris"]).tolist() == [[char_id("P"), char_id("a")]]


# ---------------------------------------------------------------- tag names and the prepared splits


def test_decode_names_and_to_iob2():
    names = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    ids = [np.array([1, 3, 0, 4], dtype=np.int32), np.array([], dtype=np.int32)]
    assert decode_names(ids, names) == [["B-PER", "E-PER", "O", "S-PER"], []]
    iobes = decode_names(ids, names)
    assert to_iob2(iobes, "IOBES") == [["B-PER", "I-PER", "O", "B-PER"], []]
    iob2 = [("B-LOC", "O")]
    assert to_iob2(iob2, "IOB2") == [["B-LOC", "O"]]  # lists, not the input's tuples


def test_iob2_names_maps_tag_by_tag():
    assert iob2_names(["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-S-X"]) == [
        "O", "B-PER", "I-PER", "I-PER", "B-PER", "B-S-X"]


def test_load_split_gives_int32_tag_ids_and_tag_names(tmp_path, conll_dir):
    from pipelines.tasks.ner.prepare import prepare

    cfg = yaml.safe_load(tiny_params(tmp_path, conll_dir).read_text())["ner"]["prepare"]
    out = tmp_path / "prepared"
    prepare(cfg, out)
    vocab = load_json(out / "vocab.json")
    split = load_split(out, "validation")
    assert isinstance(split, Split)
    sentences = make_sentences(12, seed=2)  # conftest.write_conll_splits: valid.txt
    assert split.tokens == [tokens for tokens, _ in sentences]
    assert split.num_tokens == sum(len(t) for t, _ in sentences)
    assert all(isinstance(y, np.ndarray) and y.dtype == np.int32 for y in split.y)
    assert [len(y) for y in split.y] == [len(t) for t in split.tokens]
    assert split.extra["tag_names"] == vocab["tags"]
    assert split.extra["tags"] == decode_names(split.y, vocab["tags"])
    assert to_iob2(split.extra["tags"], vocab["tag_scheme"]) == [tags for _, tags in sentences]
