"""Word shape classes for document context: how a token is cased, and where.

The NER tagger's document features (models/case_evidence.py) count, for each
word, how its other mentions in the same document are cased: "Japan" written
in lower case elsewhere is evidence against an entity, "JAPAN" in a headline
next to "Japan" in the body is evidence for one. `tf_case_classes` in
pipelines/text/tf_tokenizer.py is the TensorFlow twin; a test checks both
agree on real text.

Upper and lower case are the Unicode categories Lu and Ll (RE2's \\p{Lu} and
\\p{Ll}), so both implementations read a character alike.
"""

import unicodedata

# 0 is padding. "initial": capitalised at the start of a sentence, where case
# says nothing; all-caps stays "upper" there (headlines).
CASE_CLASSES = ("<pad>", "uncased", "lower", "capitalised", "upper", "initial", "mixed")
NUM_CASE_CLASSES = len(CASE_CLASSES)
# A token after one of these starts a sentence (the served text has no other boundaries).
SENTENCE_ENDS = frozenset({".", "!", "?"})

_cache = {}


def _shape(token):
    shape = _cache.get(token)
    if shape is None:
        categories = [unicodedata.category(c) for c in token]
        shape = ("Lu" in categories, "Ll" in categories, bool(categories) and categories[0] == "Lu")
        if len(_cache) < 1_000_000:
            _cache[token] = shape
    return shape


def case_class(token, initial):
    """The CASE_CLASSES index of `token`; `initial`: it starts a sentence."""
    has_upper, has_lower, first_upper = _shape(token)
    if not has_upper:
        return 2 if has_lower else 1
    if not has_lower:
        return 4
    if first_upper:
        return 5 if initial else 3
    return 6


def case_classes(tokens):
    """Case class of each token of one sentence or text: the first token and every token
    after ".", "!" or "?" count as sentence-initial."""
    return [case_class(t, i == 0 or tokens[i - 1] in SENTENCE_ENDS) for i, t in enumerate(tokens)]
