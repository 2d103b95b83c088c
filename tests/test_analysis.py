import random
import re
import subprocess
import sys

import numpy as np
import pytest

from pipelines.analysis import length_histogram_data, nearest_neighbours
from pipelines.tasks.ner.analysis import ERROR_KINDS, compare_html, entities_html, entity_colour, ner_error_kinds
from pipelines.tasks.sentiment.analysis import attention_html, calibration_table, most_confident_mistakes
from pipelines.tasks.ner.labels import convert_tags, get_spans


def counts(gold, pred, **kw):
    return ner_error_kinds(gold, pred, **kw)["counts"]


def expect(**nonzero):
    return {kind: nonzero.get(kind, 0) for kind in ERROR_KINDS}


# ---------------------------------------------------------------------------
# ner_error_kinds


@pytest.mark.parametrize(
    "gold, pred, kind",
    [
        (["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"], "correct"),
        (["B-PER", "I-PER", "O"], ["B-ORG", "I-ORG", "O"], "wrong_type"),
        (["B-ORG", "I-ORG", "I-ORG"], ["B-ORG", "I-ORG", "O"], "wrong_boundary"),
        (["O", "B-ORG", "I-ORG"], ["B-ORG", "I-ORG", "I-ORG"], "wrong_boundary"),
        (["B-LOC", "I-LOC", "O"], ["O", "B-ORG", "I-ORG"], "wrong_type_and_boundary"),
        (["O", "B-MISC", "O"], ["O", "O", "O"], "missed"),
        (["O", "O", "O"], ["O", "B-LOC", "O"], "spurious"),
    ],
)
def test_each_kind_on_its_own(gold, pred, kind):
    result = ner_error_kinds([gold], [pred])
    assert result["counts"] == expect(**{kind: 1})
    (example,) = result["examples"][kind]
    assert example["sentence"] == 0
    g, p = get_spans(gold), get_spans(pred)
    assert example["gold"] == (g[0] if g else None)
    assert example["pred"] == (p[0] if p else None)
    assert all(result["examples"][k] == [] for k in ERROR_KINDS if k != kind)


def test_sentence_with_several_entities():
    #        0        1        2    3        4    5        6        7        8        9
    gold = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG", "I-ORG", "O", "B-MISC"]
    pred = ["B-PER", "I-PER", "O", "B-ORG", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O"]
    result = ner_error_kinds([gold], [pred])
    assert result["counts"] == expect(
        correct=1, wrong_type=1, wrong_boundary=1, missed=1, spurious=1
    )
    ex = result["examples"]
    assert ex["correct"] == [{"sentence": 0, "gold": ("PER", 0, 2), "pred": ("PER", 0, 2)}]
    assert ex["wrong_type"] == [{"sentence": 0, "gold": ("LOC", 3, 4), "pred": ("ORG", 3, 4)}]
    assert ex["wrong_boundary"] == [
        {"sentence": 0, "gold": ("ORG", 5, 8), "pred": ("ORG", 5, 7)}
    ]
    assert ex["spurious"] == [{"sentence": 0, "gold": None, "pred": ("LOC", 8, 9)}]
    assert ex["missed"] == [{"sentence": 0, "gold": ("MISC", 9, 10), "pred": None}]


def test_adjacent_entities():
    # Two adjacent gold entities of different types, both right.
    assert counts([["B-PER", "B-LOC", "I-LOC"]], [["B-PER", "B-LOC", "I-LOC"]]) == expect(correct=2)
    # ... with their types swapped.
    assert counts([["B-PER", "B-LOC"]], [["B-LOC", "B-PER"]]) == expect(wrong_type=2)
    # Two adjacent gold PERs merged into one prediction: one pairing, one missed.
    r = ner_error_kinds([["B-PER", "B-PER"]], [["B-PER", "I-PER"]])
    assert r["counts"] == expect(wrong_boundary=1, missed=1)
    assert r["examples"]["wrong_boundary"][0]["gold"] == ("PER", 0, 1)  # tie: leftmost
    assert r["examples"]["missed"][0]["gold"] == ("PER", 1, 2)
    # One gold PER split into two predictions: the extra piece is spurious.
    r = ner_error_kinds([["B-PER", "I-PER", "I-PER"]], [["B-PER", "I-PER", "B-PER"]])
    assert r["counts"] == expect(wrong_boundary=1, spurious=1)
    assert r["examples"]["wrong_boundary"][0]["pred"] == ("PER", 0, 2)  # larger overlap
    assert r["examples"]["spurious"][0]["pred"] == ("PER", 2, 3)


def test_largest_overlap_wins_over_same_type():
    r = ner_error_kinds([["B-ORG", "I-ORG", "I-ORG", "I-ORG"]], [["B-ORG", "B-LOC", "I-LOC", "I-LOC"]])
    assert r["counts"] == expect(wrong_type_and_boundary=1, spurious=1)
    assert r["examples"]["wrong_type_and_boundary"][0]["pred"] == ("LOC", 1, 4)
    assert r["examples"]["spurious"][0]["pred"] == ("ORG", 0, 1)


def test_prediction_spanning_two_gold_entities():
    r = ner_error_kinds([["B-PER", "B-LOC", "I-LOC", "I-LOC"]], [["B-LOC", "I-LOC", "I-LOC", "I-LOC"]])
    assert r["counts"] == expect(wrong_boundary=1, missed=1)
    assert r["examples"]["wrong_boundary"][0]["gold"] == ("LOC", 1, 4)
    assert r["examples"]["missed"][0]["gold"] == ("PER", 0, 1)


def test_iob2_lenient_stray_inside_tag():
    # A stray I-PER starts a span in IOB2 (conlleval reading).
    assert counts([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]]) == expect(correct=1)


