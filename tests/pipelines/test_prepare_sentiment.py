"""The sentiment branch of the prepare stage: file formats, labels, the validation
split, markup, vocabulary, truncation, stats, bad input and the hub branch."""

import csv
import gzip
import io
import json
import random
from collections import Counter
from itertools import islice
from pathlib import Path

import datasets
import pytest
import yaml

from pipelines.documents import (
    DataError,
    file_format,
    iter_documents,
    percentile,
    stratified_split,
    tokenize_document,
    truncate_tokens,
)
from pipelines.prepare import main
from pipelines.tokenizer import clean_markup, tokenize

ROOT = Path(__file__).resolve().parents[2]
IMDB = ROOT.parent / "shared" / "data" / "imdb"

POOLS = [
    ["an awful film", "boring plot", "I hated it", "dull , slow and silly", "the worst of 1999"],
    ["a great film", "wonderful acting", "I loved it", "superb , moving and funny", "the best of 2019"],
    ["an average film", "some good parts", "it was okay", "fine but long", "a 50/50 affair"],
]


def make_reviews(n, seed, labels=(0, 1), prefix="r"):
    """Deterministic reviews cycling through `labels`; the i-th label uses POOLS[i]."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        k = i % len(labels)
        phrases = rng.sample(POOLS[k % len(POOLS)], rng.randint(1, 3))
        sep = rng.choice([" . ", ".<br /><br />", " ! "])
        rows.append({"id": f"{prefix}{seed}-{i}", "text": sep.join(phrases), "label": labels[k], "rating": i})
    return rows


def encode(name, rows):
    """The bytes of `rows` in the format that the file name says."""
    gz = name.endswith(".gz")
    base = name[:-3] if gz else name
    if base.endswith((".jsonl", ".json")):
        data = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
    elif base.endswith(".csv"):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        data = buf.getvalue().encode("utf-8")
    elif base.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows), sink)
        data = sink.getvalue().to_pybytes()
    else:
        raise AssertionError(name)
    return gzip.compress(data, mtime=0) if gz else data


def make_source(base, train, test, validation=None, ext="jsonl", name="src"):
    """A folder of split files; returns (folder, the files mapping for params)."""
    folder = Path(base) / name
    folder.mkdir(parents=True)
    files = {"train": f"train.{ext}", "validation": None, "test": f"test.{ext}"}
    if validation is not None:
        files["validation"] = f"valid.{ext}"
    for split, rows in (("train", train), ("validation", validation), ("test", test)):
        if rows is not None:
            (folder / files[split]).write_bytes(encode(files[split], rows))
    return folder, files


def sentiment_params(base, source, seed=None, **prepare):
    """The repository's params.yaml with sentiment.out_dir and source in `base`."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    section = params["sentiment"]
    section["out_dir"] = str(Path(base) / "out" / "sentiment")
    section["prepare"].update(source=str(source), min_word_count=1, max_vocab=None)
    for key, value in prepare.items():
        assert key in section["prepare"], f"unknown sentiment.prepare key {key}"
        section["prepare"][key] = value
    if seed is not None:
        params["seed"] = seed
    Path(base).mkdir(parents=True, exist_ok=True)
    path = Path(base) / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


def run(base, source, capsys, seed=None, **prepare):
    """Runs the stage; returns (exit code, output folder, stdout, stderr)."""
    rc = main(["sentiment", "--params", str(sentiment_params(base, source, seed, **prepare))])
    captured = capsys.readouterr()
    return rc, Path(base) / "out" / "sentiment", captured.out, captured.err


def run_ok(base, source, capsys, **kw):
    rc, out, _, err = run(base, source, capsys, **kw)
    assert rc == 0, err
    return load(out)


def load(out):
    ds = datasets.load_from_disk(str(out / "data"))
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    return ds, vocab, stats


def label_strings(ds, split):
    return [ds[split].features["label"].int2str(i) for i in ds[split]["label"]]


def tokens_of(rows):
    return [tokenize(clean_markup(r["text"])) for r in rows]


