"""The sentiment prepare stage: labels, the validation split, markup, vocabulary, truncation,
stats, bad labels and params, and the hub branch."""

import re
from collections import Counter

import datasets
import pytest

from pipelines.core.errors import DataError
from pipelines.tasks.sentiment.encoding import tokenize_document
from pipelines.tasks.sentiment.prepare import percentile, stratified_split
from pipelines.text.tokenizer import TOKENIZER_VERSION
from tests.tasks.sentiment.conftest import (
    encode,
    fails,
    hub_dataset,
    label_strings,
    make_reviews,
    make_source,
    run,
    run_ok,
    tokens_of,
)


# ---------------------------------------------------------------------------
# Formats


# ---------------------------------------------------------------------------
# Labels


def test_binary_integer_labels_with_label_names(tmp_path, capsys):
    train, test = make_reviews(30, 1), make_reviews(10, 2)
    folder, files = make_source(tmp_path, train, test)
    ds, vocab, stats = run_ok(tmp_path, folder, capsys, files=files, label_names=["neg", "pos"])
    assert vocab["labels"] == stats["labels"] == ["neg", "pos"]
    assert ds["test"].features["label"].names == ["neg", "pos"]
    assert ds["test"]["label"] == [r["label"] for r in test]
    assert label_strings(ds, "test") == [["neg", "pos"][r["label"]] for r in test]
    assert stats["label_type"] == "integer"
    assert stats["splits"]["test"]["labels"] == {"neg": 5, "pos": 5}
    train_counts = Counter(label_strings(ds, "train") + label_strings(ds, "validation"))
    assert train_counts == {"neg": 15, "pos": 15}


def test_integer_labels_without_label_names_sort_numerically(tmp_path, capsys):
    labels = (10, 1, 3)
    train, test = make_reviews(30, 1, labels), make_reviews(9, 2, labels)
    folder, files = make_source(tmp_path, train, test)
    ds, vocab, _ = run_ok(tmp_path, folder, capsys, files=files, label_names=None)
    assert vocab["labels"] == ["1", "3", "10"]
    assert label_strings(ds, "test") == [str(r["label"]) for r in test]
    assert ds["test"]["label"][:3] == [2, 0, 1]


@pytest.mark.parametrize("ext", ["jsonl", "csv"])
def test_three_class_string_labels_keep_sorted_names(tmp_path, capsys, ext):
    labels = ("positive", "negative", "neutral")
    train, test = make_reviews(30, 1, labels), make_reviews(9, 2, labels)
    folder, files = make_source(tmp_path, train, test, ext=ext)
    ds, vocab, stats = run_ok(tmp_path, folder, capsys, files=files, label_names=None)
    assert vocab["labels"] == ["negative", "neutral", "positive"]
    assert ds["train"].features["label"].names == ["negative", "neutral", "positive"]
    assert label_strings(ds, "test") == [r["label"] for r in test]
    assert ds["test"]["label"][:3] == [2, 0, 1]
    assert stats["label_type"] == "string"
    assert stats["splits"]["test"]["labels"] == {"negative": 3, "neutral": 3, "positive": 3}
    assert stats["splits"]["validation"]["labels"] == {"negative": 1, "neutral": 1, "positive": 1}


def test_string_labels_follow_label_names_when_given(tmp_path, capsys):
    labels = ("positive", "negative")
    train, test = make_reviews(20, 1, labels), make_reviews(4, 2, labels)
    folder, files = make_source(tmp_path, train, test)
    ds, vocab, _ = run_ok(tmp_path, folder, capsys, files=files, label_names=["positive", "negative"])
    assert vocab["labels"] == ["positive", "negative"]
    assert ds["test"]["label"] == [0, 1, 0, 1]


# ---------------------------------------------------------------------------
# The validation split


def test_stratified_split_function():
    labels = [0, 0, 0, 1] * 10  # 30 of label 0, 10 of label 1
    train, val = stratified_split(labels, 0.25, seed=3)
    # 10 in all: 7.5 and 2.5 by share; the tie on .5 goes to the smaller label.
    assert len(val) == 10 and len(train) == 30
    assert Counter(labels[i] for i in val) == {0: 8, 1: 2}
    assert val == sorted(val) and train == sorted(train)
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(range(40))
    assert stratified_split(labels, 0.25, seed=3) == (train, val)
    assert stratified_split(labels, 0.25, seed=4)[1] != val
    _, val = stratified_split(["b", "a", "b", "b", "c", "a"] * 5, 0.2, seed=0)
    assert Counter(["b", "a", "b", "b", "c", "a"][i % 6] for i in val) == {"b": 3, "a": 2, "c": 1}
    with pytest.raises(DataError, match="empty validation split"):
        stratified_split([0, 1, 0], 0.1, seed=0)
    with pytest.raises(DataError, match="empty train split"):
        stratified_split([0, 1, 0], 0.9, seed=0)


