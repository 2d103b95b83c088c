"""Reading the NER source: CoNLL files in a local folder, or a Hugging Face hub dataset.

Pure Python on purpose: data loading and validation must be testable and
usable without importing TensorFlow/Keras.

Format: one token per line, whitespace-separated columns; a blank line ends a
sentence; lines whose first column is ``-DOCSTART-`` separate documents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipelines.core.config import resolve_path
from pipelines.core.errors import DataError
from pipelines.core.io import load_hub_dataset
from pipelines.core.progress import Progress
from pipelines.tasks.ner.labels import TAG_PATTERN, TagSchemeError

DOCSTART = "-DOCSTART-"
SPLITS = ("train", "validation", "test")


class ConllFormatError(DataError):
    """Malformed CoNLL file; message is ``path:line: what is wrong``."""


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    line: int  # 1-based line number of the first token
    doc: int  # 0-based document index (0 if the file has no -DOCSTART-)


@dataclass
class ReadStats:
    sentences: int
    tokens: int
    documents: int  # distinct document indices that contain sentences
    docstart_lines: int
    blank_lines: int


def _short(line: str, limit: int = 120) -> str:
    line = line.strip()
    return repr(line if len(line) <= limit else line[:limit] + "...")


def _decode(data: bytes, name: str, encoding: str) -> str:
    enc = encoding.lower().replace("_", "-")
    # A UTF-8 BOM would otherwise glue itself onto the first token.
    codec = "utf-8-sig" if enc in ("utf-8", "utf8") else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as e:
        # Line number via newline count is exact for ASCII-compatible codecs.
        prefix = data[: e.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line_no = prefix.count(b"\n") + 1
        raise ConllFormatError(
            f"{name}:{line_no}: cannot decode as {encoding}: "
            f"byte {data[e.start:e.start + 1]!r} at file offset {e.start}"
        ) from None


def read_conll(
    path: str | os.PathLike,
    *,
    word_column: int = 0,
    tag_column: int = -1,
    num_columns: int | None = None,
    encoding: str = "utf-8",
    progress=None,
) -> tuple[list[Sentence], ReadStats]:
    """Read a CoNLL file into sentences, validating layout and tag syntax.

    Every token line must have ``num_columns`` columns (or, if None, as many
    as the first token line). Tags must be ``O`` or ``[BIES]-TYPE``; the
    scheme itself (IOB1/IOB2/IOBES) is not enforced here, see
    :func:`pipelines.tasks.ner.labels.detect_scheme`. ``progress``, a
    pipelines.core.progress.Progress, if given, counts the lines read.
    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"CoNLL file not found: {name}") from None

    text = _decode(data, name, encoding)
    # Universal newlines, so CRLF and lone CR files number lines like editors do.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    sentences: list[Sentence] = []
    valid_tags: set[str] = set()  # cache: regex once per distinct tag
    expected = num_columns
    tokens: list[str] = []
    tags: list[str] = []
    start_line = 0
    doc = 0
    seen_docstart = False
    docstart_lines = blank_lines = 0

    def flush() -> None:
        nonlocal tokens, tags
        if tokens:
            sentences.append(Sentence(tuple(tokens), tuple(tags), start_line, doc))
            tokens, tags = [], []

    reported = 0  # lines counted on `progress`: once a sentence, cheaper than once a line
    for line_no, line in enumerate(lines, 1):
        cols = line.split()
        if not cols:
            # The final "" after a trailing newline is not a real blank line.
            if line_no < len(lines) or line:
                blank_lines += 1
            flush()
            if progress is not None:
                progress.update(line_no - reported)
                reported = line_no
            continue
        if cols[0] == DOCSTART:
            docstart_lines += 1
            flush()
            # The first -DOCSTART- opens doc 0 unless sentences preceded it.
            if seen_docstart or sentences:
                doc += 1
            seen_docstart = True
            continue

        n = len(cols)
        if expected is None:
            expected = n
        if n != expected:
            raise ConllFormatError(
                f"{name}:{line_no}: expected {expected} columns, found {n}: {_short(line)}"
            )
        try:
            word = cols[word_column]
            tag = cols[tag_column]
        except IndexError:
            raise ConllFormatError(
                f"{name}:{line_no}: word_column={word_column} / tag_column={tag_column} "
                f"out of range for {n} columns: {_short(line)}"
            ) from None
        if tag not in valid_tags:
            if not TAG_PATTERN.fullmatch(tag):
                raise TagSchemeError(
                    f"{name}:{line_no}: invalid tag {tag!r} "
                    f"(expected 'O' or B-/I-/E-/S- followed by a type): {_short(line)}"
                )
            valid_tags.add(tag)
        if not tokens:
            start_line = line_no
        tokens.append(word)
        tags.append(tag)
    flush()  # file may lack a final blank line
    if progress is not None:
        progress.update(len(lines) - reported)

    if not sentences:
        raise ConllFormatError(f"{name}: contains no sentences")
    stats = ReadStats(
        sentences=len(sentences),
        tokens=sum(len(s.tokens) for s in sentences),
        documents=len({s.doc for s in sentences}),
        docstart_lines=docstart_lines,
        blank_lines=blank_lines,
    )
    return sentences, stats


def read_local_conll(folder, files, cfg):
    folder = resolve_path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"NER source folder not found: {folder}")
    splits, read_stats = {}, {}
    for split in SPLITS:
        if split not in files:
            raise DataError(f"params: ner.prepare.files has no {split!r} entry")
        path = folder / files[split]
        if not path.is_file():
            raise FileNotFoundError(f"{split} file not found: {path}")
    with Progress("prepare: reading", unit="lines") as progress:  # one line every ~10 s over all files
        for split in SPLITS:
            path = folder / files[split]
            progress.extra = path.name
            sentences, stats = read_conll(
                path,
                word_column=cfg["word_column"],
                tag_column=cfg["tag_column"],
                num_columns=cfg.get("num_columns"),
                progress=progress,
            )
            splits[split] = [
                {"tokens": list(s.tokens), "tags": list(s.tags), "line": s.line, "doc": s.doc, "source": str(path)}
                for s in sentences
            ]
            read_stats[split] = {
                "docstart_lines_skipped": stats.docstart_lines,
                "documents": stats.documents,
            }
    return splits, read_stats


def read_hub(source, cfg):
    """Loads a hub dataset whose tags are a ClassLabel sequence (e.g. eriktks/conll2003)."""
    ds = load_hub_dataset(source, cfg)
    tokens_col, tags_col = cfg.get("hub_tokens_column", "tokens"), cfg.get("hub_tags_column", "ner_tags")
    splits = {}
    for split in SPLITS:
        if split not in ds:
            raise DataError(f"hub dataset {source!r} has no {split!r} split (has: {', '.join(ds)})")
        part = ds[split]
        for col in (tokens_col, tags_col):
            if col not in part.column_names:
                raise DataError(
                    f"hub dataset {source!r} split {split!r} has no column {col!r} "
                    f"(columns: {', '.join(part.column_names)})"
                )
        names = part.features[tags_col].feature.names
        rows = []
        for i, ex in enumerate(part):
            tags = [names[t] for t in ex[tags_col]]
            for tag in tags:
                if not TAG_PATTERN.fullmatch(tag):
                    raise TagSchemeError(f"{source}[{split}][{i}]: invalid tag {tag!r}")
            if ex[tokens_col]:
                rows.append({"tokens": ex[tokens_col], "tags": tags, "line": i, "doc": 0, "source": f"{source}[{split}]"})
        splits[split] = rows
    return splits, {split: {"docstart_lines_skipped": 0, "documents": 0} for split in SPLITS}
