"""Sentiment encoding: truncation policies, the document encoder and the prepared splits."""

import pytest

from pipelines.tasks.sentiment.encoding import truncate_tokens


def test_truncate_tokens_policies():
    toks = list("abcdefghij")
    assert truncate_tokens(toks, 4, "head") == list("abcd")
    assert truncate_tokens(toks, 4, "tail") == list("ghij")
    assert truncate_tokens(toks, 4, "head_tail") == list("abij")
    assert truncate_tokens(toks, 5, "head_tail") == list("abhij")  # h = 5 // 2 = 2
    assert truncate_tokens(toks, 1, "head_tail") == ["j"]  # h = 0
    assert truncate_tokens(toks, 9, "head_tail") == list("abcdfghij")
    for policy in ("head", "tail", "head_tail"):
        assert truncate_tokens(toks, 10, policy) == toks  # not longer than max: unchanged
        assert truncate_tokens(toks, 50, policy) == toks
        assert truncate_tokens([], 3, policy) == []
        assert truncate_tokens(tuple("ab"), 2, policy) == ["a", "b"]
        assert len(truncate_tokens(toks, 7, policy)) == 7
    result = truncate_tokens(toks, 10, "head")
    assert result is not toks
    with pytest.raises(ValueError, match="truncate policy"):
        truncate_tokens(toks, 4, "middle")
    for bad in (0, -1, 2.0, True, None):
        with pytest.raises(ValueError, match="max_tokens"):
            truncate_tokens(toks, bad, "head")
