"""CoNLL-format reading and BIO tag-scheme utilities.

Pure Python on purpose: data loading and validation must be testable and
usable without importing TensorFlow/Keras.

Format: one token per line, whitespace-separated columns; a blank line ends a
sentence; lines whose first column is ``-DOCSTART-`` separate documents.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = [
    "ConllFormatError",
    "TagSchemeError",
    "Sentence",
    "ReadStats",
    "read_conll",
    "detect_scheme",
    "iob1_to_iob2",
    "iob2_to_iobes",
    "iobes_to_iob2",
    "convert_tags",
    "get_spans",
    "SCHEMES",
]

DOCSTART = "-DOCSTART-"
SCHEMES = ("IOB1", "IOB2", "IOBES")
_TARGETS = ("IOB2", "IOBES")

# Any tag syntactically allowed in a file; per-scheme prefixes are checked later.
TAG_PATTERN = re.compile(r"O|[BIES]-\S+")
_SCHEME_PREFIXES = {"IOB1": "BI", "IOB2": "BI", "IOBES": "BIES"}


class ConllFormatError(ValueError):
    """Malformed CoNLL file; message is ``path:line: what is wrong``."""


class TagSchemeError(ValueError):
    """Tag that is not valid O/B-X/I-X/E-X/S-X (or not allowed by a scheme)."""


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
) -> tuple[list[Sentence], ReadStats]:
    """Read a CoNLL file into sentences, validating layout and tag syntax.

    Every token line must have ``num_columns`` columns (or, if None, as many
    as the first token line). Tags must be ``O`` or ``[BIES]-TYPE``; the
    scheme itself (IOB1/IOB2/IOBES) is not enforced here, see
    :func:`detect_scheme`.
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

    for line_no, line in enumerate(lines, 1):
        cols = line.split()
        if not cols:
            # The final "" after a trailing newline is not a real blank line.
            if line_no < len(lines) or line:
                blank_lines += 1
            flush()
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


# ---------------------------------------------------------------------------
# Tag schemes


def _check_tags(tags: Sequence[str], scheme: str) -> None:
    allowed = _SCHEME_PREFIXES[scheme]
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
            raise TagSchemeError(f"position {i}: invalid tag {tag!r}")
        if tag != "O" and tag[0] not in allowed:
            raise TagSchemeError(f"position {i}: tag {tag!r} not allowed in {scheme}")


def _check_scheme(scheme: str, allowed: Sequence[str], what: str) -> None:
    if scheme not in allowed:
        raise ValueError(f"unknown {what} scheme {scheme!r}; expected one of {list(allowed)}")


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of a corpus: IOBES > IOB1 > IOB2.

    IOBES if any E-/S- tag occurs; else IOB1 if some I-X starts an entity
    (position 0, after O, or after another type); else IOB2 (also for
    all-O data, where the schemes coincide).
    """
    is_iob1 = False
    for tags in tag_sequences:
        _check_tags(tags, "IOBES")
        prev = "O"
        for tag in tags:
            if tag[0] in "ES":
                return "IOBES"
            if tag[0] == "I" and (prev == "O" or prev[2:] != tag[2:]):
                is_iob1 = True
            prev = tag
    return "IOB1" if is_iob1 else "IOB2"


def _continues(prev: str, cur: str, scheme: str) -> bool:
    """Whether ``cur`` extends the chunk that ``prev`` belongs to (conlleval rules)."""
    if prev == "O" or cur == "O" or prev[2:] != cur[2:]:
        return False
    if scheme == "IOBES":
        # prev is never E-/S- here: get_spans resets it to O after closing.
        return cur[0] in "IE"
    return cur[0] == "I"  # IOB1/IOB2: B-X always starts a new chunk


def get_spans(tags: Sequence[str], scheme: str = "IOB2") -> list[tuple[str, int, int]]:
    """Entity spans as ``(type, start, end_exclusive)``.

    Lenient like conlleval: in IOB1/IOB2 an I-X that does not continue an X
    chunk starts a new one; in IOBES a stray I-/E- starts a chunk and a B-
    without E- is closed where the next tag does not continue it.
    """
    _check_scheme(scheme, SCHEMES, "source")
    _check_tags(tags, scheme)
    spans: list[tuple[str, int, int]] = []
    start = -1
    prev = "O"
    for i, tag in enumerate(tags):
        if not _continues(prev, tag, scheme):
            if start >= 0:
                spans.append((prev[2:], start, i))
                start = -1
            if tag != "O":
                start = i
        # In IOBES an E-/S- closes its chunk even if the next tag could continue.
        if scheme == "IOBES" and tag[0] in "ES":
            spans.append((tag[2:], start, i + 1))
            start, tag = -1, "O"
        prev = tag
    if start >= 0:
        spans.append((prev[2:], start, len(tags)))
    return spans


def _render(spans: list[tuple[str, int, int]], length: int, scheme: str) -> list[str]:
    out = ["O"] * length
    for typ, start, end in spans:
        if scheme == "IOBES" and end - start == 1:
            out[start] = "S-" + typ
            continue
        out[start] = "B-" + typ
        for j in range(start + 1, end):
            out[j] = "I-" + typ
        if scheme == "IOBES":
            out[end - 1] = "E-" + typ
    return out


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Convert via spans, so the entity set is preserved exactly.

    Malformed input is repaired the way :func:`get_spans` reads it.
    """
    _check_scheme(source, SCHEMES, "source")
    _check_scheme(target, _TARGETS, "target")
    return _render(get_spans(tags, source), len(tags), target)


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    return convert_tags(tags, "IOB1", "IOB2")


def iob2_to_iobes(tags: Sequence[str]) -> list[str]:
    return convert_tags(tags, "IOB2", "IOBES")


def iobes_to_iob2(tags: Sequence[str]) -> list[str]:
    return convert_tags(tags, "IOBES", "IOB2")