def test_validation_is_carved_from_train_stratified_and_seeded(tmp_path, capsys):
    train = make_reviews(40, 1, labels=(0, 0, 0, 1))  # 30 neg, 10 pos
    test = make_reviews(8, 2)
    folder, files = make_source(tmp_path, train, test)
    ids = {}
    for name, seed in (("a", 42), ("b", 42), ("c", 7)):
        ds, _, stats = run_ok(tmp_path / name, folder, capsys, seed=seed, files=files, validation_size=0.2)
        ids[name] = (list(ds["train"]["id"]), list(ds["validation"]["id"]))
    train_ids, val_ids = ids["a"]
    assert len(val_ids) == 8 and len(train_ids) == 32
    assert set(train_ids).isdisjoint(val_ids)
    assert set(train_ids) | set(val_ids) == {r["id"] for r in train}
    assert stats["validation"] == "carved" and stats["validation_size"] == 0.2
    assert stats["sources"]["train"]["records"] == 40 and "validation" not in stats["sources"]
    s = stats["splits"]
    assert s["validation"]["labels"] == {"neg": 6, "pos": 2}
    assert s["train"]["labels"] == {"neg": 24, "pos": 8}
    assert ids["b"] == ids["a"]  # same seed, same split
    assert ids["c"][1] != val_ids  # another seed, another split
    # Each split keeps the file order.
    order = [r["id"] for r in train]
    assert list(train_ids) == sorted(train_ids, key=order.index)


def test_a_validation_file_is_used_as_is(tmp_path, capsys):
    train, valid, test = make_reviews(20, 1), make_reviews(6, 3, prefix="v"), make_reviews(6, 2)
    folder, files = make_source(tmp_path, train, test, validation=valid)
    ds, _, stats = run_ok(tmp_path, folder, capsys, files=files, validation_size=0.5)
    assert ds["train"]["id"] == [r["id"] for r in train]
    assert ds["validation"]["id"] == [r["id"] for r in valid]
    assert ds["validation"]["tokens"] == tokens_of(valid)
    assert stats["validation"] == "file" and stats["validation_size"] is None


# ---------------------------------------------------------------------------
# Text, vocabulary, truncation


def test_markup_is_cleaned(tmp_path, capsys):
    train = [
        {"id": "a", "text": "Great film.<br /><br />Loved it<br/>really<BR>much", "label": 1},
        {"id": "b", "text": "Dull<br />", "label": 0},
    ]
    folder, files = make_source(tmp_path, train, train, validation=train)
    ds, vocab, _ = run_ok(tmp_path, folder, capsys, files=files)
    assert ds["test"]["tokens"] == [["Great", "film", ".", "Loved", "it", "really", "much"], ["Dull"]]
    assert not {"<", ">", "br", "/"} & set(vocab["words"])
    assert vocab["clean_markup"] is True
    assert tokenize_document("a<br />b") == ["a", "b"]


def test_vocabulary_comes_from_train_only(tmp_path, capsys):
    train = [
        {"id": "1", "text": "Paris rocks in 2019", "label": 0},
        {"id": "2", "text": "paris ROCKS", "label": 1},
        {"id": "3", "text": "Paris", "label": 1},
    ]
    valid = [{"id": "v", "text": "Berlin rocks", "label": 0}]
    test = [{"id": "t", "text": "Zanzibar rocks in 1999", "label": 1}]
    folder, files = make_source(tmp_path, train, test, validation=valid)
    _, vocab, stats = run_ok(tmp_path / "a", folder, capsys, files=files)
    # Frequent first, ties alphabetical; lowercased, digits -> 0.
    assert vocab["words"] == ["<pad>", "<unk>", "paris", "rocks", "0000", "in"]
    assert vocab["lowercase"] is True and vocab["digits_to_zero"] is True
    assert vocab["tokenizer_version"] == TOKENIZER_VERSION
    s = stats["splits"]
    assert (s["test"]["tokens"], s["test"]["oov_tokens"], s["test"]["oov_rate"]) == (4, 1, 0.25)
    assert (s["validation"]["oov_tokens"], s["validation"]["oov_rate"]) == (1, 0.5)
    assert s["train"]["oov_tokens"] == 0
    assert stats["vocab"] == {"words": 6, "ngrams": 3}

    _, vocab, stats = run_ok(tmp_path / "b", folder, capsys, files=files, min_word_count=2)
    assert vocab["words"] == ["<pad>", "<unk>", "paris", "rocks"]
    assert stats["splits"]["train"]["oov_tokens"] == 2
    _, vocab, _ = run_ok(tmp_path / "c", folder, capsys, files=files, max_vocab=3)
    assert vocab["words"] == ["<pad>", "<unk>", "paris"]
    _, vocab, _ = run_ok(tmp_path / "d", folder, capsys, files=files, lowercase=False, digits_to_zero=False)
    assert vocab["words"] == ["<pad>", "<unk>", "Paris", "2019", "ROCKS", "in", "paris", "rocks"]


