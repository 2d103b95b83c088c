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


# What the tags of a corpus say about its scheme; see decide_scheme.
EVIDENCE_KEYS = ("B_starts", "B_after_same_type", "I_starts", "E_tags", "S_tags")


def scheme_evidence(tag_sequences: Iterable[Sequence[str]]) -> dict[str, int]:
    """Counts, over all sequences, the tags that tell the schemes apart.

    ``B_starts``: B-X at a sentence start, after O or after another type (IOB2
    writes every entity start so; IOB1 never does). ``B_after_same_type``:
    B-X right after an X tag (both IOB schemes write it; no evidence).
    ``I_starts``: I-X at a sentence start, after O or after another type
    (IOB1 starts most entities so; IOB2 never does). ``E_tags``, ``S_tags``:
    E-/S- tags (IOBES only).
    """
    counts = dict.fromkeys(EVIDENCE_KEYS, 0)
    for tags in tag_sequences:
        _check_tags(tags, "IOBES")
        prev = "O"
        for tag in tags:
            kind = tag[0]
            if kind == "E":
                counts["E_tags"] += 1
            elif kind == "S":
                counts["S_tags"] += 1
            elif kind != "O":
                after_same = prev != "O" and prev[2:] == tag[2:]
                if kind == "B":
                    counts["B_after_same_type" if after_same else "B_starts"] += 1
                elif not after_same:
                    counts["I_starts"] += 1
            prev = tag
    return counts


def decide_scheme(evidence: dict[str, int]) -> str:
    """The scheme that :func:`scheme_evidence` counts point to.

    IOBES if any E-/S- tag occurs (IOB files have none); else IOB1 if more
    entities start with I- than with B- (counting only ``B_starts``: IOB1 uses
    B- just between two adjacent entities of one type), else IOB2, which also
    covers ties and all-O data (the schemes coincide there). So an IOB2 corpus
    with a few stray I- starts stays IOB2 (the strays are read as B-), and an
    IOB1 corpus with a few B- starts stays IOB1.
    """
    if evidence["E_tags"] or evidence["S_tags"]:
        return "IOBES"
    return "IOB1" if evidence["I_starts"] > evidence["B_starts"] else "IOB2"


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """The scheme of a corpus: ``decide_scheme(scheme_evidence(tag_sequences))``."""
    return decide_scheme(scheme_evidence(tag_sequences))


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
    prev_end, prev_type = -1, None
    for typ, start, end in spans:
        if scheme == "IOBES" and end - start == 1:
            out[start] = "S-" + typ
        else:
            # IOB1 writes B- only for an entity right after one of the same type.
            iob1_inside = scheme == "IOB1" and not (start == prev_end and typ == prev_type)
            out[start] = ("I-" if iob1_inside else "B-") + typ
            for j in range(start + 1, end):
                out[j] = "I-" + typ
            if scheme == "IOBES":
                out[end - 1] = "E-" + typ
        prev_end, prev_type = end, typ
    return out


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Convert via spans, so the entity set is preserved exactly.

    Malformed input is repaired the way :func:`get_spans` reads it.
    """
    _check_scheme(source, SCHEMES, "source")
    _check_scheme(target, _TARGETS, "target")
    return _render(get_spans(tags, source), len(tags), target)


def normalise_tags(tags: Sequence[str], source: str, target: str) -> tuple[list[str], int]:
    """``(convert_tags(tags, source, target), repaired)``: ``repaired`` counts the
    tags that differ from how ``source`` writes the same entities, i.e. the tags
    the scheme does not allow there (in IOB2 a stray I- start, read as B-)."""
    _check_scheme(source, SCHEMES, "source")
    _check_scheme(target, _TARGETS, "target")
    spans = get_spans(tags, source)
    canonical = _render(spans, len(tags), source)
    repaired = sum(a != b for a, b in zip(tags, canonical))
    return (canonical if target == source else _render(spans, len(tags), target)), repaired


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    return convert_tags(tags, "IOB1", "IOB2")


def iob2_to_iobes(tags: Sequence[str]) -> list[str]:
    return convert_tags(tags, "IOB2", "IOBES")


def iobes_to_iob2(tags: Sequence[str]) -> list[str]:
    return convert_tags(tags, "IOBES", "IOB2")
