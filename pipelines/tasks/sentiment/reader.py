"""Reading the sentiment source: local JSON Lines, CSV or Parquet files, or a hub dataset.

Sources (``sentiment.prepare.source``):
  * a local folder with one file per split (``files``: train and test required,
    validation optional). The format comes from the extension: ``.jsonl``/``.json``
    (JSON Lines, one object per line), ``.csv`` (with a header row) or
    ``.parquet``, each optionally followed by ``.gz``. Text formats are read line
    by line so that every error names ``file:line``; Parquet rows are named
    ``file:row N`` (1-based).
  * a Hugging Face hub dataset id, loaded with ``datasets.load_dataset`` (train
    and test splits required, validation optional).
CSV cells are strings, so a CSV label made of digits (``"1"``, ``"-1"``) is read
as an integer; JSON and Parquet keep their types.
"""

import csv
import gzip
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.config import resolve_path
from pipelines.core.errors import DataError
from pipelines.core.io import load_hub_dataset
from pipelines.core.progress import Progress

SPLITS = ("train", "validation", "test")
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_CSV_INT = re.compile(r"[+-]?[0-9]+")


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
        if label_column is not None and _CSV_INT.fullmatch(record[label_column]):  # CSV cells are strings; "1" is the integer label 1
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
    label = record[label_column] if label_column is not None else None  # None: unlabelled text
    if label_column is not None and not (is_int(label) or (isinstance(label, str) and label)):
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
    with Progress("prepare: reading", unit="records") as progress:  # a line every ~10 s over all files
        for split in SPLITS:
            if not files.get(split):
                continue
            path = folder / files[split]
            if not path.is_file():
                raise DataError(f"{split} file not found: {path}")
            counts = Counter()
            progress.extra = path.name
            docs = []
            for doc in iter_documents(
                path, cfg["text_column"], cfg["label_column"], cfg.get("id_column"), f"{split}-", counts
            ):
                docs.append(doc)
                progress.update()
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