def test_other_schemes_agree_with_iob2():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "O", "B-ORG", "I-ORG", "I-ORG"]]
    pred = [["B-PER", "O", "O", "B-ORG", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "O"]]
    ref = ner_error_kinds(gold, pred)
    iobes = ner_error_kinds(
        [convert_tags(t, "IOB2", "IOBES") for t in gold],
        [convert_tags(t, "IOB2", "IOBES") for t in pred],
        scheme="IOBES",
    )
    assert iobes == ref
    assert ref["counts"] == expect(wrong_boundary=3, wrong_type=1)


def test_tuples_and_multiple_sentences():
    gold = [("B-PER", "O"), ("O", "B-LOC")]
    pred = [("B-PER", "O"), ("O", "O")]
    r = ner_error_kinds(gold, pred)
    assert r["counts"] == expect(correct=1, missed=1)
    assert r["examples"]["missed"] == [{"sentence": 1, "gold": ("LOC", 1, 2), "pred": None}]


def test_empty_corpus_and_all_o():
    assert counts([], []) == expect()
    assert counts([["O", "O"]], [["O", "O"]]) == expect()


def _random_tags(rng, n):
    tags = []
    for _ in range(n):
        r = rng.random()
        typ = rng.choice(["PER", "LOC", "ORG"])
        tags.append("O" if r < 0.4 else ("B-" if r < 0.7 else "I-") + typ)
    return tags


def test_counts_are_consistent_with_span_numbers():
    rng = random.Random(0)
    gold, pred = [], []
    for _ in range(300):
        n = rng.randint(0, 12)
        gold.append(_random_tags(rng, n))
        pred.append(_random_tags(rng, n))
    c = counts(gold, pred)
    n_gold = sum(len(get_spans(t)) for t in gold)
    n_pred = sum(len(get_spans(t)) for t in pred)
    paired = c["correct"] + c["wrong_type"] + c["wrong_boundary"] + c["wrong_type_and_boundary"]
    assert paired + c["missed"] == n_gold
    assert paired + c["spurious"] == n_pred
    assert all(c[k] > 0 for k in ERROR_KINDS)  # the random data exercises every kind
    # Identical input: everything correct.
    assert counts(gold, gold) == expect(correct=n_gold)


def test_examples_capped_at_max_examples():
    gold = [["B-PER", "O"]] * 7
    pred = [["O", "O"]] * 7
    r = ner_error_kinds(gold, pred, max_examples=3)
    assert r["counts"]["missed"] == 7
    assert [e["sentence"] for e in r["examples"]["missed"]] == [0, 1, 2]
    r = ner_error_kinds(gold, pred)  # default 5
    assert len(r["examples"]["missed"]) == 5
    r = ner_error_kinds(gold, pred, max_examples=0)
    assert r["counts"]["missed"] == 7
    assert r["examples"] == {k: [] for k in ERROR_KINDS}


def test_length_mismatch_names_the_sentence():
    with pytest.raises(ValueError, match="sentence 1"):
        ner_error_kinds([["O"], ["B-PER", "O"]], [["O"], ["B-PER"]])
    with pytest.raises(ValueError, match="sentences"):
        ner_error_kinds([["O"], ["O"]], [["O"]])


# ---------------------------------------------------------------------------
# HTML


def test_entities_html_escapes_and_marks():
    tokens = ["<b>&", "visited", "Paris", '"x"', "with", "Acme", "Corp"]
    spans = [("PER", 0, 1), ("LOC", 2, 3), ("ORG", 5, 7)]
    out = entities_html(tokens, spans, label="gold <1>")
    assert out.startswith("<div") and out.endswith("</div>")
    assert "&lt;b&gt;&amp;" in out
    assert "<b>" not in out and "<1>" not in out
    assert "gold &lt;1&gt;" in out
    assert "&quot;x&quot;" in out
    assert out.count("<mark") == 3 and out.count("</mark>") == 3
    for typ in ("PER", "LOC", "ORG"):
        assert f">{typ}</span>" in out
        assert entity_colour(typ) in out
    # Entity text sits inside its mark, before the type label.
    assert re.search(r"<mark[^>]*>Acme Corp<span[^>]*>ORG</span></mark>", out)
    assert re.search(r"<mark[^>]*>Paris<span[^>]*>LOC</span></mark>", out)
    # Tokens outside entities are present, unmarked.
    assert "visited" in out and "with" in out