@pytest.mark.parametrize(
    "policy, kept",
    [("head", "one two three four"), ("tail", "four five six seven"), ("head_tail", "one two six seven")],
)
def test_stage_truncates_and_keeps_the_full_length(tmp_path, capsys, policy, kept):
    rows = [
        {"id": "long", "text": "one two three four five six seven", "label": 0},
        {"id": "short", "text": "good film", "label": 1},
        {"id": "exact", "text": "a b c d", "label": 0},
    ]
    folder, files = make_source(tmp_path, rows, rows, validation=rows)
    ds, vocab, stats = run_ok(tmp_path, folder, capsys, files=files, max_tokens=4, truncate=policy, ngram_min_df=1,
                              ngram_text="full")
    assert ds["test"]["tokens"] == [kept.split(), ["good", "film"], ["a", "b", "c", "d"]]
    words = "one two three four five six seven".split()
    assert ds["test"]["cut_tokens"] == [[w for w in words if w not in kept.split()], [], []]
    assert ds["test"]["num_tokens"] == [7, 2, 4]
    # The n-grams of the whole documents (ngram_text: full): also those of the cut tokens.
    assert vocab["ngram_text"] == "full" and "four five" in vocab["ngrams"] and "two six" not in vocab["ngrams"]
    assert (vocab["max_tokens"], vocab["truncate"]) == (4, policy)
    s = stats["splits"]["test"]
    assert (s["tokens"], s["tokens_kept"], s["truncated_documents"]) == (13, 10, 1)
    assert "seven" in vocab["words"] and "three" in vocab["words"]  # vocabulary: before truncation


# ---------------------------------------------------------------------------
# Stats and the summary


def test_ngram_text_kept_counts_the_kept_tokens_only(tmp_path, capsys):
    rows = [{"id": "long", "text": "one two three four five six seven", "label": 0},
            {"id": "short", "text": "good film", "label": 1}]
    folder, files = make_source(tmp_path, rows, rows, validation=rows)
    ds, vocab, _ = run_ok(tmp_path, folder, capsys, files=files, max_tokens=4, ngram_text="kept", ngram_min_df=1)
    assert vocab["ngram_text"] == "kept"
    assert "one two" in vocab["ngrams"] and "six seven" in vocab["ngrams"]
    assert not {"three", "four five"} & set(vocab["ngrams"])
    assert "two six" in vocab["ngrams"]  # where the two kept parts meet
    assert ds["train"]["cut_tokens"] == [["three", "four", "five"], []]


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, p) for p in (50, 90, 95, 99, 100)] == [50, 90, 95, 99, 100]
    assert percentile([0, 0, 1, 3, 5], 50) == 1
    assert percentile([7], 99) == 7


