"""The raw-text NER benchmark (`python -m benchmarks rawtext`) on the tiny CoNLL fixture."""

import json

import pytest

from benchmarks.__main__ import main as benchmarks_main
from benchmarks.rawtext import char_spans, token_offsets
from pipelines import prepare
from tests.conftest import tiny_params, write_conll_splits


def test_token_offsets_and_character_spans():
    text = "Apple's CEO met Olaf Scholz."
    tokens = ["Apple", "'s", "CEO", "met", "Olaf", "Scholz", "."]
    offsets = token_offsets(text, tokens)
    assert [text[s:e] for s, e in offsets] == tokens
    assert char_spans(["B-ORG", "O", "O", "O", "B-PER", "I-PER", "O"], offsets) == {("ORG", 0, 5), ("PER", 16, 27)}
    assert token_offsets("Apple's", ["Apple", "’s"]) is None  # a token the detokenizer rewrote


@pytest.fixture
def exported(tmp_path):
    """(params file, NER output folder) of the tiny fixture, prepared and exported untrained."""
    pytest.importorskip("sacremoses")
    from pipelines.tasks import load_task
    from tests.test_predict_input import export_untrained

    params = tiny_params(tmp_path, write_conll_splits(tmp_path / "conll"))
    assert prepare.main(["ner", "--params", str(params)]) == 0
    out = tmp_path / "out" / "ner"
    export_untrained(load_task("ner"), params, out)
    return params, out


def test_rawtext_benchmark_reports_both_figures(exported, capsys):
    params, out = exported
    (out / "metrics.json").write_text(json.dumps({"f1": 0.5}))
    assert benchmarks_main(["rawtext", "--params", str(params)]) == 0
    printed = capsys.readouterr().out
    assert "(a) tokens back exactly" in printed and "(b) raw-text entity F1" in printed
    result = json.loads((out / "rawtext.json").read_text())
    assert result["sentences"] == 12 and result["tokens_back_exactly"] == 1.0  # template sentences
    assert 0.0 <= result["raw_text"]["f1"] <= 1.0 and result["raw_text"]["gold_entities"] > 0
    assert result["raw_minus_token_f1"] == round(result["raw_text"]["f1"] - 0.5, 5)


def test_rawtext_benchmark_before_export_is_one_line(tmp_path, capsys):
    params = tiny_params(tmp_path, write_conll_splits(tmp_path / "conll"))
    pytest.importorskip("sacremoses")
    assert benchmarks_main(["rawtext", "--params", str(params)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("benchmark: error: ") and "run the NER stages up to export" in err[0]


def test_as_documents_joins_sentences_and_shifts_spans():
    from benchmarks.rawtext import as_documents

    texts = ["Olaf Scholz spoke.", "It rained.", "Paris is big."]
    gold = [{("PER", 0, 11)}, set(), {("LOC", 0, 5)}]
    joined, spans = as_documents(texts, gold, [3, 7, 3])
    assert joined == ["Olaf Scholz spoke.\nParis is big.", "It rained."]
    assert spans == [{("PER", 0, 11), ("LOC", 19, 24)}, set()]
    assert [joined[0][s:e] for _, s, e in sorted(spans[0], key=lambda t: t[1])] == ["Olaf Scholz", "Paris"]


def test_rawtext_benchmark_sends_documents(exported, capsys):
    params, out = exported
    assert benchmarks_main(["rawtext", "--params", str(params), "--documents"]) == 0
    assert "sent as 1 documents" in capsys.readouterr().out  # the fixture's test file is one document
    result = json.loads((out / "rawtext_documents.json").read_text())
    assert result["texts"] == 1 and result["unit"] == "documents" and result["raw_text"]["gold_entities"] > 0
