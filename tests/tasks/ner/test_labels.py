"""Tag schemes (IOB1, IOB2, IOBES): spans, conversion, validation and detection."""

import random

import pytest

from pipelines.tasks.ner.labels import (
    EVIDENCE_KEYS,
    TagSchemeError,
    convert_tags,
    decide_scheme,
    detect_scheme,
    get_spans,
    iob1_to_iob2,
    iob2_to_iobes,
    iobes_to_iob2,
    normalise_tags,
    scheme_evidence,
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
    assert detect_scheme([["I-PER"]]) == "IOB1"
    assert detect_scheme([["I-PER", "I-PER", "B-PER"]]) == "IOB1"
    assert detect_scheme([["I-X", "B-X", "B-X"]]) == "IOB1"  # B- after the same type is no evidence
    assert detect_scheme([["O", "I-PER", "O", "I-LOC", "I-ORG"], ["B-LOC", "O"]]) == "IOB1"  # 3 I- vs 1 B-
    # One B- start, one I- start (after O, or after another type): a tie is IOB2.
    assert detect_scheme([["B-PER", "I-PER"], ["O", "I-LOC"]]) == "IOB2"
    assert detect_scheme([["B-PER", "I-LOC"]]) == "IOB2"
    assert detect_scheme([["B-PER", "E-PER"], ["I-LOC"]]) == "IOBES"
    assert detect_scheme([["O"], ["S-LOC"]]) == "IOBES"
    assert detect_scheme([["O", "O"], []]) == "IOB2"
    for _, iob2, iobes, _ in CASES:
        assert detect_scheme([iob2]) == "IOB2"
        assert detect_scheme([iobes]) == ("IOBES" if any(t != "O" for t in iobes) else "IOB2")
    with pytest.raises(TagSchemeError):
        detect_scheme([["PER"]])


def test_scheme_evidence_counts_entity_starts_by_prefix():
    counts = scheme_evidence(
        [
            ["B-PER", "I-PER", "B-PER", "O", "I-LOC", "I-LOC"],  # B- start, B- after PER, I- after O
            ["I-ORG", "B-LOC", "I-MISC", "O"],  # I- at the start, B- after ORG, I- after LOC
            ["S-LOC", "O", "B-ORG", "E-ORG"],
            [],
        ]
    )
    assert counts == {"B_starts": 3, "B_after_same_type": 1, "I_starts": 3, "E_tags": 1, "S_tags": 1}
    assert decide_scheme(counts) == "IOBES"
    assert decide_scheme({**counts, "E_tags": 0, "S_tags": 0}) == "IOB2"  # 3 B- vs 3 I-: a tie
    assert decide_scheme({**counts, "E_tags": 0, "S_tags": 0, "I_starts": 4}) == "IOB1"
    assert scheme_evidence([]) == dict.fromkeys(EVIDENCE_KEYS, 0)


def test_mostly_iob2_with_one_stray_i_start_is_iob2_and_the_stray_is_repaired():
    rng = random.Random(7)
    corpus = [_random_iob2(rng)[0] for _ in range(300)]
    assert detect_scheme(corpus) == "IOB2"
    corpus.append(["O", "I-PER", "I-PER", "O"])  # the annotation error
    assert detect_scheme(corpus) == "IOB2"
    assert normalise_tags(corpus[-1], "IOB2", "IOB2") == (["O", "B-PER", "I-PER", "O"], 1)
    assert normalise_tags(corpus[-1], "IOB2", "IOBES") == (["O", "B-PER", "E-PER", "O"], 1)
    assert normalise_tags(["B-LOC", "I-PER"], "IOB2", "IOB2") == (["B-LOC", "B-PER"], 1)
    for tags in corpus[:-1]:
        assert normalise_tags(tags, "IOB2", "IOBES") == (iob2_to_iobes(tags), 0)


def test_genuine_iob1_stays_iob1_with_its_adjacent_b_entities():
    rng = random.Random(8)
    iob2 = [_random_iob2(rng)[0] for _ in range(300)]
    iob1 = [_to_iob1(tags) for tags in iob2]
    counts = scheme_evidence(iob1)
    assert counts["B_starts"] == 0 and counts["I_starts"] > 0 and counts["B_after_same_type"] > 0
    assert detect_scheme(iob1) == "IOB1"
    # A few IOB2-style B- starts (annotation errors) do not flip it.
    noisy = iob1 + [["B-PER", "I-PER", "O"], ["O", "B-LOC"]]
    assert detect_scheme(noisy) == "IOB1"
    for tags, expected in zip(iob1, iob2):
        assert normalise_tags(tags, "IOB1", "IOB2") == (expected, 0)
    assert normalise_tags(["O", "B-LOC"], "IOB1", "IOB2") == (["O", "B-LOC"], 1)


def test_iobes_repairs_are_counted():
    assert normalise_tags(["B-PER", "E-PER", "S-LOC"], "IOBES", "IOB2") == (["B-PER", "I-PER", "B-LOC"], 0)
    # A B- without its E-, a stray I- start: read as conlleval does, two tags repaired.
    assert normalise_tags(["B-PER", "O", "I-LOC", "E-LOC"], "IOBES", "IOBES") == (["S-PER", "O", "B-LOC", "E-LOC"], 2)


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
        # Well-formed tags need no repair in their own scheme.
        assert normalise_tags(iob1, "IOB1", "IOB2") == (iob2, 0)
        assert normalise_tags(iob2, "IOB2", "IOBES") == (iobes, 0)
        assert normalise_tags(iobes, "IOBES", "IOB2") == (iob2, 0)