def test_stats_values(tmp_path, capsys):
    train = [
        {"id": "1", "text": "a b c", "label": 0},
        {"id": "2", "text": "a b c d e", "label": 1},
        {"id": "3", "text": "", "label": 0},
        {"id": "4", "text": "<br /><br />", "label": 1},
        {"id": "5", "text": "a", "label": 0},
    ]
    valid = [{"id": "6", "text": "c", "label": 0}, {"id": "7", "text": "d", "label": 1}]
    test = [{"id": "8", "text": "a x y", "label": 0}, {"id": "9", "text": "b", "label": 1}]
    folder, files = make_source(tmp_path, train, test, validation=valid)
    (folder / files["test"]).write_text(encode(files["test"], test).decode() + "\n  \n", encoding="utf-8")
    ds, _, stats = run_ok(tmp_path, folder, capsys, files=files, max_tokens=4)
    assert ds["train"]["tokens"][2:4] == [[], []]  # empty documents are kept
    s = stats["splits"]["train"]
    assert s == {
        "documents": 5,
        "tokens": 9,
        "tokens_kept": 8,
        "truncated_documents": 1,
        "empty_documents": 2,
        "length": {"p50": 1, "p90": 5, "p95": 5, "p99": 5, "max": 5},
        "labels": {"neg": 3, "pos": 2},
        "oov_tokens": 0,
        "oov_rate": 0.0,
    }
    t = stats["splits"]["test"]
    assert (t["documents"], t["tokens"], t["oov_tokens"], t["oov_rate"], t["empty_documents"]) == (2, 4, 2, 0.5, 0)
    assert t["length"] == {"p50": 1, "p90": 3, "p95": 3, "p99": 3, "max": 3}
    assert stats["sources"]["test"]["blank_lines_skipped"] == 2
    assert stats["sources"]["train"]["blank_lines_skipped"] == 0
    assert (stats["max_tokens"], stats["truncate"]) == (4, "head_tail")


def test_stage_prints_a_summary(tmp_path, capsys):
    folder, files = make_source(tmp_path, make_reviews(20, 1), make_reviews(6, 2))
    rc, out, stdout, err = run(tmp_path, folder, capsys, files=files)
    assert rc == 0, err
    assert "train: 18 documents (neg 9, pos 9)" in stdout
    assert "test: 6 documents (neg 3, pos 3)" in stdout
    assert "labels: neg, pos" in stdout and "validation carved from train" in stdout
    assert str(out) in stdout
    assert "prepare: error" not in err
    assert "prepare: reading" not in err and "prepare: tokenising" not in err  # quick work: no progress


def test_long_reading_and_tokenising_report_progress(tmp_path, capsys, monkeypatch):
    """Progress lines on stderr every `every` seconds (10; 0 here: one per document)."""
    import functools

    from pipelines.core.progress import Progress
    from pipelines.tasks.sentiment import prepare, reader

    for module in (prepare, reader):
        monkeypatch.setattr(module, "Progress", functools.partial(Progress, every=0))
    folder, files = make_source(tmp_path, make_reviews(20, 1), make_reviews(6, 2))
    rc, _, _, err = run(tmp_path, folder, capsys, files=files)
    assert rc == 0, err
    lines = [re.sub(r", \d+ s(, ETA \d+ s)?,", ",", line) for line in err.splitlines()]  # times vary
    assert "prepare: reading: 20 records, train.jsonl" in lines
    assert "prepare: reading: 26 records, test.jsonl" in lines
    tokenising = [line for line in lines if line.startswith("prepare: tokenising: ")]
    assert tokenising[0] == "prepare: tokenising: 1/26 documents (4%), train"
    assert "prepare: tokenising: 18/26 documents (69%), train" in tokenising
    assert "prepare: tokenising: 19/26 documents (73%), validation" in tokenising
    assert tokenising[-1] == "prepare: tokenising: 26/26 documents (100%), test"
    assert ", ETA " in err


# ---------------------------------------------------------------------------
# Bad labels and params: exit code 1, a message naming the file and line, nothing written


def test_unknown_label_in_test(tmp_path, capsys):
    labels = ("pos", "neg")
    test = make_reviews(4, 2, labels)
    test[2]["label"] = "neutral"
    folder, files = make_source(tmp_path, make_reviews(10, 1, labels), test)
    fails(
        tmp_path, capsys, folder,
        f"{folder / files['test']}:3: label 'neutral' in the test split never occurs in train (train labels: neg, pos)",
        files=files, label_names=None,
    )


def test_unknown_integer_label_in_validation_file(tmp_path, capsys):
    valid = make_reviews(4, 3)
    valid[1]["label"] = 2
    folder, files = make_source(tmp_path, make_reviews(10, 1), make_reviews(4, 2), validation=valid)
    fails(tmp_path, capsys, folder, f"{folder / files['validation']}:2: label 2 in the validation split never occurs",
          files=files, label_names=None)


def test_a_named_label_absent_from_train_is_unknown_in_test(tmp_path, capsys):
    test = make_reviews(4, 2, labels=(0, 2))
    test[3]["label"] = 1  # a valid id of label_names, but train never has it
    folder, files = make_source(tmp_path, make_reviews(10, 1, labels=(0, 2)), test)
    fails(tmp_path, capsys, folder,
          f"{folder / files['test']}:4: label 1 in the test split never occurs in train (train labels: neg, pos)",
          files=files, label_names=["neg", "neutral", "pos"])


