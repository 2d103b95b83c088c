"""Reading CoNLL files: columns, documents, encodings and the errors that name file and line."""

import time

import pytest

from pipelines.core.errors import DataError
from pipelines.tasks.ner.labels import TagSchemeError, detect_scheme, scheme_evidence
from pipelines.tasks.ner.reader import ConllFormatError, ReadStats, Sentence, read_conll, read_hub
from tests.conftest import SHARED_DATA as DATA_DIR
from tests.tasks.ner.conftest import hub_cfg, hub_dataset


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


def test_format_errors_are_data_errors():
    """Stages report DataError as one line; both reader errors are DataErrors (and ValueErrors)."""
    assert issubclass(ConllFormatError, DataError) and issubclass(TagSchemeError, DataError)
    assert issubclass(DataError, ValueError)


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


# ---------------------------------------------------------------- the hub (fake_hub: conftest.py)


def test_read_hub_converts_class_labels(fake_hub):
    splits, read_stats = read_hub("someone/tiny-ner", hub_cfg(hub_config="en"))
    assert fake_hub["calls"] == [("someone/tiny-ner", "en")]
    assert set(splits) == {"train", "validation", "test"}
    rows = splits["train"]
    assert len(rows) == 2  # the empty example is dropped
    assert rows[0]["tokens"] == ["John", "Smith", "visited", "Paris"]
    assert rows[0]["tags"] == ["B-PER", "I-PER", "O", "B-LOC"]
    assert rows[1]["tags"] == ["B-LOC", "O"]
    assert rows[1]["line"] == 2
    assert rows[1]["source"] == "someone/tiny-ner[train]"
    assert read_stats["test"] == {"docstart_lines_skipped": 0, "documents": 0}


def test_read_hub_missing_column(fake_hub):
    fake_hub["ds"] = hub_dataset(tags_col="ner")
    with pytest.raises(DataError, match=r"split 'train' has no column 'ner_tags' \(columns: id, tokens, ner\)"):
        read_hub("someone/tiny-ner", hub_cfg())
    splits, _ = read_hub("someone/tiny-ner", hub_cfg(hub_tags_column="ner"))
    assert splits["test"][0]["tags"] == ["B-PER", "I-PER", "O", "B-LOC"]
    with pytest.raises(DataError, match="has no column 'words'"):
        read_hub("someone/tiny-ner", hub_cfg(hub_tokens_column="words", hub_tags_column="ner"))


def test_read_hub_missing_split(fake_hub):
    fake_hub["ds"] = hub_dataset(splits=("train", "test"))
    with pytest.raises(DataError, match="has no 'validation' split"):
        read_hub("someone/tiny-ner", hub_cfg())


def test_read_hub_invalid_tag_name(fake_hub):
    fake_hub["ds"] = hub_dataset(names=["O", "PERSON", "I-PER", "B-LOC", "I-LOC"])
    with pytest.raises(TagSchemeError, match=r"someone/tiny-ner\[train\]\[0\]: invalid tag 'PERSON'"):
        read_hub("someone/tiny-ner", hub_cfg())


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
    # The project's copy is IOB2; the original CoNLL-2003 files are IOB1 (B- only
    # between adjacent entities of one type). Both are detected as what they are.
    assert scheme_evidence(s.tags for s in sents) == {
        "B_starts": 23429, "B_after_same_type": 70, "I_starts": 0, "E_tags": 0, "S_tags": 0,
    }
    iob1 = [_iob2_to_iob1(s.tags) for s in sents]
    assert scheme_evidence(iob1) == {
        "B_starts": 0, "B_after_same_type": 70, "I_starts": 23429, "E_tags": 0, "S_tags": 0,
    }
    assert detect_scheme(iob1) == "IOB1"


def _iob2_to_iob1(tags):
    return [
        "I-" + t[2:] if t.startswith("B-") and not (i and tags[i - 1][2:] == t[2:] and tags[i - 1] != "O") else t
        for i, t in enumerate(tags)
    ]


def test_progress_counts_the_lines_read(tmp_path):
    """`progress` (a core.progress.Progress) counts lines, once a sentence; every=0: a line per update."""
    import io

    from pipelines.core.progress import Progress

    path = write(tmp_path, CONLL4)
    lines = len(CONLL4.split("\n"))
    stream = io.StringIO()
    with Progress("prepare: reading", unit="lines", every=0, stream=stream) as progress:
        read_conll(path, progress=progress)
        assert progress.done == lines
        read_conll(path, progress=progress)
    out = stream.getvalue().splitlines()
    assert len(out) > 4 and all(line.startswith("prepare: reading: ") for line in out)
    assert out[-1].startswith(f"prepare: reading: {2 * lines} lines, ")


def test_local_conll_reports_progress_over_all_files(tmp_path, capsys, monkeypatch):
    import functools

    from pipelines.core.progress import Progress
    from pipelines.tasks.ner import reader

    for name in ("train.txt", "valid.txt", "test.txt"):
        write(tmp_path, CONLL4, name)
    monkeypatch.setattr(reader, "Progress", functools.partial(Progress, every=0))
    cfg = {"word_column": 0, "tag_column": -1, "num_columns": None}
    reader.read_local_conll(tmp_path, {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}, cfg)
    lines = len(CONLL4.split("\n"))
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith("prepare: reading: ") for line in err)
    assert any(line.endswith(", valid.txt") for line in err)
    assert err[-1].startswith(f"prepare: reading: {3 * lines} lines, ")
    assert err[-1].endswith(", test.txt")
