"""Document classification data (sentiment): reading, labels, validation split, truncation.

The sentiment branch of the prepare stage (``python -m pipelines.prepare sentiment``).

Sources (``sentiment.prepare.source``):
  * a local folder with one file per split (``files``: train and test required,
    validation optional). The format comes from the extension: ``.jsonl``/``.json``
    (JSON Lines, one object per line), ``.csv`` (with a header row) or
    ``.parquet``, each optionally followed by ``.gz``. Text formats are read line
    by line so that every error names ``file:line``; Parquet rows are named
    ``file:row N`` (1-based).
  * a Hugging Face hub dataset id, loaded with ``datasets.load_dataset`` (train
    and test splits required, validation optional).

Labels are integers or strings, two classes or more:
  * integers with ``label_names``: the ids are the integers, which must lie in
    0..K-1 where K = len(label_names); the names are label_names;
  * integers without ``label_names``: the distinct train values, sorted
    numerically, become ids 0..K-1 and their decimal strings the names;
  * strings: ``label_names`` if given (labels must be among them, ids follow
    its order), otherwise the sorted distinct train labels;
  * a hub ClassLabel column: its names (``label_names`` is then not used).
CSV cells are strings, so a CSV label made of digits (``"1"``, ``"-1"``) is read
as an integer; JSON and Parquet keep their types. Every validation/test label
must occur in train.

Text: markup such as ``<br />`` is replaced by a space (tokenizer.clean_markup),
then tokenizer.tokenize splits it. Empty documents (also after cleaning) are
kept and counted as ``empty_documents``. The dataset stores the original
(not normalised) tokens, truncated to ``max_tokens`` with ``truncate_tokens``;
``num_tokens`` is the length before truncation. The word vocabulary is built
from the (final, i.e. after carving validation) train split, on all tokens
before truncation, normalised with normalize_word.

When the source has no validation split, a stratified ``validation_size``
fraction of train (by label, seeded with the global seed) becomes validation.
"""

import csv
import gzip
import json
import math
import random
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import resolve_path
from pipelines.prepare import DataError, load_hub_dataset, looks_like_hub_id
from pipelines.tokenizer import TOKENIZER_VERSION, clean_markup, normalize_word, tokenize
from pipelines.vocab import Vocabulary, save_json

SPLITS = ("train", "validation", "test")
TRUNCATE_POLICIES = ("head", "tail", "head_tail")
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
PERCENTILES = (50, 90, 95, 99)
_CSV_INT = re.compile(r"[+-]?[0-9]+")


# ---------------------------------------------------------------------------
# Truncation (mirrored in TensorFlow: keep this exact definition)


def truncate_tokens(tokens, max_tokens, policy):
    """The part of a long document that is kept; documents of at most
    ``max_tokens`` tokens are returned unchanged (as a new list).

    head:      tokens[:max_tokens]
    tail:      tokens[-max_tokens:]
    head_tail: tokens[:h] + tokens[n - (max_tokens - h):] with h = max_tokens // 2
               (the tail gets the extra token when max_tokens is odd).
    """
    if policy not in TRUNCATE_POLICIES:
        raise ValueError(f"truncate policy must be one of {', '.join(TRUNCATE_POLICIES)}, got {policy!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    tokens = list(tokens)
    n = len(tokens)
    if n <= max_tokens:
        return tokens
    if policy == "head":
        return tokens[:max_tokens]
    if policy == "tail":
        return tokens[n - max_tokens :]
    h = max_tokens // 2
    return tokens[:h] + tokens[n - (max_tokens - h) :]


def tokenize_document(text):
    """Markup removed, then the project tokenizer."""
    return tokenize(clean_markup(text))


# ---------------------------------------------------------------------------
# Reading local files


@dataclass
class Document:
    id: str
    text: str
    label: object  # int or str, as read
    where: str  # "file:line", "file:row N" or "hub_id[split][index]"


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(value):
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def file_format(path):
    """("jsonl" | "csv" | "parquet", gzip-compressed?) from the file name."""
    name = Path(path).name.lower()
    compressed = name.endswith(".gz")
    if compressed:
        name = name[:-3]
    fmt = FORMATS.get(Path(name).suffix)
    if fmt is None:
        raise DataError(
            f"{path}: unsupported file type; expected .jsonl, .json, .csv or .parquet, each optionally .gz"
        )
    return fmt, compressed


def _binary_lines(path, compressed):
    line_no = 0
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            for line_no, raw in enumerate(f, start=1):
                yield line_no, raw
    except (OSError, EOFError, zlib.error) as err:
        kind = "gzip file" if compressed else "file"
        raise DataError(f"{path}:{line_no + 1}: cannot read the {kind}: {err}") from err


def _text_lines(path, compressed):
    for line_no, raw in _binary_lines(path, compressed):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(
                f"{path}:{line_no}: not valid UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1})"
            ) from None
        if line_no == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield line_no, text


def _jsonl_records(path, compressed, columns, counts):
    for line_no, line in _text_lines(path, compressed):
        if not line.strip():
            counts["blank_lines"] += 1
            continue
        where = f"{path}:{line_no}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{where}: not valid JSON ({err.msg} at column {err.colno}); expected one JSON object per line"
            ) from None
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got {_describe(record)}")
        for col in columns:
            if col not in record:
                raise DataError(f"{where}: no {col!r} field (fields: {', '.join(record) or 'none'})")
        yield where, record