# ---------------------------------------------------------------------------
# Formats


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.jsonl", ("jsonl", False)),
        ("a.JSON", ("jsonl", False)),
        ("a.jsonl.gz", ("jsonl", True)),
        ("a.csv", ("csv", False)),
        ("a.csv.gz", ("csv", True)),
        ("a.parquet", ("parquet", False)),
        ("a.b.parquet.gz", ("parquet", True)),
    ],
)
def test_file_format_from_extension(name, expected):
    assert file_format(name) == expected


def test_every_format_gives_the_same_dataset(tmp_path, capsys):
    train, test = make_reviews(40, 1), make_reviews(12, 2)
    results = {}
    for ext in ("jsonl", "jsonl.gz", "json", "csv", "csv.gz", "parquet", "parquet.gz"):
        case = tmp_path / ext.replace(".", "_")
        folder, files = make_source(case, train, test, ext=ext)
        ds, vocab, stats = run_ok(case, folder, capsys, files=files)
        assert stats.pop("sources")["train"]["path"] == str(folder / files["train"])
        assert list(ds) == ["train", "validation", "test"]
        results[ext] = ({split: ds[split].to_dict() for split in ds}, ds["train"].features, vocab, stats)
    reference = results["jsonl"]
    for ext, result in results.items():
        assert result == reference, ext

    data, features, vocab, _ = reference
    assert features == datasets.Features(
        {
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "label": datasets.ClassLabel(names=["neg", "pos"]),
            "num_tokens": datasets.Value("int32"),
        }
    )
    assert data["test"]["id"] == [r["id"] for r in test]
    assert data["test"]["text"] == [r["text"] for r in test]  # raw, for the export parity check
    assert data["test"]["label"] == [r["label"] for r in test]
    assert data["test"]["tokens"] == tokens_of(test)
    assert data["test"]["num_tokens"] == [len(t) for t in tokens_of(test)]
    by_id = {r["id"]: r for r in train}
    for split in ("train", "validation"):
        assert data[split]["tokens"] == tokens_of(by_id[i] for i in data[split]["id"])
        assert data[split]["label"] == [by_id[i]["label"] for i in data[split]["id"]]
    assert vocab["labels"] == ["neg", "pos"]
    assert vocab["words"][:2] == ["<pad>", "<unk>"]


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
    assert vocab["tokenizer_version"] == 1
    s = stats["splits"]
    assert (s["test"]["tokens"], s["test"]["oov_tokens"], s["test"]["oov_rate"]) == (4, 1, 0.25)
    assert (s["validation"]["oov_tokens"], s["validation"]["oov_rate"]) == (1, 0.5)
    assert s["train"]["oov_tokens"] == 0
    assert stats["vocab"] == {"words": 6}

    _, vocab, stats = run_ok(tmp_path / "b", folder, capsys, files=files, min_word_count=2)
    assert vocab["words"] == ["<pad>", "<unk>", "paris", "rocks"]
    assert stats["splits"]["train"]["oov_tokens"] == 2
    _, vocab, _ = run_ok(tmp_path / "c", folder, capsys, files=files, max_vocab=3)
    assert vocab["words"] == ["<pad>", "<unk>", "paris"]
    _, vocab, _ = run_ok(tmp_path / "d", folder, capsys, files=files, lowercase=False, digits_to_zero=False)
    assert vocab["words"] == ["<pad>", "<unk>", "Paris", "2019", "ROCKS", "in", "paris", "rocks"]


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
    ds, vocab, stats = run_ok(tmp_path, folder, capsys, files=files, max_tokens=4, truncate=policy)
    assert ds["test"]["tokens"] == [kept.split(), ["good", "film"], ["a", "b", "c", "d"]]
    assert ds["test"]["num_tokens"] == [7, 2, 4]
    assert (vocab["max_tokens"], vocab["truncate"]) == (4, policy)
    s = stats["splits"]["test"]
    assert (s["tokens"], s["tokens_kept"], s["truncated_documents"]) == (13, 10, 1)
    assert "seven" in vocab["words"] and "three" in vocab["words"]  # vocabulary: before truncation


# ---------------------------------------------------------------------------
# Stats and the summary


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


# ---------------------------------------------------------------------------
# Bad input: exit code 1, a message naming the file and line, nothing written