@pytest.mark.parametrize("split, bad", [("train", 2), ("test", -1)])
def test_labels_outside_label_names(tmp_path, capsys, split, bad):
    rows = {"train": make_reviews(10, 1), "test": make_reviews(4, 2)}
    rows[split][3]["label"] = bad
    folder, files = make_source(tmp_path, rows["train"], rows["test"])
    fails(tmp_path, capsys, folder, f"{folder / files[split]}:4: label {bad} is outside 0..1 (label_names: neg, pos)",
          files=files)


def test_mixed_label_types_in_train(tmp_path, capsys):
    train = make_reviews(6, 1)
    train[4]["label"] = "pos"
    folder, files = make_source(tmp_path, train, make_reviews(4, 2))
    fails(tmp_path, capsys, folder, f"{folder / files['train']}:5: label 'pos' is not an integer", files=files)


def test_a_single_class_is_not_enough(tmp_path, capsys):
    folder, files = make_source(tmp_path, make_reviews(6, 1, labels=(1,)), make_reviews(4, 2, labels=(1,)))
    fails(tmp_path, capsys, folder, "only one label ('pos')", files=files)


def test_empty_split(tmp_path, capsys):
    folder, files = make_source(tmp_path, make_reviews(10, 1), make_reviews(4, 2))
    (folder / files["test"]).write_text("\n\n", encoding="utf-8")
    fails(tmp_path, capsys, folder, f"the test split ({folder / files['test']}) contains no documents", files=files)


@pytest.mark.parametrize(
    "key, value",
    [
        ("truncate", "middle"),
        ("max_tokens", 0),
        ("validation_size", 1.5),
        ("label_names", ["neg"]),
        ("min_word_count", 0),
        ("ngram_max_n", 9),
        ("ngram_min_df", 0),
        ("max_ngrams", -1),
        ("ngram_text", "middle"),
    ],
)
def test_bad_params(tmp_path, capsys, key, value):
    folder, files = make_source(tmp_path, make_reviews(6, 1), make_reviews(4, 2))
    fails(tmp_path, capsys, folder, f"params: sentiment.prepare.{key} must be", files=files, **{key: value})


def test_validation_size_leaving_nothing(tmp_path, capsys):
    folder, files = make_source(tmp_path, make_reviews(4, 1), make_reviews(4, 2))
    fails(tmp_path, capsys, folder, "validation_size 0.1 of 4 train documents leaves an empty validation split",
          files=files, validation_size=0.1)


# ---------------------------------------------------------------------------
# The hub branch (fake_hub: conftest.py)


def test_prepare_from_hub_carves_validation(tmp_path, fake_hub, capsys):
    ds, vocab, stats = run_ok(
        tmp_path, "someone/reviews", capsys, id_column=None, hub_config="plain", validation_size=0.2,
        label_names=["bad", "good"],
    )
    assert fake_hub["calls"] == [("someone/reviews", "plain")]
    assert vocab["labels"] == ["neg", "pos"]  # the ClassLabel names win over label_names
    assert ds["test"]["id"] == [f"test-{i}" for i in range(10)]
    assert ds["test"]["label"] == [1, 0] * 5
    assert ds["test"]["tokens"][1] == ["Awful", "film"]
    assert len(ds["validation"]) == 2 and Counter(ds["validation"]["label"]) == {0: 1, 1: 1}
    assert stats["validation"] == "carved"
    assert stats["sources"]["test"]["path"] == "someone/reviews[test]"


def test_prepare_from_hub_with_validation_and_string_labels(tmp_path, fake_hub, capsys):
    fake_hub["ds"] = hub_dataset(
        splits=("train", "validation", "test", "unsupervised"),
        label_feature=datasets.Value("string"),
        labels=["positive", "negative"] * 5,
    )
    ds, vocab, stats = run_ok(tmp_path, "someone/reviews", capsys, id_column=None, label_names=None)
    assert vocab["labels"] == ["negative", "positive"]
    assert stats["validation"] == "hub"
    assert len(ds["train"]) == len(ds["validation"]) == 10
    assert set(stats["sources"]) == {"train", "validation", "test"}


# ---------------------------------------------------------------------------
# The real data (read through the reader only; fast)
