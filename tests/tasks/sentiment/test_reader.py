"""Reading sentiment sources: file formats (JSONL, CSV, Parquet, gzip), columns, read errors
that name the file and line, the hub and the real IMDB file."""

import gzip
from itertools import islice

import datasets
import pytest

from pipelines.tasks.sentiment.encoding import tokenize_document
from pipelines.tasks.sentiment.reader import file_format, iter_documents
from pipelines.text.tokenizer import clean_markup, tokenize
from tests.tasks.sentiment.conftest import (
    IMDB,
    encode,
    fails,
    hub_dataset,
    make_reviews,
    make_source,
    run_ok,
    tokens_of,
)


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
            "cut_tokens": datasets.Sequence(datasets.Value("string")),
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
# Columns and read errors: exit code 1, a message naming the file and line, nothing written


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


# ---------------------------------------------------------------------------
# The hub (fake_hub: conftest.py)


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
