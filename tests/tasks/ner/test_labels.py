"""Tag schemes (IOB1, IOB2, IOBES): spans, conversion, validation and detection."""

import random

import pytest

from pipelines.tasks.ner.labels import (
    TagSchemeError,
    convert_tags,
    detect_scheme,
    get_spans,
    iob1_to_iob2,
    iob2_to_iobes,
    iobes_to_iob2,
)

# (IOB1, IOB2, IOBES, spans) for hand-made cases.
CASES = [
    # adjacent same-type entities: IOB1 needs B- only for the second one
    (
        ["I-PER", "I-PER", "B-PER"],
        ["B-PER", "I-PER", "B-PER"],
        ["B-PER", "E-PER", "S-PER"],
        [("PER", 0, 2), ("PER", 2, 3)],
    ),
    # single-token entities, type change without O in between
    (
        ["I-LOC", "I-ORG", "O", "I-MISC"],
        ["B-LOC", "B-ORG", "O", "B-MISC"],
        ["S-LOC", "S-ORG", "O", "S-MISC"],
        [("LOC", 0, 1), ("ORG", 1, 2), ("MISC", 3, 4)],
    ),
    # entity at sentence end, multi-token entity in the middle
    (
        ["O", "I-ORG", "I-ORG", "I-ORG", "O", "I-PER", "I-PER"],
        ["O", "B-ORG", "I-ORG", "I-ORG", "O", "B-PER", "I-PER"],
        ["O", "B-ORG", "I-ORG", "E-ORG", "O", "B-PER", "E-PER"],
        [("ORG", 1, 4), ("PER", 5, 7)],
    ),
    # three adjacent single-token same-type entities
    (
        ["I-X", "B-X", "B-X"],
        ["B-X", "B-X", "B-X"],
        ["S-X", "S-X", "S-X"],
        [("X", 0, 1), ("X", 1, 2), ("X", 2, 3)],
    ),
    (["O", "O"], ["O", "O"], ["O", "O"], []),
    ([], [], [], []),
]


@pytest.mark.parametrize("iob1,iob2,iobes,spans", CASES)
def test_round_trip_and_spans(iob1, iob2, iobes, spans):
    assert get_spans(iob1, "IOB1") == spans
    assert iob1_to_iob2(iob1) == iob2
    assert get_spans(iob2, "IOB2") == spans
    assert iob2_to_iobes(iob2) == iobes
    assert get_spans(iobes, "IOBES") == spans
    assert iobes_to_iob2(iobes) == iob2
    assert convert_tags(iob1, "IOB1", "IOBES") == iobes
    assert convert_tags(iobes, "IOBES", "IOBES") == iobes


def test_get_spans_conlleval_lenient():
    # I-X not continuing an X chunk starts a new one (conlleval behaviour).
    assert get_spans(["O", "I-PER", "I-PER", "I-LOC"]) == [("PER", 1, 3), ("LOC", 3, 4)]
    assert get_spans(["B-PER", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 2)]
    # IOBES: E/S close a chunk; the following I- cannot extend it.
    assert get_spans(["B-A", "E-A", "I-A", "E-A"], "IOBES") == [("A", 0, 2), ("A", 2, 4)]
    assert get_spans(["S-A", "E-A"], "IOBES") == [("A", 0, 1), ("A", 1, 2)]
    assert get_spans(["B-A", "O", "B-A", "I-A"], "IOBES") == [("A", 0, 1), ("A", 2, 4)]


def test_scheme_validation():
    with pytest.raises(TagSchemeError, match="E-PER"):
        get_spans(["B-PER", "E-PER"], "IOB2")
    with pytest.raises(TagSchemeError, match="B_PER"):
        iob2_to_iobes(["B_PER"])
    with pytest.raises(ValueError, match="IOB3"):
        convert_tags(["O"], "IOB3", "IOB2")
    with pytest.raises(ValueError, match="IOB1"):
        convert_tags(["O"], "IOB2", "IOB1")
    with pytest.raises(ValueError):
        get_spans(["O"], "BILOU")


def test_detect_scheme():
    assert detect_scheme([["B-PER", "I-PER", "O"], ["B-LOC"]]) == "IOB2"
    assert detect_scheme([["B-PER", "I-PER"], ["O", "I-LOC"]]) == "IOB1"
    assert detect_scheme([["I-PER"]]) == "IOB1"
    assert detect_scheme([["B-PER", "I-LOC"]]) == "IOB1"  # I- after another type
    assert detect_scheme([["I-PER", "I-PER", "B-PER"]]) == "IOB1"
    assert detect_scheme([["B-PER", "E-PER"], ["I-LOC"]]) == "IOBES"
    assert detect_scheme([["O"], ["S-LOC"]]) == "IOBES"
    assert detect_scheme([["O", "O"], []]) == "IOB2"
    for _, iob2, iobes, _ in CASES:
        assert detect_scheme([iob2]) == "IOB2"
    with pytest.raises(TagSchemeError):
        detect_scheme([["PER"]])


def _random_iob2(rng):
    """Random valid IOB2 sequence plus its true spans."""
    tags, spans = [], []
    n = rng.randint(0, 15)
    while len(tags) < n:
        if rng.random() < 0.4:
            tags.append("O")
            continue
        typ = rng.choice(["PER", "LOC", "ORG", "B-MISC"])  # type may itself contain '-'
        length = rng.randint(1, 4)
        spans.append((typ, len(tags), len(tags) + length))
        tags += ["B-" + typ] + ["I-" + typ] * (length - 1)
    return tags, spans


def _to_iob1(tags):
    # IOB1 uses B- only when an entity directly follows one of the same type.
    out = []
    for i, t in enumerate(tags):
        if t.startswith("B-") and not (i > 0 and tags[i - 1] != "O" and tags[i - 1][2:] == t[2:]):
            t = "I-" + t[2:]
        out.append(t)
    return out


def test_random_round_trips():
    rng = random.Random(1234)
    for _ in range(3000):
        iob2, spans = _random_iob2(rng)
        assert get_spans(iob2) == spans
        iobes = iob2_to_iobes(iob2)
        assert get_spans(iobes, "IOBES") == spans
        assert iobes_to_iob2(iobes) == iob2
        iob1 = _to_iob1(iob2)
        assert get_spans(iob1, "IOB1") == spans
        assert iob1_to_iob2(iob1) == iob2
