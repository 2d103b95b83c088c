"""Sentiment test helpers: review files in every format, a params file, running the prepare stage, a fake hub."""

import csv
import gzip
import io
import json
import random
from pathlib import Path

import datasets
import pytest
import yaml

from pipelines.prepare import main
from pipelines.text.tokenizer import clean_markup, tokenize
from tests.conftest import ROOT, SHARED_DATA

IMDB = SHARED_DATA / "imdb"

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


# ---------------------------------------------------------------------------
# A fake hub


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
