"""Document label consistency (`document_vote`): what changes a mention's type, and what does not."""

import numpy as np
import pytest

from pipelines.core.errors import ParamsError
from pipelines.tasks.ner.model import document_vote_setting, entity_types, vote_documents

TYPES = ["LOC", "ORG", "PER"]


def vote(docs, tokens, tags, scores, share=0.6):
    return vote_documents(docs, tokens, tags, scores, TYPES, share)


def test_an_outvoted_mention_takes_its_documents_majority_type():
    tokens = [["Jordan", "won", "."], ["Jordan", "scored"], ["Jordan", "smiled"]]
    tags = [["B-PER", "O", "O"], ["B-LOC", "O"], ["B-PER", "O"]]
    scores = [[0.9, 0, 0], [0.4, 0], [0.8, 0]]
    new_tags, new_scores = vote([0, 0, 0], tokens, tags, scores)
    assert new_tags == [["B-PER", "O", "O"], ["B-PER", "O"], ["B-PER", "O"]]
    # The relabelled mention's score is its new type's share of the vote; the others keep theirs.
    np.testing.assert_allclose(new_scores[1], [1.7 / 2.1, 0], rtol=1e-6)
    np.testing.assert_allclose(new_scores[0], [0.9, 0, 0])


def test_a_close_vote_changes_nothing():
    tokens = [["Jordan", "won"], ["Jordan", "borders", "Syria"]]
    tags = [["B-PER", "O"], ["B-LOC", "O", "B-LOC"]]
    scores = [[0.9, 0], [0.8, 0, 0.95]]
    new_tags, new_scores = vote([0, 0], tokens, tags, scores)
    assert new_tags == tags
    assert [list(s) for s in new_scores] == [list(np.float32(s)) for s in scores]


def test_documents_vote_apart_and_names_are_whole_and_case_sensitive():
    tokens = [["Jordan", "won"], ["Jordan", "won"], ["Jordan", "won"], ["JORDAN", "won"], ["Michael", "Jordan"]]
    tags = [["B-PER", "O"], ["B-PER", "O"], ["B-LOC", "O"], ["B-LOC", "O"], ["B-LOC", "I-LOC"]]
    scores = [[0.9, 0], [0.9, 0], [0.3, 0], [0.3, 0], [0.3, 0]]
    new_tags, _ = vote([0, 0, 1, 1, 1], tokens, tags, scores)
    assert new_tags == tags  # document 1 alone says LOC; "JORDAN" and "Michael Jordan" are other names


def test_a_relabelled_entity_does_not_merge_with_its_neighbour():
    # "New York Times": the tagger split it into LOC "New York" + ORG "Times"; when the vote makes
    # "New York" ORG, "Times" must stay a separate entity (B-), as it was.
    tokens = [["New", "York", "won"], ["New", "York", "Times"], ["New", "York", "won"]]
    tags = [["B-ORG", "I-ORG", "O"], ["B-LOC", "I-LOC", "I-ORG"], ["B-ORG", "I-ORG", "O"]]
    scores = [[0.9, 0, 0], [0.2, 0, 0.7], [0.9, 0, 0]]
    new_tags, _ = vote([0, 0, 0], tokens, tags, scores)
    assert new_tags[1] == ["B-ORG", "I-ORG", "B-ORG"]


def test_an_entity_never_crosses_a_sentence_break():
    # Sentence 2 starts with a stray I-PER: its own entity, not a continuation of sentence 1's.
    tokens = [["met", "Anna"], ["Weber", "left"], ["Weber", "came"], ["Weber", "went"]]
    tags = [["O", "B-PER"], ["I-PER", "O"], ["B-ORG", "O"], ["B-ORG", "O"]]
    scores = [[0, 0.9], [0.3, 0], [0.6, 0], [0.6, 0]]
    new_tags, _ = vote([0, 0, 0, 0], tokens, tags, scores)
    assert new_tags[1] == ["B-ORG", "O"]  # "Weber" alone was outvoted by ORG (1.2 of 1.5)
    assert new_tags[0] == ["O", "B-PER"]


def test_no_entities_and_no_tokens():
    assert vote([], [], [], []) == ([], [])
    new_tags, new_scores = vote([0, 0], [["a", "b"], []], [["O", "O"], []], [[0, 0], []])
    assert new_tags == [["O", "O"], []] and [len(s) for s in new_scores] == [2, 0]


def test_entity_types_of_a_tag_set():
    assert entity_types(["O", "B-PER", "E-PER", "S-LOC", "I-MISC"]) == ["LOC", "MISC", "PER"]


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (None, 0.0), (False, 0.0), (0.5, 0.5), (0.7, 0.7)])
def test_document_vote_setting(value, expected):
    assert document_vote_setting({"document_vote": value}) == expected
    assert document_vote_setting({}) == "auto"


@pytest.mark.parametrize("value", [0.3, 1.0, "often", True, [0.6]])
def test_a_bad_document_vote_is_refused(value):
    with pytest.raises(ParamsError, match=r"ner.train.document_vote must be auto, null or a number in \[0.5, 1\)"):
        document_vote_setting({"document_vote": value})


def test_a_tag_set_without_entities_passes_through():
    assert vote_documents([0], [["a"]], [["O"]], [[0.0]], [], 0.6)[0] == [["O"]]


def test_auto_vote_is_off_without_tensorflow(monkeypatch, capsys):
    """A JAX or torch machine without TensorFlow (the GPU benchmark's) still finishes training."""
    import sys
    import types

    from pipelines.tasks.ner.model import choose_document_vote

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow raises ImportError
    model = types.SimpleNamespace(document_vote=0.6)
    record = choose_document_vote(model, None, None, {"document_vote": "auto"})
    assert model.document_vote == 0.0 and record == {"document_vote": 0.0, "skipped": "no TensorFlow"}
    assert "no document vote" in capsys.readouterr().out