def _check_columns(path, names, columns):
    for col in columns:
        if col not in names:
            raise DataError(f"{path}: no {col!r} column (columns: {', '.join(map(str, names)) or 'none'})")


def _csv_records(path, compressed, columns, label_column, counts):
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    lines = _text_lines(path, compressed)
    reader = csv.reader(text for _, text in lines)
    header = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(f"{path}:{reader.line_num}: not valid CSV: {err}") from None
        if not row:
            counts["blank_lines"] += 1
            continue
        if header is None:
            header = row
            _check_columns(path, header, columns)
            continue
        if len(row) != len(header):
            raise DataError(
                f"{path}:{start}: {len(row)} fields, but the header has {len(header)} ({', '.join(header)})"
            )
        record = dict(zip(header, row))
        if _CSV_INT.fullmatch(record[label_column]):  # CSV cells are strings; "1" is the integer label 1
            record[label_column] = int(record[label_column])
        yield f"{path}:{start}", record


def _parquet_records(path, compressed, columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if compressed:
            with gzip.open(path, "rb") as f:
                table = pq.read_table(pa.BufferReader(f.read()))
        else:
            table = pq.read_table(path)
    except (OSError, EOFError, zlib.error, pa.ArrowException) as err:
        raise DataError(f"{path}: not a readable Parquet file: {err}") from err
    _check_columns(path, table.column_names, columns)
    values = {col: table.column(col).to_pylist() for col in columns}
    for i in range(table.num_rows):
        yield f"{path}:row {i + 1}", {col: values[col][i] for col in columns}


def _document(where, record, text_column, label_column, id_column, default_id):
    text = record[text_column]
    if not isinstance(text, str):
        raise DataError(f"{where}: {text_column!r} must be a string, got {_describe(text)}")
    label = record[label_column]
    if not (is_int(label) or (isinstance(label, str) and label)):
        raise DataError(f"{where}: {label_column!r} must be an integer or a non-empty string, got {_describe(label)}")
    if id_column is None:
        doc_id = default_id
    else:
        doc_id = record[id_column]
        if not (is_int(doc_id) or isinstance(doc_id, str)):
            raise DataError(f"{where}: {id_column!r} must be a string or an integer, got {_describe(doc_id)}")
    return Document(str(doc_id), text, label, where)


def iter_documents(path, text_column="text", label_column="label", id_column=None, id_prefix="", counts=None):
    """Documents of one local file, in file order (a generator: it reads lazily).

    Without ``id_column`` the ids are ``f"{id_prefix}{index}"`` (0-based).
    ``counts["blank_lines"]`` (a Counter, if given) counts skipped blank lines.
    Raises DataError for anything wrong, naming the file and line or row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    fmt, compressed = file_format(path)
    counts = counts if counts is not None else Counter()
    columns = [c for c in (text_column, label_column, id_column) if c is not None]
    if fmt == "jsonl":
        records = _jsonl_records(path, compressed, columns, counts)
    elif fmt == "csv":
        records = _csv_records(path, compressed, columns, label_column, counts)
    else:
        records = _parquet_records(path, compressed, columns)
    for index, (where, record) in enumerate(records):
        yield _document(where, record, text_column, label_column, id_column, f"{id_prefix}{index}")


def read_local(source, cfg):
    """{split: [Document]} and per-file read stats for the files of a local folder."""
    folder = resolve_path(source)
    if not folder.is_dir():
        raise DataError(f"sentiment source folder not found: {folder}")
    files = cfg.get("files") or {}
    unknown = sorted(set(files) - set(SPLITS))
    if unknown:
        raise DataError(f"params: sentiment.prepare.files has unknown splits {unknown} (known: {', '.join(SPLITS)})")
    for split in ("train", "test"):
        if not files.get(split):
            raise DataError(f"params: sentiment.prepare.files has no {split!r} file")
    splits, sources = {}, {}
    for split in SPLITS:
        if not files.get(split):
            continue
        path = folder / files[split]
        if not path.is_file():
            raise DataError(f"{split} file not found: {path}")
        counts = Counter()
        docs = list(
            iter_documents(
                path, cfg["text_column"], cfg["label_column"], cfg.get("id_column"), f"{split}-", counts
            )
        )
        if not docs:
            raise DataError(f"the {split} split ({path}) contains no documents")
        splits[split] = docs
        sources[split] = {"path": str(path), "records": len(docs), "blank_lines_skipped": counts["blank_lines"]}
    return splits, sources


def read_hub(source, cfg):
    """{split: [Document]}, read stats and the ClassLabel names (or None) of a hub dataset."""
    import datasets

    ds = load_hub_dataset(source, cfg)
    text_col, label_col, id_col = cfg["text_column"], cfg["label_column"], cfg.get("id_column")
    columns = [c for c in (text_col, label_col, id_col) if c is not None]
    for split in ("train", "test"):
        if split not in ds:
            raise DataError(f"hub dataset {source!r} has no {split!r} split (has: {', '.join(ds)})")
    splits, sources = {}, {}
    for split in SPLITS:
        if split not in ds:
            continue
        part = ds[split]
        for col in columns:
            if col not in part.column_names:
                raise DataError(
                    f"hub dataset {source!r} split {split!r} has no column {col!r} "
                    f"(columns: {', '.join(part.column_names)})"
                )
        values = part.select_columns(columns).to_dict()
        docs = [
            _document(
                f"{source}[{split}][{i}]",
                {c: values[c][i] for c in columns},
                text_col,
                label_col,
                id_col,
                f"{split}-{i}",
            )
            for i in range(part.num_rows)
        ]
        if not docs:
            raise DataError(f"the {split} split of hub dataset {source!r} contains no documents")
        splits[split] = docs
        sources[split] = {"path": f"{source}[{split}]", "records": len(docs), "blank_lines_skipped": 0}
    feature = ds["train"].features[label_col]
    class_names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    return splits, sources, class_names


# ---------------------------------------------------------------------------
# Labels and the validation split


def label_map(train_docs, label_names=None):
    """(names, raw label -> id, "integer" | "string") from the train labels and params."""
    first = train_docs[0]
    kind = "integer" if is_int(first.label) else "string"
    for doc in train_docs:
        if is_int(doc.label) != (kind == "integer"):
            raise DataError(
                f"{doc.where}: label {doc.label!r} is not an {kind} like the first train label "
                f"({first.label!r} at {first.where}); labels must be all integers or all strings"
            )
    if label_names is not None:
        names = list(label_names)
        keys = range(len(names)) if kind == "integer" else names
        return names, {k: i for i, k in enumerate(keys)}, kind
    values = sorted({doc.label for doc in train_docs})
    return [str(v) for v in values], {v: i for i, v in enumerate(values)}, kind


def label_ids(splits, names, ids, kind, label_names_given):
    """{split: [label id]}; every label must be known and val/test labels must occur in train."""
    out, seen = {}, set()
    for split in [s for s in SPLITS if s in splits]:
        row = []
        for doc in splits[split]:
            lid = ids.get(doc.label) if is_int(doc.label) == (kind == "integer") else None
            if lid is None and label_names_given and (split == "train" or is_int(doc.label) == (kind == "integer")):
                if kind == "integer":
                    raise DataError(
                        f"{doc.where}: label {doc.label!r} is outside 0..{len(names) - 1} "
                        f"(label_names: {', '.join(names)})"
                    )
                raise DataError(f"{doc.where}: label {doc.label!r} is not one of label_names ({', '.join(names)})")
            if split != "train" and (lid is None or lid not in seen):
                known = ", ".join(names[i] for i in sorted(seen))
                raise DataError(
                    f"{doc.where}: label {doc.label!r} in the {split} split never occurs in train "
                    f"(train labels: {known})"
                )
            row.append(lid)
        out[split] = row
        if split == "train":
            seen = set(row)
            if len(seen) < 2:
                raise DataError(
                    f"the train split has only one label ({names[row[0]]!r}); a classifier needs at least two"
                )
    return out


def stratified_split(labels, fraction, seed):
    """(train indices, validation indices), both sorted, for a validation part of
    round-half-up(len(labels) * fraction) items. Each label gets floor(its share),
    the remainder goes to the largest fractional shares (ties: smaller label), and
    a label's items are picked after a seeded shuffle (labels in sorted order).
    """
    n = len(labels)
    total = math.floor(n * fraction + 0.5)
    if total < 1 or total >= n:
        empty = "validation" if total < 1 else "train"
        raise DataError(
            f"validation_size {fraction} of {n} train documents leaves an empty {empty} split; "
            "adjust sentiment.prepare.validation_size or provide a validation file"
        )
    groups = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    keys = sorted(groups)
    exact = {k: len(groups[k]) * total / n for k in keys}
    quota = {k: math.floor(exact[k]) for k in keys}
    for k in sorted(keys, key=lambda k: (quota[k] - exact[k], k))[: total - sum(quota.values())]:
        quota[k] += 1
    rng = random.Random(seed)
    chosen = []
    for k in keys:
        items = list(groups[k])
        rng.shuffle(items)
        chosen += items[: quota[k]]
    validation = sorted(chosen)
    picked = set(validation)
    return [i for i in range(n) if i not in picked], validation


# ---------------------------------------------------------------------------
# The stage


def check_config(cfg):
    def bad(key, expected):
        raise DataError(f"params: sentiment.prepare.{key} must be {expected}, got {cfg.get(key)!r}")

    for key in ("text_column", "label_column"):
        if not isinstance(cfg.get(key), str) or not cfg[key]:
            bad(key, "a column name")
    if cfg.get("id_column") is not None and (not isinstance(cfg["id_column"], str) or not cfg["id_column"]):
        bad("id_column", "a column name or null")
    if cfg.get("truncate") not in TRUNCATE_POLICIES:
        bad("truncate", " or ".join(TRUNCATE_POLICIES))
    if not is_int(cfg.get("max_tokens")) or cfg["max_tokens"] < 1:
        bad("max_tokens", "a positive integer")
    size = cfg.get("validation_size")
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size < 1:
        bad("validation_size", "a fraction between 0 and 1 (exclusive)")
    if not is_int(cfg.get("min_word_count")) or cfg["min_word_count"] < 1:
        bad("min_word_count", "an integer >= 1")
    if cfg.get("max_vocab") is not None and (not is_int(cfg["max_vocab"]) or cfg["max_vocab"] < 3):
        bad("max_vocab", "null or an integer >= 3 (it counts <pad> and <unk>)")
    names = cfg.get("label_names")
    if names is not None and (
        not isinstance(names, list)
        or len(names) < 2
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        bad("label_names", "null or a list of at least two distinct non-empty strings")
    for key in ("lowercase", "digits_to_zero"):
        if not isinstance(cfg.get(key), bool):
            bad(key, "true or false")


def percentile(sorted_values, p):
    """Nearest-rank percentile: the smallest value with at least p% of values <= it."""
    k = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[max(k, 1) - 1]


def process_split(docs, lids, cfg):
    """Tokenises and truncates; returns (columns for the Dataset, normalised token Counter, stats)."""
    max_tokens, policy = cfg["max_tokens"], cfg["truncate"]
    lowercase, digits = cfg["lowercase"], cfg["digits_to_zero"]
    # The raw text is kept so that export can check the SavedModel on it.
    columns = {"id": [], "text": [], "tokens": [], "label": [], "num_tokens": []}
    counts = Counter()
    truncated = empty = 0
    for doc, lid in zip(docs, lids):
        tokens = tokenize_document(doc.text)
        counts.update(normalize_word(t, lowercase, digits) for t in tokens)
        kept = truncate_tokens(tokens, max_tokens, policy)
        truncated += len(kept) < len(tokens)
        empty += not tokens
        columns["id"].append(doc.id)
        columns["text"].append(doc.text)
        columns["tokens"].append(kept)
        columns["label"].append(lid)
        columns["num_tokens"].append(len(tokens))
    lengths = sorted(columns["num_tokens"])
    stats = {
        "documents": len(docs),
        "tokens": sum(lengths),
        "tokens_kept": sum(len(t) for t in columns["tokens"]),
        "truncated_documents": truncated,
        "empty_documents": empty,
        "length": {**{f"p{p}": percentile(lengths, p) for p in PERCENTILES}, "max": lengths[-1]},
    }
    return columns, counts, stats


def prepare(cfg, out, seed):
    """Writes out/data (DatasetDict), out/vocab.json and out/stats.json; returns the stats."""
    import datasets

    check_config(cfg)
    source = cfg["source"]
    if resolve_path(source).exists() or not looks_like_hub_id(source):
        splits, sources = read_local(source, cfg)
        class_names, origin = None, "file"
    else:
        splits, sources, class_names = read_hub(source, cfg)
        origin = "hub"
    label_names = class_names if class_names is not None else cfg.get("label_names")
    names, ids, kind = label_map(splits["train"], label_names)
    lids = label_ids(splits, names, ids, kind, label_names is not None)

    if "validation" in splits:
        validation = origin
    else:
        validation = "carved"
        train_idx, val_idx = stratified_split(lids["train"], cfg["validation_size"], seed)
        train_docs, train_lids = splits["train"], lids["train"]
        splits["validation"] = [train_docs[i] for i in val_idx]
        lids["validation"] = [train_lids[i] for i in val_idx]
        splits["train"] = [train_docs[i] for i in train_idx]
        lids["train"] = [train_lids[i] for i in train_idx]

    processed = {split: process_split(splits[split], lids[split], cfg) for split in SPLITS}
    words = Vocabulary.build(processed["train"][1], min_count=cfg["min_word_count"], max_size=cfg.get("max_vocab"))

    split_stats = {}
    for split, (_, counts, s) in processed.items():
        oov = sum(c for w, c in counts.items() if w not in words)
        label_counts = Counter(lids[split])
        split_stats[split] = {
            **s,
            "labels": {name: label_counts.get(i, 0) for i, name in enumerate(names)},
            "oov_tokens": oov,
            "oov_rate": round(oov / max(1, s["tokens"]), 5),
        }

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "label": datasets.ClassLabel(names=names),
            "num_tokens": datasets.Value("int32"),
        }
    )
    dataset = datasets.DatasetDict(
        {split: datasets.Dataset.from_dict(processed[split][0], features=features) for split in SPLITS}
    )
    out.mkdir(parents=True, exist_ok=True)
    dataset.save_to_disk(str(out / "data"))
    save_json(
        {
            "tokenizer_version": TOKENIZER_VERSION,
            "lowercase": cfg["lowercase"],
            "digits_to_zero": cfg["digits_to_zero"],
            "max_tokens": cfg["max_tokens"],
            "truncate": cfg["truncate"],
            "clean_markup": True,
            "labels": names,
            "words": words.to_list(),
        },
        out / "vocab.json",
    )
    stats = {
        "labels": names,
        "label_type": kind,
        "validation": validation,
        "validation_size": cfg["validation_size"] if validation == "carved" else None,
        "max_tokens": cfg["max_tokens"],
        "truncate": cfg["truncate"],
        "sources": sources,
        "splits": split_stats,
        "vocab": {"words": len(words)},
    }
    save_json(stats, out / "stats.json")
    return stats


def summary_lines(stats):
    """A few lines for the terminal."""
    lines = []
    for split, s in stats["splits"].items():
        balance = ", ".join(f"{name} {n}" for name, n in s["labels"].items())
        lines.append(
            f"{split}: {s['documents']} documents ({balance}), {s['tokens']} tokens, median length "
            f"{s['length']['p50']}, {s['truncated_documents']} truncated, {s['empty_documents']} empty, "
            f"OOV rate {s['oov_rate']:.2%}"
        )
    how = {"carved": "carved from train", "file": "from its file", "hub": "from the hub"}[stats["validation"]]
    lines.append(
        f"labels: {', '.join(stats['labels'])}; vocabulary: {stats['vocab']['words']} words; "
        f"validation {how}; truncation: {stats['truncate']} to {stats['max_tokens']} tokens"
    )
    return lines
