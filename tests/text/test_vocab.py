"""Vocabulary: reserved ids, deterministic order, thresholds, lookups, saving."""

import json
from collections import Counter

import pytest

from pipelines.core.io import load_json, save_json
from pipelines.text.vocab import OOV, PAD, Vocabulary


def test_reserved_ids():
    v = Vocabulary(["a", "b"])
    assert (Vocabulary.pad_id, Vocabulary.oov_id) == (0, 1)
    assert v.itos[:2] == [PAD, OOV] == ["<pad>", "<unk>"]
    assert v.stoi[PAD] == 0 and v.stoi[OOV] == 1
    assert v.stoi["a"] == 2 and v.stoi["b"] == 3
    assert len(v) == 4
    assert len(Vocabulary([])) == 2


def test_frequency_then_alphabetical_order():
    counts = Counter({"the": 5, "cat": 2, "bat": 2, "zebra": 3, "ant": 1, "Apple": 2})
    v = Vocabulary.build(counts)
    assert v.to_list() == [PAD, OOV, "the", "zebra", "Apple", "bat", "cat", "ant"]


def test_from_iterable_counts_tokens():
    v = Vocabulary.from_iterable("b a c a b a".split())
    assert v.to_list() == [PAD, OOV, "a", "b", "c"]
    # Independent of input order.
    assert Vocabulary.from_iterable("c b b a a a".split()).to_list() == v.to_list()


def test_min_count():
    tokens = "x x x y y z".split()
    assert Vocabulary.from_iterable(tokens, min_count=2).to_list() == [PAD, OOV, "x", "y"]
    assert Vocabulary.from_iterable(tokens, min_count=3).to_list() == [PAD, OOV, "x"]
    assert Vocabulary.from_iterable(tokens, min_count=4).to_list() == [PAD, OOV]
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.from_iterable(tokens, min_count=0)


def test_max_size_counts_the_reserved_entries():
    tokens = "x x x y y z".split()
    assert Vocabulary.from_iterable(tokens, max_size=4).to_list() == [PAD, OOV, "x", "y"]
    assert len(Vocabulary.from_iterable(tokens, max_size=2)) == 2
    assert len(Vocabulary.from_iterable(tokens, max_size=100)) == 5


def test_lookup_and_contains():
    v = Vocabulary(["paris", "berlin"])
    assert v.lookup(["berlin", "tokyo", "paris", ""]) == [3, 1, 2, 1]
    assert v.lookup(iter(["paris"])) == [2]
    assert v.lookup([]) == []
    assert "paris" in v and "tokyo" not in v
    assert v.lookup([PAD, OOV]) == [0, 1]


def test_to_list_from_list_round_trip(tmp_path):
    v = Vocabulary.from_iterable("über é a a b 0 0 0".split())
    path = tmp_path / "vocab.json"
    save_json({"words": v.to_list()}, path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"words": v.to_list()}
    assert "über" in path.read_text(encoding="utf-8")  # not \u-escaped
    back = Vocabulary.from_list(load_json(path)["words"])
    assert back.to_list() == v.to_list()
    assert back.stoi == v.stoi
    # to_list returns a copy.
    items = v.to_list()
    items.append("extra")
    assert "extra" not in v.to_list()


def test_errors():
    with pytest.raises(ValueError, match="reserved"):
        Vocabulary(["a", PAD])
    with pytest.raises(ValueError, match="reserved"):
        Vocabulary([OOV])
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["a", "b", "a"])
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary.from_list(["a", "b"])
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary.from_list([OOV, PAD, "a"])
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary.from_list([])