def assert_error(err, *fragments):
    assert err.startswith("prepare: error: "), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def fails(tmp_path, capsys, source, *fragments, **prepare):
    rc, out, _, err = run(tmp_path, source, capsys, **prepare)
    assert rc == 1
    assert_error(err, *fragments)
    assert not (out / "data").exists()
    return err


def test_missing_text_column_jsonl(tmp_path, capsys):
    train = [{"id": "1", "review": "good", "label": 1}]
    folder, files = make_source(tmp_path, make_reviews(4, 1) + train, make_reviews(4, 2))
    path = folder / files["train"]
    fails(tmp_path, capsys, folder, f"{path}:5: no 'text' field (fields: id, review, label)", files=files)


@pytest.mark.parametrize("ext", ["csv", "csv.gz", "parquet"])
def test_missing_label_column(tmp_path, capsys, ext):
    rows = [{"id": r["id"], "text": r["text"], "sentiment": r["label"]} for r in make_reviews(10, 1)]
    folder, files = make_source(tmp_path, rows, rows, ext=ext)
    path = folder / files["train"]
    fails(tmp_path, capsys, folder, f"{path}: no 'label' column (columns: id, text, sentiment)", files=files)
    # ... and a configurable column name makes it work
    ds, _, _ = run_ok(tmp_path / "ok", folder, capsys, files=files, label_column="sentiment")
    assert ds["test"]["label"] == [r["sentiment"] for r in rows]


def test_configurable_text_and_id_columns(tmp_path, capsys):
    rows = [{"review": r["text"], "y": r["label"]} for r in make_reviews(10, 1)]
    folder, files = make_source(tmp_path, rows, rows)
    ds, _, _ = run_ok(tmp_path, folder, capsys, files=files, text_column="review", label_column="y", id_column=None)
    assert ds["test"]["id"] == [f"test-{i}" for i in range(10)]
    assert ds["test"]["tokens"] == [tokenize(clean_markup(r["review"])) for r in rows]
    assert all(i.startswith("train-") for i in ds["validation"]["id"])


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


@pytest.mark.parametrize("ext", ["jsonl", "jsonl.gz", "csv"])
def test_non_utf8_line(tmp_path, capsys, ext):
    folder, files = make_source(tmp_path, make_reviews(10, 1), make_reviews(4, 2), ext=ext)
    path = folder / files["test"]
    good = encode(files["test"].replace(".gz", ""), make_reviews(4, 2)).split(b"\n")
    good[2] = good[2][:5] + b"\xe9" + good[2][5:]
    data = b"\n".join(good)
    path.write_bytes(gzip.compress(data) if ext.endswith(".gz") else data)
    fails(tmp_path, capsys, folder, f"{path}:3: not valid UTF-8", files=files)