def test_entities_html_without_spans_or_label():
    out = entities_html(["a", "b"], [])
    assert "<mark" not in out and "a b" in out


def test_entity_colours():
    fixed = {entity_colour(t) for t in ("PER", "LOC", "ORG", "MISC")}
    assert len(fixed) == 4
    other = entity_colour("EVENT")
    assert re.fullmatch(r"#[0-9a-f]{6}", other)
    assert other == entity_colour("EVENT")  # stable (not Python's salted hash)
    assert other != entity_colour("DATE")
    out = entities_html(["x"], [("<EV>", 0, 1)])
    assert "&lt;EV&gt;" in out and entity_colour("<EV>") in out


def test_entities_html_rejects_bad_spans():
    with pytest.raises(ValueError):
        entities_html(["a", "b"], [("PER", 1, 3)])
    with pytest.raises(ValueError):
        entities_html(["a", "b", "c"], [("PER", 0, 2), ("LOC", 1, 3)])


def test_compare_html():
    tokens = ["Peter", "in", "Paris"]
    out = compare_html(tokens, [("PER", 0, 1), ("LOC", 2, 3)], [("ORG", 0, 1)])
    assert out.count("<mark") == 3
    assert out.index("gold") < out.index("predicted")
    gold_part, pred_part = out.split("predicted", 1)
    assert gold_part.count("<mark") == 2 and pred_part.count("<mark") == 1


def _alphas(out):
    return [float(a) for a in re.findall(r"rgba\([^)]*,\s*([0-9.]+)\)", out)]


def test_attention_html_proportional_and_escaped():
    out = attention_html([("good", 0.5), ("<bad>", 1.0), ("&", 0.25), ("x", 0.0)])
    assert _alphas(out) == pytest.approx([0.5, 1.0, 0.25, 0.0])
    assert out.count("<span") == 4
    assert "&lt;bad&gt;" in out and "<bad>" not in out and "&amp;" in out
    assert re.findall(r'title="([^"]*)"', out) == ["0.500", "1.000", "0.250", "0.000"]
    # Scale invariant: alphas depend on weight / max only.
    assert _alphas(attention_html([("a", 2.0), ("b", 8.0)])) == pytest.approx([0.25, 1.0])


def test_attention_html_all_zero_and_empty():
    out = attention_html([("a", 0.0), ("b", 0.0)])
    assert _alphas(out) == [0.0, 0.0]
    assert "nan" not in out.lower()
    assert "<span" not in attention_html([])
    with pytest.raises(ValueError):
        attention_html([("a", -1.0)])


# ---------------------------------------------------------------------------
# Nearest neighbours


ITOS = ["<pad>", "<unk>", "king", "queen", "apple", "void", "anti"]
MATRIX = np.array(
    [
        [0.0, 0.0],  # <pad>
        [1.0, 0.0],  # <unk>: identical direction to king, must be skipped
        [2.0, 0.0],  # king
        [1.0, 1.0],  # queen
        [0.0, 3.0],  # apple
        [0.0, 0.0],  # void: zero norm
        [-1.0, 0.0],  # anti
    ]
)


def test_nearest_neighbours_hand_computed():
    result = nearest_neighbours(MATRIX, ITOS, "king")
    words = [w for w, _ in result]
    assert words == ["queen", "apple", "void", "anti"]  # ties keep vocabulary order
    sims = [s for _, s in result]
    assert sims == pytest.approx([1 / np.sqrt(2), 0.0, 0.0, -1.0])
    assert all(isinstance(w, str) and isinstance(s, float) for w, s in result)
    assert "king" not in words and "<pad>" not in words and "<unk>" not in words


def test_nearest_neighbours_k_and_skip():
    assert [w for w, _ in nearest_neighbours(MATRIX, ITOS, "king", k=1)] == ["queen"]
    with_unk = nearest_neighbours(MATRIX, ITOS, "king", k=2, skip=1)
    assert with_unk[0] == ("<unk>", pytest.approx(1.0))
    assert nearest_neighbours(MATRIX, ITOS, "king", k=0) == []


