import random
import time
from pathlib import Path

import pytest

from pipelines.conll import (
    ConllFormatError,
    ReadStats,
    Sentence,
    TagSchemeError,
    convert_tags,
    detect_scheme,
    get_spans,
    iob1_to_iob2,
    iob2_to_iobes,
    iobes_to_iob2,
    read_conll,
)

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write(tmp_path, text, name="data.txt", newline="\n"):
    p = tmp_path / name
    p.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return p


CONLL4 = """\
-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER


-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


# ---------------------------------------------------------------- reading


def test_read_4col_with_docstart(tmp_path):
    sents, stats = read_conll(write(tmp_path, CONLL4))
    assert sents == [
        Sentence(("EU", "rejects", "German"), ("B-ORG", "O", "B-MISC"), 3, 0),
        Sentence(("Peter", "Blackburn"), ("B-PER", "I-PER"), 7, 0),
        Sentence(("BRUSSELS",), ("B-LOC",), 13, 1),
    ]
    assert stats == ReadStats(sentences=3, tokens=6, documents=2, docstart_lines=2, blank_lines=5)


def test_read_other_columns(tmp_path):
    # Picking the chunk column shows word_column/tag_column are honoured.
    sents, _ = read_conll(write(tmp_path, CONLL4), word_column=1, tag_column=2, num_columns=4)
    assert sents[1].tokens == ("NNP", "NNP")
    assert sents[1].tags == ("B-NP", "I-NP")


def test_read_wnut_two_columns_crlf_no_final_newline(tmp_path):
    # Tabs, trailing whitespace, extra blank lines, no trailing newline, CRLF.
    text = "@user\tO \n\n\n\nNew\tB-location\nYork\tI-location\t\ntonight\tO"
    p = write(tmp_path, text, newline="\r\n")
    sents, stats = read_conll(p, num_columns=2)
    assert sents == [
        Sentence(("@user",), ("O",), 1, 0),
        Sentence(("New", "York", "tonight"), ("B-location", "I-location", "O"), 5, 0),
    ]
    assert stats.documents == 1 and stats.docstart_lines == 0 and stats.blank_lines == 3


def test_read_utf8_bom_and_non_ascii(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes("\ufeffZürich B-LOC\n".encode("utf-8"))
    sents, _ = read_conll(p)
    assert sents[0].tokens == ("Zürich",)


# ---------------------------------------------------------------- errors


def test_wrong_column_count(tmp_path):
    p = write(tmp_path, "EU NNP B-NP B-ORG\nrejects VBZ O\n", name="train.txt")
    with pytest.raises(ConllFormatError) as e:
        read_conll(p)
    msg = str(e.value)
    assert "train.txt:2:" in msg and "expected 4 columns, found 3" in msg and "rejects" in msg


def test_wrong_column_count_explicit(tmp_path):
    p = write(tmp_path, "-DOCSTART- O\n\nEU B-ORG\n", name="wnut.txt")
    with pytest.raises(ConllFormatError, match=r"wnut\.txt:3: expected 4 columns, found 2"):
        read_conll(p, num_columns=4)


@pytest.mark.parametrize("tag", ["PER", "B_PER", "X-LOC", "B-", "o", "I-"])
def test_invalid_tag(tmp_path, tag):
    p = write(tmp_path, f"a O\n\nb {tag}\n", name="bad.txt")
    with pytest.raises(TagSchemeError) as e:
        read_conll(p)
    assert "bad.txt:3:" in str(e.value) and repr(tag) in str(e.value)


def test_tag_column_out_of_range(tmp_path):
    p = write(tmp_path, "\nEU B-ORG\n", name="x.txt")
    with pytest.raises(ConllFormatError, match=r"x\.txt:2: .*tag_column=5.*out of range"):
        read_conll(p, tag_column=5)


def test_missing_file(tmp_path):
    p = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_conll(p)


@pytest.mark.parametrize("text", ["", "\n\n  \n", "-DOCSTART- -X- -X- O\n\n"])
def test_no_sentences(tmp_path, text):
    p = write(tmp_path, text, name="empty.txt")
    with pytest.raises(ConllFormatError, match=r"empty\.txt.*contains no sentences"):
        read_conll(p)


def test_non_utf8_byte(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes(b"a O\r\n\r\nZ\xfcrich B-LOC\r\n")
    with pytest.raises(ConllFormatError, match=r"latin1\.txt:3: cannot decode"):
        read_conll(p)
    # The same file is fine once the right encoding is given.
    sents, _ = read_conll(p, encoding="latin-1")
    assert sents[1].tokens == ("Zürich",)


# ---------------------------------------------------------------- schemes

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


# ---------------------------------------------------------------- real data


@pytest.mark.skipif(not (DATA_DIR / "conll2003" / "train.txt").exists(), reason="no shared data")
def test_conll2003_train():
    t0 = time.perf_counter()
    sents, stats = read_conll(DATA_DIR / "conll2003" / "train.txt", num_columns=4)
    elapsed = time.perf_counter() - t0
    assert stats.sentences == len(sents) == 14041
    assert stats.tokens == 203621
    assert stats.docstart_lines == stats.documents == 946
    assert sents[0] == Sentence(
        ("EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."),
        ("B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"),
        3,
        0,
    )
    assert detect_scheme(s.tags for s in sents) == "IOB2"
    assert elapsed < 3.0