def test_invalid_json_line(tmp_path, capsys):
    folder, files = make_source(tmp_path, make_reviews(10, 1), make_reviews(4, 2))
    path = folder / files["train"]
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[6] = lines[6][:-1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fails(tmp_path, capsys, folder, f"{path}:7: not valid JSON", files=files)
    path.write_text('["a list"]\n', encoding="utf-8")
    fails(tmp_path / "b", capsys, folder, f"{path}:1: expected a JSON object, got list", files=files)


def test_text_must_be_a_string(tmp_path, capsys):
    train = make_reviews(6, 1)
    train[1]["text"] = None
    folder, files = make_source(tmp_path, train, make_reviews(4, 2))
    fails(tmp_path, capsys, folder, f"{folder / files['train']}:2: 'text' must be a string, got null", files=files)


def test_csv_row_with_wrong_field_count(tmp_path, capsys):
    folder, files = make_source(tmp_path, make_reviews(6, 1), make_reviews(4, 2), ext="csv")
    path = folder / files["test"]
    path.write_text(path.read_text(encoding="utf-8") + "x,only two\n", encoding="utf-8")
    fails(tmp_path, capsys, folder, f"{path}:6: 2 fields, but the header has 4 (id, text, label, rating)", files=files)


def test_missing_source_folder(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    fails(tmp_path, capsys, missing, "sentiment source folder not found", str(missing))


def test_missing_file(tmp_path, capsys):
    folder, files = make_source(tmp_path, make_reviews(6, 1), make_reviews(4, 2))
    (folder / files["test"]).unlink()
    fails(tmp_path, capsys, folder, f"test file not found: {folder / files['test']}", files=files)
    files = {**files, "validation": "valid.jsonl"}
    fails(tmp_path / "b", capsys, folder, f"validation file not found: {folder / 'valid.jsonl'}", files=files)


def test_unsupported_extension(tmp_path, capsys):
    folder, files = make_source(tmp_path, make_reviews(6, 1), make_reviews(4, 2))
    (folder / "train.txt").write_text("a good film\n", encoding="utf-8")
    fails(tmp_path, capsys, folder, f"{folder / 'train.txt'}: unsupported file type", ".jsonl, .json, .csv or .parquet",
          files={**files, "train": "train.txt"})


def test_not_gzip(tmp_path, capsys):
    folder, files = make_source(tmp_path, make_reviews(6, 1), make_reviews(4, 2))
    (folder / "test.jsonl.gz").write_bytes((folder / files["test"]).read_bytes())
    fails(tmp_path, capsys, folder, f"{folder / 'test.jsonl.gz'}:1: cannot read the gzip file",
          files={**files, "test": "test.jsonl.gz"})


@pytest.mark.parametrize(
    "key, value",
    [
        ("truncate", "middle"),
        ("max_tokens", 0),
        ("validation_size", 1.5),
        ("label_names", ["neg"]),
        ("min_word_count", 0),
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
# The hub branch


HUB_TEXTS = ["Great film", "Awful<br />film", "Loved it", "Hated it", "Superb", "Boring", "Fine", "Dull", "Wow", "Meh"]


def hub_dataset(splits=("train", "test"), label_feature=None, labels=None, text_col="text"):
    labels = labels if labels is not None else [1, 0] * 5
    feature = label_feature or datasets.ClassLabel(names=["neg", "pos"])
    features = datasets.Features({text_col: datasets.Value("string"), "label": feature})
    data = {text_col: HUB_TEXTS, "label": labels}
    return datasets.DatasetDict({s: datasets.Dataset.from_dict(data, features=features) for s in splits})


@pytest.fixture
def fake_hub(monkeypatch):
    holder = {"ds": hub_dataset(), "calls": []}

    def load_dataset(path, name=None, *args, **kwargs):
        holder["calls"].append((path, name))
        if isinstance(holder["ds"], Exception):
            raise holder["ds"]
        return holder["ds"]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return holder


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


def test_hub_errors(tmp_path, fake_hub, capsys):
    fake_hub["ds"] = hub_dataset(text_col="review")
    fails(tmp_path / "a", capsys, "someone/reviews",
          "hub dataset 'someone/reviews' split 'train' has no column 'text' (columns: review, label)", id_column=None)
    fake_hub["ds"] = hub_dataset(splits=("train",))
    fails(tmp_path / "b", capsys, "someone/reviews", "has no 'test' split (has: train)", id_column=None)
    fake_hub["ds"] = hub_dataset(labels=[1, 0, 1, 0, 1, 0, 1, 0, 1, -1])
    fails(tmp_path / "c", capsys, "someone/reviews", "someone/reviews[train][9]: label -1 is outside 0..1",
          id_column=None)
    fake_hub["ds"] = ConnectionError("offline")
    fails(tmp_path / "d", capsys, "someone/reviews", "could not be loaded from the Hugging Face hub",
          "ConnectionError: offline")


# ---------------------------------------------------------------------------
# The real data (read through the reader only; fast)


@pytest.mark.skipif(not (IMDB / "train.jsonl.gz").is_file(), reason="../shared/data/imdb is not available")
def test_reads_the_first_lines_of_the_imdb_train_file():
    path = IMDB / "train.jsonl.gz"
    reader = iter_documents(path, "text", "label", "id")
    docs = list(islice(reader, 300))
    reader.close()
    assert len(docs) == 300
    assert docs[0].where == f"{path}:1" and docs[-1].where == f"{path}:300"
    assert all(isinstance(d.text, str) and d.text for d in docs)
    assert {d.label for d in docs} <= {0, 1}
    assert len({d.id for d in docs}) == 300
    assert any("<br />" in d.text for d in docs)
    tokens = [tokenize_document(d.text) for d in docs[:50]]
    assert all(tokens) and not any("<br" in t or t == "br" for doc in tokens for t in doc)