def test_nearest_neighbours_matches_brute_force():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(30, 5))
    itos = [f"w{i}" for i in range(30)]
    got = nearest_neighbours(m, itos, "w7", k=5)
    ref = []
    for i in range(2, 30):
        if i != 7:
            ref.append((float(m[7] @ m[i] / (np.linalg.norm(m[7]) * np.linalg.norm(m[i]))), itos[i]))
    ref.sort(reverse=True)
    assert [w for w, _ in got] == [w for _, w in ref[:5]]
    assert [s for _, s in got] == pytest.approx([s for s, _ in ref[:5]])


def test_nearest_neighbours_zero_norm_query_and_unknown_word():
    result = nearest_neighbours(MATRIX, ITOS, "void")
    assert all(s == 0.0 for _, s in result)
    assert not any(np.isnan(s) for _, s in result)
    with pytest.raises(KeyError, match="prince"):
        nearest_neighbours(MATRIX, ITOS, "prince")
    with pytest.raises(ValueError):
        nearest_neighbours(MATRIX[:3], ITOS, "king")


# ---------------------------------------------------------------------------
# Classifier diagnostics


def test_most_confident_mistakes_ordering():
    ids = np.array([10, 11, 12, 13, 14, 15])
    gold = np.array([0, 1, 0, 1, 0, 1])
    pred = np.array([0, 0, 1, 0, 1, 1])
    probs = np.array(
        [
            [0.99, 0.01],  # right
            [0.70, 0.30],  # wrong, conf 0.70
            [0.05, 0.95],  # wrong, conf 0.95
            [0.60, 0.40],  # wrong, conf 0.60
            [0.20, 0.80],  # wrong, conf 0.80
            [0.00, 1.00],  # right (most confident overall, but correct)
        ]
    )
    out = most_confident_mistakes(ids, gold, pred, probs, ["neg", "pos"], k=3)
    assert out == [
        {"id": 12, "gold": "neg", "predicted": "pos", "confidence": pytest.approx(0.95)},
        {"id": 14, "gold": "neg", "predicted": "pos", "confidence": pytest.approx(0.80)},
        {"id": 11, "gold": "pos", "predicted": "neg", "confidence": pytest.approx(0.70)},
    ]
    assert type(out[0]["id"]) is int and type(out[0]["confidence"]) is float
    assert len(most_confident_mistakes(ids, gold, pred, probs, ["neg", "pos"])) == 4
    assert most_confident_mistakes(ids, gold, gold, probs, ["neg", "pos"]) == []


def test_calibration_table_constructed():
    gold = [0, 1, 1, 0, 1, 0, 1, 1]
    prob = [0.05, 0.15, 0.95, 1.0, 0.5, 0.55, 0.0, 0.9]
    rows = calibration_table(gold, prob, bins=10)
    assert [r["bin_low"] for r in rows] == pytest.approx([0.0, 0.1, 0.5, 0.9])
    assert [r["bin_high"] for r in rows] == pytest.approx([0.1, 0.2, 0.6, 1.0])
    assert [r["count"] for r in rows] == [2, 1, 2, 3]
    assert sum(r["count"] for r in rows) == len(prob)
    first, second, middle, last = rows
    assert first["mean_predicted"] == pytest.approx(0.025)
    assert first["fraction_positive"] == pytest.approx(0.5)
    assert second["mean_predicted"] == pytest.approx(0.15)
    assert second["fraction_positive"] == pytest.approx(1.0)
    assert middle["mean_predicted"] == pytest.approx(0.525)
    assert middle["fraction_positive"] == pytest.approx(0.5)
    # 1.0 falls in the last (closed) bin together with 0.9 and 0.95.
    assert last["mean_predicted"] == pytest.approx((0.95 + 1.0 + 0.9) / 3)
    assert last["fraction_positive"] == pytest.approx(2 / 3)
    assert set(first) == {"bin_low", "bin_high", "mean_predicted", "fraction_positive", "count"}


def test_calibration_table_bin_edges_and_validation():
    rows = calibration_table([1, 0, 1], [0.5, 0.49, 1.0], bins=2)
    assert [(r["bin_low"], r["count"]) for r in rows] == [(0.0, 1), (0.5, 2)]
    assert calibration_table([], [], bins=5) == []
    with pytest.raises(ValueError):
        calibration_table([1], [1.5])
    with pytest.raises(ValueError):
        calibration_table([1, 0], [0.5])


def test_length_histogram_data():
    lengths = [1, 2, 2, 3, 10, 10, 10]
    counts_, edges = length_histogram_data(lengths, bins=3)
    ref_counts, ref_edges = np.histogram(lengths, bins=3)
    np.testing.assert_array_equal(counts_, ref_counts)
    np.testing.assert_allclose(edges, ref_edges)
    assert counts_.sum() == len(lengths)
    assert len(length_histogram_data(lengths)[0]) == 30


def test_module_does_not_import_tensorflow():
    code = "import sys, pipelines.analysis; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
