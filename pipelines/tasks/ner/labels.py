"""Tag schemes (IOB1, IOB2, IOBES): syntax checks, detection, spans and conversion.

Pure Python on purpose: usable and testable without TensorFlow/Keras.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from pipelines.core.errors import DataError

SCHEMES = ("IOB1", "IOB2", "IOBES")
_TARGETS = ("IOB2", "IOBES")

# Any tag syntactically allowed in a file; per-scheme prefixes are checked later.
TAG_PATTERN = re.compile(r"O|[BIES]-\S+")
_SCHEME_PREFIXES = {"IOB1": "BI", "IOB2": "BI", "IOBES": "BIES"}


class TagSchemeError(DataError):
    """Tag that is not valid O/B-X/I-X/E-X/S-X (or not allowed by a scheme)."""


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
